/**
 * Adaptive busy polling (src/link/busy-poll.ts, native/poll.c): the loop stays
 * awake through a fast exchange, goes back to sleeping once events come later
 * than the maximum, and costs nothing when off. The exchange is with a python3
 * UDP echo in a child process, so that the replies really come from outside
 * the loop (an in-process peer would keep the loop busy by itself).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { busyPoll, busyPollFromEnv, busyPollStats, DEFAULT_BUSY_POLL_US, type BusyPollStats } from '../../src/link/busy-poll.js';
import { nativeAvailable } from '../../src/link/native.js';
import { NativeUdpSocket } from '../../src/nat/native-udp.js';

const HAVE_ADDON = nativeAvailable();
if (!HAVE_ADDON) console.warn('SKIPPED: busy-poll tests: the native addon is not built (npm install)');

const LOOPBACK = 0x7f000001;
const ECHO = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))
print(s.getsockname()[1], flush=True)
while True:
    d, a = s.recvfrom(64)
    if d[0] > 0: time.sleep(d[0] / 1000)  # the byte asks for a reply that many ms late
    s.sendto(d, a)
`;

let echo: ChildProcess | null = null;
const sockets: NativeUdpSocket[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  if (HAVE_ADDON) busyPoll(0);
});
afterAll(() => {
  echo?.kill();
});

async function echoPort(): Promise<number> {
  if (echo === null) echo = spawn('python3', ['-c', ECHO], { stdio: ['ignore', 'pipe', 'inherit'] });
  const child = echo;
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`echo exited ${code}`)));
  });
}
let portPromise: Promise<number> | null = null;

/** `n` round trips, each sent when the previous reply arrived; the echo answers `lateMs` late. */
async function roundTrips(n: number, lateMs = 0): Promise<void> {
  portPromise ??= echoPort();
  const port = await portPromise;
  const s = NativeUdpSocket.open(LOOPBACK);
  sockets.push(s);
  const payload = new Uint8Array([lateMs]);
  await new Promise<void>((resolve, reject) => {
    let left = n;
    const send = (): void => {
      const r = s.send(LOOPBACK, port, payload, 0, 1);
      if (r !== 0) reject(new Error(`send: ${r}`));
    };
    s.onMessage(() => {
      if (--left === 0) resolve();
      else send();
    });
    send();
  });
}

function delta(a: BusyPollStats, b: BusyPollStats): { spins: number; hits: number; sleeps: number; spinNs: number } {
  return { spins: b.spins - a.spins, hits: b.hits - a.hits, sleeps: b.sleeps - a.sleeps, spinNs: b.spinNs - a.spinNs };
}

describe('busyPollFromEnv (USERNET_BUSY_POLL_US)', () => {
  it('defaults to DEFAULT_BUSY_POLL_US when unset or empty, takes 0..1000000', () => {
    expect(busyPollFromEnv({})).toBe(DEFAULT_BUSY_POLL_US);
    expect(busyPollFromEnv({ USERNET_BUSY_POLL_US: '' })).toBe(DEFAULT_BUSY_POLL_US);
    expect(busyPollFromEnv({ USERNET_BUSY_POLL_US: '0' })).toBe(0);
    expect(busyPollFromEnv({ USERNET_BUSY_POLL_US: '50' })).toBe(50);
    expect(busyPollFromEnv({ USERNET_BUSY_POLL_US: '1000000' })).toBe(1_000_000);
  });
  it.each(['-1', '1.5', '1e3', ' 5', 'abc', '1000001', '99999999'])('refuses %j with a message naming it', (v) => {
    expect(() => busyPollFromEnv({ USERNET_BUSY_POLL_US: v })).toThrow(`USERNET_BUSY_POLL_US=${v}: must be a whole number of microseconds from 0 to 1000000`);
  });
});

describe.skipIf(!HAVE_ADDON)('busyPoll', () => {
  it('refuses what is not a whole number from 0 to 1000000 (ERR_USERNET_INVALID_OPTION)', () => {
    for (const bad of [-1, 1.5, NaN, Infinity, 1_000_001]) {
      expect(() => busyPoll(bad)).toThrow(expect.objectContaining({ code: 'ERR_USERNET_INVALID_OPTION' }));
    }
  });

  it('keeps the loop awake through a fast exchange: most round trips find it polling, not asleep', async () => {
    // A generous maximum (20 ms), so that a loaded machine's slow replies still count as fast.
    busyPoll(20_000);
    await roundTrips(50); // the window grows from nothing
    const before = busyPollStats();
    await roundTrips(500);
    const d = delta(before, busyPollStats());
    expect(d.hits).toBeGreaterThanOrEqual(250);
    expect(d.sleeps).toBeLessThan(250);
    expect(busyPollStats().windowNs).toBeGreaterThan(0);
  });

  it('stops polling once events come later than the maximum: slow traffic costs (almost) no spinning', async () => {
    busyPoll(1000);
    await roundTrips(200);
    const before = busyPollStats();
    const w0 = before.windowNs;
    expect(w0).toBeGreaterThan(0);
    // Replies 5 ms late, beyond the maximum: each such gap halves the window, so
    // 20 of them cost about 2 windows of polling in all (w0 + w0/2 + …), not 20.
    await roundTrips(20, 5);
    const d = delta(before, busyPollStats());
    expect(d.sleeps).toBeGreaterThanOrEqual(15);
    expect(d.spinNs).toBeLessThan(4 * w0);
    expect(busyPollStats().windowNs).toBeLessThan(w0);
  });

  it('0 turns it off: no spins however fast the events come', async () => {
    busyPoll(1000);
    await roundTrips(100);
    busyPoll(0);
    expect(busyPollStats().windowNs).toBe(0);
    const before = busyPollStats();
    await roundTrips(200);
    const d = delta(before, busyPollStats());
    expect(d).toEqual({ spins: 0, hits: 0, sleeps: 0, spinNs: 0 });
  });
});
