/**
 * One DNS exchange with one upstream server, over UDP or TCP. The only file
 * of the forwarder that uses sockets; it gets them from ResolverSockets.
 *
 * UDP: a fresh socket per attempt, connected to the server. The kernel picks
 * a random ephemeral source port at bind (Linux `udp_lib_get_port`), which,
 * with the forwarder's random ID, gives the ~32 bits of entropy RFC 5452 §9
 * asks for. Connecting also means the kernel drops datagrams from any other
 * source, and an ICMP port unreachable comes back as ECONNREFUSED at once
 * instead of a timeout: a dead local resolver fails over in microseconds.
 *
 * TCP (RFC 7766): a fresh connection per attempt, the query framed with its
 * 2-byte length, the first acceptable reply taken, then the connection is
 * destroyed. Connection reuse and pipelining (RFC 7766 §6.2.1) are not worth
 * it here: TCP is the rare path (truncated answers, guests that ask over TCP).
 *
 * Every attempt is bounded by its own timer and registered until it ends, so
 * `close()` can end them all: no socket or timer survives it.
 */
import type dgram from 'node:dgram';
import type net from 'node:net';
import { DnsTcpFramer, TcpFramerResult, frame } from './tcp-framing.js';

export interface UpstreamTarget {
  /** An IP literal, IPv6 possibly with %scope. */
  address: string;
  family: 4 | 6;
  port: number;
}

export const UpstreamStatus = {
  REPLY: 0,
  TIMEOUT: 1,
  /** ECONNREFUSED, ENETUNREACH, a reset, a bind failure, EOF before a reply... */
  NET_ERROR: 2,
  /** `close()` ended the attempt. */
  CLOSED: 3,
} as const;

export type UpstreamStatusCode = (typeof UpstreamStatus)[keyof typeof UpstreamStatus];

export interface UpstreamResult {
  status: UpstreamStatusCode;
  /** The accepted reply (owned: never a view of a reused buffer) when status is REPLY. */
  reply: Uint8Array | null;
  /** The errno code (or 'EOF') for NET_ERROR; '' otherwise. */
  error: string;
}

/**
 * Where the forwarder's own sockets to its resolvers come from: the stack's
 * HostNetwork (src/nat/host.ts), the one factory of host sockets, so tests
 * can substitute it like every other host socket.
 */
export interface ResolverSockets {
  /** An unbound, unconnected datagram socket of `family`. */
  resolverUdpSocket(family: 4 | 6): dgram.Socket;
  /** A TCP connection to a resolver ('connect' or 'error' follows). */
  resolverTcpConnect(options: net.NetConnectOpts): net.Socket;
}

export interface UpstreamOptions {
  sockets: ResolverSockets;
  /** Source address for IPv4 upstream sockets (slirp4netns --outbound-addr). */
  localAddress?: string;
  /** Source address for IPv6 upstream sockets (--outbound-addr6). */
  localAddress6?: string;
}

/** Decides whether a datagram or TCP message is the reply (ID and question match). */
export type AcceptReply = (reply: Uint8Array) => boolean;

interface Attempt {
  end(result: UpstreamResult): void;
}

export class Upstream {
  private readonly sockets: ResolverSockets;
  private readonly localAddress: string | undefined;
  private readonly localAddress6: string | undefined;
  private readonly attempts = new Set<Attempt>();
  /** One per socket not yet fully closed (an ended attempt's socket closes asynchronously). */
  private readonly handles = new Set<Promise<void>>();
  private closing = false;

  constructor(opts: UpstreamOptions) {
    this.sockets = opts.sockets;
    this.localAddress = opts.localAddress;
    this.localAddress6 = opts.localAddress6;
  }

  /** Attempts in flight. */
  get active(): number {
    return this.attempts.size;
  }

  udp(target: UpstreamTarget, query: Uint8Array, accept: AcceptReply, timeoutMs: number): Promise<UpstreamResult> {
    if (this.closing) return Promise.resolve(CLOSED_RESULT);
    return new Promise((resolve) => {
      const socket = this.sockets.resolverUdpSocket(target.family);
      const markClosed = this.track();
      let done = false;
      const attempt: Attempt = {
        end: (result) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          this.attempts.delete(attempt);
          try {
            socket.close(markClosed);
          } catch {
            // Already closed by a failed bind.
            markClosed();
          }
          resolve(result);
        },
      };
      const timer = setTimeout(() => attempt.end(TIMEOUT_RESULT), timeoutMs);
      this.attempts.add(attempt);

      socket.on('error', (err: NodeJS.ErrnoException) => attempt.end(netError(err)));
      socket.on('message', (msg: Buffer) => {
        // dgram allocates each message: a plain view over it is owned.
        const reply = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
        if (accept(reply)) attempt.end({ status: UpstreamStatus.REPLY, reply, error: '' });
      });
      const local = target.family === 6 ? this.localAddress6 : this.localAddress;
      const send = (): void => {
        socket.connect(target.port, target.address, (err?: Error) => {
          if (done) return;
          if (err) {
            attempt.end(netError(err as NodeJS.ErrnoException));
            return;
          }
          socket.send(query, (sendErr) => {
            if (sendErr) attempt.end(netError(sendErr as NodeJS.ErrnoException));
          });
        });
      };
      if (local !== undefined) {
        socket.bind({ address: local, port: 0 }, () => {
          if (!done) send();
        });
      } else {
        send();
      }
    });
  }

  tcp(target: UpstreamTarget, query: Uint8Array, accept: AcceptReply, timeoutMs: number): Promise<UpstreamResult> {
    if (this.closing) return Promise.resolve(CLOSED_RESULT);
    return new Promise((resolve) => {
      const local = target.family === 6 ? this.localAddress6 : this.localAddress;
      const socket = this.sockets.resolverTcpConnect({
        host: target.address,
        port: target.port,
        family: target.family,
        ...(local !== undefined ? { localAddress: local } : {}),
      });
      socket.once('close', this.track());
      let done = false;
      const attempt: Attempt = {
        end: (result) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          this.attempts.delete(attempt);
          socket.destroy();
          resolve(result);
        },
      };
      const timer = setTimeout(() => attempt.end(TIMEOUT_RESULT), timeoutMs);
      this.attempts.add(attempt);

      const framer = new DnsTcpFramer();
      const messages: Uint8Array[] = [];
      socket.setNoDelay(true);
      socket.on('connect', () => socket.write(frame(query)));
      socket.on('data', (chunk: Buffer) => {
        messages.length = 0;
        if (framer.push(chunk, messages) !== TcpFramerResult.OK) {
          attempt.end({ status: UpstreamStatus.NET_ERROR, reply: null, error: 'EMSGSIZE' });
          return;
        }
        for (const m of messages) {
          if (accept(m)) {
            attempt.end({ status: UpstreamStatus.REPLY, reply: m, error: '' });
            return;
          }
        }
      });
      socket.on('error', (err: NodeJS.ErrnoException) => attempt.end(netError(err)));
      socket.on('end', () => attempt.end({ status: UpstreamStatus.NET_ERROR, reply: null, error: 'EOF' }));
      socket.on('close', () => attempt.end({ status: UpstreamStatus.NET_ERROR, reply: null, error: 'EOF' }));
    });
  }

  /** Ends every attempt (status CLOSED); resolves once every socket is closed. */
  close(): Promise<void> {
    this.closing = true;
    for (const a of [...this.attempts]) a.end(CLOSED_RESULT);
    return Promise.all([...this.handles]).then(() => undefined);
  }

  /** Registers a socket; call the returned function once its handle is closed. */
  private track(): () => void {
    let markClosed!: () => void;
    const closed = new Promise<void>((r) => {
      markClosed = r;
    });
    this.handles.add(closed);
    return () => {
      this.handles.delete(closed);
      markClosed();
    };
  }
}

function netError(err: NodeJS.ErrnoException): UpstreamResult {
  return { status: UpstreamStatus.NET_ERROR, reply: null, error: err.code ?? 'EIO' };
}

const TIMEOUT_RESULT: UpstreamResult = { status: UpstreamStatus.TIMEOUT, reply: null, error: '' };
const CLOSED_RESULT: UpstreamResult = { status: UpstreamStatus.CLOSED, reply: null, error: '' };
