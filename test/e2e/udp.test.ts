/**
 * UDP NAT end to end (issue 4, "Done when"): the kernel in a namespace is the
 * guest, bin/usernet (or the library in this process, where a test needs
 * stack.stats()) relays its datagrams onto host sockets, and the peers are
 * UDP sockets this test binds on the host's 127.0.0.1, which the guest
 * reaches as 10.0.2.2. No traffic leaves the machine: the guest addresses
 * nothing but 10.0.2.2, and every usernet gets a resolv.conf whose only
 * nameserver is a closed loopback port.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  UDP_ECHO_PY,
  UDP_EIM_PY,
  UDP_MANY_PORTS_PY,
  USERNET_BIN,
  startCliGuest,
  startLibraryGuest,
  udpServer,
  type HostUdpServer,
} from '../support/guest-tools.js';
import { announceSkip, e2eUnavailable, waitFor } from '../support/netns.js';

const BUILT = existsSync(resolve(__dirname, '../../dist/cli/main.js'));
const skip = announceSkip('e2e UDP NAT', e2eUnavailable() ?? (BUILT ? null : `${USERNET_BIN} needs dist/ (npm run build)`));

const GATEWAY = '10.0.2.2';

let dir = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-udp-e2e-'));
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

const defer = (fn: () => Promise<void> | void): void => {
  cleanups.push(fn);
};

async function server(options: { echo?: boolean; keepBytes?: number } = {}): Promise<HostUdpServer> {
  const s = await udpServer(options);
  defer(() => s.close());
  return s;
}

interface EchoOut {
  local: [string, number];
  results: Array<{ size: number; ok?: boolean; got?: number; sha?: string; sentSha: string; from?: [string, number]; error?: string; seconds: number }>;
}

const offloadModes = [
  { name: 'offloads on', env: {} as Record<string, string>, offloads: true },
  { name: 'offloads off', env: { USERNET_NO_OFFLOAD: '1' } as Record<string, string>, offloads: false },
];

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe.skipIf(skip)('UDP NAT through usernet in real namespaces', () => {
  describe.each(offloadModes)('$name', ({ name, env, offloads }) => {
    it('echo through 10.0.2.2 to a server on 127.0.0.1: sizes 1 … 65000 intact, replies from 10.0.2.2:port', async () => {
      const g = await startCliGuest({ defer, dir, env });
      const echo = await server({ echo: true });
      // 1472 is the largest unfragmented payload at MTU 1500; 1473 is the first fragmented one.
      const sizes = [1, 1400, 1472, 1473, 8000, 65000];
      const out = await g.py<EchoOut>(UDP_ECHO_PY, { host: GATEWAY, port: echo.port, sizes, seed: 4, timeout: 5 });
      expect(out.results.map((r) => ({ size: r.size, error: r.error, ok: r.ok, got: r.got, from: r.from }))).toEqual(
        sizes.map((size) => ({ size, error: undefined, ok: true, got: size, from: [GATEWAY, echo.port] })),
      );
      // What reached the host is what the guest sent, from one host port (one mapping).
      expect(echo.received.map((d) => ({ size: d.size, sha: d.sha }))).toEqual(out.results.map((r) => ({ size: r.size, sha: r.sentSha })));
      expect(new Set(echo.received.map((d) => `${d.address}:${d.port}`)).size).toBe(1);
      expect(echo.received[0]!.address).toBe('127.0.0.1');
    });

    it('endpoint-independent mapping: two servers see one source port; a third, never contacted, reaches the guest', async () => {
      const g = await startCliGuest({ defer, dir, env });
      const a = await server({ echo: true });
      const b = await server({ echo: true });
      const c = await server();
      const run = g.py<{ local: [string, number]; replies: Array<{ from: [string, number]; data: string }>; extra: { from: [string, number]; data: string } | null }>(
        UDP_EIM_PY,
        { targets: [[GATEWAY, a.port], [GATEWAY, b.port]], timeout: 10 },
      );
      await waitFor(() => a.received.length >= 1 && b.received.length >= 1, 8000, 'both servers hear the guest');
      const mapped = a.received[0]!.port;
      expect(b.received[0]!.port).toBe(mapped);
      // The third server learns the mapped port only from the first one.
      await c.sendTo(mapped, 'from the third server');
      const out = await run;
      expect(out.replies.map((r) => r.from).sort()).toEqual([[GATEWAY, a.port], [GATEWAY, b.port]].sort());
      expect(out.extra).toEqual({ from: [GATEWAY, c.port], data: 'from the third server' });
      expect(a.received.map((d) => d.data.toString())).toEqual(['eim 0']);
      expect(b.received.map((d) => d.data.toString())).toEqual(['eim 1']);
    });

    it('--disable-host-loopback: UDP to 10.0.2.2:PORT never reaches the host 127.0.0.1 listener', async () => {
      const g = await startCliGuest({ defer, dir, env, args: ['--disable-host-loopback'] });
      const listener = await server({ echo: true });
      const out = await g.py<EchoOut>(UDP_ECHO_PY, { host: GATEWAY, port: listener.port, sizes: [16, 1473], seed: 5, timeout: 1 });
      for (const r of out.results) expect(r.error, JSON.stringify(r)).toBeDefined();
      // Give anything in flight time to arrive before concluding nothing did.
      await new Promise((r) => setTimeout(r, 300));
      expect(listener.received).toEqual([]);
    });

    it(`10,000 guest source ports against a table of 1,000: bounded, evictions counted, still healthy (library, ${name})`, async () => {
      const g = await startLibraryGuest({ defer, dir, offloads, options: { limits: { udpMappings: 1000 } } });
      const sink = await server({ echo: true });
      const fdsBefore = openFds();
      const rssBefore = process.memoryUsage().rss;
      let maxMappings = 0;
      const sampler = setInterval(() => (maxMappings = Math.max(maxMappings, g.stack.stats().udp.mappings)), 5);
      defer(() => clearInterval(sampler));
      const N = 10_000;
      const many = await g.py<{ echoed: number; lostCount: number; lost: number[]; resent: number; errors: Record<string, number>; seconds: number }>(
        UDP_MANY_PORTS_PY,
        { host: GATEWAY, port: sink.port, firstPort: 20_000, count: N, batch: 100, replyTimeout: 1, retries: 3 },
        60_000,
      );
      clearInterval(sampler);
      const st = g.stack.stats();
      const tapDrops = JSON.parse((await g.ns.exec(['ip', '-s', '-j', 'link', 'show', 'tap0'])).stdout)[0].stats64.tx.dropped;
      const info = `guest ${JSON.stringify(many)}; udp ${JSON.stringify(st.udp)}; drops ${JSON.stringify(st.drops)}; guest tap tx_dropped ${tapDrops}; sink got ${sink.received.length}`;
      console.log(`[udp e2e] ${name}: ${N} source ports in ${many.seconds.toFixed(1)} s; ${info}`);
      expect(many, info).toMatchObject({ echoed: N, lostCount: 0, errors: {} });
      expect(new Set(sink.received.map((d) => d.data.toString())).size).toBe(N);
      // Resends come from a port whose mapping is among the newest 100: never a new one.
      expect(st.udp.created, info).toBe(N);
      expect(maxMappings).toBeLessThanOrEqual(1000);
      expect(st.udp.mappings).toBe(1000);
      expect(st.udp.evicted).toBe(N - 1000);
      expect(st.udp.expired).toBe(0);
      expect(st.udp.datagramsOut).toBe(N + many.resent);
      expect(st.udp.datagramsIn).toBeGreaterThanOrEqual(N);
      expect(st.udp.sendErrors, info).toBe(0);
      expect(st.drops.internal_error).toBeUndefined();

      // Still healthy: a fresh echo works, and host sockets of evicted mappings were closed.
      const echo = await server({ echo: true });
      const out = await g.py<EchoOut>(UDP_ECHO_PY, { host: GATEWAY, port: echo.port, sizes: [1, 1473, 8000], seed: 6, timeout: 5 });
      expect(out.results.map((r) => r.error ?? r.ok)).toEqual([true, true, true]);
      const after = g.stack.stats();
      expect(after.udp.mappings).toBe(1000);
      expect(after.udp.evicted).toBe(N - 1000 + 1);
      expect(after.drops.internal_error).toBeUndefined();
      await waitFor(() => openFds() <= fdsBefore + 1000 + 50, 5000, 'host sockets of evicted mappings closed').catch(() => {});
      const fds = openFds();
      const rssGrowthMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
      console.log(`[udp e2e] ${name}: fds ${fdsBefore} → ${fds}, RSS +${rssGrowthMiB.toFixed(1)} MiB`);
      expect(fds).toBeLessThanOrEqual(fdsBefore + 1000 + 50);
      expect(rssGrowthMiB).toBeLessThan(256);
    }, 90_000);
  });
});
