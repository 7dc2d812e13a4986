/**
 * PolledSocket (src/nat/polled-socket.ts), the poll plumbing NativeUdpSocket
 * and PingSocket share, driven through a fake poll: unexplained POLLERRs are
 * counted and the poll restarts on the next turn until MAX_CONSECUTIVE_ERRORS
 * in a row make the socket fail once (onError, polling stopped for good);
 * explained ones never count; a receive in between starts the count again;
 * close() is idempotent. The real sockets' POLLERR paths are in
 * udp-errors.test.ts and ping-socket.test.ts.
 */
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NativeAddon, PollHandle } from '../../src/link/native.js';
import { MAX_CONSECUTIVE_ERRORS, PolledSocket, type PolledSocketError } from '../../src/nat/polled-socket.js';

const UV_EBADF = -9;
const turn = () => new Promise((r) => setImmediate(r));

interface FakePoll {
  native: NativeAddon;
  /** The callback of the running poll, null when stopped. */
  callback: ((status: number, events: number) => void) | null;
  starts: number;
}

function fakePoll(): FakePoll {
  const f: FakePoll = { native: null as unknown as NativeAddon, callback: null, starts: 0 };
  f.native = {
    pollStart(_fd: number, cb: (status: number, events: number) => void): PollHandle {
      f.callback = cb;
      f.starts++;
      return {} as PollHandle;
    },
    pollStop(): void {
      f.callback = null;
    },
    pollRef(): void {},
  } as unknown as NativeAddon;
  return f;
}

class TestSocket extends PolledSocket<PolledSocketError> {
  readonly stats = { recvErrors: 0 };
  handler: (() => void) | null = null;
  /** What the next drain finds: 'data', an errno (negative), or 'nothing'. */
  next: 'data' | 'nothing' | number = 'nothing';
  /** Errors the next POLLERR's drain explains. */
  explains = 0;
  explained = 0;
  fdCloses = 0;

  constructor(native: NativeAddon) {
    super(native, openSync('/dev/null', 'r'), 4);
  }

  listen(handler: () => void): void {
    this.handler = handler;
    this.startPolling();
  }

  protected drain(): void {
    const r = this.next;
    this.next = 'nothing';
    if (r === 'data') {
      this.consecutiveErrors = 0;
      this.handler?.();
    } else if (typeof r === 'number') {
      this.recvFailed(-r, 'recv');
    }
  }

  protected override onPollErrorDrain(): void {
    this.explained += this.explains;
  }

  protected override explainedErrors(): number {
    return this.explained;
  }

  protected hasHandler(): boolean {
    return this.handler !== null;
  }

  protected dropHandlers(): void {
    this.handler = null;
  }

  protected closeFd(): void {
    this.fdCloses++;
    closeSync(this.fd);
  }

  protected ioError(errno: number, syscall: string): PolledSocketError {
    return Object.assign(new Error(`test: ${syscall} failed: ${errno}`), { code: 'ERR_TEST_IO', errno, syscall });
  }
}

async function pollErr(f: FakePoll): Promise<void> {
  expect(f.callback).not.toBeNull();
  f.callback!(UV_EBADF, 0);
  await turn(); // the restart waits for the next turn
}

describe('PolledSocket', () => {
  it('fails once after MAX_CONSECUTIVE_ERRORS unexplained POLLERRs, restarting the poll until then', async () => {
    const f = fakePoll();
    const s = new TestSocket(f.native);
    const failures: PolledSocketError[] = [];
    s.onError = (e) => failures.push(e);
    s.listen(() => {});
    for (let i = 1; i < MAX_CONSECUTIVE_ERRORS; i++) await pollErr(f);
    expect(failures).toEqual([]);
    expect(f.starts).toBe(MAX_CONSECUTIVE_ERRORS);
    expect(s.stats.recvErrors).toBe(MAX_CONSECUTIVE_ERRORS - 1);
    await pollErr(f);
    expect(failures.map((e) => [e.code, e.errno, e.syscall])).toEqual([['ERR_TEST_IO', 9, 'poll']]);
    expect(s.lastRecvErrno).toBe(9);
    expect(f.callback).toBeNull(); // stopped for good
    await turn();
    expect(f.starts).toBe(MAX_CONSECUTIVE_ERRORS);
    s.listen(() => {}); // a new handler does not restart a failed socket
    expect(f.callback).toBeNull();
    s.close();
  });

  it('never counts an explained POLLERR, and a receive in between starts the count again', async () => {
    const f = fakePoll();
    const s = new TestSocket(f.native);
    const failures: PolledSocketError[] = [];
    s.onError = (e) => failures.push(e);
    let got = 0;
    s.listen(() => got++);
    s.explains = 1;
    for (let i = 0; i < MAX_CONSECUTIVE_ERRORS + 5; i++) await pollErr(f);
    expect(s.stats.recvErrors).toBe(0);
    s.explains = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i < MAX_CONSECUTIVE_ERRORS; i++) await pollErr(f);
      s.next = 'data';
      f.callback!(0, 1);
    }
    expect(got).toBe(3);
    expect(failures).toEqual([]);
    // Receive errors count the same way as poll errors.
    for (let i = 0; i < MAX_CONSECUTIVE_ERRORS; i++) {
      s.next = -5;
      f.callback!(0, 1);
    }
    expect(failures.map((e) => e.syscall)).toEqual(['recv']);
    s.close();
  });

  it('does not restart the poll after a POLLERR once the handler is gone or the socket closed', async () => {
    const f = fakePoll();
    const s = new TestSocket(f.native);
    s.listen(() => {});
    f.callback!(UV_EBADF, 0);
    s.close();
    await turn();
    expect(f.callback).toBeNull();
    expect(f.starts).toBe(1);
  });

  it('close() is idempotent: handlers dropped, poll stopped, fd closed once', () => {
    const f = fakePoll();
    const s = new TestSocket(f.native);
    s.listen(() => {});
    s.close();
    s.close();
    expect(s.isClosed).toBe(true);
    expect(s.handler).toBeNull();
    expect(f.callback).toBeNull();
    expect(s.fdCloses).toBe(1);
  });
});
