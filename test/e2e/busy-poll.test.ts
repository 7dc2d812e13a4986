/**
 * The CLI's adaptive busy polling (USERNET_BUSY_POLL_US, src/link/busy-poll.ts)
 * as a user meets it: request/response traffic through the guest works with it
 * on (the default), the helper uses next to no CPU once the traffic stops (the
 * window has shrunk to nothing), and a value it cannot take stops it before the
 * ready fd with one line.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { echoServer, startCliGuest } from '../support/guest-tools.js';
import { announceSkip, e2eUnavailable } from '../support/netns.js';
import { perTest } from '../support/per-test.js';

const skip = announceSkip('e2e busy polling', e2eUnavailable());
const t = perTest('usernet-busypoll-e2e-');
const { defer } = t;

/** 1-byte TCP round trips to the host's echo server; returns the rate. */
const RR_PY = String.raw`
import json, socket, sys, time
A = json.loads(sys.argv[1])
s = socket.create_connection(('10.0.2.2', A['port']), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
t0 = time.monotonic()
for _ in range(A['n']):
    s.sendall(b'x')
    if s.recv(1) != b'x': raise SystemExit('bad echo')
print(json.dumps({'rate': A['n'] / (time.monotonic() - t0)}))
`;

/** The process's user + system CPU in clock ticks (all threads). */
function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop()!.trim().split(/\s+/);
  return Number(f[11]) + Number(f[12]);
}

describe.skipIf(skip)('USERNET_BUSY_POLL_US', () => {
  it('on by default: round trips go through, and once they stop the helper is idle (no polling left)', async () => {
    const echo = await echoServer();
    defer(() => echo.close());
    const g = await startCliGuest({ defer, dir: t.dir() });
    const r = await g.py<{ rate: number }>(RR_PY, { port: echo.port, n: 3000 });
    expect(r.rate).toBeGreaterThan(0);
    // Once the exchange stops, the next wake-ups (timers, the connection's close)
    // come late and halve the window to nothing; after that the helper sleeps
    // at once. A helper still polling would show as CPU time here.
    await new Promise((res) => setTimeout(res, 1000));
    const pid = g.child.pid!;
    const before = cpuTicks(pid);
    await new Promise((res) => setTimeout(res, 2000));
    expect(cpuTicks(pid) - before).toBeLessThanOrEqual(4); // ≤ 2 % of one CPU over 2 s (ticks of 10 ms)
  });

  it('0 turns it off and the exchange still works', async () => {
    const echo = await echoServer();
    defer(() => echo.close());
    const g = await startCliGuest({ defer, dir: t.dir(), env: { USERNET_BUSY_POLL_US: '0' } });
    const r = await g.py<{ rate: number }>(RR_PY, { port: echo.port, n: 1000 });
    expect(r.rate).toBeGreaterThan(0);
  });

  it('a value it cannot take stops the helper before the ready fd, naming it', async () => {
    await expect(startCliGuest({ defer, dir: t.dir(), env: { USERNET_BUSY_POLL_US: '20ms' } })).rejects.toThrow(
      /exited 1: [\s\S]*USERNET_BUSY_POLL_US=20ms: must be a whole number of microseconds from 0 to 1000000/,
    );
  });
});
