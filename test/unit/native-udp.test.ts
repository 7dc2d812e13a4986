/**
 * NativeUdpSocket and the addon's UDP functions (native/udp.c) on loopback:
 * numeric addresses both ways, whole 64 KB datagrams, batched receives,
 * closing from a handler, no fd leaks, and API misuse; then the same for IPv6
 * sockets on ::1 (16-byte addresses, 65527-byte datagrams, IPV6_V6ONLY).
 * ICMP errors have their own file (udp-errors.test.ts).
 */
import { spawnSync } from 'node:child_process';
import dgram, { type Socket as DgramSocket } from 'node:dgram';
import { closeSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, nativeAvailable } from '../../src/link/native.js';
import { realHost } from '../../src/nat/host.js';
import { NativeUdpSocket, UDP_RECV_SLOTS, UDP_SLOT_BYTES } from '../../src/nat/native-udp.js';
import { hex6, ipv6LoopbackUnavailable, LOOPBACK6, LOOPBACK6_WORDS, MAPPED_LOOPBACK, NOT_OURS6 } from '../support/ipv6.js';
import { stripTypesTree } from '../support/strip-types.js';

const HAVE_ADDON = nativeAvailable();
if (!HAVE_ADDON) console.warn('SKIPPED: native-udp tests: the native addon is not built (npm install)');
const NO_IPV6 = ipv6LoopbackUnavailable();
if (NO_IPV6 !== null) console.warn(`SKIPPED: native-udp IPv6 tests: ${NO_IPV6}`);

const LOOPBACK = 0x7f000001;
const MAX_UDP_PAYLOAD = 65507;
const { EBADF, EMSGSIZE, ENOTSOCK } = { EBADF: 9, EMSGSIZE: 90, ENOTSOCK: 88 };

async function waitFor<T>(probe: () => T | undefined | null | false, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sockets: NativeUdpSocket[] = [];
const dgrams: DgramSocket[] = [];

function open(address: string | number = '127.0.0.1'): NativeUdpSocket {
  const s = NativeUdpSocket.open(address);
  sockets.push(s);
  return s;
}

/** A Node dgram socket on 127.0.0.1, or on ::1 (IPv6 only) for family 6. */
async function dgramPeer(family: 4 | 6 = 4): Promise<DgramSocket> {
  const s = dgram.createSocket(family === 4 ? { type: 'udp4' } : { type: 'udp6', ipv6Only: true });
  dgrams.push(s);
  await new Promise<void>((resolve) => s.bind(0, family === 4 ? '127.0.0.1' : '::1', resolve));
  return s;
}

interface Received {
  src: number;
  srcPort: number;
  bytes: Buffer;
}

/** Copies each datagram out of the shared receive buffer (valid only during the call). */
function collect(s: NativeUdpSocket): Received[] {
  const got: Received[] = [];
  s.onMessage((src, srcPort, buf, off, len) => got.push({ src, srcPort, bytes: Buffer.from(buf.subarray(off, off + len)) }));
  return got;
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

function pattern(len: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await Promise.all(dgrams.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

describe.skipIf(!HAVE_ADDON)('NativeUdpSocket (loopback)', () => {
  it('binds an ephemeral port and reports it as localPort', async () => {
    const s = open();
    expect(s.localPort).toBeGreaterThan(0);
    expect(s.localAddress).toBe(LOOPBACK);
    expect(loadNative().udpLocalPort(s.fd)).toBe(s.localPort);
    expect(open().localPort).not.toBe(s.localPort);
    expect(NativeUdpSocket.open().localAddress).toBe(0);
    sockets.push(NativeUdpSocket.open(LOOPBACK));
  });

  it('sends to and receives from a Node dgram peer with numeric addresses and ports', async () => {
    const s = open();
    const got = collect(s);
    const peer = await dgramPeer();
    const seen: Array<[string, number, string]> = [];
    peer.on('message', (msg, rinfo) => {
      seen.push([rinfo.address, rinfo.port, msg.toString()]);
      peer.send(`re:${msg.toString()}`, rinfo.port, rinfo.address);
    });
    const payload = Buffer.from('..hello..');
    // A slice in the middle of a larger buffer: only [2, 7) goes out.
    expect(s.send(LOOPBACK, peer.address().port, payload, 2, 5)).toBe(0);
    await waitFor(() => got.length >= 1);
    expect(seen).toEqual([['127.0.0.1', s.localPort, 'hello']]);
    expect(got).toEqual([{ src: LOOPBACK, srcPort: peer.address().port, bytes: Buffer.from('re:hello') }]);
    expect(s.stats).toMatchObject({ sent: 1, sentBytes: 5, sendErrors: 0, received: 1, receivedBytes: 8, recvErrors: 0 });
  });

  it('delivers a zero-length datagram', async () => {
    const a = open();
    const b = open();
    const got = collect(b);
    expect(a.send(LOOPBACK, b.localPort, new Uint8Array(0), 0, 0)).toBe(0);
    await waitFor(() => got.length >= 1);
    expect(got).toEqual([{ src: LOOPBACK, srcPort: a.localPort, bytes: Buffer.alloc(0) }]);
  });

  it('carries a 65507-byte datagram whole both ways; 65508 bytes is EMSGSIZE', async () => {
    const a = open();
    const b = open();
    const gotA = collect(a);
    const gotB = collect(b);
    const big = pattern(MAX_UDP_PAYLOAD, 7);
    expect(a.send(LOOPBACK, b.localPort, big, 0, big.length)).toBe(0);
    await waitFor(() => gotB.length >= 1);
    expect(gotB[0].bytes.length).toBe(MAX_UDP_PAYLOAD);
    expect(gotB[0].bytes.equals(big)).toBe(true);
    const back = pattern(MAX_UDP_PAYLOAD, 99);
    expect(b.send(LOOPBACK, a.localPort, back, 0, back.length)).toBe(0);
    await waitFor(() => gotA.length >= 1);
    expect(gotA[0].bytes.equals(back)).toBe(true);
    expect(a.stats.truncated + b.stats.truncated).toBe(0);

    const tooBig = Buffer.alloc(MAX_UDP_PAYLOAD + 1);
    expect(a.send(LOOPBACK, b.localPort, tooBig, 0, tooBig.length)).toBe(EMSGSIZE);
    expect(a.stats.sendErrors).toBe(1);
    expect(a.lastSendErrno).toBe(EMSGSIZE);
  });

  it('takes many queued datagrams in few batches, in order, with their own sources', async () => {
    const r = open();
    const a = open();
    const b = open();
    const count = 2 * UDP_RECV_SLOTS + 8;
    // Queued before anyone polls the receiver: the first wake-up finds them all.
    for (let i = 0; i < count; i++) {
      const from = i % 2 === 0 ? a : b;
      expect(from.send(LOOPBACK, r.localPort, Buffer.from(`m${i}`), 0, `m${i}`.length)).toBe(0);
    }
    const got = collect(r);
    await waitFor(() => got.length >= count);
    expect(got.map((g) => g.bytes.toString())).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
    expect(got.every((g, i) => g.src === LOOPBACK && g.srcPort === (i % 2 === 0 ? a : b).localPort)).toBe(true);
    // Full batches of UDP_RECV_SLOTS, then the rest: 3 recvmmsg calls.
    expect(r.stats.batches).toBe(3);
    expect(r.stats.received).toBe(count);
  });

  it('reuses one shared receive buffer: a handler sees its bytes at slot offsets', async () => {
    const a = open();
    const b = open();
    const offsets: number[] = [];
    const buffers = new Set<Uint8Array>();
    b.onMessage((_src, _port, buf, off) => {
      offsets.push(off);
      buffers.add(buf);
    });
    for (let i = 0; i < 3; i++) a.send(LOOPBACK, b.localPort, Buffer.from('x'), 0, 1);
    await waitFor(() => offsets.length >= 3);
    expect(offsets).toEqual([0, UDP_SLOT_BYTES, 2 * UDP_SLOT_BYTES]);
    expect(buffers.size).toBe(1);
  });

  it('close() inside the handler drops the rest of the batch and closes the fd', async () => {
    const a = open();
    const b = open();
    const fd = b.fd;
    for (let i = 0; i < 5; i++) a.send(LOOPBACK, b.localPort, Buffer.from(`m${i}`), 0, 2);
    const got: string[] = [];
    b.onMessage((_s, _p, buf, off, len) => {
      got.push(Buffer.from(buf.subarray(off, off + len)).toString());
      b.close();
      b.close(); // idempotent
    });
    await waitFor(() => got.length >= 1);
    expect(b.isClosed).toBe(true);
    // Before the marker's peer socket can take the number again.
    expect(() => readlinkSync(`/proc/self/fd/${fd}`)).toThrow();
    // A datagram to another socket on the loop marks a poll phase after the close: a
    // callback b still had coming would have run by the time it arrives.
    const marker = collect(a);
    const peer = await dgramPeer();
    peer.send('mark', a.localPort, '127.0.0.1');
    await waitFor(() => marker.length >= 1);
    expect(got).toEqual(['m0']);
    expect(b.send(LOOPBACK, a.localPort, Buffer.from('x'), 0, 1)).toBe(EBADF);
    expect(() => b.onMessage(() => {})).toThrow(/closed/);
  });

  it('leaks no fd over many open/close cycles, polled or not, and frees the port', async () => {
    const baseline = socketFdCount();
    let lastPort = 0;
    for (let i = 0; i < 500; i++) {
      const s = NativeUdpSocket.open('127.0.0.1');
      if (i % 2 === 0) s.onMessage(() => {});
      lastPort = s.localPort;
      s.close();
    }
    expect(socketFdCount()).toBe(baseline);
    const again = await dgramPeer();
    await new Promise<void>((resolve, reject) => {
      const probe = dgram.createSocket('udp4');
      dgrams.push(probe);
      probe.once('error', reject);
      probe.bind(lastPort, '127.0.0.1', resolve);
    });
    expect(again.address().port).toBeGreaterThan(0);
  });

  // An addon's uv_poll is invisible to getActiveResourcesInfo(); a child
  // process shows whether it keeps the loop alive: it exits only when nothing does.
  it('a child process exits after close() or setRef(false), and stays alive while polling', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'usernet-udp-'));
    try {
      await stripTypesTree(dir, ['src/nat/native-udp.ts']);
      const run = (body: string, timeout = 2000) => {
        const script = `import { NativeUdpSocket } from ${JSON.stringify(join(dir, 'src/nat/native-udp.js'))};
          const sock = NativeUdpSocket.open('127.0.0.1');
          const x = Uint8Array.of(120);
          ${body}`;
        return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout });
      };
      const closed = run(`sock.onMessage(() => { console.log('message'); sock.close(); }); sock.send(0x7f000001, sock.localPort, x, 0, 1);`);
      expect(closed.stderr).toBe('');
      expect(closed.signal).toBeNull();
      expect(closed.status).toBe(0);
      expect(closed.stdout).toBe('message\n');
      const unrefd = run(`sock.setRef(false); sock.onMessage(() => {}); console.log('unref');`);
      expect(unrefd.signal).toBeNull();
      expect(unrefd.stdout).toBe('unref\n');
      // Control: a polling socket does keep the process alive (killed by the timeout).
      const polling = run(`sock.onMessage(() => {}); console.log('polling');`, 1000);
      expect(polling.stdout).toBe('polling\n');
      expect(polling.signal).toBe('SIGTERM');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!HAVE_ADDON)('NativeUdpSocket: misuse and open errors', () => {
  it('throws a TypeError for a local address that is not IPv4 (tryOpen: EAFNOSUPPORT)', () => {
    expect(() => NativeUdpSocket.open('not-an-ip')).toThrow(TypeError);
    expect(() => NativeUdpSocket.open('::1')).toThrow(TypeError);
    expect(NativeUdpSocket.tryOpen('::1')).toBe(97);
  });

  it('reports an address that is not ours as EADDRNOTAVAIL (thrown by open, returned by tryOpen)', () => {
    expect(() => NativeUdpSocket.open('192.0.2.1')).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', errno: 99 }));
    expect(NativeUdpSocket.tryOpen('192.0.2.1')).toBe(99);
  });

  it('throws RangeError for a slice outside the buffer or a port above 65535, TypeError for wrong types', () => {
    const s = open();
    const buf = new Uint8Array(4);
    expect(() => s.send(LOOPBACK, 9, buf, 2, 3)).toThrow(RangeError);
    expect(() => s.send(LOOPBACK, 9, buf, 5, 0)).toThrow(RangeError);
    expect(() => s.send(LOOPBACK, 65536, buf, 0, 1)).toThrow(RangeError);
    expect(() => s.send(LOOPBACK, 9, 'abc' as unknown as Uint8Array, 0, 1)).toThrow(TypeError);
    expect(() => s.send(LOOPBACK, 'x' as unknown as number, buf, 0, 1)).toThrow(TypeError);
    expect(s.stats.sent).toBe(0);
  });

  it('addon: udpRecvBatch checks its slots; I/O on a non-socket returns -errno', () => {
    const native = loadNative();
    const s = open();
    const meta = new Uint32Array(4 * 2);
    expect(() => native.udpRecvBatch(s.fd, new Uint8Array(65472 * 2), meta, 2, 65472)).toThrow(RangeError);
    expect(() => native.udpRecvBatch(s.fd, new Uint8Array(65536), meta, 1, 65536 + 1)).toThrow(RangeError);
    expect(() => native.udpRecvBatch(s.fd, new Uint8Array(65536), new Float64Array(4) as unknown as Uint32Array, 1, 65536)).toThrow(TypeError);
    expect(() => native.udpOpen('x' as unknown as number)).toThrow(TypeError);
    // Nothing queued: 0 (EAGAIN), not an error.
    expect(native.udpRecvBatch(s.fd, new Uint8Array(65536), meta, 1, 65536)).toBe(0);
    const file = openSync('/dev/null', 'r');
    try {
      expect(native.udpRecvBatch(file, new Uint8Array(65536), meta, 1, 65536)).toBe(-ENOTSOCK);
      expect(native.udpLocalPort(file)).toBe(-ENOTSOCK);
      expect(native.udpSend(file, LOOPBACK, 9, new Uint8Array(1), 0, 1)).toBe(ENOTSOCK);
    } finally {
      closeSync(file);
    }
  });
});

// ---------------------------------------------------------------------------
// IPv6 (::1)

const MAX_UDP6_PAYLOAD = 65527;
const ENETUNREACH = 101;
const EAFNOSUPPORT = 97;
const EADDRNOTAVAIL = 99;

function open6(address?: string): NativeUdpSocket {
  const s = NativeUdpSocket.open6(address);
  sockets.push(s);
  return s;
}

interface Received6 {
  src: string;
  srcPort: number;
  bytes: Buffer;
}

/** Copies each datagram and its source out of the shared views (valid only during the call). */
function collect6(s: NativeUdpSocket): Received6[] {
  const got: Received6[] = [];
  s.onMessage6((src, srcPort, buf, off, len) => got.push({ src: hex6(src), srcPort, bytes: Buffer.from(buf.subarray(off, off + len)) }));
  return got;
}

const LO6 = hex6(LOOPBACK6);

describe.skipIf(NO_IPV6 !== null)('NativeUdpSocket over IPv6 (::1)', () => {
  it('binds an ephemeral port on ::1 or ::, and reports family, port and address', () => {
    const s = open6('::1');
    expect(s.family).toBe(6);
    expect(s.localPort).toBeGreaterThan(0);
    expect(loadNative().udpLocalPort(s.fd)).toBe(s.localPort);
    expect(s.localAddress).toBe(0);
    expect([...s.localAddress6!]).toEqual([...LOOPBACK6]);
    const any = open6();
    expect(any.localAddress6).toBeNull();
    expect(any.localPort).not.toBe(s.localPort);
    expect(open().family).toBe(4);
    expect(open().localAddress6).toBeNull();
  });

  it('sends to and receives from a Node udp6 peer, with 16-byte addresses and ports both ways', async () => {
    const s = open6('::1');
    const got = collect6(s);
    const peer = await dgramPeer(6);
    const seen: Array<[string, number, string]> = [];
    peer.on('message', (msg, rinfo) => {
      seen.push([rinfo.address, rinfo.port, msg.toString()]);
      peer.send(`re:${msg.toString()}`, rinfo.port, rinfo.address);
    });
    // The destination in the middle of a larger buffer (as in a guest's
    // packet), and only payload[2, 7) goes out.
    const dst = new Uint8Array(40).fill(0xee);
    dst.set(LOOPBACK6, 24);
    const payload = Buffer.from('..hello..');
    expect(s.send6(dst, 24, peer.address().port, payload, 2, 5)).toBe(0);
    await waitFor(() => got.length >= 1);
    expect(seen).toEqual([['::1', s.localPort, 'hello']]);
    expect(got).toEqual([{ src: LO6, srcPort: peer.address().port, bytes: Buffer.from('re:hello') }]);
    expect(s.stats).toMatchObject({ sent: 1, sentBytes: 5, sendErrors: 0, received: 1, receivedBytes: 8, recvErrors: 0 });
  });

  it('hands the source as one shared 16-byte view, rewritten per datagram', async () => {
    const a = open6('::1');
    const b = open6();
    const views = new Set<Uint8Array>();
    const sources: string[] = [];
    b.onMessage6((src) => {
      views.add(src);
      sources.push(hex6(src));
    });
    for (let i = 0; i < 3; i++) a.send6(LOOPBACK6, 0, b.localPort, Buffer.from('x'), 0, 1);
    await waitFor(() => sources.length >= 3);
    expect(sources).toEqual([LO6, LO6, LO6]);
    expect(views.size).toBe(1);
    expect([...views][0].length).toBe(16);
  });

  it('carries a 65527-byte datagram whole both ways; 65528 bytes is EMSGSIZE', async () => {
    const a = open6('::1');
    const b = open6('::1');
    const gotA = collect6(a);
    const gotB = collect6(b);
    const big = pattern(MAX_UDP6_PAYLOAD, 3);
    expect(a.send6(LOOPBACK6, 0, b.localPort, big, 0, big.length)).toBe(0);
    await waitFor(() => gotB.length >= 1);
    expect(gotB[0].bytes.length).toBe(MAX_UDP6_PAYLOAD);
    expect(gotB[0].bytes.equals(big)).toBe(true);
    expect(gotB[0].srcPort).toBe(a.localPort);
    const back = pattern(MAX_UDP6_PAYLOAD, 77);
    expect(b.send6(LOOPBACK6, 0, a.localPort, back, 0, back.length)).toBe(0);
    await waitFor(() => gotA.length >= 1);
    expect(gotA[0].bytes.equals(back)).toBe(true);
    expect(a.stats.truncated + b.stats.truncated).toBe(0);

    const tooBig = Buffer.alloc(MAX_UDP6_PAYLOAD + 1);
    expect(a.send6(LOOPBACK6, 0, b.localPort, tooBig, 0, tooBig.length)).toBe(EMSGSIZE);
    expect(a.lastSendErrno).toBe(EMSGSIZE);
  });

  it('takes many queued datagrams in few batches, in order, with their own sources', async () => {
    const r = open6('::1');
    const a = open6('::1');
    const b = open6('::1');
    const count = 2 * UDP_RECV_SLOTS + 8;
    for (let i = 0; i < count; i++) {
      const from = i % 2 === 0 ? a : b;
      expect(from.send6(LOOPBACK6, 0, r.localPort, Buffer.from(`m${i}`), 0, `m${i}`.length)).toBe(0);
    }
    const got = collect6(r);
    await waitFor(() => got.length >= count);
    expect(got.map((g) => g.bytes.toString())).toEqual(Array.from({ length: count }, (_, i) => `m${i}`));
    expect(got.every((g, i) => g.src === LO6 && g.srcPort === (i % 2 === 0 ? a : b).localPort)).toBe(true);
    expect(r.stats.batches).toBe(3);
    expect(r.stats.received).toBe(count);
  });

  it('IPV6_V6ONLY: never reaches IPv4, not even ::ffff:127.0.0.1, and IPv4 never reaches it', async () => {
    const v4 = await dgramPeer(); // a 127.0.0.1 listener that must hear nothing
    const heard: string[] = [];
    v4.on('message', (msg, rinfo) => heard.push(`${rinfo.address}:${msg.toString()}`));
    const s = open6(); // bound to :: — still IPv6 only
    expect(s.send6(MAPPED_LOOPBACK, 0, v4.address().port, Buffer.from('leak'), 0, 4)).toBe(ENETUNREACH);
    expect(s.stats).toMatchObject({ sent: 0, sendErrors: 1 });
    // The raw socket, without NativeUdpSocket's retry: the kernel refuses it outright.
    expect(loadNative().udpSend6(s.fd, MAPPED_LOOPBACK, 0, v4.address().port, Buffer.from('leak'), 0, 4)).toBe(ENETUNREACH);
    // And a datagram to 127.0.0.1 at the IPv6 socket's port does not arrive on it.
    const got = collect6(s);
    const sender = await dgramPeer();
    sender.send('in', s.localPort, '127.0.0.1');
    // Sent after it, through the same loopback: once v4 has heard this, s would have had 'in'.
    sender.send('mark', v4.address().port, '127.0.0.1');
    await waitFor(() => heard.length >= 1);
    expect(heard).toEqual(['127.0.0.1:mark']);
    expect(got).toEqual([]);
  });

  it('keeps the families apart: IPv4 methods throw on an IPv6 socket and vice versa', () => {
    const s6 = open6('::1');
    const s4 = open();
    const x = Buffer.from('x');
    expect(() => s6.send(LOOPBACK, 9, x, 0, 1)).toThrow(TypeError);
    expect(() => s6.onMessage(() => {})).toThrow(TypeError);
    expect(() => s6.onIcmpError(() => {})).toThrow(TypeError);
    expect(() => s4.send6(LOOPBACK6, 0, 9, x, 0, 1)).toThrow(TypeError);
    expect(() => s4.onMessage6(() => {})).toThrow(TypeError);
    expect(() => s4.onIcmpError6(() => {})).toThrow(TypeError);
  });

  it('open6/tryOpen6: EAFNOSUPPORT for a non-IPv6 address (open6 throws TypeError), EADDRNOTAVAIL for one not ours', () => {
    expect(() => NativeUdpSocket.open6('127.0.0.1')).toThrow(TypeError);
    expect(() => NativeUdpSocket.open6('fe80::1%lo')).toThrow(TypeError);
    expect(NativeUdpSocket.tryOpen6('127.0.0.1')).toBe(EAFNOSUPPORT);
    expect(NativeUdpSocket.tryOpen6(NOT_OURS6)).toBe(EADDRNOTAVAIL);
    expect(() => NativeUdpSocket.open6(NOT_OURS6)).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', errno: EADDRNOTAVAIL }));
  });

  it('realHost.createUdp6Socket opens one (HostUdp6Socket), or returns the errno', async () => {
    const h = realHost.createUdp6Socket('::1');
    expect(h).toBeInstanceOf(NativeUdpSocket);
    const s = h as NativeUdpSocket;
    sockets.push(s);
    const got = collect6(s);
    expect(s.send6(LOOPBACK6, 0, s.localPort, Buffer.from('self'), 0, 4)).toBe(0);
    await waitFor(() => got.length >= 1);
    expect(got[0]).toEqual({ src: LO6, srcPort: s.localPort, bytes: Buffer.from('self') });
    expect(realHost.createUdp6Socket('10.0.0.1')).toBe(EAFNOSUPPORT);
    expect(realHost.createUdp6Socket(NOT_OURS6)).toBe(EADDRNOTAVAIL);
  });

  it('throws RangeError for an address or slice outside its buffer or a port above 65535, TypeError for wrong types', () => {
    const s = open6('::1');
    const buf = new Uint8Array(4);
    expect(() => s.send6(LOOPBACK6, 1, 9, buf, 0, 1)).toThrow(RangeError);
    expect(() => s.send6(LOOPBACK6, 17, 9, buf, 0, 1)).toThrow(RangeError);
    expect(() => s.send6(new Uint8Array(8), 0, 9, buf, 0, 1)).toThrow(RangeError);
    expect(() => s.send6(LOOPBACK6, 0, 9, buf, 2, 3)).toThrow(RangeError);
    expect(() => s.send6(LOOPBACK6, 0, 65536, buf, 0, 1)).toThrow(RangeError);
    expect(() => s.send6([0] as unknown as Uint8Array, 0, 9, buf, 0, 1)).toThrow(TypeError);
    expect(s.stats.sent).toBe(0);
    const native = loadNative();
    expect(() => native.udpOpen6(new Uint8Array(4))).toThrow(TypeError);
    expect(() => native.udpOpen6(0x7f000001 as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('addon: udpRecvBatch6 fills [src words, srcPort, len, flags] per slot', async () => {
    const native = loadNative();
    const a = open6('::1');
    const b = open6('::1');
    expect(a.send6(LOOPBACK6, 0, b.localPort, Buffer.from('one'), 0, 3)).toBe(0);
    expect(a.send6(LOOPBACK6, 0, b.localPort, Buffer.from('three'), 0, 5)).toBe(0);
    const buf = new Uint8Array(3 * UDP_SLOT_BYTES);
    const meta = new Uint32Array(3 * 7).fill(0xffffffff);
    await waitFor(() => native.udpRecvBatch6(b.fd, buf, meta, 3, UDP_SLOT_BYTES) === 2);
    expect([...meta.subarray(0, 14)]).toEqual([...LOOPBACK6_WORDS, a.localPort, 3, 0, ...LOOPBACK6_WORDS, a.localPort, 5, 0]);
    expect(meta[14]).toBe(0xffffffff); // untouched
    expect(Buffer.from(buf.subarray(UDP_SLOT_BYTES, UDP_SLOT_BYTES + 5)).toString()).toBe('three');
    expect(native.udpRecvBatch6(b.fd, buf, new Uint32Array(6), 1, UDP_SLOT_BYTES)).toBe(0); // meta too short for one
  });

  it('leaks no fd over many open/close cycles', () => {
    const baseline = socketFdCount();
    for (let i = 0; i < 300; i++) {
      const s = NativeUdpSocket.open6('::1');
      if (i % 2 === 0) s.onMessage6(() => {});
      s.close();
    }
    expect(socketFdCount()).toBe(baseline);
  });
});
