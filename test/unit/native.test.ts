/**
 * The native addon without root: batched I/O, polling and the exit-fd watcher
 * on FIFOs, the checksum against a reference, argument checking, and attach's
 * failure path (a missing namespace file fails in the child before anything
 * privileged happens). TAP-specific behaviour is in test/e2e/tap.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadNative, PollRevents, watchHangup } from '../../src/link/native.js';
import { OFFLOAD_PROBE, offloadNames, READ_SLOT_BYTES, TapLink, TunOffload } from '../../src/link/tap.js';

const native = loadNative();
const ADDON = fileURLToPath(new URL('../../build/Release/usernet_native.node', import.meta.url));
const SLOT = READ_SLOT_BYTES;
/** In a child's script: the pids of its own children, zombies included ('' for none). */
const CHILDREN_EXPR = `fs.readdirSync('/proc/self/task').map((t) => fs.readFileSync('/proc/self/task/' + t + '/children', 'utf8')).join('').trim()`;

async function waitFor<T>(probe: () => T | undefined | null | false, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RFC 1071 reference: big-endian 16-bit words, odd byte padded, folded. */
function refChecksum(buf: Uint8Array, off: number, len: number, initial: number): number {
  let sum = initial;
  for (let i = 0; i + 1 < len; i += 2) sum += (buf[off + i] << 8) | buf[off + i + 1];
  if (len % 2 === 1) sum += buf[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

let dir = '';
const fds: number[] = [];

function fifo(name: string): string {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  return path;
}

/** A FIFO open for both reading and writing: writes come back as reads. */
function loopFd(): number {
  const fd = openSync(fifo(`loop-${fds.length}`), fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  fds.push(fd);
  return fd;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-native-'));
});

afterEach(() => {
  for (const fd of fds.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // closed by the test
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('checksum', () => {
  it('matches the RFC 1071 reference at every alignment and length', () => {
    const buf = new Uint8Array(300);
    let x = 12345;
    for (let i = 0; i < buf.length; i++) buf[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    for (let off = 0; off < 9; off++) {
      for (let len = 0; len <= 200; len++) {
        for (const initial of [0, 1, 0xffff, 0x1fffe]) {
          expect(native.checksum(buf, off, len, initial)).toBe(refChecksum(buf, off, len, initial));
        }
      }
    }
  });

  it('gives the IPv4 header checksum of a known header', () => {
    const hdr = Uint8Array.from([0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7]);
    expect(0xffff ^ native.checksum(hdr, 0, 20, 0)).toBe(0xb861);
  });

  it('sums a 64 KB buffer of 0xff to 0xffff', () => {
    expect(native.checksum(new Uint8Array(65536).fill(0xff), 0, 65536, 0)).toBe(0xffff);
  });

  it('rejects a range outside the buffer', () => {
    expect(() => native.checksum(new Uint8Array(10), 5, 6, 0)).toThrow(RangeError);
  });
});

describe('readBatch / writeBatch', () => {
  it('writes one- and two-slice frames and reads them back', () => {
    const fd = loopFd();
    const a = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const b = Uint8Array.from([0xa, 0xb, 0xc, 0xd]);
    // frame 0: a[2..5]; frame 1: a[0..2] + b[1..4]
    const meta = Uint32Array.from([0, 2, 3, 0, 0, 0, 0, 0, 2, 1, 1, 3]);
    const out = new Float64Array(2);
    expect(native.writeBatch(fd, [a, b], meta, 2, out)).toBe(2);
    expect(out[0]).toBe(8);
    expect(out[1]).toBe(0);

    const buf = new Uint8Array(2 * SLOT);
    const rmeta = new Uint32Array(4);
    // A FIFO does not keep frame boundaries: all 8 bytes come in one read.
    expect(native.readBatch(fd, buf, rmeta, 2, SLOT)).toBe(1);
    expect(rmeta[0]).toBe(0);
    expect(rmeta[1]).toBe(8);
    expect([...buf.subarray(0, 8)]).toEqual([3, 4, 5, 1, 2, 0xb, 0xc, 0xd]);
    // Drained: EAGAIN is not an error.
    expect(native.readBatch(fd, buf, rmeta, 2, SLOT)).toBe(0);
  });

  it('places reads in consecutive slots and stops at maxFrames', () => {
    const fd = loopFd();
    const buf = new Uint8Array(3 * SLOT);
    const meta = new Uint32Array(6);
    const frame = new Uint8Array(100).fill(7);
    for (let round = 0; round < 3; round++) {
      writeSync(fd, frame);
      // One read per FIFO chunk: write, read, write... to fill slots.
      expect(native.readBatch(fd, buf.subarray(round * SLOT), meta.subarray(2 * round), 1, SLOT)).toBe(1);
    }
    writeSync(fd, frame);
    // meta holds room for 3 frames but maxFrames 1 wins.
    expect(native.readBatch(fd, buf, meta, 1, SLOT)).toBe(1);
    expect(meta[0]).toBe(0);
    expect(meta[1]).toBe(100);
  });

  it('bounds the batch by the buffer and meta sizes', () => {
    const fd = loopFd();
    writeSync(fd, new Uint8Array(10));
    // Buffer one byte short of a slot: no read at all.
    expect(native.readBatch(fd, new Uint8Array(SLOT - 1), new Uint32Array(2), 1, SLOT)).toBe(0);
    expect(native.readBatch(fd, new Uint8Array(SLOT), new Uint32Array(1), 1, SLOT)).toBe(0);
    expect(native.readBatch(fd, new Uint8Array(SLOT), new Uint32Array(2), 1, SLOT)).toBe(1);
  });

  it('rejects slot sizes that could truncate a 64 KB frame or break alignment', () => {
    const fd = loopFd();
    const buf = new Uint8Array(2 * SLOT);
    expect(() => native.readBatch(fd, buf, new Uint32Array(2), 1, 65536)).toThrow(RangeError);
    expect(() => native.readBatch(fd, buf, new Uint32Array(2), 1, SLOT + 1)).toThrow(RangeError);
  });

  it('returns -errno when the first read fails', () => {
    const path = fifo('wo');
    const reader = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const writer = openSync(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    fds.push(reader, writer);
    expect(native.readBatch(writer, new Uint8Array(SLOT), new Uint32Array(2), 1, SLOT)).toBe(-9); // EBADF
  });

  it('counts refused frames as not written and reports the errno', () => {
    const path = fifo('ro');
    const reader = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    fds.push(reader);
    const out = new Float64Array(2);
    const meta = Uint32Array.from([0, 0, 4, 0, 0, 0, 0, 0, 4, 0, 0, 0]);
    expect(native.writeBatch(reader, [new Uint8Array(4)], meta, 2, out)).toBe(0);
    expect(out[1]).toBe(9); // EBADF: a read-only fd
  });

  it('rejects out-of-range slices before writing anything', () => {
    const fd = loopFd();
    const a = new Uint8Array(8);
    const good = [0, 0, 8, 0, 0, 0];
    for (const bad of [
      [0, 4, 5, 0, 0, 0], // past the end
      [0, 0xffffffff, 2, 0, 0, 0], // offset overflow
      [1, 0, 1, 0, 0, 0], // no such buffer
      [0, 0, 1, 0, 7, 2], // second slice past the end
    ]) {
      expect(() => native.writeBatch(fd, [a], Uint32Array.from([...good, ...bad]), 2)).toThrow(RangeError);
    }
    expect(native.readBatch(fd, new Uint8Array(SLOT), new Uint32Array(2), 1, SLOT)).toBe(0);
    expect(() => native.writeBatch(fd, [a], new Uint32Array(6), 2)).toThrow(RangeError); // count > meta/6
    expect(() => native.writeBatch(fd, [new Uint16Array(4) as unknown as Uint8Array], Uint32Array.from(good), 1)).toThrow(
      TypeError,
    );
  });

  it('resolves many buffers (past the native cache) correctly', () => {
    const fd = loopFd();
    const bufs = Array.from({ length: 100 }, (_, i) => Uint8Array.of(i));
    const meta = new Uint32Array(100 * 6);
    for (let i = 0; i < 100; i++) meta.set([i, 0, 1, 99 - i, 0, 1], 6 * i);
    expect(native.writeBatch(fd, bufs, meta, 100)).toBe(100);
    const buf = new Uint8Array(SLOT);
    const rmeta = new Uint32Array(2);
    expect(native.readBatch(fd, buf, rmeta, 1, SLOT)).toBe(1);
    expect(rmeta[1]).toBe(200);
    for (let i = 0; i < 100; i++) expect([buf[2 * i], buf[2 * i + 1]]).toEqual([i, 99 - i]);
  });
  it('looks every buffer up once, even past the native table of 64', () => {
    const fd = loopFd();
    const lookups = new Array<number>(100).fill(0);
    const bufs: Uint8Array[] = [];
    for (let i = 0; i < 100; i++) {
      const b = Uint8Array.of(i);
      Object.defineProperty(bufs, i, { get: () => (lookups[i]++, b), enumerable: true });
    }
    const meta = new Uint32Array(100 * 6);
    for (let i = 0; i < 100; i++) meta.set([i, 0, 1, 99 - i, 0, 1], 6 * i);
    expect(native.writeBatch(fd, bufs, meta, 100)).toBe(100);
    expect(lookups).toEqual(new Array<number>(100).fill(1));
  });

  it('checks slices only after every lookup: a getter that changes meta gets a RangeError', () => {
    const fd = loopFd();
    const small = new Uint8Array(8);
    const meta = Uint32Array.from([0, 0, 8, 0, 0, 0, 1, 0, 8, 0, 0, 0]);
    const bufs: Uint8Array[] = [small];
    // Looking up buffer 1 grows frame 0's slice past the end of buffer 0,
    // which was checked already if checks and lookups interleave.
    Object.defineProperty(bufs, 1, { get: () => ((meta[2] = 4096), small), enumerable: true });
    expect(() => native.writeBatch(fd, bufs, meta, 2)).toThrow(RangeError);
    expect(native.readBatch(fd, new Uint8Array(SLOT), new Uint32Array(2), 1, SLOT)).toBe(0); // nothing written
    // And an index the lookups never resolved (meta changed to name it) is refused too.
    meta.set([0, 0, 8, 0, 0, 0, 1, 0, 8, 0, 0, 0]);
    const three: Uint8Array[] = [small, small, small];
    Object.defineProperty(three, 1, { get: () => ((meta[0] = 2), small), enumerable: true });
    expect(() => native.writeBatch(fd, three, meta, 2)).toThrow(RangeError);
    expect(native.readBatch(fd, new Uint8Array(SLOT), new Uint32Array(2), 1, SLOT)).toBe(0);
  });
});

describe('pollStart / pollStop', () => {
  it('calls back on readability until stopped, and stops from inside the callback', async () => {
    const fd = loopFd();
    const buf = new Uint8Array(SLOT);
    const meta = new Uint32Array(2);
    const seen: number[] = [];
    const handle = native.pollStart(fd, (status, events) => {
      expect(status).toBe(0);
      expect(events & 1).toBe(1);
      const n = native.readBatch(fd, buf, meta, 1, SLOT);
      seen.push(n > 0 ? buf[0] : -1);
      if (buf[0] === 2) {
        native.pollStop(handle);
        native.pollStop(handle); // idempotent
      }
    });
    // A second watched FIFO marks a turn of the loop: when its callback has run
    // for a byte written after ours, the loop's poll phase had both fds in view
    // (they are in one epoll set, level-triggered), so a callback for ours that
    // has not run by then is not going to.
    const marker = loopFd();
    let marks = 0;
    const markerHandle = native.pollStart(marker, () => {
      native.readBatch(marker, new Uint8Array(SLOT), new Uint32Array(2), 1, SLOT);
      marks++;
    });
    const loopTurned = async () => {
      const want = marks + 1;
      writeSync(marker, Uint8Array.of(0));
      await waitFor(() => marks === want);
    };
    await loopTurned();
    expect(seen).toEqual([]);
    writeSync(fd, Uint8Array.of(1));
    await waitFor(() => seen.length === 1);
    writeSync(fd, Uint8Array.of(2));
    await waitFor(() => seen.length === 2);
    writeSync(fd, Uint8Array.of(3));
    await loopTurned();
    expect(seen).toEqual([1, 2]);
    native.pollStop(handle);
    native.pollStop(markerHandle);
  });

  it('pollClose closes the fd once libuv let go of it: at once, or after the callback it was called in', async () => {
    const isOpen = (fd: number) => {
      try {
        readlinkSync(`/proc/self/fd/${fd}`);
        return true;
      } catch {
        return false;
      }
    };
    // pollClose owns them: afterEach must not close their numbers again.
    const owned = (fd: number) => {
      fds[fds.indexOf(fd)] = -1;
      return fd;
    };
    // Outside any callback: closed on return.
    const a = owned(loopFd());
    const ha = native.pollStart(a, () => {});
    native.pollClose(ha, a, false);
    expect(isOpen(a)).toBe(false);
    // Inside its own callback: still open until the callback returns (libuv
    // takes it out of the epoll set first), then closed; no second callback.
    const b = owned(loopFd());
    let calls = 0;
    let openInside: boolean | undefined;
    const hb = native.pollStart(b, () => {
      calls++;
      native.pollClose(hb, b, false);
      openInside = isOpen(b);
    });
    writeSync(b, Uint8Array.of(1));
    await waitFor(() => calls > 0);
    expect(openInside).toBe(true);
    expect(isOpen(b)).toBe(false);
    await sleep(20);
    expect(calls).toBe(1);
    // After pollStop: the fd alone is closed, at once.
    const c = owned(loopFd());
    const hc = native.pollStart(c, () => {});
    native.pollStop(hc);
    expect(isOpen(c)).toBe(true);
    native.pollClose(hc, c, false);
    expect(isOpen(c)).toBe(false);
  });

  it('routes an exception thrown by the callback to uncaughtException', () => {
    const script = `
      const n = require(${JSON.stringify(ADDON)});
      const fs = require('fs');
      const fd = fs.openSync(${JSON.stringify(fifo('throw'))}, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      process.on('uncaughtException', (e) => { console.log('caught:' + e.message); process.exit(0); });
      n.pollStart(fd, () => { throw new Error('boom'); });
      fs.writeSync(fd, 'x');`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 5000 });
    expect(r.stdout).toContain('caught:boom');
    expect(r.status).toBe(0);
  });

  it('does not keep the process alive when unref’d or stopped', () => {
    for (const how of ['unref', 'stop']) {
      const script = `
        const n = require(${JSON.stringify(ADDON)});
        const fs = require('fs');
        const fd = fs.openSync(${JSON.stringify(fifo(`alive-${how}`))}, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
        const h = n.pollStart(fd, () => {});
        ${how === 'unref' ? 'n.pollRef(h, false);' : 'n.pollStop(h);'}`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 5000 });
      expect(r.signal, how).toBeNull();
      expect(r.status, how).toBe(0);
    }
  });
});

describe('watchHangup (slirp4netns --exit-fd semantics)', () => {
  function pipe(name: string): { reader: number; writer: number } {
    const path = fifo(name);
    const reader = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    const writer = openSync(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    fds.push(reader, writer);
    return { reader, writer };
  }

  it('fires when the write end closes, not when data is written', async () => {
    const { reader, writer } = pipe('hup');
    const fired: number[] = [];
    const watch = watchHangup(reader, (revents) => fired.push(revents), { inherited: false });
    writeSync(writer, 'data that must not stop us');
    // Real time on purpose here and below: the watch is a thread of its own
    // blocked in poll(2); nothing on the loop is ordered after its wake-ups,
    // so only waiting can show it stayed asleep.
    await sleep(150);
    expect(fired).toEqual([]);
    closeSync(writer);
    const revents = await waitFor(() => fired[0]);
    expect(revents & PollRevents.POLLHUP).toBe(PollRevents.POLLHUP);
    await sleep(30); // real time: the watch thread (above)
    expect(fired.length).toBe(1);
    watch.stop(); // after firing: harmless
  });

  it('fires promptly for an fd number that is not open (POLLNVAL)', async () => {
    // An fd that was open a moment ago is the likeliest number for the
    // watcher's own eventfd to reuse: the watcher must still see it as closed.
    const fd = openSync(join(dir, 'gone'), 'w');
    closeSync(fd);
    const t0 = Date.now();
    const fired: number[] = [];
    watchHangup(fd, (revents) => fired.push(revents));
    expect(await waitFor(() => fired[0], 500)).toBe(PollRevents.POLLNVAL);
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('treats a number Node took for itself as not open (the parent passed no such fd)', async () => {
    // Node opens pipes, eventfds and epoll fds before any JS runs; when the
    // parent did not pass fd N, one of those usually holds N by now.
    const links = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return [Number(fd), readlinkSync(`/proc/self/fd/${fd}`)] as const;
      } catch {
        return [Number(fd), ''] as const;
      }
    });
    const anon = links.find(([, l]) => l.startsWith('anon_inode:'));
    const pipeEnd = links.find(([fd, l]) => l.startsWith('pipe:') && links.some(([o, m]) => o !== fd && m === l));
    expect(anon).toBeDefined();
    expect(pipeEnd).toBeDefined();
    for (const [fd] of [anon!, pipeEnd!]) {
      const fired: number[] = [];
      watchHangup(fd, (revents) => fired.push(revents));
      expect(await waitFor(() => fired[0], 500)).toBe(PollRevents.POLLNVAL);
      // Declared as our own fd, it is watched for real: an epoll fd or a live
      // pipe never hangs up.
      const own: number[] = [];
      const watch = watchHangup(fd, (revents) => own.push(revents), { inherited: false });
      await sleep(50); // real time: a watch is a thread of its own (see the first test)
      expect(own).toEqual([]);
      watch.stop();
    }
  });

  it('never fires after stop()', async () => {
    const { reader, writer } = pipe('stop');
    const fired: number[] = [];
    const watch = watchHangup(reader, (revents) => fired.push(revents), { inherited: false });
    watch.stop();
    watch.stop();
    closeSync(writer);
    await sleep(100); // real time: a watch is a thread of its own (see the first test)
    expect(fired).toEqual([]);
  });

  it('does not keep the process alive, and exits cleanly with a watch pending', () => {
    const path = fifo('alive');
    const script = `
      const n = require(${JSON.stringify(ADDON)});
      const fs = require('fs');
      const r = fs.openSync(${JSON.stringify(path)}, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const w = fs.openSync(${JSON.stringify(path)}, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      n.watchHangup(r, () => console.log('fired'));
      setTimeout(() => console.log('tick'), 20);`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 5000 });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('tick\n');
  });
});

describe('fds on failure paths', () => {
  const openFds = () => readdirSync('/proc/self/fd').length;

  it('every function that opens an fd leaves none behind when it fails or throws', () => {
    const notOurs = 0xc0000201; // 192.0.2.1, TEST-NET-1
    const notOurs6 = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1]);
    const mapped = Uint8Array.from([...new Array<number>(10).fill(0), 0xff, 0xff, 127, 0, 0, 1]);
    const attempts: (() => unknown)[] = [
      () => native.tcpConnect(0x7f000001, 9, notOurs), // bind: EADDRNOTAVAIL
      () => native.tcpConnect(mapped, 9), // connect: ENETUNREACH (IPV6_V6ONLY)
      () => native.tcpConnect(0x7f000001, 70000), // RangeError before the socket
      () => native.tcpConnect(mapped, 9, 0x7f000001), // TypeError: families differ
      () => native.udpOpen(notOurs),
      () => native.udpOpen6(notOurs6),
      () => native.udpOpen6(new Uint8Array(4)), // TypeError
      () => native.pingOpen(notOurs), // EADDRNOTAVAIL, or EACCES without ping permission
      () => native.pingOpen6(notOurs6),
      () => native.dupFd(-1),
    ];
    const before = openFds();
    for (let round = 0; round < 20; round++) {
      for (const attempt of attempts) {
        let r: unknown;
        try {
          r = attempt();
        } catch {
          continue;
        }
        expect(typeof r === 'number' && r < 0, String(attempt)).toBe(true);
      }
    }
    expect(openFds()).toBe(before);
  });

  it('attach leaves no fd and no child behind when the child fails', () => {
    const script = `
      const n = require(${JSON.stringify(ADDON)});
      const fs = require('fs');
      const count = () => fs.readdirSync('/proc/self/fd').length;
      const before = count();
      for (let i = 0; i < 5; i++) {
        try {
          n.attach({ netnsPath: ${JSON.stringify(join(dir, 'none'))}, usernsPath: null, tapName: 't', vnetHdr: false, configure: null });
        } catch {}
      }
      console.log(JSON.stringify({ before, after: count(), children: ${CHILDREN_EXPR} }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    const out = JSON.parse(r.stdout) as { before: number; after: number; children: string };
    expect(out.after).toBe(out.before);
    expect(out.children).toBe('');
  });
});

describe('attach failures that need no privilege', () => {
  it('reports a missing netns file like slirp4netns: perror(path), child failed(1)', () => {
    const path = join(dir, 'no-such-netns');
    const script = `
      const n = require(${JSON.stringify(ADDON)});
      try {
        n.attach({ netnsPath: ${JSON.stringify(path)}, usernsPath: null, tapName: 'tap0', vnetHdr: false, configure: null });
      } catch (e) { console.log(JSON.stringify({ message: e.message, code: e.code, exitStatus: e.exitStatus })); }`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 5000 });
    expect(JSON.parse(r.stdout)).toEqual({ message: 'child failed(1)', code: 'ERR_USERNET_CHILD_FAILED', exitStatus: 1 });
    expect(r.stderr).toBe(`${path}: No such file or directory\n`);
  });

  it('prints each step of the child as slirp4netns does, formatted by the parent', () => {
    const gone = join(dir, 'gone');
    const hostname = join(dir, 'not-a-namespace');
    execFileSync('touch', [hostname]);
    for (const [opts, stderr] of [
      [{ netnsPath: '/proc/self/ns/net', usernsPath: gone }, `${gone}: No such file or directory\n`],
      [{ netnsPath: hostname, usernsPath: null }, 'setns(CLONE_NEWNET): Invalid argument\n'],
    ] as const) {
      const script = `
        const n = require(${JSON.stringify(ADDON)});
        try {
          n.attach({ ...${JSON.stringify(opts)}, tapName: 'tap0', vnetHdr: false, configure: null });
        } catch (e) { console.log(e.message); }`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 5000 });
      expect(r.stdout).toBe('child failed(1)\n');
      expect(r.stderr).toBe(stderr);
    }
  });

  it('kills and reaps a child that does not finish in time, and says so', () => {
    const script = `
      const n = require(${JSON.stringify(ADDON)});
      const fs = require('fs');
      const count = () => fs.readdirSync('/proc/self/fd').length;
      const before = count();
      const t0 = Date.now();
      let err;
      try {
        n.attach({ netnsPath: '/proc/self/ns/net', usernsPath: null, tapName: 'tap0', vnetHdr: false, configure: null,
                   childWaitMs: 300, testStallChild: true });
      } catch (e) { err = { message: e.message, code: e.code, errno: e.errno }; }
      console.log(JSON.stringify({ err, ms: Date.now() - t0, leaked: count() - before, children: ${CHILDREN_EXPR} }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    const out = JSON.parse(r.stdout) as { err: unknown; ms: number; leaked: number; children: string };
    expect(out.err).toEqual({
      message: 'the attach child did not finish within 300 ms: killed',
      code: 'ERR_USERNET_PARENT_FAILED',
      errno: 110, // ETIMEDOUT
    });
    expect(out.ms).toBeGreaterThanOrEqual(300);
    expect(out.ms).toBeLessThan(5000);
    expect(out.leaked).toBe(0);
    expect(out.children).toBe('');
    expect(r.stderr).toBe('');
  });

  it('checks its arguments', () => {
    const base = { netnsPath: '/x', usernsPath: null, tapName: 'tap0', vnetHdr: false, configure: null };
    const attach = (o: unknown) => () => native.attach(o as never);
    expect(attach(undefined)).toThrow(TypeError);
    expect(attach({ ...base, netnsPath: 1 })).toThrow(TypeError);
    expect(attach({ ...base, tapName: '' })).toThrow(RangeError);
    expect(attach({ ...base, netnsPath: 'x'.repeat(5000) })).toThrow(RangeError);
    expect(attach({ ...base, vnetHdr: 'yes' })).toThrow(TypeError);
    expect(attach({ ...base, configure: 5 })).toThrow(TypeError);
    const cfg = { mtu: 1500, mac: new Uint8Array(5), addr: 1, netmask: 2, gateway: 3 };
    expect(attach({ ...base, configure: cfg })).toThrow(RangeError);
    expect(attach({ ...base, configure: { ...cfg, mac: null, mtu: 'x' } })).toThrow(TypeError);
    expect(attach({ ...base, childWaitMs: 'x' })).toThrow(TypeError);
    expect(attach({ ...base, testStallChild: 1 })).toThrow(TypeError);
  });
});

describe('TapLink over a FIFO (no TAP needed)', () => {
  it('delivers batches, writes batches, counts, and closes idempotently', async () => {
    const fd = openSync(fifo('link'), fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    const link = TapLink.fromFd(fd, { mtu: 1500 });
    expect(link.vnetHdr).toBe(false);
    expect(link.offloads).toBe(0);
    const got: number[][] = [];
    const copies: Uint8Array[] = [];
    link.start((buf, meta, count) => {
      // A plain Uint8Array: slice() copies (a Buffer's would alias the reused batch buffer).
      expect(Buffer.isBuffer(buf)).toBe(false);
      for (let i = 0; i < count; i++) {
        got.push([...buf.subarray(meta[2 * i], meta[2 * i] + meta[2 * i + 1])]);
        copies.push(buf.slice(meta[2 * i], meta[2 * i] + meta[2 * i + 1]));
      }
    });
    expect(() => link.start(() => {})).toThrow();
    const payload = Uint8Array.from([9, 8, 7]);
    expect(link.writeBatch([payload], Uint32Array.from([0, 0, 3, 0, 0, 0]), 1)).toBe(1);
    await waitFor(() => got.length === 1);
    expect(got[0]).toEqual([9, 8, 7]);
    expect(link.writeBatch([Uint8Array.of(1, 1, 1)], Uint32Array.from([0, 0, 3, 0, 0, 0]), 1)).toBe(1);
    await waitFor(() => got.length === 2);
    expect([...copies[0]]).toEqual([9, 8, 7]);
    expect(link.stats).toMatchObject({ txFrames: 2, txBytes: 6, txDropped: 0, rxFrames: 2, rxBytes: 6, rxBatches: 2 });
    link.close();
    link.close();
    expect(link.writeBatch([payload], Uint32Array.from([0, 0, 3, 0, 0, 0]), 1)).toBe(0);
    expect(link.stats.txDropped).toBe(1);
    expect(() => closeSync(fd)).toThrow(); // the link closed it
  });
});

describe('offload names', () => {
  it('names each bit and probes from most to least', () => {
    expect(offloadNames(0x6f)).toEqual(['csum', 'tso4', 'tso6', 'tso_ecn', 'uso4', 'uso6']);
    expect(offloadNames(TunOffload.CSUM | TunOffload.TSO6)).toEqual(['csum', 'tso6']);
    expect(offloadNames(0)).toEqual([]);
    expect(OFFLOAD_PROBE).toEqual([0x6f, 0x0f, 0]);
  });
});
