/**
 * TCP NAT end to end (issue 3, "Done when"): the kernel in a namespace is the
 * guest, the binary under test relays its connections onto host sockets, and
 * the peers are servers this test runs on the host's 127.0.0.1, which the
 * guest reaches as 10.0.2.2. No traffic leaves the machine.
 *
 * The binary is bin/usernet unless USERNET_E2E_BIN names another one with the
 * same CLI. Run with USERNET_E2E_BIN=/usr/bin/slirp4netns to check this
 * harness against a working implementation. Against slirp4netns, the cases it
 * does not meet (hand-made SYNs to 0.0.0.0 and 127.0.0.1 under
 * --disable-host-loopback) are skipped, loudly; USERNET_E2E_ALL=1 runs them
 * anyway. USERNET_NO_OFFLOAD=1 means nothing to slirp4netns, so against it
 * the "offloads off" runs repeat only the cheap cases.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONNECT_PY,
  GiB,
  HALF_CLOSE_PY,
  HTTP_GET_PY,
  MANY_ECHO_PY,
  MiB,
  RAW_SYN_PY,
  RESET_PY,
  TRANSFER_PY,
  echoServer,
  guestPython,
  hostPattern,
  hostServer,
  httpServer,
  sendPattern,
  sha256,
  transferServer,
  type HostServer,
  type TransferResult,
} from '../support/guest-tools.js';
import { announceSkip, e2eUnavailable, userNetns, waitFor, type UserNetns } from '../support/netns.js';

const BIN = process.env.USERNET_E2E_BIN || resolve(__dirname, '../../bin/usernet');
const BIN_NAME = basename(BIN);
const IS_SLIRP = BIN_NAME.startsWith('slirp4netns');
/** USERNET_E2E_ALL=1 runs the usernet-only cases against any binary too. */
const RUN_ALL = process.env.USERNET_E2E_ALL === '1';
const skip = announceSkip(`e2e TCP NAT (${BIN})`, e2eUnavailable() ?? (existsSync(BIN) ? null : `${BIN} does not exist`));
if (!skip && IS_SLIRP && !RUN_ALL) {
  console.warn(
    `\n*** SKIPPED against ${BIN}: the usernet-only cases (hand-made SYNs to 0.0.0.0/127.0.0.1 under ` +
      `--disable-host-loopback, which slirp4netns lets through; the offloads-off repeats of the 1 GiB and ` +
      `32-transfer cases, identical runs for a binary without offloads). USERNET_E2E_ALL=1 runs them. ***\n`,
  );
}
/** Cases that only make sense for usernet (see the file comment). */
const itUsernet = IS_SLIRP && !RUN_ALL ? it.skip : it;

const GUEST_ADDR = '10.0.2.100';
const GATEWAY = '10.0.2.2';

let dir = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-tcp-e2e-'));
});

afterEach(async () => {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      console.warn(`cleanup failed: ${String(e)}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function defer(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

interface Guest {
  ns: UserNetns;
  child: ChildProcess;
  stderr(): string;
  /** Starts a guest python program, killed in cleanup if still running. */
  py<T = Record<string, unknown>>(script: string, args: unknown, timeoutMs?: number): Promise<T>;
}

/**
 * A fresh namespace with the binary under test attached to its tap0 (`-c`:
 * 10.0.2.100/24, default route via 10.0.2.2), ready when the ready fd says so.
 */
async function startGuest(extraArgs: string[] = [], env: Record<string, string> = {}): Promise<Guest> {
  const ns = await userNetns();
  defer(() => ns.close());
  const ready = join(dir, `ready-${ns.pid}`);
  const child = spawn('sh', ['-c', `exec "$0" "$@" 9>"${ready}"`, BIN, '-c', '-r', '9', ...extraArgs, String(ns.pid), 'tap0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-20_000)));
  const exited = new Promise((r) => child.once('exit', r));
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`${BIN_NAME} exited ${child.exitCode}: ${err}`);
    return existsSync(ready) && readFileSync(ready, 'utf8') === '1';
  }, 15_000, `${BIN_NAME} ready fd`);
  return {
    ns,
    child,
    stderr: () => err,
    async py<T>(script: string, args: unknown, timeoutMs = 60_000): Promise<T> {
      const g = guestPython(ns.pid, script, args, timeoutMs);
      defer(() => g.proc.kill());
      const r = await g.result<T>();
      expect(child.exitCode, `${BIN_NAME} died: ${err}`).toBeNull();
      return r;
    },
  };
}

async function serve<S extends { close(): Promise<void> }>(s: Promise<S>): Promise<S> {
  const server = await s;
  defer(() => server.close());
  return server;
}

function gbits(bytes: number, seconds: number): string {
  return ((bytes * 8) / seconds / 1e9).toFixed(2);
}

interface TransferOut {
  results: Array<{ id: number; dir: 'up' | 'down'; bytes: number; sha: string; seconds: number; reply?: string; error?: string }>;
}

/** Runs TRANSFER_PY jobs against a transfer server and checks every one of them byte for byte. */
async function transfers(
  g: Guest,
  jobs: Array<{ id: number; dir: 'up' | 'down'; bytes: number; seed: number }>,
  timeoutMs: number,
): Promise<TransferOut> {
  const server = await serve(transferServer());
  const out = await g.py<TransferOut>(TRANSFER_PY, { host: GATEWAY, port: server.port, connectTimeout: 5, timeout: 15, jobs }, timeoutMs);
  expect(out.results.filter((r) => r.error)).toEqual([]);
  expect(out.results).toHaveLength(jobs.length);
  // Down jobs: the host records its hash once the last byte is queued; the
  // guest has read to EOF by now, so it is there.
  for (const job of jobs) {
    const mine = out.results.find((r) => r.id === job.id)!;
    const theirs = server.results.get(job.id) as TransferResult | undefined;
    expect(theirs, `host result for transfer ${job.id}`).toBeDefined();
    expect({ id: job.id, bytes: mine.bytes, sha: mine.sha }).toEqual({ id: job.id, bytes: job.bytes, sha: theirs!.sha });
    expect(theirs!.bytes).toBe(job.bytes);
    if (job.dir === 'up') expect(mine.reply).toBe(`${theirs!.sha} ${job.bytes}\n`);
  }
  expect(server.errors).toEqual([]);
  return out;
}

const offloadModes = [
  { name: 'offloads on', env: {} as Record<string, string>, full: true },
  // Against slirp4netns this mode is the same run again: keep only the cheap cases.
  { name: 'offloads off', env: { USERNET_NO_OFFLOAD: '1' } as Record<string, string>, full: !IS_SLIRP || RUN_ALL },
];

describe.skipIf(skip)(`TCP NAT through ${BIN_NAME} in real namespaces`, () => {
  describe.each(offloadModes)('$name', ({ name, env, full }) => {
    const itFull = full ? it : it.skip;

    it('HTTP GET from the guest to a host server on 127.0.0.1 through 10.0.2.2', async () => {
      const g = await startGuest([], env);
      const body = Buffer.concat([Buffer.from('<html>usernet e2e</html>\n'), hostPattern(7).subarray(0, 300_000)]);
      const http = await serve(httpServer(body));
      const r = await g.py<{ status: number; length: number; sha: string; head: string; error?: string }>(HTTP_GET_PY, {
        url: `http://${GATEWAY}:${http.port}/page`,
        timeout: 5,
      });
      expect(r.error).toBeUndefined();
      expect(r).toMatchObject({ status: 200, length: body.length, sha: sha256(body) });
      expect(r.head.startsWith('<html>usernet e2e</html>')).toBe(true);
      expect(http.requests).toEqual(['GET /page']);
    });

    itFull('1 GiB guest→host with matching sha256', async () => {
      const g = await startGuest([], env);
      const out = await transfers(g, [{ id: 1, dir: 'up', bytes: GiB, seed: 11 }], 150_000);
      console.log(`[tcp e2e] ${BIN_NAME} ${name}: 1 GiB guest→host in ${out.results[0]!.seconds.toFixed(1)} s = ${gbits(GiB, out.results[0]!.seconds)} Gbit/s`);
    }, 180_000);

    itFull('1 GiB host→guest with matching sha256', async () => {
      const g = await startGuest([], env);
      const out = await transfers(g, [{ id: 2, dir: 'down', bytes: GiB, seed: 12 }], 150_000);
      console.log(`[tcp e2e] ${BIN_NAME} ${name}: 1 GiB host→guest in ${out.results[0]!.seconds.toFixed(1)} s = ${gbits(GiB, out.results[0]!.seconds)} Gbit/s`);
    }, 180_000);

    itFull('32 parallel 16 MiB transfers, both directions mixed, all intact', async () => {
      const g = await startGuest([], env);
      const jobs = Array.from({ length: 32 }, (_, i) => ({ id: 100 + i, dir: (i % 2 === 0 ? 'up' : 'down') as 'up' | 'down', bytes: 16 * MiB, seed: 100 + i }));
      const t0 = Date.now();
      await transfers(g, jobs, 120_000);
      const s = (Date.now() - t0) / 1000;
      console.log(`[tcp e2e] ${BIN_NAME} ${name}: 32 × 16 MiB mixed in ${s.toFixed(1)} s = ${gbits(32 * 16 * MiB, s)} Gbit/s aggregate`);
    }, 150_000);

    it('guest half-close: the guest sends a request and SHUT_WR; the host reads to EOF, then sends 10 MiB', async () => {
      const g = await startGuest([], env);
      const request = 'GET /after-fin\n'.repeat(100);
      const server = await serve(
        hostServer<{ request: string; sha?: string; gotEndFirst: boolean }>((sock, self) => {
          let got = '';
          sock.setEncoding('latin1');
          sock.on('data', (d: string) => (got += d));
          sock.on('error', (e) => self.errors.push(e.message));
          sock.once('end', () => {
            // The guest's FIN arrived; our side is still open (allowHalfOpen).
            self.results.set(0, { request: got, gotEndFirst: true });
            sendPattern(sock, 21, 10 * MiB, (sha) => self.results.set(0, { request: got, sha, gotEndFirst: true }));
          });
        }),
      );
      const r = await g.py<{ received: number; sha: string; error?: string }>(HALF_CLOSE_PY, {
        host: GATEWAY,
        port: server.port,
        timeout: 10,
        mode: 'guest-shut',
        request,
      });
      expect(r.error).toBeUndefined();
      const host = server.results.get(0)!;
      expect(host.request).toBe(request);
      expect({ received: r.received, sha: r.sha }).toEqual({ received: 10 * MiB, sha: host.sha });
      expect(server.errors).toEqual([]);
    });

    it('host half-close: the host sends a greeting and FIN; the guest then sends 10 MiB', async () => {
      const g = await startGuest([], env);
      const server = await serve(
        hostServer<{ bytes: number; sha: string }>((sock, self) => {
          const hash = createHash('sha256');
          let bytes = 0;
          sock.on('error', (e) => self.errors.push(e.message));
          sock.on('data', (d: Buffer) => {
            hash.update(d);
            bytes += d.length;
          });
          sock.once('end', () => self.results.set(0, { bytes, sha: hash.digest('hex') }));
          sock.end('hello, I am done talking\n');
        }),
      );
      const r = await g.py<{ greeting: string; sent: number; sha: string; error?: string }>(HALF_CLOSE_PY, {
        host: GATEWAY,
        port: server.port,
        timeout: 10,
        mode: 'host-shut',
        bytes: 10 * MiB,
        seed: 22,
      });
      expect(r.error).toBeUndefined();
      expect(r.greeting).toBe('hello, I am done talking\n');
      await waitFor(() => server.results.has(0), 5000, 'host saw the guest FIN');
      expect(server.results.get(0)).toEqual({ bytes: 10 * MiB, sha: r.sha });
      expect(server.errors).toEqual([]);
    });

    it('a closed host port: connect to 10.0.2.2 fails with ECONNREFUSED in under 2 s', async () => {
      const g = await startGuest([], env);
      // A port that was just free on 127.0.0.1 and has no listener now.
      const probe = await hostServer(() => {});
      const port = probe.port;
      await probe.close();
      const r = await g.py<{ results: Array<{ ok: boolean; errno?: string; seconds: number }> }>(CONNECT_PY, {
        targets: [[GATEWAY, port]],
        timeout: 5,
      });
      expect(r.results[0]).toMatchObject({ ok: false, errno: 'ECONNREFUSED' });
      expect(r.results[0]!.seconds).toBeLessThan(2);
    });

    it('host RST reaches the guest as ECONNRESET', async () => {
      const g = await startGuest([], env);
      const server = await serve(
        hostServer((sock) => {
          sock.on('error', () => {});
          sock.once('data', () => sock.resetAndDestroy());
        }),
      );
      const r = await g.py<{ outcome?: string; error?: string; seconds: number }>(RESET_PY, {
        host: GATEWAY,
        port: server.port,
        timeout: 10,
        mode: 'host-resets',
      });
      expect(r.error).toBeUndefined();
      expect(r.outcome).toBe('ECONNRESET');
      expect(r.seconds).toBeLessThan(5);
    });

    it('guest abort (SO_LINGER 0) reaches the host socket promptly', async () => {
      const g = await startGuest([], env);
      const events: string[] = [];
      const server = await serve(
        hostServer(
          (sock) => {
            sock.on('error', (e: NodeJS.ErrnoException) => events.push(`error ${e.code}`));
            sock.on('end', () => events.push('end'));
            sock.on('close', () => events.push('close'));
            sock.once('data', () => sock.write('ok\n'));
          },
          { allowHalfOpen: false },
        ),
      );
      const r = await g.py<{ outcome?: string; error?: string }>(RESET_PY, { host: GATEWAY, port: server.port, timeout: 10, mode: 'guest-aborts' });
      expect(r.error).toBeUndefined();
      expect(r.outcome).toBe('aborted');
      await waitFor(() => events.includes('close'), 2000, `host socket closed after the guest's RST (saw ${events.join(', ')})`);
      expect(events.some((e) => e === 'error ECONNRESET' || e === 'end')).toBe(true);
    });

    it('--disable-host-loopback: nothing reaches a host 127.0.0.1 listener through 10.0.2.2, 10.0.2.3, 10.0.2.255, 255.255.255.255, 0.0.0.0', async () => {
      const listener = await serve(hostServer(() => {}));
      const port = listener.port;
      const g = await startGuest(['--disable-host-loopback'], env);
      // The kernel's own connect: 10.0.2.2 must be "Network is unreachable"
      // (ICMP net unreachable, like slirp4netns). The guest kernel refuses
      // the broadcasts itself and keeps 0.0.0.0 local, which is fine: the
      // listener is what counts, and hand-made SYNs below cover those.
      const targets = [GATEWAY, '10.0.2.3', '10.0.2.255', '255.255.255.255', '0.0.0.0'];
      const c = await g.py<{ results: Array<{ host: string; ok: boolean; errno?: string }> }>(CONNECT_PY, {
        targets: targets.map((t) => [t, port]),
        timeout: 3,
      });
      expect(c.results[0]).toMatchObject({ host: GATEWAY, ok: false, errno: 'ENETUNREACH' });
      for (const r of c.results) expect(r, r.host).toMatchObject({ ok: false });
      // Hand-made SYNs straight onto the TAP. Without the flag, slirp4netns
      // maps 10.0.2.2 and 255.255.255.255 to the host's 127.0.0.1.
      const raw = await g.py<{ sent: number }>(RAW_SYN_PY, {
        iface: 'tap0',
        src: GUEST_ADDR,
        targets: [GATEWAY, '10.0.2.3', '10.0.2.255', '255.255.255.255'],
        port,
        repeat: 2,
      });
      expect(raw.sent).toBe(8);
      await new Promise((r) => setTimeout(r, 1500));
      expect(listener.accepted).toBe(0);
    });

    // slirp4netns 1.2.0 (libslirp 4.7.0) fails this one: with
    // --disable-host-loopback, a SYN to 0.0.0.0 or 127.0.0.1 still becomes a
    // host connect() that lands on 127.0.0.1 (checked by hand).
    itUsernet('--disable-host-loopback: hand-made SYNs to 0.0.0.0 and 127.0.0.1 reach nothing on the host either', async () => {
      const listener = await serve(hostServer(() => {}));
      // USERNET_DEBUG: the helper logs every SYN it refuses or opens, so a failure
      // below says what the helper did (this failed once in CI with the
      // connect reported as established; not reproduced in 300 tries).
      const g = await startGuest(['--disable-host-loopback'], { ...env, USERNET_DEBUG: '1' });
      // The relay is up and applying the policy (not merely ignoring TCP).
      const c = await g.py<{ results: Array<{ ok: boolean; errno?: string }> }>(CONNECT_PY, { targets: [[GATEWAY, listener.port]], timeout: 3 });
      expect(c.results[0], `${JSON.stringify(c.results[0])}; listener accepted ${listener.accepted}; helper stderr:\n${g.stderr()}`).toMatchObject({
        ok: false,
        errno: 'ENETUNREACH',
      });
      const raw = await g.py<{ sent: number }>(RAW_SYN_PY, {
        iface: 'tap0',
        src: GUEST_ADDR,
        targets: ['0.0.0.0', '127.0.0.1'],
        port: listener.port,
        repeat: 2,
      });
      expect(raw.sent).toBe(4);
      await new Promise((r) => setTimeout(r, 1500));
      expect(listener.accepted).toBe(0);
    });

    it('without --disable-host-loopback the same listener is reached through 10.0.2.2 (and by a hand-made SYN)', async () => {
      const listener = await serve(hostServer((sock) => sock.on('error', () => {})));
      const g = await startGuest([], env);
      const c = await g.py<{ results: Array<{ ok: boolean; errno?: string }> }>(CONNECT_PY, { targets: [[GATEWAY, listener.port]], timeout: 3 });
      expect(c.results[0]).toMatchObject({ ok: true });
      await waitFor(() => listener.accepted === 1, 2000, 'listener saw the connect');
      // Checks the raw SYN builder used above: the forwarder dials the host on the SYN.
      await g.py(RAW_SYN_PY, { iface: 'tap0', src: GUEST_ADDR, targets: [GATEWAY], port: listener.port, repeat: 1 });
      await waitFor(() => listener.accepted >= 2, 3000, 'listener saw the hand-made SYN');
    });
  });

  // The issue asks this of usernet; slirp4netns passes it too (about 5 s here).
  it('2,000 concurrent connections held open and echoing', async () => {
    const g = await startGuest();
    const echo: HostServer<never> = await serve(echoServer());
    const n = 2000;
    const r = await g.py<{ opened: number; round1: number; round2: number; connectSeconds: number; round2Seconds: number; error?: string }>(
      MANY_ECHO_PY,
      { host: GATEWAY, port: echo.port, n, inflight: 200, timeout: 60, stallTimeout: 10, msgBytes: 100 },
      90_000,
    );
    expect(r.error, JSON.stringify(r)).toBeUndefined();
    expect(r).toMatchObject({ opened: n, round1: n, round2: n });
    expect(echo.accepted).toBe(n);
    expect(echo.maxOpen).toBe(n);
    // The guest's FINs close every host socket.
    await waitFor(() => echo.open === 0, 20_000, `host sockets closed (${echo.open} still open)`);
    expect(echo.errors).toEqual([]);
    console.log(
      `[tcp e2e] ${BIN_NAME}: ${n} connections opened and echoed in ${r.connectSeconds.toFixed(1)} s, second round in ${r.round2Seconds.toFixed(2)} s`,
    );
  }, 120_000);
});
