/**
 * PingSocket and the addon's ping functions against the kernel's own echo
 * replies on loopback: nothing leaves the machine.
 *
 * Ping sockets need our gid inside net.ipv4.ping_group_range. As root (CI) the
 * suite holds the cross-process ping_group_range lock (test/support/sysctl-lock.ts)
 * from beforeAll to afterAll, since other test files change the same sysctl
 * at the same time: it widens the range to "0 2147483647", and the lock
 * restores the value it found (a process 'exit' fallback included). Not root
 * and not permitted, it skips loudly. The same sysctl governs ICMPv6 ping
 * sockets, whose tests (on ::1) run under the same lock and also skip loudly
 * when ::1 is unusable.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNative, nativeAvailable } from '../../src/link/native.js';
import { realHost } from '../../src/nat/host.js';
import { PING_RECV_SLOTS, PING_SLOT_BYTES, PingSocket } from '../../src/nat/ping-socket.js';
import { hex6, ipv6LoopbackUnavailable, LOOPBACK6, LOOPBACK6_WORDS, MAPPED_LOOPBACK } from '../support/ipv6.js';
import { lockPingGroupRange, pingGroupRangeUnsettable, type PingGroupRangeLock } from '../support/sysctl-lock.js';
import { stripTypesTree } from '../support/strip-types.js';

const RANGE_PATH = '/proc/sys/net/ipv4/ping_group_range';
const PERMIT_ALL = '0 2147483647';
const LOOPBACK = 0x7f000001;

function readRange(): string | null {
  try {
    return readFileSync(RANGE_PATH, 'utf8');
  } catch {
    return null;
  }
}

/** Whether the kernel's check (egid, then supplementary groups) would pass under `range`. */
function permitted(range: string | null): boolean {
  if (range === null) return false;
  const [lo, hi] = range.trim().split(/\s+/).map(Number);
  const gids = [process.getegid?.() ?? -1, ...(process.getgroups?.() ?? [])];
  return gids.some((g) => g >= lo && g <= hi);
}

// Read without the lock: only for the skip decision and message (another
// file may hold the lock and have changed it for a moment).
const ORIGINAL_RANGE = readRange();
const CAN_SET = pingGroupRangeUnsettable() === null;
const HAVE_ADDON = nativeAvailable();
const RUNNABLE = HAVE_ADDON && (permitted(ORIGINAL_RANGE) || CAN_SET);

const NO_IPV6 = ipv6LoopbackUnavailable();
if (RUNNABLE && NO_IPV6 !== null) console.warn(`SKIPPED: ICMPv6 ping-socket tests: ${NO_IPV6}`);

if (!RUNNABLE) {
  console.warn(
    HAVE_ADDON
      ? `SKIPPED: ping-socket tests: net.ipv4.ping_group_range = ${ORIGINAL_RANGE?.trim().split(/\s+/).join(' ') ?? '(unreadable)'} ` +
          `excludes gid ${process.getegid?.()} and we cannot change it (not root)`
      : 'SKIPPED: ping-socket tests: the native addon is not built (npm install)',
  );
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

/** An ICMP echo request with a deliberately wrong checksum (the kernel computes it). */
function echoRequest(id: number, seq: number, payload: Uint8Array): Uint8Array {
  const msg = new Uint8Array(8 + payload.length);
  msg[0] = 8;
  msg[1] = 0;
  msg[2] = 0xde;
  msg[3] = 0xad;
  msg[4] = id >>> 8;
  msg[5] = id & 0xff;
  msg[6] = seq >>> 8;
  msg[7] = seq & 0xff;
  msg.set(payload, 8);
  return msg;
}

/** RFC 1071 sum, folded, not inverted: 0xffff over a message with a valid checksum. */
function onesSum(buf: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (buf.length % 2 === 1) sum += buf[buf.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

interface Reply {
  src: number;
  bytes: Uint8Array;
}

function collect(sock: PingSocket): Reply[] {
  const replies: Reply[] = [];
  // The bytes are valid only during the call: copy.
  sock.onReply((src, buf, off, len) => replies.push({ src, bytes: buf.slice(off, off + len) }));
  return replies;
}

const u16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];

describe.skipIf(!RUNNABLE)('PingSocket (loopback only)', () => {
  const sockets: PingSocket[] = [];
  const open = (local?: number) => {
    const s = PingSocket.open(local);
    sockets.push(s);
    return s;
  };

  let rangeLock: PingGroupRangeLock | null = null;

  beforeAll(async () => {
    if (CAN_SET) rangeLock = await lockPingGroupRange(PERMIT_ALL);
  });

  afterAll(() => {
    for (const s of sockets) s.close();
    rangeLock?.release();
    rangeLock = null;
  });

  it('echoes to 127.0.0.1: type 0, the kernel-assigned identifier, our sequence and payload', async () => {
    const sock = open();
    expect(sock.identifier).toBeGreaterThan(0);
    expect(sock.identifier).toBeLessThan(0x10000);
    expect(sock.localAddress).toBe(0);
    const replies = collect(sock);
    // An id that differs from the socket's: the kernel must replace it.
    const guestId = sock.identifier === 0xbeef ? 0xbeee : 0xbeef;
    const payload = new TextEncoder().encode('usernet ping socket test payload');
    const req = echoRequest(guestId, 0x1234, payload);
    expect(sock.send(LOOPBACK, req)).toBe(0);
    const [reply] = await waitFor(() => replies.length >= 1 && replies);
    expect(reply.src).toBe(LOOPBACK);
    const b = reply.bytes;
    expect(b.length).toBe(8 + payload.length); // ICMP message only, no IP header
    expect(b[0]).toBe(0); // echo reply
    expect(b[1]).toBe(0);
    expect(u16(b, 4)).toBe(sock.identifier);
    expect(u16(b, 6)).toBe(0x1234);
    expect([...b.subarray(8)]).toEqual([...payload]);
    expect(onesSum(b)).toBe(0xffff); // a valid checksum, not our 0xdead
    expect(sock.stats).toMatchObject({ sent: 1, sentBytes: req.length, sendErrors: 0, received: 1, batches: 1 });
  });

  it('answers a burst of 50 echoes, all received through one or more batches', async () => {
    const sock = open();
    const replies = collect(sock);
    for (let seq = 0; seq < 50; seq++) {
      const payload = new Uint8Array(56).fill(seq);
      expect(sock.send(LOOPBACK, echoRequest(1, seq, payload))).toBe(0);
    }
    await waitFor(() => replies.length >= 50);
    const seqs = replies.map((r) => u16(r.bytes, 6)).sort((a, b) => a - b);
    expect(seqs).toEqual([...Array(50).keys()]);
    for (const r of replies) {
      const seq = u16(r.bytes, 6);
      expect(r.bytes[0]).toBe(0);
      expect(u16(r.bytes, 4)).toBe(sock.identifier);
      expect(r.bytes.subarray(8).every((x) => x === seq)).toBe(true);
      expect(r.bytes.length).toBe(64);
    }
    expect(sock.stats.sent).toBe(50);
    expect(sock.stats.received).toBe(50);
    expect(sock.stats.receivedBytes).toBe(50 * 64);
    // At most PING_RECV_SLOTS per batch.
    expect(sock.stats.batches).toBeGreaterThanOrEqual(Math.ceil(50 / PING_RECV_SLOTS));
    expect(sock.stats.batches).toBeLessThanOrEqual(50);
    // One more echo marks the end: a duplicate of any of the 50 would come before its reply.
    expect(sock.send(LOOPBACK, echoRequest(1, 50, new Uint8Array(56).fill(50)))).toBe(0);
    await waitFor(() => replies.length >= 51);
    expect(replies.map((r) => u16(r.bytes, 6)).sort((a, b) => a - b)).toEqual([...Array(51).keys()]);
  });

  it('gives each socket its own identifier and routes replies by it', async () => {
    const a = open();
    const b = open();
    expect(a.identifier).not.toBe(b.identifier);
    const ra = collect(a);
    const rb = collect(b);
    expect(a.send(LOOPBACK, echoRequest(7, 1, Uint8Array.of(0xa)))).toBe(0);
    expect(b.send(LOOPBACK, echoRequest(7, 2, Uint8Array.of(0xb)))).toBe(0);
    await waitFor(() => ra.length >= 1 && rb.length >= 1);
    // A second echo on each marks the end: a reply routed to the wrong socket would come before.
    expect(a.send(LOOPBACK, echoRequest(7, 3, Uint8Array.of(0xa)))).toBe(0);
    expect(b.send(LOOPBACK, echoRequest(7, 4, Uint8Array.of(0xb)))).toBe(0);
    await waitFor(() => ra.length >= 2 && rb.length >= 2);
    expect(ra.map((r) => [u16(r.bytes, 4), u16(r.bytes, 6), r.bytes[8]])).toEqual([
      [a.identifier, 1, 0xa],
      [a.identifier, 3, 0xa],
    ]);
    expect(rb.map((r) => [u16(r.bytes, 4), u16(r.bytes, 6), r.bytes[8]])).toEqual([
      [b.identifier, 2, 0xb],
      [b.identifier, 4, 0xb],
    ]);
  });

  it('binds to 127.0.0.1 (--outbound-addr) and refuses an address that is not ours', async () => {
    const sock = open(LOOPBACK);
    expect(sock.localAddress).toBe(LOOPBACK);
    const replies = collect(sock);
    expect(sock.send(LOOPBACK, echoRequest(0, 9, Uint8Array.of(1, 2, 3)))).toBe(0);
    const [reply] = await waitFor(() => replies.length >= 1 && replies);
    expect(reply.src).toBe(LOOPBACK);
    expect(u16(reply.bytes, 4)).toBe(sock.identifier);
    expect(u16(reply.bytes, 6)).toBe(9);
    // 192.0.2.1 (TEST-NET-1) is not a local address: bind fails, nothing is sent.
    expect(() => PingSocket.open(0xc0000201)).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', errno: 99 }));
    expect(PingSocket.probe(0xc0000201)).toMatchObject({ ok: false, code: 'EADDRNOTAVAIL' });
  });

  it('returns errnos from send instead of throwing', () => {
    const sock = open();
    // Not an echo request: the kernel refuses it.
    const notEcho = echoRequest(1, 1, new Uint8Array(4));
    notEcho[0] = 13; // timestamp request
    expect(sock.send(LOOPBACK, notEcho)).toBe(22); // EINVAL
    expect(sock.send(LOOPBACK, new Uint8Array(4))).toBe(22); // shorter than a header
    expect(sock.stats.sendErrors).toBe(2);
    expect(sock.lastSendErrno).toBe(22);
    expect(() => sock.send(LOOPBACK, new Uint8Array(8), 4, 8)).toThrow(RangeError);
    sock.close();
    sock.close(); // idempotent
    expect(sock.isClosed).toBe(true);
    expect(sock.send(LOOPBACK, echoRequest(1, 1, new Uint8Array(0)))).toBe(9); // EBADF
    expect(() => sock.onReply(() => {})).toThrow(/closed/);
  });

  it('probe() reflects net.ipv4.ping_group_range', { skip: !CAN_SET }, () => {
    expect(PingSocket.probe()).toEqual({ ok: true });
    // Under the suite's lock (CAN_SET), so nobody else sees or changes this.
    try {
      rangeLock!.set('1 0');
      const p = PingSocket.probe();
      expect(p.ok).toBe(false);
      expect(p.code).toBe('EACCES');
      expect(p.reason).toBe('ping sockets not permitted (net.ipv4.ping_group_range = 1 0)');
      expect(() => PingSocket.open()).toThrow(expect.objectContaining({ code: 'EACCES', errno: 13, syscall: 'socket' }));
      expect(loadNative().pingOpen(0)).toBe(-13);
    } finally {
      rangeLock!.set(PERMIT_ALL);
    }
    expect(PingSocket.probe()).toEqual({ ok: true });
  });

  it('native: pingRecvBatch fills [src, offset, length] triples slot by slot and checks its arguments', async () => {
    const native = loadNative();
    const fd = native.pingOpen(0);
    expect(fd).toBeGreaterThanOrEqual(0);
    try {
      const id = native.pingLocalId(fd);
      expect(id).toBeGreaterThan(0);
      const req = echoRequest(0, 5, Uint8Array.of(1, 2, 3, 4));
      expect(native.pingSend(fd, LOOPBACK, req, 0, req.length)).toBe(12);
      expect(native.pingSend(fd, LOOPBACK, req, 0, req.length)).toBe(12);
      const buf = new Uint8Array(3 * PING_SLOT_BYTES);
      const meta = new Uint32Array(9).fill(0xffffffff);
      let n = 0;
      await waitFor(() => {
        const r = native.pingRecvBatch(fd, buf.subarray(n * PING_SLOT_BYTES), meta.subarray(3 * n), 3 - n, PING_SLOT_BYTES);
        expect(r).toBeGreaterThanOrEqual(0);
        // Offsets are relative to the buffer passed in: rebase them.
        for (let i = n; i < n + r; i++) meta[3 * i + 1] += n * PING_SLOT_BYTES;
        n += r;
        return n >= 2;
      });
      expect([...meta.subarray(0, 6)]).toEqual([LOOPBACK, 0, 12, LOOPBACK, PING_SLOT_BYTES, 12]);
      expect(meta[6]).toBe(0xffffffff); // untouched
      expect(u16(buf, 4)).toBe(id);
      expect(native.pingRecvBatch(fd, buf, meta, 3, PING_SLOT_BYTES)).toBe(0); // drained: EAGAIN is not an error
      expect(native.pingRecvBatch(fd, buf, new Uint32Array(2), 3, PING_SLOT_BYTES)).toBe(0); // meta too short for one
      expect(() => native.pingRecvBatch(fd, buf, meta, 3, 65472)).toThrow(RangeError);
      expect(() => native.pingRecvBatch(fd, buf, meta, 3, PING_SLOT_BYTES + 8)).toThrow(RangeError);
      expect(() => native.pingSend(fd, LOOPBACK, req, 10, 4)).toThrow(RangeError);
      expect(() => native.pingSend(fd, LOOPBACK, [1, 2] as unknown as Uint8Array, 0, 2)).toThrow(TypeError);
    } finally {
      expect(native.pingClose(fd)).toBe(0);
    }
    expect(native.pingClose(fd)).toBe(-9);
    expect(native.pingRecvBatch(fd, new Uint8Array(PING_SLOT_BYTES), new Uint32Array(3), 1, PING_SLOT_BYTES)).toBe(-9);
  });

  it('close() leaves no active handle behind', async () => {
    const before = process.getActiveResourcesInfo().length;
    const sock = PingSocket.open();
    const replies = collect(sock);
    sock.setRef(false);
    sock.setRef(true);
    expect(sock.send(LOOPBACK, echoRequest(0, 1, new Uint8Array(8)))).toBe(0);
    await waitFor(() => replies.length >= 1);
    sock.close();
    sock.close();
    await new Promise((r) => setImmediate(r));
    expect(process.getActiveResourcesInfo().length).toBeLessThanOrEqual(before);
  });

  // getActiveResourcesInfo() lists Node's own handle wraps only, not an addon's
  // uv_poll, so the check above cannot see a leaked poll. A child process can:
  // it exits only when nothing keeps its loop alive.
  it('a child process exits after close() or setRef(false), and stays alive while polling', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'usernet-ping-'));
    try {
      await stripTypesTree(dir, ['src/nat/ping-socket.ts']);
      const run = (body: string, timeout = 2000) => {
        const script = `import { PingSocket } from ${JSON.stringify(join(dir, 'src/nat/ping-socket.js'))};
          const sock = PingSocket.open();
          const req = Uint8Array.of(8, 0, 0, 0, 0, 0, 0, 1);
          ${body}`;
        return spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout });
      };
      const closed = run(`sock.onReply(() => { console.log('reply'); sock.close(); }); sock.send(0x7f000001, req);`);
      expect(closed.stderr).toBe('');
      expect(closed.signal).toBeNull();
      expect(closed.status).toBe(0);
      expect(closed.stdout).toBe('reply\n');
      const unrefd = run(`sock.onReply(() => {}); sock.setRef(false); console.log('unref');`);
      expect(unrefd.signal).toBeNull();
      expect(unrefd.stdout).toBe('unref\n');
      // Control: a polling socket does keep the process alive (killed by the timeout).
      const polling = run(`sock.onReply(() => {}); console.log('polling');`, 1000);
      expect(polling.stdout).toBe('polling\n');
      expect(polling.signal).toBe('SIGTERM');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe.skipIf(NO_IPV6 !== null)('ICMPv6 (::1)', () => {
    const LO6 = hex6(LOOPBACK6);
    const open6 = (local?: Uint8Array | null) => {
      const s = PingSocket.open6(local);
      sockets.push(s);
      return s;
    };

    function collect6(sock: PingSocket): { src: string; bytes: Uint8Array }[] {
      const replies: { src: string; bytes: Uint8Array }[] = [];
      sock.onReply6((src, buf, off, len) => replies.push({ src: hex6(src), bytes: buf.slice(off, off + len) }));
      return replies;
    }

    it('echoes to ::1: type 129, the kernel-assigned identifier, our sequence and payload, a valid ICMPv6 checksum', async () => {
      const sock = open6();
      expect(sock.family).toBe(6);
      expect(sock.localAddress6).toBeNull();
      expect(sock.identifier).toBeGreaterThan(0);
      const replies = collect6(sock);
      const guestId = sock.identifier === 0xbeef ? 0xbeee : 0xbeef;
      const payload = new TextEncoder().encode('usernet ICMPv6 ping socket payload');
      const req = echoRequest(guestId, 0x4321, payload);
      req[0] = 128; // ICMPv6 echo request
      // The destination inside a larger buffer, as in a guest's packet.
      const dst = new Uint8Array(48);
      dst.set(LOOPBACK6, 24);
      expect(sock.send6(dst, 24, req)).toBe(0);
      const [reply] = await waitFor(() => replies.length >= 1 && replies);
      expect(reply.src).toBe(LO6);
      const b = reply.bytes;
      expect(b.length).toBe(8 + payload.length);
      expect(b[0]).toBe(129); // echo reply
      expect(b[1]).toBe(0);
      expect(u16(b, 4)).toBe(sock.identifier);
      expect(u16(b, 6)).toBe(0x4321);
      expect([...b.subarray(8)]).toEqual([...payload]);
      // Over the pseudo header (::1 → ::1, length, next header 58): what the relay must redo for the guest's address.
      const pseudo = new Uint8Array(40);
      pseudo.set(LOOPBACK6, 0);
      pseudo.set(LOOPBACK6, 16);
      pseudo[35] = b.length;
      pseudo[39] = 58;
      const both = new Uint8Array(40 + b.length);
      both.set(pseudo);
      both.set(b, 40);
      expect(onesSum(both)).toBe(0xffff);
      expect(sock.stats).toMatchObject({ sent: 1, sentBytes: req.length, sendErrors: 0, received: 1 });
    });

    it('answers a burst of 30 echoes through batches, with one shared source view', async () => {
      const sock = open6(LOOPBACK6);
      expect(hex6(sock.localAddress6!)).toBe(LO6);
      const views = new Set<Uint8Array>();
      const seqs: number[] = [];
      sock.onReply6((src, buf, off) => {
        views.add(src);
        seqs.push(u16(buf, off + 6));
      });
      for (let seq = 0; seq < 30; seq++) {
        const req = echoRequest(1, seq, new Uint8Array(16).fill(seq));
        req[0] = 128;
        expect(sock.send6(LOOPBACK6, 0, req)).toBe(0);
      }
      await waitFor(() => seqs.length >= 30);
      expect([...seqs].sort((a, b) => a - b)).toEqual([...Array(30).keys()]);
      expect(views.size).toBe(1);
      expect(sock.stats.batches).toBeGreaterThanOrEqual(Math.ceil(30 / PING_RECV_SLOTS));
    });

    it('returns errnos from send6 (EINVAL: an ICMPv4 echo, too short, a v4-mapped destination); misuse throws', () => {
      const sock = open6();
      const v4echo = echoRequest(1, 1, new Uint8Array(4)); // type 8: not an ICMPv6 echo request
      expect(sock.send6(LOOPBACK6, 0, v4echo)).toBe(22);
      const req = echoRequest(1, 1, new Uint8Array(4));
      req[0] = 128;
      expect(sock.send6(LOOPBACK6, 0, req, 0, 4)).toBe(22);
      expect(sock.send6(MAPPED_LOOPBACK, 0, req)).toBe(22);
      expect(sock.stats.sendErrors).toBe(3);
      expect(() => sock.send6(LOOPBACK6, 1, req)).toThrow(RangeError);
      expect(() => sock.send6(LOOPBACK6, 0, req, 4, 20)).toThrow(RangeError);
      expect(() => sock.send(LOOPBACK, req)).toThrow(TypeError);
      expect(() => sock.onReply(() => {})).toThrow(TypeError);
      const v4 = open();
      expect(() => v4.send6(LOOPBACK6, 0, req)).toThrow(TypeError);
      expect(() => v4.onReply6(() => {})).toThrow(TypeError);
      expect(() => PingSocket.open6(new Uint8Array(4))).toThrow(TypeError);
      sock.close();
      expect(sock.send6(LOOPBACK6, 0, req)).toBe(9); // EBADF
    });

    it('refuses an address that is not ours (EADDRNOTAVAIL), naming it', () => {
      const notOurs = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
      expect(() => PingSocket.open6(notOurs)).toThrow(
        expect.objectContaining({ code: 'EADDRNOTAVAIL', errno: 99, reason: 'ping socket cannot bind to 2001:db8:0:0:0:0:0:1 (EADDRNOTAVAIL)' }),
      );
      expect(realHost.openPing6Socket(notOurs)).toBe('ping socket cannot bind to 2001:db8:0:0:0:0:0:1 (EADDRNOTAVAIL)');
    });

    it('realHost.openPing6Socket: a HostPing6Socket that sends, receives and closes', async () => {
      const h = realHost.openPing6Socket();
      expect(typeof h).not.toBe('string');
      if (typeof h === 'string') return;
      const replies: string[] = [];
      h.onReply((src, buf, off, len) => replies.push(`${hex6(src)} type ${buf[off]} len ${len}`));
      const req = echoRequest(0, 1, Uint8Array.of(9, 9));
      req[0] = 128;
      expect(h.send(LOOPBACK6, 0, req, 0, req.length)).toBe(0);
      await waitFor(() => replies.length >= 1);
      expect(replies).toEqual([`${LO6} type 129 len 10`]);
      h.close();
      expect(h.send(LOOPBACK6, 0, req, 0, req.length)).toBe(9);
    });

    it('ping_group_range governs ICMPv6 ping sockets too: EACCES, with the reason', { skip: !CAN_SET }, () => {
      try {
        rangeLock!.set('1 0');
        expect(loadNative().pingOpen6()).toBe(-13);
        const reason = 'ICMPv6 ping sockets not permitted (net.ipv4.ping_group_range = 1 0)';
        expect(() => PingSocket.open6()).toThrow(expect.objectContaining({ code: 'EACCES', errno: 13, reason }));
        expect(realHost.openPing6Socket()).toBe(reason);
      } finally {
        rangeLock!.set(PERMIT_ALL);
      }
      expect(typeof realHost.openPing6Socket()).not.toBe('string');
    });

    it('native: pingRecvBatch6 fills [src words, offset, length] per slot', async () => {
      const native = loadNative();
      const fd = native.pingOpen6(LOOPBACK6);
      expect(fd).toBeGreaterThanOrEqual(0);
      try {
        const req = echoRequest(0, 5, Uint8Array.of(1, 2, 3, 4));
        req[0] = 128;
        expect(native.pingSend6(fd, LOOPBACK6, 0, req, 0, req.length)).toBe(12);
        expect(native.pingSend6(fd, LOOPBACK6, 0, req, 0, req.length)).toBe(12);
        const buf = new Uint8Array(3 * PING_SLOT_BYTES);
        const meta = new Uint32Array(18).fill(0xffffffff);
        await waitFor(() => native.pingRecvBatch6(fd, buf, meta, 3, PING_SLOT_BYTES) === 2);
        expect([...meta.subarray(0, 12)]).toEqual([...LOOPBACK6_WORDS, 0, 12, ...LOOPBACK6_WORDS, PING_SLOT_BYTES, 12]);
        expect(meta[12]).toBe(0xffffffff);
        expect(buf[0]).toBe(129);
        expect(native.pingRecvBatch6(fd, buf, new Uint32Array(5), 3, PING_SLOT_BYTES)).toBe(0); // meta too short for one
      } finally {
        expect(native.pingClose(fd)).toBe(0);
      }
    });
  });
});

describe.skipIf(!HAVE_ADDON)('PingSocket without permission', () => {
  it('probe() gives a reason when not permitted, and ok otherwise', () => {
    const p = PingSocket.probe();
    if (p.ok) expect(p).toEqual({ ok: true });
    else expect(p.reason).toMatch(/^ping sockets /);
  });
});

// Keep the slot size in step with the native minimum (ping.c PING_MIN_SLOT_BYTES).
it('uses 64 KB receive slots', () => {
  expect(PING_SLOT_BYTES).toBe(65536);
});
