/**
 * ICMP errors on unconnected UDP sockets (src/nat/udp-errors.ts,
 * native/udp-err.c), on loopback only: a datagram to a closed port on
 * 127.0.0.1 makes the kernel answer with ICMP port unreachable, which an
 * IP_RECVERR socket receives on its error queue.
 */
import dgram, { type Socket as DgramSocket } from 'node:dgram';
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, nativeAvailable } from '../../src/link/native.js';
import { dgramFd, drainUdpErrors, enableUdpErrors } from '../../src/nat/udp-errors.js';

const HAVE_ADDON = nativeAvailable();
if (!HAVE_ADDON) console.warn('SKIPPED: udp-errors tests: the native addon is not built (npm install)');

const LOOPBACK = 0x7f000001;
const ECONNREFUSED = 111;
const ENOTSOCK = 88;
const ICMP_DEST_UNREACH = 3;
const ICMP_PORT_UNREACH = 3;

interface Reported {
  dst: number;
  dstPort: number;
  errno: number;
  type: number;
  code: number;
  offender: number;
}

async function waitFor<T>(probe: () => T | undefined | null | false, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const open: DgramSocket[] = [];

async function bound(address = '127.0.0.1'): Promise<DgramSocket> {
  const s = dgram.createSocket('udp4');
  open.push(s);
  await new Promise<void>((resolve) => s.bind(0, address, resolve));
  return s;
}

function close(s: DgramSocket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = await bound();
  const port = s.address().port;
  await close(s);
  return port;
}

async function echoServer(): Promise<DgramSocket> {
  const s = await bound();
  s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
  return s;
}

function collector(): { reported: Reported[]; handler: Parameters<typeof enableUdpErrors>[1] } {
  const reported: Reported[] = [];
  return {
    reported,
    handler: (dst, dstPort, errno, type, code, offender) => reported.push({ dst, dstPort, errno, type, code, offender }),
  };
}

function socketFdCount(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile (readdir's own fd)
    }
  }
  return n;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map(close));
});

describe.skipIf(!HAVE_ADDON)('dgramFd (Node internals)', () => {
  it("finds the bound socket's own fd, -1 before bind and after close", async () => {
    const unbound = dgram.createSocket('udp4');
    open.push(unbound);
    expect(dgramFd(unbound)).toBe(-1);
    await close(unbound);

    const s = await bound();
    const fd = dgramFd(s);
    // If this fails, Node changed how a dgram socket keeps its handle (the
    // private state symbol with `handle.fd`): fix dgramFd in
    // src/nat/udp-errors.ts, or ICMP errors for the UDP relay stop working.
    expect(fd, 'dgramFd: Node dgram internals changed (state symbol / handle.fd)').toBeGreaterThanOrEqual(0);
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/^socket:\[\d+\]$/);
    // getsockname on that fd (pingLocalId works on any AF_INET socket) is our port.
    expect(loadNative().pingLocalId(fd)).toBe(s.address().port);

    await close(s);
    expect(dgramFd(s)).toBe(-1);
  });

  it('returns -1 for something that is not a dgram socket', () => {
    expect(dgramFd({} as DgramSocket)).toBe(-1);
    expect(enableUdpErrors({} as DgramSocket, () => {})).toBe(false);
  });
});

describe.skipIf(!HAVE_ADDON)('udpEnableRecvErr / udpReadErrors (native)', () => {
  it('reads nothing from an empty queue and reports a non-socket fd as -ENOTSOCK', async () => {
    const native = loadNative();
    const s = await bound();
    const fd = dgramFd(s);
    const out = new Float64Array(6 * 4);
    expect(native.udpEnableRecvErr(fd)).toBe(0);
    expect(native.udpReadErrors(fd, out, 4)).toBe(0);
    const file = openSync('/dev/null', 'r');
    try {
      expect(native.udpReadErrors(file, out, 4)).toBe(-ENOTSOCK);
      expect(native.udpEnableRecvErr(file)).toBe(ENOTSOCK);
    } finally {
      closeSync(file);
    }
    expect(() => native.udpReadErrors(fd, new Uint32Array(6) as unknown as Float64Array, 1)).toThrow(TypeError);
    expect(() => native.udpReadErrors('x' as unknown as number, out, 1)).toThrow(TypeError);
  });

  it('drains raw entries: destination, port, errno, type, code, offender; at most `max` per call', async () => {
    const native = loadNative();
    const port = await closedPort();
    const s = await bound();
    s.on('error', () => {}); // libuv's recvmsg meets sk_err; the queue is what we read
    const fd = dgramFd(s);
    expect(native.udpEnableRecvErr(fd)).toBe(0);
    // Spaced out, so that no send meets the previous datagram's sk_err.
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => s.send('x', port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));
      await sleep(5);
    }
    const out = new Float64Array(6 * 8);
    // The 'error' events do not drain here (no enableUdpErrors): all 3 are queued.
    expect(native.udpReadErrors(fd, out, 2)).toBe(2);
    expect(native.udpReadErrors(fd, out, 8)).toBe(1);
    expect([...out.subarray(0, 6)]).toEqual([LOOPBACK, port, ECONNREFUSED, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, LOOPBACK]);
    expect(native.udpReadErrors(fd, out, 8)).toBe(0);
  });
});

describe.skipIf(!HAVE_ADDON)('enableUdpErrors (loopback)', () => {
  it('reports ICMP port unreachable for a datagram to a closed port', async () => {
    const port = await closedPort();
    const s = await bound();
    const { reported, handler } = collector();
    expect(enableUdpErrors(s, handler)).toBe(true);
    expect(enableUdpErrors(s, handler)).toBe(true); // idempotent
    const otherListener: string[] = [];
    s.on('error', (e: NodeJS.ErrnoException) => otherListener.push(String(e.code)));
    s.send('refused', port, '127.0.0.1');
    await waitFor(() => reported.length >= 1);
    await sleep(20);
    expect(reported).toEqual([
      {
        dst: LOOPBACK,
        dstPort: port,
        errno: ECONNREFUSED,
        type: ICMP_DEST_UNREACH,
        code: ICMP_PORT_UNREACH,
        offender: LOOPBACK,
      },
    ]);
    // Node's own 'error' event still reaches the socket's other listeners.
    expect(otherListener).toEqual(['ECONNREFUSED']);
    expect(drainUdpErrors(s)).toBe(0);
  });

  it('works on a socket enabled right after bind(), before its first send (as the relay does)', async () => {
    const port = await closedPort();
    const echo = await echoServer();
    const s = dgram.createSocket('udp4');
    open.push(s);
    const { reported, handler } = collector();
    const replies: string[] = [];
    const sendResults: Array<string | null> = [];
    const record = (e: Error | null) => sendResults.push(e ? String((e as NodeJS.ErrnoException).code) : null);
    s.on('message', (m) => replies.push(m.toString()));
    s.bind(0, '127.0.0.1');
    expect(enableUdpErrors(s, handler)).toBe(true);
    // Queued by dgram until bound, then flushed back to back: the second
    // meets the first's sk_err and is retried.
    s.send('refused 1', port, '127.0.0.1', record);
    s.send('refused 2', port, '127.0.0.1', record);
    s.send('hello', echo.address().port, '127.0.0.1', record);
    await waitFor(() => reported.length >= 2 && replies.length >= 1 && sendResults.length === 3);
    await sleep(20);
    expect(reported.map((r) => [r.dst, r.dstPort, r.errno, r.type, r.code])).toEqual([
      [LOOPBACK, port, ECONNREFUSED, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH],
      [LOOPBACK, port, ECONNREFUSED, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH],
    ]);
    expect(replies).toEqual(['hello']);
    expect(sendResults).toEqual([null, null, null]);
    // The queue is empty: nothing left to make libuv spin.
    expect(loadNative().udpReadErrors(dgramFd(s), new Float64Array(6), 1)).toBe(0);
  });

  it('reports errors of datagrams queued before it was called, and leaves the queue empty', async () => {
    const port = await closedPort();
    const s = dgram.createSocket('udp4');
    open.push(s);
    const { reported, handler } = collector();
    s.bind(0, '127.0.0.1');
    // Sent through dgram's own send (not wrapped): on loopback the second
    // fails with the first's stale error and is not retried (so one report,
    // two if the ICMP came late), but nothing stays queued.
    s.send('refused 1', port, '127.0.0.1', () => {});
    s.send('refused 2', port, '127.0.0.1', () => {});
    expect(enableUdpErrors(s, handler)).toBe(true);
    await waitFor(() => reported.length >= 1);
    await sleep(20);
    expect(reported.length).toBeGreaterThanOrEqual(1);
    expect(reported.length).toBeLessThanOrEqual(2);
    expect(reported.every((r) => r.dst === LOOPBACK && r.dstPort === port && r.errno === ECONNREFUSED)).toBe(true);
    expect(loadNative().udpReadErrors(dgramFd(s), new Float64Array(6), 1)).toBe(0);
  });

  it('keeps the socket working: an echo server answers after a refusal', async () => {
    const port = await closedPort();
    const echo = await echoServer();
    const s = await bound();
    const { reported, handler } = collector();
    enableUdpErrors(s, handler);
    const replies: string[] = [];
    s.on('message', (m) => replies.push(m.toString()));
    s.send('refused', port, '127.0.0.1');
    await waitFor(() => reported.length >= 1);
    s.send('hello', echo.address().port, '127.0.0.1');
    await waitFor(() => replies.length >= 1);
    expect(replies).toEqual(['hello']);
    expect(reported).toHaveLength(1);
  });

  it('does not lose a datagram sent right after a refused one (stale sk_err, retried)', async () => {
    // On loopback the ICMP error is processed inside the first sendmsg, so the
    // second send meets its sk_err and fails with ECONNREFUSED: without the
    // retry in the wrapped send, 'hello' would never leave.
    const port = await closedPort();
    const echo = await echoServer();
    const s = await bound();
    const { reported, handler } = collector();
    enableUdpErrors(s, handler);
    const replies: string[] = [];
    const sendResults: Array<string | null> = [];
    s.on('message', (m) => replies.push(m.toString()));
    s.send('refused', port, '127.0.0.1', (e) => sendResults.push(e ? String((e as NodeJS.ErrnoException).code) : null));
    s.send('hello', echo.address().port, '127.0.0.1', (e) =>
      sendResults.push(e ? String((e as NodeJS.ErrnoException).code) : null),
    );
    await waitFor(() => replies.length >= 1);
    await waitFor(() => reported.length >= 1 && sendResults.length === 2);
    expect(replies).toEqual(['hello']);
    expect(sendResults).toEqual([null, null]);
    expect(reported.map((r) => [r.dstPort, r.errno])).toEqual([[port, ECONNREFUSED]]);
  });

  it('reports a burst of 100 refused datagrams and does not spin afterwards', async () => {
    const port = await closedPort();
    const s = await bound();
    const { reported, handler } = collector();
    enableUdpErrors(s, handler);
    let sendErrors = 0;
    let sent = 0;
    for (let i = 0; i < 100; i++) {
      s.send(`x${i}`, port, '127.0.0.1', (e) => {
        if (e) sendErrors++;
        else sent++;
      });
    }
    // Measured even when something went unreported: the spin is the worse failure.
    await waitFor(() => reported.length >= 100 && sent + sendErrors === 100).catch(() => {});
    await sleep(50);
    // An undrained error queue keeps the fd in EPOLLERR and libuv spins on it
    // (a whole core: ~1000 ms of CPU per second). Drained, the process idles.
    const before = process.cpuUsage();
    await sleep(1000);
    const used = process.cpuUsage(before);
    expect((used.user + used.system) / 1000, 'CPU ms in 1 s after the burst').toBeLessThan(300);
    expect(reported).toHaveLength(100);
    expect(reported.every((r) => r.dstPort === port && r.errno === ECONNREFUSED)).toBe(true);
    expect(sent).toBe(100); // every stale failure was retried successfully
    expect(loadNative().udpReadErrors(dgramFd(s), new Float64Array(6), 1)).toBe(0);
  });

  it('close() leaves nothing behind: no fd, the port is free, later drains are no-ops', async () => {
    const baseline = socketFdCount();
    const port = await closedPort();
    const s = await bound();
    const local = s.address().port;
    const { reported, handler } = collector();
    enableUdpErrors(s, handler);
    s.send('refused', port, '127.0.0.1');
    s.send('refused again', port, '127.0.0.1');
    await waitFor(() => reported.length >= 1);
    await close(s);
    expect(dgramFd(s)).toBe(-1);
    expect(drainUdpErrors(s)).toBe(0);
    expect(() => s.send('after close', port, '127.0.0.1')).toThrow(/Not running/i);
    expect(socketFdCount()).toBe(baseline);
    // Nobody (a dup, a leaked fd) holds the old port.
    const again = dgram.createSocket('udp4');
    open.push(again);
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(local, '127.0.0.1', resolve);
    });
    expect(again.address().port).toBe(local);
  });
});
