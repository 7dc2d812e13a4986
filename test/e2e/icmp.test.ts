/**
 * ICMP echo end to end (issue 4, "Done when"): `ping` in a namespace is the
 * guest, bin/usernet relays its echoes through ping sockets on the host, and
 * the targets are the host itself: its own non-loopback address (answered by
 * the host's kernel, never leaving the machine) and 10.0.2.2 (answered by
 * usernet). `ping -n` everywhere: no reverse lookups, so nothing asks a
 * nameserver.
 *
 * Ping sockets need our gid in net.ipv4.ping_group_range, which is shared by
 * every test file running in the host's namespace at the same time: each
 * case sets it under the cross-process lock of test/support/sysctl-lock.ts,
 * which restores it afterwards. `ping` checks the echo id of every reply, so
 * a successful ping also proves the guest's id was restored.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { USERNET_BIN, hostGlobalAddress, startCliGuest, type CliGuest } from '../support/guest-tools.js';
import { announceSkip, e2eUnavailable, waitFor } from '../support/netns.js';
import { PING_GROUP_RANGE_ALL, PING_GROUP_RANGE_NONE, pingGroupRangeUnsettable, withPingGroupRange } from '../support/sysctl-lock.js';

const BUILT = existsSync(resolve(__dirname, '../../dist/cli/main.js'));
const skip = announceSkip('e2e ICMP echo', e2eUnavailable() ?? (BUILT ? null : `${USERNET_BIN} needs dist/ (npm run build)`));
const HOST_ADDR = hostGlobalAddress();
const skipHost = !skip && announceSkip('e2e ICMP echo to the host address', HOST_ADDR === null ? 'the host has no IPv4 address of global scope' : null);
const skipRange =
  !skip && !skipHost && announceSkip('e2e ICMP echo with ping_group_range changes', pingGroupRangeUnsettable());

const GATEWAY = '10.0.2.2';
const NOT_PERMITTED = 'ping sockets not permitted';

let dir = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-icmp-e2e-'));
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

interface PingResult {
  code: number;
  transmitted: number;
  received: number;
  ttls: number[];
  out: string;
}

async function ping(g: CliGuest, addr: string, options: { count?: number; size?: number; waitS?: number } = {}): Promise<PingResult> {
  const args = ['ping', '-n', '-c', String(options.count ?? 1), '-i', '0.2', '-W', String(options.waitS ?? 3)];
  if (options.size !== undefined) args.push('-s', String(options.size));
  const r = await g.ns.run([...args, addr], { timeoutMs: 20_000 });
  const out = r.stdout + r.stderr;
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  return {
    code: r.code,
    transmitted: m ? Number(m[1]) : 0,
    received: m ? Number(m[2]) : 0,
    ttls: [...out.matchAll(/ttl=(\d+)/g)].map((x) => Number(x[1])),
    out,
  };
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

const offloadModes = [
  { name: 'offloads on', env: {} as Record<string, string> },
  { name: 'offloads off', env: { USERNET_NO_OFFLOAD: '1' } as Record<string, string> },
];

describe.skipIf(skip)('ICMP echo through bin/usernet in real namespaces', () => {
  describe.each(offloadModes)('$name', ({ env }) => {
    it.skipIf(skipHost || skipRange)(`ping sockets permitted: the host's own address (${HOST_ADDR}), also > MTU, and 10.0.2.2 > MTU`, async () => {
      await withPingGroupRange(PING_GROUP_RANGE_ALL, async () => {
        const g = await startCliGuest({ defer, dir, env });
        const small = await ping(g, HOST_ADDR!, { count: 3 });
        expect(small, small.out).toMatchObject({ code: 0, transmitted: 3, received: 3 });
        // 3000 bytes: fragmented by the guest, reassembled, relayed whole, the reply fragmented back.
        const big = await ping(g, HOST_ADDR!, { count: 2, size: 3000 });
        expect(big, big.out).toMatchObject({ code: 0, transmitted: 2, received: 2 });
        expect(big.out).toContain('3008 bytes from');
        // Answered by usernet itself (TTL 255, compat spec §4.4), not by a ping socket.
        const gw = await ping(g, GATEWAY, { count: 2, size: 2000 });
        expect(gw, gw.out).toMatchObject({ code: 0, transmitted: 2, received: 2, ttls: [255, 255] });
        expect(g.stderr()).not.toContain(NOT_PERMITTED);
      });
    });

    it('10.0.2.2 answers a fragmented echo whatever ping_group_range says', async () => {
      const g = await startCliGuest({ defer, dir, env });
      const gw = await ping(g, GATEWAY, { count: 2, size: 4000 });
      expect(gw, gw.out).toMatchObject({ code: 0, transmitted: 2, received: 2, ttls: [255, 255] });
    });
  });

  it.skipIf(skipHost || skipRange)(
    'ping sockets not permitted: echoes to the host address fail, stderr says so once; widened later, the same process relays them',
    async () => {
      const g = await startCliGuest({ defer, dir });
      await withPingGroupRange(PING_GROUP_RANGE_NONE, async () => {
        // Three ping processes: three echo ids, three attempts at a ping socket.
        for (let i = 0; i < 3; i++) {
          const r = await ping(g, HOST_ADDR!, { count: 1, waitS: 1 });
          expect(r, r.out).toMatchObject({ transmitted: 1, received: 0 });
          expect(r.code).not.toBe(0);
        }
        await waitFor(() => g.stderr().includes(NOT_PERMITTED), 3000, `"${NOT_PERMITTED}" on stderr`);
        // The gateway is answered locally, permitted or not.
        const gw = await ping(g, GATEWAY, { count: 1 });
        expect(gw, gw.out).toMatchObject({ code: 0, received: 1 });
      });
      expect(count(g.stderr(), NOT_PERMITTED), g.stderr()).toBe(1);
      expect(g.stderr()).toMatch(/ping sockets not permitted \(net\.ipv4\.ping_group_range = 1\s+0\)/);

      await withPingGroupRange(PING_GROUP_RANGE_ALL, async () => {
        const r = await ping(g, HOST_ADDR!, { count: 2 });
        expect(r, r.out).toMatchObject({ code: 0, transmitted: 2, received: 2 });
      });
      expect(count(g.stderr(), NOT_PERMITTED)).toBe(1);
    },
  );
});
