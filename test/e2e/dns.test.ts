/**
 * The DNS forwarder at 10.0.2.3:53 end to end (issue 4, "Done when"): the
 * guest kernel in a namespace asks 10.0.2.3 over UDP and TCP (queries built
 * and parsed by a python program, no resolver library), the library in this
 * process (so stats() is readable) or bin/usernet forwards, and the
 * resolvers are dns-packet servers this test runs on 127.0.0.1 and
 * 127.0.0.53. Every usernet reads a resolv.conf the test wrote: the
 * machine's own nameservers are never asked, and no traffic leaves the
 * machine.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DNS_PY, USERNET_BIN, startCliGuest, startLibraryGuest, type LibraryGuest } from '../support/guest-tools.js';
import { announceSkip, e2eUnavailable } from '../support/netns.js';
import { SUPPORTED } from '../../src/cli/features.js';
import { addressPlan, DEFAULT_NETWORK, DEFAULT_PREFIX_LENGTH } from '../../src/ip/address-plan.js';
import { Proto } from '../../src/policy/rules.js';
import { AddressPolicy, Verdict } from '../../src/nat/policy.js';
import { deadPort, nameserverLine, startServer, TempResolvConf, zoneHandler, type Handler, type TestServer, type Zone } from '../dns/test-server.js';

const BUILT = existsSync(resolve(__dirname, '../../dist/cli/main.js'));
const skip = announceSkip('e2e DNS at 10.0.2.3', e2eUnavailable());
const skipCli = !skip && announceSkip('e2e DNS through bin/usernet', BUILT ? null : `${USERNET_BIN} needs dist/ (npm run build)`);

const DNS = '10.0.2.3';

/**
 * With DNS disabled, slirp4netns sends 10.0.2.3 traffic out as ordinary
 * traffic (compat spec §4.2); usernet's policy refuses it. The disabled-DNS
 * cases send to 10.0.2.3, so they run only while the policy keeps that
 * traffic on the machine.
 */
const PLAN = addressPlan(DEFAULT_NETWORK, DEFAULT_PREFIX_LENGTH);
const disabledDnsLeaves = new AddressPolicy(PLAN, true, false).resolve(PLAN.dns, 53, { verdict: Verdict.DROP, hostIp: 0, icmpCode: 0 }, Proto.UDP, 0).verdict === Verdict.HOST;
const skipDisabled =
  !skip &&
  announceSkip('e2e DNS disabled', disabledDnsLeaves ? 'with DNS disabled the policy sends 10.0.2.3 to a host socket: the test would send a packet off the machine' : null);
const skipCliDisabled =
  !skip &&
  !skipCli &&
  !skipDisabled &&
  announceSkip('e2e bin/usernet --disable-dns', SUPPORTED.disableDns ? null : 'the CLI rejects --disable-dns ("not supported yet": SUPPORTED.disableDns is false in src/cli/features.ts)');

let dir = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-dns-e2e-'));
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

const ZONE: Zone = {
  'www.udp.test': { A: ['192.0.2.10', '192.0.2.11'], AAAA: ['2001:db8::10'], TXT: [['hello over udp', 'second string']], ttl: 300 },
  'www.tcp.test': { A: ['192.0.2.20'], AAAA: ['2001:db8::20', '2001:db8::21'], TXT: [['hello over tcp']], ttl: 300 },
  'cached.test': { A: ['192.0.2.30'], ttl: 600 },
  'failover.test': { A: ['192.0.2.40'] },
};

async function resolver(handler: Handler, address = '127.0.0.1'): Promise<TestServer> {
  const s = await startServer(handler, { address });
  defer(() => s.close());
  return s;
}

/** A resolver that hears every query and never answers (a blackhole: timeouts, not refusals). */
function blackhole(address = '127.0.0.1'): Promise<TestServer> {
  return resolver(() => 'drop', address);
}

/** A resolver answering every A question with `ip`, so an answer names its server. */
function answersWith(ip: string): Promise<TestServer> {
  return resolver((q) => ({ answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 60, data: ip }] }));
}

function resolvConf(text: string): TempResolvConf {
  const conf = new TempResolvConf(text);
  defer(() => conf.remove());
  return conf;
}

function queriesFor(s: TestServer, name: string): number {
  return [...s.udpQueries, ...s.tcpQueries].filter((q) => q.questions?.[0]?.name.toLowerCase() === name).length;
}

type Transport = 'udp' | 'tcp';
interface DnsResult {
  name: string;
  type: 'A' | 'AAAA' | 'TXT';
  transport: Transport;
  rcode?: string;
  idOk?: boolean;
  aa?: number;
  tc?: number;
  answers?: Array<{ type: string; ttl: number; data: string | string[] }>;
  error?: string;
  seconds: number;
}

async function ask(
  g: { py<T>(script: string, args: unknown, timeoutMs?: number): Promise<T> },
  queries: Array<{ name: string; type: 'A' | 'AAAA' | 'TXT'; transport: Transport }>,
  timeoutS = 5,
): Promise<DnsResult[]> {
  const out = await g.py<{ results: DnsResult[] }>(DNS_PY, { server: DNS, port: 53, timeout: timeoutS, queries }, (timeoutS * queries.length + 20) * 1000);
  return out.results;
}

function data(r: DnsResult): Array<string | string[]> {
  return (r.answers ?? []).map((a) => a.data);
}

async function libraryGuest(conf: TempResolvConf, offloads = true): Promise<LibraryGuest> {
  return startLibraryGuest({ defer, dir, offloads, options: { dns: { resolvConfPath: conf.path } } });
}

describe.skipIf(skip)('DNS at 10.0.2.3 (library on a real TAP)', () => {
  for (const offloads of [true, false]) {
    it(`A, AAAA and TXT over UDP and over TCP from the guest (offloads ${offloads ? 'on' : 'off'})`, async () => {
      const server = await resolver(zoneHandler(ZONE));
      const g = await libraryGuest(resolvConf(nameserverLine(server)), offloads);
      const types = ['A', 'AAAA', 'TXT'] as const;
      const results = await ask(g, [
        ...types.map((type) => ({ name: 'www.udp.test', type, transport: 'udp' as const })),
        ...types.map((type) => ({ name: 'www.tcp.test', type, transport: 'tcp' as const })),
      ]);
      for (const r of results) expect(r, JSON.stringify(r)).toMatchObject({ rcode: 'NOERROR', idOk: true, tc: 0 });
      expect(results.map(data)).toEqual([
        ['192.0.2.10', '192.0.2.11'],
        ['2001:db8::10'],
        [['hello over udp', 'second string']],
        ['192.0.2.20'],
        ['2001:db8::20', '2001:db8::21'],
        [['hello over tcp']],
      ]);
      for (const r of results) for (const a of r.answers!) expect(a.ttl).toBeLessThanOrEqual(300);
      // The forwarder asked upstream over the guest's transport.
      expect(server.udpQueries.map((q) => `${q.questions![0]!.name} ${q.questions![0]!.type}`)).toEqual(['www.udp.test A', 'www.udp.test AAAA', 'www.udp.test TXT']);
      expect(server.tcpQueries.map((q) => `${q.questions![0]!.name} ${q.questions![0]!.type}`)).toEqual(['www.tcp.test A', 'www.tcp.test AAAA', 'www.tcp.test TXT']);
      const st = g.stack.stats();
      expect(st.dns).toMatchObject({ queriesUdp: 3, queriesTcp: 3, cacheMisses: 6, servfails: 0, dropped: 0 });
      expect(st.dns!.guestReplies).toBe(3);
      expect(st.drops.internal_error).toBeUndefined();
    });
  }

  it('a repeated query is answered from the cache (cacheHits counts it; the resolver hears it once), over UDP and TCP', async () => {
    const server = await resolver(zoneHandler(ZONE));
    const g = await libraryGuest(resolvConf(nameserverLine(server)));
    const [first] = await ask(g, [{ name: 'cached.test', type: 'A', transport: 'udp' }]);
    expect(first).toMatchObject({ rcode: 'NOERROR', answers: [{ type: 'A', ttl: 600, data: '192.0.2.30' }] });
    const before = g.stack.stats().dns!;
    const again = await ask(g, [
      { name: 'cached.test', type: 'A', transport: 'udp' },
      { name: 'CACHED.test', type: 'A', transport: 'tcp' },
    ]);
    for (const r of again) expect(r, JSON.stringify(r)).toMatchObject({ rcode: 'NOERROR', idOk: true, answers: [{ type: 'A', data: '192.0.2.30' }] });
    for (const r of again) expect(r.answers![0]!.ttl).toBeLessThanOrEqual(600);
    const after = g.stack.stats().dns!;
    expect(after.cacheHits - before.cacheHits).toBe(2);
    expect(after.upstreamQueries).toBe(before.upstreamQueries);
    expect(queriesFor(server, 'cached.test')).toBe(1);
  });

  it('the first resolver dead (closed port) → the second, on 127.0.0.53, answers at once', async () => {
    const good = await resolver(zoneHandler(ZONE), '127.0.0.53');
    const dead = await deadPort();
    const g = await libraryGuest(resolvConf(`nameserver 127.0.0.1#${dead}\n${nameserverLine(good)}`));
    const [r] = await ask(g, [{ name: 'failover.test', type: 'A', transport: 'udp' }]);
    expect(r).toMatchObject({ rcode: 'NOERROR', answers: [{ data: '192.0.2.40' }] });
    expect(r!.seconds).toBeLessThan(1);
    expect(queriesFor(good, 'failover.test')).toBe(1);
    const st = g.stack.stats().dns!;
    expect(st.upstreamErrors).toBeGreaterThanOrEqual(1);
    expect(st.failovers).toBeGreaterThanOrEqual(1);
  });

  it('the first resolver dead (blackhole) → the second answers after one per-server timeout, within 5 s', async () => {
    const hole = await blackhole();
    const good = await resolver(zoneHandler(ZONE), '127.0.0.53');
    const g = await libraryGuest(resolvConf(nameserverLine(hole) + nameserverLine(good)));
    const [r] = await ask(g, [{ name: 'failover.test', type: 'A', transport: 'udp' }], 8);
    expect(r).toMatchObject({ rcode: 'NOERROR', answers: [{ data: '192.0.2.40' }] });
    expect(r!.seconds).toBeLessThan(5);
    expect(queriesFor(hole, 'failover.test')).toBe(1);
    expect(queriesFor(good, 'failover.test')).toBe(1);
    expect(g.stack.stats().dns!.upstreamTimeouts).toBeGreaterThanOrEqual(1);
  });

  it('every resolver dead → SERVFAIL within 5 s, measured in the guest (closed ports over UDP and TCP; blackholes)', async () => {
    const dead1 = await deadPort();
    const dead2 = await deadPort('127.0.0.53');
    const closed = await libraryGuest(resolvConf(`nameserver 127.0.0.1#${dead1}\nnameserver 127.0.0.53#${dead2}\n`));
    const refused = await ask(closed, [
      { name: 'www.udp.test', type: 'A', transport: 'udp' },
      { name: 'www.tcp.test', type: 'A', transport: 'tcp' },
    ], 8);
    for (const r of refused) {
      expect(r, JSON.stringify(r)).toMatchObject({ rcode: 'SERVFAIL', idOk: true, answers: [] });
      expect(r.seconds).toBeLessThan(5);
    }
    expect(closed.stack.stats().dns!.servfails).toBe(2);

    const holes = [await blackhole(), await blackhole('127.0.0.53')];
    const silent = await libraryGuest(resolvConf(holes.map(nameserverLine).join('')));
    const [r] = await ask(silent, [{ name: 'www.udp.test', type: 'A', transport: 'udp' }], 8);
    console.log(`[dns e2e] all resolvers blackholed: ${r!.rcode ?? r!.error} after ${r!.seconds.toFixed(2)} s in the guest`);
    expect(r).toMatchObject({ rcode: 'SERVFAIL', idOk: true });
    expect(r!.seconds).toBeLessThan(5);
    for (const h of holes) expect(queriesFor(h, 'www.udp.test')).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('resolv.conf replaced (rename) and then rewritten in place while running → the new server answers', async () => {
    const s1 = await answersWith('198.51.100.1');
    const s2 = await answersWith('198.51.100.2');
    const s3 = await answersWith('198.51.100.3');
    const conf = resolvConf(nameserverLine(s1));
    const g = await libraryGuest(conf);
    const [one] = await ask(g, [{ name: 'one.test', type: 'A', transport: 'udp' }]);
    expect(data(one!)).toEqual(['198.51.100.1']);

    conf.replace(`# replaced\n${nameserverLine(s2)}`);
    // The forwarder stats the path at most once a second (as libslirp does).
    await new Promise((r) => setTimeout(r, 1200));
    const [two] = await ask(g, [{ name: 'two.test', type: 'A', transport: 'udp' }]);
    expect(data(two!)).toEqual(['198.51.100.2']);

    conf.overwrite(`# rewritten in place, same inode\n${nameserverLine(s3)}`);
    await new Promise((r) => setTimeout(r, 1200));
    const [three] = await ask(g, [{ name: 'three.test', type: 'A', transport: 'tcp' }]);
    expect(data(three!)).toEqual(['198.51.100.3']);
    expect([queriesFor(s1, 'one.test'), queriesFor(s1, 'two.test'), queriesFor(s1, 'three.test')]).toEqual([1, 0, 0]);
    expect([queriesFor(s2, 'two.test'), queriesFor(s2, 'three.test')]).toEqual([1, 0]);
    expect(queriesFor(s3, 'three.test')).toBe(1);
  });

  it.skipIf(skipDisabled)('dns: false → 10.0.2.3:53 answers nothing, over UDP or TCP', async () => {
    const g = await startLibraryGuest({ defer, dir, offloads: true, options: { dns: false } });
    const results = await ask(g, [
      { name: 'www.udp.test', type: 'A', transport: 'udp' },
      { name: 'www.tcp.test', type: 'A', transport: 'tcp' },
    ], 2);
    // ICMP net unreachable is a soft error for UDP (Linux reports it only with IP_RECVERR): a timeout.
    expect(results.map((r) => r.rcode ?? r.error)).toEqual(['timeout', 'ENETUNREACH']);
    expect(g.stack.stats().dns).toBeNull();
  });
});

describe.skipIf(skip || skipCli)('DNS at 10.0.2.3 through bin/usernet (USERNET_RESOLV_CONF)', () => {
  it('answers A and TXT over UDP and TCP from the resolver USERNET_RESOLV_CONF names, also with --disable-host-loopback', async () => {
    const server = await resolver(zoneHandler(ZONE));
    const conf = resolvConf(nameserverLine(server));
    const env = { USERNET_RESOLV_CONF: conf.path };
    const queries = [
      { name: 'www.udp.test', type: 'A' as const, transport: 'udp' as const },
      { name: 'www.tcp.test', type: 'TXT' as const, transport: 'tcp' as const },
    ];
    const g = await startCliGuest({ defer, dir, env });
    const results = await ask(g, queries);
    expect(results.map((r) => ({ rcode: r.rcode, idOk: r.idOk, data: data(r) }))).toEqual([
      { rcode: 'NOERROR', idOk: true, data: ['192.0.2.10', '192.0.2.11'] },
      { rcode: 'NOERROR', idOk: true, data: [['hello over tcp']] },
    ]);
    expect(server.udpQueries).toHaveLength(1);
    expect(server.tcpQueries).toHaveLength(1);

    // A loopback resolver is still reachable through 10.0.2.3 (compat spec §4.1, §4.2).
    const noLoopback = await startCliGuest({ defer, dir, env, args: ['--disable-host-loopback'] });
    const [viaDns] = await ask(noLoopback, [{ name: 'www.tcp.test', type: 'AAAA', transport: 'udp' }]);
    expect(viaDns).toMatchObject({ rcode: 'NOERROR', idOk: true });
    expect(data(viaDns!)).toEqual(['2001:db8::20', '2001:db8::21']);
  });

  it.skipIf(skipCliDisabled)('--disable-dns: 10.0.2.3:53 answers nothing and the resolver hears nothing', async () => {
    const server = await resolver(zoneHandler(ZONE));
    const conf = resolvConf(nameserverLine(server));
    const g = await startCliGuest({ defer, dir, env: { USERNET_RESOLV_CONF: conf.path }, args: ['--disable-dns'] });
    const none = await ask(g, [
      { name: 'www.udp.test', type: 'A', transport: 'udp' },
      { name: 'www.tcp.test', type: 'A', transport: 'tcp' },
    ], 2);
    for (const r of none) {
      expect(r.rcode, JSON.stringify(r)).toBeUndefined();
      expect(r.error).toBeDefined();
    }
    expect(server.udpQueries.length + server.tcpQueries.length).toBe(0);
  });
});
