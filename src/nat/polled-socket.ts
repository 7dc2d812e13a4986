/**
 * What the relay's datagram sockets on raw fds share around their poll:
 * NativeUdpSocket (native-udp.ts) and PingSocket (ping-socket.ts). Each reads
 * its fd in batches (`drain`) when the poll says it is readable; this class
 * keeps the rest in one place:
 *
 *  - the poll (FdPoller) started by the first handler, its ref flag, and the
 *    fd's finalizer (fd-finalizer.ts) for a socket dropped unclosed;
 *  - POLLERR: libuv reports it as a negative status and stops the poll. The
 *    socket reads what explains it (`onPollErrorDrain`: the UDP socket's ICMP
 *    error queue), drains, and counts the error only if nothing explained it;
 *    the poll restarts on the next loop turn (FdPoller.restartNextTurn);
 *  - receive failures: counted (`stats.recvErrors`, `lastRecvErrno`), and
 *    after MAX_CONSECUTIVE_ERRORS in a row the socket stops receiving for
 *    good: polling stops and `onError` (default: a process warning) hears it
 *    once;
 *  - close(): idempotent, safe inside a handler (the rest of the batch is
 *    dropped), handlers forgotten, poll stopped, fd closed.
 */
import { closeOnCollect, closeOnCollectCancel } from '../link/fd-finalizer.js';
import { FdPoller } from '../link/fd-poller.js';
import type { NativeAddon } from '../link/native.js';

/** Receive or poll failures in a row after which a socket gives up. */
export const MAX_CONSECUTIVE_ERRORS = 100;

/** What `onError` receives; each socket names its code and system calls. */
export interface PolledSocketError extends Error {
  code: string;
  /** Positive errno. */
  errno: number;
  syscall: string;
}

export abstract class PolledSocket<E extends PolledSocketError> {
  readonly fd: number;
  /** 4 or 6: which of the socket's methods apply. */
  readonly family: 4 | 6;
  /** errno of the last refused send, 0 if none yet. */
  lastSendErrno = 0;
  /** errno of the last unexplained receive or poll failure, 0 if none yet. */
  lastRecvErrno = 0;
  /** Called once when receiving fails for good; polling has stopped. Default: a process warning. */
  onError: ((err: E) => void) | null = null;
  abstract readonly stats: { recvErrors: number };

  protected readonly native: NativeAddon;
  protected readonly poller: FdPoller;
  protected closed = false;
  protected failed = false;
  protected consecutiveErrors = 0;

  protected constructor(native: NativeAddon, fd: number, family: 4 | 6) {
    this.native = native;
    this.fd = fd;
    this.family = family;
    this.poller = new FdPoller(native, fd, this.onReadable);
    closeOnCollect(this, fd);
  }

  /** Reads what is ready, handing it to the handlers (see the subclasses). */
  protected abstract drain(): void;
  /** Whether a handler wants what the poll brings (the poll restarts only then). */
  protected abstract hasHandler(): boolean;
  protected abstract dropHandlers(): void;
  protected abstract closeFd(): void;
  protected abstract ioError(errno: number, syscall: string): E;

  /** On POLLERR, before the drain: read what may explain it. */
  protected onPollErrorDrain(): void {}

  /** A count that grows with every explained error (compared across a POLLERR's handling). */
  protected explainedErrors(): number {
    return 0;
  }

  /** Whether polling keeps the event loop alive (default true). Remembered when not polling yet. */
  setRef(ref: boolean): void {
    this.poller.setRef(ref);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops polling and closes the fd. Idempotent; safe inside a handler (the rest of the batch is dropped). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropHandlers();
    this.poller.stop();
    closeOnCollectCancel(this);
    this.closeFd();
  }

  protected startPolling(): void {
    if (!this.poller.wanted && !this.failed) this.poller.start();
  }

  /** Counts a failed receive; returns true when it was one too many and the socket failed. */
  protected recvFailed(errno: number, syscall: string): boolean {
    this.stats.recvErrors++;
    this.lastRecvErrno = errno;
    if (++this.consecutiveErrors < MAX_CONSECUTIVE_ERRORS) return false;
    this.fail(errno, syscall);
    return true;
  }

  private readonly onReadable = (status: number): void => {
    if (status >= 0) {
      this.drain();
      return;
    }
    this.poller.stop();
    const explainedBefore = this.explainedErrors();
    this.onPollErrorDrain();
    this.drain();
    if (this.closed || this.failed) return;
    if (this.explainedErrors() === explainedBefore && this.recvFailed(-status, 'poll')) return;
    this.poller.restartNextTurn(() => !this.closed && !this.failed && this.hasHandler());
  };

  private fail(errno: number, syscall: string): void {
    this.failed = true;
    this.poller.stop();
    const err = this.ioError(errno, syscall);
    if (this.onError !== null) this.onError(err);
    else process.emitWarning(err);
  }
}
