/**
 * NativeUdpSocket and the addon's UDP functions (native/udp.c) on loopback:
 * numeric addresses both ways, whole 64 KB datagrams, batched receives,
 * closing from a handler, no fd leaks, and API misuse. ICMP errors have their
 * own file (udp-errors.test.ts).
 */
import { spawnSync } from 'node:child_process';
import dgram, { type Socket as DgramSocket } from 'node:dgram';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, nativeAvailable } from '../../src/link/native.js';
import { NativeUdpSocket, UDP_RECV_SLOTS, UDP_SLOT_BYTES } from '../../src/nat/native-udp.js';

const HAVE_ADDON = nativeAvailable();
if (!HAVE_ADDON) console.warn('SKIPPED: native-udp tests: the native addon is not built (npm install)');

const LOOPBACK = 0x7f000001;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
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

async function dgramPeer(): Promise<DgramSocket> {
  const s = dgram.createSocket('udp4');
  dgrams.push(s);
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
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
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['m0']);
    expect(b.isClosed).toBe(true);
    expect(() => readlinkSync(`/proc/self/fd/${fd}`)).toThrow();
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
      // Node 20 cannot run TypeScript: strip the types of the modules the
      // socket consists of into a tree that mirrors the repository.
      const { transformWithOxc } = await import('vite');
      for (const rel of ['src/link/native.ts', 'src/link/fd-poller.ts', 'src/nat/native-udp.ts', 'src/wire/ipv4-address.ts']) {
        const out = join(dir, rel.replace(/\.ts$/, '.js'));
        mkdirSync(join(out, '..'), { recursive: true });
        const { code } = await transformWithOxc(readFileSync(join(ROOT, rel), 'utf8'), rel, { lang: 'ts' });
        writeFileSync(out, code);
      }
      writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
      symlinkSync(join(ROOT, 'build'), join(dir, 'build'));
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
