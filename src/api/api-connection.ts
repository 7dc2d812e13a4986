/**
 * One client of the API socket, from accept to close.
 *
 *   RECEIVING ──complete object / peer EOF / deadline with bytes──▶ PROCESSING
 *       │                                                              │ reply: one write, then FIN
 *       ├──too large──▶ reply, close (like slirp4netns)                ▼
 *       └──deadline, nothing received──▶ close                     DRAINING ──peer EOF / linger──▶ closed
 *
 * slirp4netns reads once, answers, shuts the socket down and closes it. Two
 * details of that matter to the real clients and are kept:
 *
 * - The reply is a single write with no trailing newline, followed by our
 *   FIN: Podman does one Read of up to 2048 bytes after CloseWrite, and
 *   RootlessKit reads to EOF.
 * - Nothing is read or answered after the first request.
 *
 * And one is improved on: after replying we keep reading (and discarding)
 * until the client's EOF before closing. Closing an AF_UNIX socket with
 * unread bytes in its receive queue makes the peer's next read fail with
 * ECONNRESET instead of EOF (unix_release_sock), which would turn a trailing
 * byte that arrived late into a failed ReadAll. The drain is bounded by
 * `maxRequestBytes` and by `lingerMs`; a too-large request is not drained
 * (it may be an endless stream), just answered and closed.
 *
 * While the command runs the socket is paused, so a client cannot make us
 * buffer or spin while, e.g., the forwarder opens a listener.
 */
import type { Socket } from 'node:net';
import { FramerVerdict, RequestFramer } from './request-framer.js';

export interface ApiConnectionOptions {
  maxRequestBytes: number;
  /** From accept until the request is complete. */
  requestTimeoutMs: number;
  /** After the reply, how long to wait for the client's EOF. */
  lingerMs: number;
  /** The request bytes (complete, or all there is) to the reply text. Must not reject. */
  handle(request: Buffer): Promise<string>;
  /** A reply for a request that reached `maxRequestBytes`. */
  tooLargeReply: string;
  log: ((line: string) => void) | undefined;
  onClose(conn: ApiConnection): void;
}

const State = {
  RECEIVING: 0,
  PROCESSING: 1,
  DRAINING: 2,
  CLOSED: 3,
} as const;

type StateCode = (typeof State)[keyof typeof State];

export class ApiConnection {
  private state: StateCode = State.RECEIVING;
  private readonly framer: RequestFramer;
  private timer: NodeJS.Timeout | undefined;
  private drainedBytes = 0;
  private peerEnded = false;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ApiConnectionOptions,
  ) {
    this.framer = new RequestFramer(opts.maxRequestBytes);
  }

  start(): void {
    const s = this.socket;
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('end', () => this.onEnd());
    // EPIPE/ECONNRESET from a client that went away: nothing to tell anyone.
    s.on('error', () => this.destroy());
    s.on('close', () => this.destroy());
    this.arm(this.opts.requestTimeoutMs, () => this.onDeadline());
  }

  /** Closes at once, whatever the state. */
  destroy(): void {
    if (this.state === State.CLOSED) return;
    this.state = State.CLOSED;
    this.disarm();
    this.socket.destroy();
    this.opts.onClose(this);
  }

  private onData(chunk: Buffer): void {
    if (this.state === State.RECEIVING) {
      const verdict = this.framer.push(chunk);
      if (verdict === FramerVerdict.COMPLETE) this.process();
      else if (verdict === FramerVerdict.TOO_LARGE) this.refuseTooLarge();
    } else if (this.state === State.DRAINING) {
      this.drainedBytes += chunk.length;
      if (this.drainedBytes > this.opts.maxRequestBytes) this.destroy();
    }
  }

  private onEnd(): void {
    this.peerEnded = true;
    if (this.state === State.RECEIVING) {
      // slirp4netns answers whatever one read returned, even nothing ("cannot parse JSON").
      this.process();
    } else if (this.state === State.DRAINING) {
      this.closeWhenFlushed();
    }
  }

  private onDeadline(): void {
    if (this.state !== State.RECEIVING) return;
    if (this.framer.receivedBytes === 0) {
      this.opts.log?.('api_handler: no request within the deadline, closing');
      this.destroy();
      return;
    }
    // An unfinished object or a scalar without EOF: answer what we have, as one read would have.
    this.process();
  }

  private process(): void {
    this.state = State.PROCESSING;
    this.disarm();
    this.socket.pause();
    this.opts
      .handle(this.framer.request())
      .then((reply) => this.reply(reply))
      .catch(() => this.destroy());
  }

  private reply(text: string): void {
    if (this.state !== State.PROCESSING) return;
    this.state = State.DRAINING;
    this.socket.end(text);
    this.arm(this.opts.lingerMs, () => this.destroy());
    if (this.peerEnded) this.closeWhenFlushed();
    else this.socket.resume();
  }

  private refuseTooLarge(): void {
    this.opts.log?.(`api_handler: too large message (>= ${this.opts.maxRequestBytes} bytes)`);
    this.state = State.DRAINING;
    this.disarm();
    this.socket.pause();
    this.socket.end(this.opts.tooLargeReply);
    this.arm(this.opts.lingerMs, () => this.destroy());
    this.closeWhenFlushed();
  }

  private closeWhenFlushed(): void {
    if (this.socket.writableFinished) this.destroy();
    else this.socket.once('finish', () => this.destroy());
  }

  private arm(ms: number, fn: () => void): void {
    this.disarm();
    this.timer = setTimeout(fn, ms);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
