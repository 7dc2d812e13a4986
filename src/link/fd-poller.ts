/**
 * One uv_poll (native/poll.c) on a datagram fd its owner reads in batches:
 * the ping sockets (nat/ping-socket.ts) and the UDP relay's sockets
 * (nat/native-udp.ts). It keeps what both need around the handle:
 *
 *  - the ref flag, remembered while not polling (a socket may be told not to
 *    keep the process alive before its first handler arrives);
 *  - the restart after libuv stopped the poll on POLLERR (it reports status
 *    UV_EBADF and stops the handle): a new uv_poll on the same fd must not
 *    start while the stopped one is still closing, so the restart waits for
 *    the next loop turn, and happens only if the owner still wants it then.
 */
import type { NativeAddon, PollHandle } from './native.js';

export class FdPoller {
  private handle: PollHandle | null = null;
  private ref = true;
  private restartPending = false;

  constructor(
    private readonly native: NativeAddon,
    private readonly fd: number,
    private readonly onReady: (status: number) => void,
  ) {}

  /** Polling, or about to restart. */
  get wanted(): boolean {
    return this.handle !== null || this.restartPending;
  }

  start(): void {
    if (this.handle !== null) return;
    this.handle = this.native.pollStart(this.fd, this.onReady);
    if (!this.ref) this.native.pollRef(this.handle, false);
  }

  stop(): void {
    if (this.handle === null) return;
    this.native.pollStop(this.handle);
    this.handle = null;
  }

  /** Whether polling keeps the event loop alive (default true). */
  setRef(ref: boolean): void {
    this.ref = ref;
    if (this.handle !== null) this.native.pollRef(this.handle, ref);
  }

  /** After stop() on a POLLERR: polls again next turn if `stillWanted()` then says so. */
  restartNextTurn(stillWanted: () => boolean): void {
    this.restartPending = true;
    setImmediate(() => {
      this.restartPending = false;
      if (this.handle === null && stillWanted()) this.start();
    });
  }
}
