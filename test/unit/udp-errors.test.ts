/**
 * ICMP errors on the UDP relay's unconnected sockets (src/nat/native-udp.ts,
 * native/udp.c, native/udp-err.c), on loopback only: a datagram to a closed
 * port on 127.0.0.1 makes the kernel answer with ICMP port unreachable, which
 * an IP_RECVERR socket receives on its error queue.
 *
 * The first block pins the kernel behaviour native-udp.ts is built on (its
 * "Theory of operation"); the second checks what the socket makes of it.
 * The last two do the same for IPv6 sockets on ::1 (ICMPv6 port unreachable,
 * type 1 code 4, IPV6_RECVERR), where the kernel behaves the same way.
 */
import dgram, { type Socket as DgramSocket } from 'node:dgram';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, nativeAvailable } from '../../src/link/native.js';
import { NativeUdpSocket } from '../../src/nat/native-udp.js';
import { hex6, ipv6LoopbackUnavailable, LOOPBACK6, LOOPBACK6_WORDS } from '../support/ipv6.js';

const HAVE_ADDON = nativeAvailable();
if (!HAVE_ADDON) console.warn('SKIPPED: udp-errors tests: the native addon is not built (npm install)');
const NO_IPV6 = ipv6LoopbackUnavailable();
if (NO_IPV6 !== null) console.warn(`SKIPPED: udp-errors IPv6 tests: ${NO_IPV6}`);

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

/**
 * Real time, on purpose, in two places: sleep(5) after a send to a closed
 * port waits for the kernel's ICMP error, which loopback queues in the
 * sending softirq (as a rule before the send returns; the margin is for
 * ksoftirqd) with no event of ours to mark it, for raw fds that nothing
 * polls; and the burst tests measure CPU time over a second.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const sockets: NativeUdpSocket[] = [];
const rawFds: number[] = [];
const dgrams: DgramSocket[] = [];

/** A socket on 127.0.0.1, or on ::1 for family 6. */
function open(family: 4 | 6 = 4): NativeUdpSocket {
  const s = family === 4 ? NativeUdpSocket.open('127.0.0.1') : NativeUdpSocket.open6('::1');
  sockets.push(s);
  return s;
}

function rawFd(family: 4 | 6 = 4): number {
  const fd = family === 4 ? loadNative().udpOpen(LOOPBACK) : loadNative().udpOpen6(LOOPBACK6);
  expect(fd).toBeGreaterThanOrEqual(0);
  rawFds.push(fd);
  return fd;
}

/** A port on 127.0.0.1 (::1) that nothing listens on (bound, then released). */
function closedPort(family: 4 | 6 = 4): number {
  const s = family === 4 ? NativeUdpSocket.open('127.0.0.1') : NativeUdpSocket.open6('::1');
  const port = s.localPort;
  s.close();
  return port;
}

async function echoServer(family: 4 | 6 = 4): Promise<DgramSocket> {
  const s = dgram.createSocket(family === 4 ? { type: 'udp4' } : { type: 'udp6', ipv6Only: true });
  dgrams.push(s);
  await new Promise<void>((resolve) => s.bind(0, family === 4 ? '127.0.0.1' : '::1', resolve));
  s.on('message', (msg, rinfo) => s.send(msg, rinfo.port, rinfo.address));
  return s;
}

function collectErrors(s: NativeUdpSocket): Reported[] {
  const reported: Reported[] = [];
  s.onIcmpError((dst, dstPort, errno, type, code) => reported.push({ dst, dstPort, errno, type, code }));
  return reported;
}

function collectMessages(s: NativeUdpSocket): string[] {
  const got: string[] = [];
  s.onMessage((_src, _port, buf, off, len) => got.push(Buffer.from(buf.subarray(off, off + len)).toString()));
  return got;
}

const x = Buffer.from('x');

/**
 * A datagram through a socket of its own to an echo server and back. All
 * these fds are in the loop's one epoll set (level-triggered), and the ICMP
 * error of a loopback send is queued long before the marker's round trip
 * ends: once the marker's reply has been received, each socket's pending
 * POLLERR has been seen, so an error not reported by then is not going to be.
 */
async function loopTurn(family: 4 | 6 = 4): Promise<void> {
  const marker = open(family);
  const echo = await echoServer(family);
  const got: string[] = family === 4 ? collectMessages(marker) : collectMessages6(marker);
  if (family === 4) marker.send(LOOPBACK, echo.address().port, Buffer.from('mark'), 0, 4);
  else marker.send6(LOOPBACK6, 0, echo.address().port, Buffer.from('mark'), 0, 4);
  await waitFor(() => got.length >= 1);
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  for (const fd of rawFds.splice(0)) loadNative().udpClose(fd);
  await Promise.all(dgrams.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

describe.skipIf(!HAVE_ADDON)('the kernel, as native-udp.ts relies on it (raw fds)', () => {
  it('udpReadErrors: nothing from an empty queue; -ENOTSOCK for a non-socket; misuse throws', () => {
    const native = loadNative();
    const fd = rawFd();
    const out = new Float64Array(6 * 4);
    expect(native.udpReadErrors(fd, out, 4)).toBe(0);
    const file = openSync('/dev/null', 'r');
    try {
      expect(native.udpReadErrors(file, out, 4)).toBe(-ENOTSOCK);
    } finally {
      closeSync(file);
    }
    expect(() => native.udpReadErrors(fd, new Uint32Array(6) as unknown as Float64Array, 1)).toThrow(TypeError);
    expect(() => native.udpReadErrors('x' as unknown as number, out, 1)).toThrow(TypeError);
  });

  it('an ICMP error queues an entry AND sets sk_err, which the next receive consumes; the entry stays', async () => {
    const native = loadNative();
    const port = closedPort();
    const fd = rawFd();
    expect(native.udpSend(fd, LOOPBACK, port, x, 0, 1)).toBe(0);
    await sleep(5);
    const buf = new Uint8Array(65536);
    const meta = new Uint32Array(4);
    expect(native.udpRecvBatch(fd, buf, meta, 1, 65536)).toBe(-ECONNREFUSED);
    expect(native.udpRecvBatch(fd, buf, meta, 1, 65536)).toBe(0); // sk_err consumed
    const out = new Float64Array(6 * 4);
    expect(native.udpReadErrors(fd, out, 4)).toBe(1);
    expect([...out.subarray(0, 6)]).toEqual([LOOPBACK, port, ECONNREFUSED, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, LOOPBACK]);
    expect(native.udpReadErrors(fd, out, 4)).toBe(0);
  });

  it('a pending sk_err fails the next send, whatever its destination; draining clears it', async () => {
    const native = loadNative();
    const port = closedPort();
    const echo = await echoServer();
    const fd = rawFd();
    expect(native.udpSend(fd, LOOPBACK, port, x, 0, 1)).toBe(0);
    await sleep(5);
    expect(native.udpSend(fd, LOOPBACK, echo.address().port, x, 0, 1)).toBe(ECONNREFUSED);
    expect(native.udpSend(fd, LOOPBACK, port, x, 0, 1)).toBe(0);
    await sleep(5);
    // Two entries now (the second send never left); `max` bounds one call.
    const out = new Float64Array(6 * 8);
    expect(native.udpReadErrors(fd, out, 1)).toBe(1);
    expect(native.udpReadErrors(fd, out, 8)).toBe(1);
    expect(native.udpSend(fd, LOOPBACK, echo.address().port, x, 0, 1)).toBe(0);
  });
});

describe.skipIf(!HAVE_ADDON)('NativeUdpSocket ICMP errors (loopback)', () => {
  it('reports port unreachable for a datagram to a closed port, through the poll (POLLERR)', async () => {
    const port = closedPort();
    const s = open();
    const reported = collectErrors(s);
    collectMessages(s);
    expect(s.send(LOOPBACK, port, x, 0, 1)).toBe(0);
    await waitFor(() => reported.length >= 1);
    await loopTurn();
    expect(reported).toEqual([{ dst: LOOPBACK, dstPort: port, errno: ECONNREFUSED, type: ICMP_DEST_UNREACH, code: ICMP_PORT_UNREACH }]);
    expect(s.stats).toMatchObject({ icmpErrors: 1, recvErrors: 0, sendErrors: 0 });
    expect(loadNative().udpReadErrors(s.fd, new Float64Array(6), 1)).toBe(0);
  });

  it('keeps receiving after an error (the poll stopped by POLLERR is restarted)', async () => {
    const port = closedPort();
    const echo = await echoServer();
    const s = open();
    const reported = collectErrors(s);
    const got = collectMessages(s);
    for (let round = 0; round < 3; round++) {
      s.send(LOOPBACK, port, x, 0, 1);
      await waitFor(() => reported.length > round);
      s.send(LOOPBACK, echo.address().port, Buffer.from(`hello${round}`), 0, 6);
      await waitFor(() => got.length > round);
    }
    expect(got).toEqual(['hello0', 'hello1', 'hello2']);
    expect(reported).toHaveLength(3);
    expect(s.stats.recvErrors).toBe(0);
  });

  it('does not lose a datagram sent right after a refused one (stale sk_err: drained, sent again)', async () => {
    const port = closedPort();
    const echo = await echoServer();
    const s = open();
    const reported = collectErrors(s);
    const got = collectMessages(s);
    expect(s.send(LOOPBACK, port, x, 0, 1)).toBe(0);
    await sleep(5); // the ICMP error is surely back; the poll may or may not have drained it
    expect(s.send(LOOPBACK, echo.address().port, Buffer.from('hello'), 0, 5)).toBe(0);
    await waitFor(() => got.length >= 1 && reported.length >= 1);
    expect(got).toEqual(['hello']);
    expect(reported.map((r) => [r.dstPort, r.errno])).toEqual([[port, ECONNREFUSED]]);
    expect(s.stats.sendErrors).toBe(0);
  });

  it('reports a burst of 100 refused datagrams, sends them all, and does not spin afterwards', async () => {
    const port = closedPort();
    const echo = await echoServer();
    const s = open();
    const reported = collectErrors(s);
    const got = collectMessages(s);
    let refused = 0;
    for (let i = 0; i < 100; i++) if (s.send(LOOPBACK, port, Buffer.from(`x${i}`), 0, 2 + (i > 9 ? 1 : 0)) !== 0) refused++;
    expect(refused).toBe(0); // every stale failure was retried at once
    await waitFor(() => reported.length >= 100).catch(() => {});
    await sleep(50);
    // An undrained error queue keeps the fd in EPOLLERR; a poll that is never
    // restarted, or restarted without draining, shows up here or below.
    const before = process.cpuUsage();
    await sleep(1000);
    const used = process.cpuUsage(before);
    expect((used.user + used.system) / 1000, 'CPU ms in 1 s after the burst').toBeLessThan(300);
    expect(reported).toHaveLength(100);
    expect(reported.every((r) => r.dstPort === port && r.errno === ECONNREFUSED)).toBe(true);
    expect(s.stats).toMatchObject({ sent: 100, sendErrors: 0, icmpErrors: 100, recvErrors: 0 });
    expect(loadNative().udpReadErrors(s.fd, new Float64Array(6), 1)).toBe(0);
    s.send(LOOPBACK, echo.address().port, Buffer.from('still here'), 0, 10);
    await waitFor(() => got.length >= 1);
    expect(got).toEqual(['still here']);
  });

  it('never gives up on a socket that only ever meets refusals (each POLLERR is explained)', async () => {
    const port = closedPort();
    const s = open();
    const reported = collectErrors(s);
    collectMessages(s);
    const failures: Error[] = [];
    s.onError = (e) => failures.push(e);
    // More wake-ups than MAX_CONSECUTIVE_ERRORS (100), none of them a datagram.
    for (let i = 0; i < 120; i++) {
      s.send(LOOPBACK, port, x, 0, 1);
      await waitFor(() => reported.length > i);
    }
    expect(failures).toEqual([]);
    expect(s.stats.recvErrors).toBe(0);
  });

  it('close() inside onIcmpError stops everything; the fd is gone', async () => {
    const port = closedPort();
    const s = open();
    const fd = s.fd;
    const reported: number[] = [];
    s.onIcmpError((_dst, dstPort) => {
      reported.push(dstPort);
      s.close();
    });
    collectMessages(s);
    s.send(LOOPBACK, port, x, 0, 1);
    await sleep(5);
    s.send(LOOPBACK, port, x, 0, 1); // may meet the first's sk_err: drains, closes, stops
    await waitFor(() => reported.length >= 1);
    expect(s.isClosed).toBe(true);
    // Before the marker's socket can take the number again.
    expect(socketFdTarget(fd)).not.toMatch(/^socket:/);
    await loopTurn();
    expect(reported).toEqual([port]);
  });
});

function socketFdTarget(fd: number): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return '(closed)';
  }
}

// ---------------------------------------------------------------------------
// IPv6 (::1): ICMPv6 destination unreachable, port unreachable

const ICMP6_DST_UNREACH = 1;
const ICMP6_PORT_UNREACH = 4;
const LO6 = hex6(LOOPBACK6);

interface Reported6 {
  dst: string;
  dstPort: number;
  errno: number;
  type: number;
  code: number;
}

function collectErrors6(s: NativeUdpSocket): Reported6[] {
  const reported: Reported6[] = [];
  // The destination view is valid only during the call: copy it (as text).
  s.onIcmpError6((dst, dstPort, errno, type, code) => reported.push({ dst: hex6(dst), dstPort, errno, type, code }));
  return reported;
}

function collectMessages6(s: NativeUdpSocket): string[] {
  const got: string[] = [];
  s.onMessage6((_src, _port, buf, off, len) => got.push(Buffer.from(buf.subarray(off, off + len)).toString()));
  return got;
}

describe.skipIf(NO_IPV6 !== null)('the kernel, IPv6 (raw fds on ::1)', () => {
  it('an ICMPv6 error queues an entry AND sets sk_err, which the next receive consumes; the entry stays', async () => {
    const native = loadNative();
    const port = closedPort(6);
    const fd = rawFd(6);
    expect(native.udpSend6(fd, LOOPBACK6, 0, port, x, 0, 1)).toBe(0);
    await sleep(5);
    const buf = new Uint8Array(65536);
    const meta = new Uint32Array(7);
    expect(native.udpRecvBatch6(fd, buf, meta, 1, 65536)).toBe(-ECONNREFUSED);
    expect(native.udpRecvBatch6(fd, buf, meta, 1, 65536)).toBe(0); // sk_err consumed
    const out = new Float64Array(12 * 2);
    expect(native.udpReadErrors6(fd, out, 2)).toBe(1);
    // [dst words, dstPort, errno, type, code, offender words]
    expect([...out.subarray(0, 12)]).toEqual([...LOOPBACK6_WORDS, port, ECONNREFUSED, ICMP6_DST_UNREACH, ICMP6_PORT_UNREACH, ...LOOPBACK6_WORDS]);
    expect(native.udpReadErrors6(fd, out, 2)).toBe(0);
    // The IPv4 drain finds nothing it recognises on an IPv6 socket (and consumes nothing IPv6 either way).
    expect(native.udpReadErrors(fd, new Float64Array(6), 1)).toBe(0);
  });

  it('a pending sk_err fails the next send, whatever its destination; draining clears it', async () => {
    const native = loadNative();
    const port = closedPort(6);
    const echo = await echoServer(6);
    const fd = rawFd(6);
    expect(native.udpSend6(fd, LOOPBACK6, 0, port, x, 0, 1)).toBe(0);
    await sleep(5);
    expect(native.udpSend6(fd, LOOPBACK6, 0, echo.address().port, x, 0, 1)).toBe(ECONNREFUSED);
    expect(native.udpReadErrors6(fd, new Float64Array(12), 1)).toBe(1);
    expect(native.udpSend6(fd, LOOPBACK6, 0, echo.address().port, x, 0, 1)).toBe(0);
  });

  it('a non-empty error queue polls POLLERR (libuv: status UV_EBADF, poll stopped) until drained', async () => {
    const native = loadNative();
    const port = closedPort(6);
    const fd = rawFd(6);
    expect(native.udpSend6(fd, LOOPBACK6, 0, port, x, 0, 1)).toBe(0);
    await sleep(5);
    const statuses: number[] = [];
    const h = native.pollStart(fd, (status) => statuses.push(status));
    await waitFor(() => statuses.length >= 1);
    native.pollStop(h);
    expect(statuses[0]).toBe(-9); // UV_EBADF
    expect(native.udpReadErrors6(fd, new Float64Array(12), 4)).toBe(1);
  });
});

describe.skipIf(NO_IPV6 !== null)('NativeUdpSocket ICMPv6 errors (::1)', () => {
  it('reports port unreachable (type 1, code 4) for a datagram to a closed port, through the poll', async () => {
    const port = closedPort(6);
    const s = open(6);
    const reported = collectErrors6(s);
    collectMessages6(s);
    expect(s.send6(LOOPBACK6, 0, port, x, 0, 1)).toBe(0);
    await waitFor(() => reported.length >= 1);
    await loopTurn(6);
    expect(reported).toEqual([{ dst: LO6, dstPort: port, errno: ECONNREFUSED, type: ICMP6_DST_UNREACH, code: ICMP6_PORT_UNREACH }]);
    expect(s.stats).toMatchObject({ icmpErrors: 1, recvErrors: 0, sendErrors: 0 });
    expect(loadNative().udpReadErrors6(s.fd, new Float64Array(12), 1)).toBe(0);
  });

  it('keeps receiving after errors, and does not lose a datagram sent right after a refused one', async () => {
    const port = closedPort(6);
    const echo = await echoServer(6);
    const s = open(6);
    const reported = collectErrors6(s);
    const got = collectMessages6(s);
    for (let round = 0; round < 3; round++) {
      expect(s.send6(LOOPBACK6, 0, port, x, 0, 1)).toBe(0);
      await sleep(5); // the error is back; the poll may or may not have drained it
      expect(s.send6(LOOPBACK6, 0, echo.address().port, Buffer.from(`hello${round}`), 0, 6)).toBe(0);
      await waitFor(() => got.length > round && reported.length > round);
    }
    expect(got).toEqual(['hello0', 'hello1', 'hello2']);
    expect(reported.map((r) => [r.dst, r.dstPort, r.errno])).toEqual([
      [LO6, port, ECONNREFUSED],
      [LO6, port, ECONNREFUSED],
      [LO6, port, ECONNREFUSED],
    ]);
    expect(s.stats).toMatchObject({ sendErrors: 0, recvErrors: 0 });
  });

  it('reports a burst of 100 refused datagrams, sends them all, and does not spin afterwards', async () => {
    const port = closedPort(6);
    const s = open(6);
    const reported = collectErrors6(s);
    collectMessages6(s);
    let refused = 0;
    for (let i = 0; i < 100; i++) if (s.send6(LOOPBACK6, 0, port, x, 0, 1) !== 0) refused++;
    expect(refused).toBe(0);
    await waitFor(() => reported.length >= 100).catch(() => {});
    await sleep(50);
    const before = process.cpuUsage();
    await sleep(1000);
    const used = process.cpuUsage(before);
    expect((used.user + used.system) / 1000, 'CPU ms in 1 s after the burst').toBeLessThan(300);
    expect(reported).toHaveLength(100);
    expect(s.stats).toMatchObject({ sent: 100, sendErrors: 0, icmpErrors: 100, recvErrors: 0 });
  });

  it('gives a nested handler call its own destination view (a handler that sends may drain again)', async () => {
    const port = closedPort(6);
    const other = closedPort(6);
    const s = open(6);
    collectMessages6(s);
    // On loopback every destination is ::1, so the views are told apart by identity.
    const calls: { depth: number; view: Uint8Array; port: number; after?: string }[] = [];
    let depth = 0;
    s.onIcmpError6((dst, dstPort) => {
      const call: { depth: number; view: Uint8Array; port: number; after?: string } = { depth, view: dst, port: dstPort };
      calls.push(call);
      if (calls.length === 1) {
        depth++;
        // Refused too: its error comes back inside the first send (loopback)
        // and fails the second with sk_err, whose retry drains it, calling
        // this handler again from inside this call.
        s.send6(LOOPBACK6, 0, other, x, 0, 1);
        s.send6(LOOPBACK6, 0, other, x, 0, 1);
        depth--;
      }
      call.after = hex6(dst);
    });
    expect(s.send6(LOOPBACK6, 0, port, x, 0, 1)).toBe(0);
    await waitFor(() => calls.length >= 2);
    const outer = calls[0];
    const nested = calls.find((c) => c.depth === 1);
    expect(outer.port).toBe(port);
    expect(nested?.port).toBe(other);
    expect(nested?.view).not.toBe(outer.view);
    expect(outer.after).toBe(LO6);
  });
});
