/**
 * DnsForwarder against test resolvers on loopback (127.0.0.1, 127.0.0.53):
 * no packet leaves the machine. Timeouts are shortened except in the one test
 * that measures the defaults.
 */
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it, test } from 'vitest';
import { DnsForwarder, type DnsForwarderOptions } from '../../src/dns/forwarder.js';
import { realHost } from '../../src/nat/host.js';
import type { ResolverSockets } from '../../src/dns/upstream.js';
import { DnsTcpFramer, TcpFramerResult, frame } from '../../src/dns/tcp-framing.js';
import { UsernetError } from '../../src/errors.js';
import { concat } from '../wire/golden.js';
import {
  SOA,
  TempResolvConf,
  deadPort,
  decode,
  encodeReply,
  makeQuery,
  nameserverLine,
  startServer,
  zoneHandler,
  type Handler,
  type TestServer,
  type Zone,
} from './test-server.js';

const ZONE: Zone = {
  'a.test': { A: ['192.0.2.1'], AAAA: ['2001:db8::1'], TXT: [['hello', 'world']], ttl: 300 },
  'b.test': { A: ['192.0.2.2'] },
  'c.test': { A: ['192.0.2.3'] },
  'd.test': { A: ['192.0.2.4'] },
};

/** Some CI containers run with IPv6 disabled. */
const HAS_IPV6_LOOPBACK = await new Promise<boolean>((resolve) => {
  const s = dgram.createSocket('udp6');
  s.once('error', () => resolve(false));
  s.bind(0, '::1', () => s.close(() => resolve(true)));
});

const servers: TestServer[] = [];
const forwarders: DnsForwarder[] = [];
const confs: TempResolvConf[] = [];

afterEach(async () => {
  await Promise.all(forwarders.splice(0).map((f) => f.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const c of confs.splice(0)) c.remove();
});

async function server(handler: Handler = zoneHandler(ZONE), address?: string): Promise<TestServer> {
  const s = await startServer(handler, address === undefined ? {} : { address });
  servers.push(s);
  return s;
}

function conf(text: string): TempResolvConf {
  const c = new TempResolvConf(text);
  confs.push(c);
  return c;
}

function forwarder(resolvConf: string | TempResolvConf, opts: Partial<DnsForwarderOptions> = {}): DnsForwarder {
  const c = typeof resolvConf === 'string' ? conf(resolvConf) : resolvConf;
  const f = new DnsForwarder({ sockets: realHost, resolvConfPath: c.path, perServerTimeoutMs: 300, queryDeadlineMs: 1500, ...opts });
  forwarders.push(f);
  return f;
}

const rcodeOf = (msg: Uint8Array | null): number => (msg === null ? -1 : msg[3] & 0xf);
const idOf = (msg: Uint8Array | null): number => (msg === null ? -1 : (msg[0] << 8) | msg[1]);
const dataOf = (msg: Uint8Array | null): unknown[] =>
  (decode(msg).answers ?? []).map((a) => {
    const d = (a as { data: unknown }).data;
    return Array.isArray(d) ? d.map((x) => String(x)) : d;
  });
const ttlsOf = (msg: Uint8Array | null, section: 'answers' | 'authorities' = 'answers'): number[] =>
  (decode(msg)[section] ?? []).map((a) => (a as { ttl: number }).ttl);

describe('answers over UDP and TCP', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    it(`A, AAAA and TXT over ${transport}, upstream over ${transport}, the guest's ID preserved`, async () => {
      const s = await server();
      const f = forwarder(nameserverLine(s));
      const a = await f.query(makeQuery('a.test', 'A', { id: 0x1111 }), transport);
      expect(idOf(a)).toBe(0x1111);
      expect(rcodeOf(a)).toBe(0);
      expect(dataOf(a)).toEqual(['192.0.2.1']);
      const aaaa = await f.query(makeQuery('a.test', 'AAAA', { id: 0x2222 }), transport);
      expect(idOf(aaaa)).toBe(0x2222);
      expect(dataOf(aaaa)).toEqual(['2001:db8::1']);
      const txt = await f.query(makeQuery('a.test', 'TXT', { id: 0x3333 }), transport);
      expect(dataOf(txt)).toEqual([['hello', 'world']]);
      const upstream = transport === 'udp' ? s.udpQueries : s.tcpQueries;
      expect(upstream.map((q) => q.questions?.[0].type)).toEqual(['A', 'AAAA', 'TXT']);
      expect((transport === 'udp' ? s.tcpQueries : s.udpQueries).length).toBe(0);
      expect(f.stats).toMatchObject({
        queries: 3,
        [transport === 'udp' ? 'queriesUdp' : 'queriesTcp']: 3,
        cacheMisses: 3,
        cacheHits: 0,
        upstreamQueries: 3,
      });
    });
  }

  it('opens its sockets to the resolvers only through the ResolverSockets it is given', async () => {
    const s = await server();
    const opened: string[] = [];
    const sockets: ResolverSockets = {
      resolverUdpSocket: (family) => (opened.push(`udp${family}`), realHost.resolverUdpSocket(family)),
      resolverTcpConnect: (o) => (opened.push('tcp'), realHost.resolverTcpConnect(o)),
    };
    const f = forwarder(nameserverLine(s), { sockets, cacheEntries: 0 });
    expect(dataOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toEqual(['192.0.2.1']);
    expect(dataOf(await f.query(makeQuery('a.test', 'A'), 'tcp'))).toEqual(['192.0.2.1']);
    expect(opened).toEqual(['udp4', 'tcp']);
  });

  it('upstream queries carry fresh random IDs, never simply the guest ID', async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s), { cacheEntries: 0 });
    for (let i = 0; i < 6; i++) expect(idOf(await f.query(makeQuery('a.test', 'A', { id: 7 }), 'udp'))).toBe(7);
    const ids = new Set(s.udpQueries.map((q) => q.id));
    expect(ids.size).toBeGreaterThan(1);
  });

  it("keeps the guest's letter case in the question, also from the cache", async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s));
    const r1 = await f.query(makeQuery('A.TeSt', 'A'), 'udp');
    expect(decode(r1).questions?.[0].name).toBe('A.TeSt');
    const r2 = await f.query(makeQuery('a.tEsT', 'A'), 'udp');
    expect(decode(r2).questions?.[0].name).toBe('a.tEsT');
    expect(dataOf(r2)).toEqual(['192.0.2.1']);
    expect(f.stats.cacheHits).toBe(1);
    expect(s.udpQueries.length).toBe(1);
  });

  it('127.0.0.53-style loopback resolver, port from the upstreamPort option', async () => {
    const s = await server(zoneHandler(ZONE), '127.0.0.53');
    const f = forwarder('# systemd-resolved stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n', {
      upstreamPort: s.port,
    });
    expect(dataOf(await f.query(makeQuery('b.test', 'A'), 'udp'))).toEqual(['192.0.2.2']);
    expect(dataOf(await f.query(makeQuery('c.test', 'A'), 'tcp'))).toEqual(['192.0.2.3']);
    expect(s.udpQueries.length + s.tcpQueries.length).toBe(2);
  });
});

describe('transports', () => {
  it.skipIf(!HAS_IPV6_LOOPBACK)('an IPv6 resolver ([::1]:port) over UDP and TCP', async () => {
    const s = await server(zoneHandler(ZONE), '::1');
    const f = forwarder(nameserverLine(s));
    expect(dataOf(await f.query(makeQuery('a.test', 'AAAA'), 'udp'))).toEqual(['2001:db8::1']);
    expect(dataOf(await f.query(makeQuery('b.test', 'A'), 'tcp'))).toEqual(['192.0.2.2']);
    expect([s.udpQueries.length, s.tcpQueries.length]).toEqual([1, 1]);
  });

  it('a guest TCP stream through DnsTcpFramer: pipelined queries, replies framed in order', async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s));
    const stream = concat(frame(makeQuery('a.test', 'A', { id: 1 })), frame(makeQuery('a.test', 'TXT', { id: 2 })));
    const framer = new DnsTcpFramer(4096);
    const msgs: Uint8Array[] = [];
    // Split mid-prefix, as a guest's segments may be.
    expect(framer.push(stream.subarray(0, 30), msgs)).toBe(TcpFramerResult.OK);
    expect(framer.push(stream.subarray(30), msgs)).toBe(TcpFramerResult.OK);
    const replies = await Promise.all(msgs.map((m) => f.query(m, 'tcp')));
    const back = new DnsTcpFramer();
    const out: Uint8Array[] = [];
    back.push(concat(...replies.map((r) => frame(r!))), out);
    expect(out.map(idOf)).toEqual([1, 2]);
    expect(dataOf(out[1])).toEqual([['hello', 'world']]);
  });
});

describe('cache', () => {
  it('answers a repeated query from the cache with TTLs decremented by the time spent there', async () => {
    let t = 5_000;
    const s = await server();
    const f = forwarder(nameserverLine(s), { now: () => t });
    expect(ttlsOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toEqual([300]);
    t += 10_400;
    const hit = await f.query(makeQuery('a.test', 'A', { id: 99 }), 'udp');
    expect(idOf(hit)).toBe(99);
    expect(ttlsOf(hit)).toEqual([290]);
    expect(f.stats).toMatchObject({ cacheHits: 1, cacheMisses: 1, upstreamQueries: 1 });
    // Served while now < stored + TTL, with TTL ≥ 1.
    t += 289_500;
    expect(ttlsOf(await f.query(makeQuery('a.test', 'A'), 'tcp'))).toEqual([1]);
    t += 100;
    expect(ttlsOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toEqual([300]);
    expect(s.udpQueries.length).toBe(2);
    expect(f.stats.cacheHits).toBe(2);
  });

  it('keys on type, class and EDNS/DO bits, not on transport', async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s));
    await f.query(makeQuery('a.test', 'A'), 'udp');
    await f.query(makeQuery('a.test', 'A'), 'tcp');
    await f.query(makeQuery('a.test', 'AAAA'), 'udp');
    await f.query(makeQuery('a.test', 'A', { edns: 1232 }), 'udp');
    expect(f.stats.cacheHits).toBe(1);
    expect(s.udpQueries.length).toBe(3);
    // A reply cached for an EDNS query carries OPT; a non-EDNS query never gets it.
    const plain = await f.query(makeQuery('a.test', 'A'), 'udp');
    expect(decode(plain).additionals ?? []).toEqual([]);
  });

  it('caches NXDOMAIN and NODATA for min(SOA TTL, SOA MINIMUM) (RFC 2308)', async () => {
    let t = 0;
    const s = await server();
    const f = forwarder(nameserverLine(s), { now: () => t });
    const nx = await f.query(makeQuery('nope.test', 'A'), 'udp');
    expect(rcodeOf(nx)).toBe(3);
    const nodata = await f.query(makeQuery('b.test', 'AAAA'), 'udp');
    expect(rcodeOf(nodata)).toBe(0);
    expect(dataOf(nodata)).toEqual([]);
    t += 20_000;
    const nx2 = await f.query(makeQuery('nope.test', 'A'), 'udp');
    expect(rcodeOf(nx2)).toBe(3);
    expect(ttlsOf(nx2, 'authorities')).toEqual([SOA.ttl - 20]);
    expect(rcodeOf(await f.query(makeQuery('b.test', 'AAAA'), 'udp'))).toBe(0);
    expect(f.stats.cacheHits).toBe(2);
    expect(s.udpQueries.length).toBe(2);
    t += 40_000; // 60 s = SOA MINIMUM: expired
    await f.query(makeQuery('nope.test', 'A'), 'udp');
    expect(s.udpQueries.length).toBe(3);
  });

  it('does not cache negative answers without SOA, SERVFAIL, or TTL 0', async () => {
    const s = await server((q) => {
      const name = q.questions?.[0].name;
      if (name === 'nosoa.test') return { flags: 3 };
      if (name === 'fail.test') return { flags: 2 };
      return { answers: [{ type: 'A', name: name ?? '', ttl: 0, data: '192.0.2.9' }] };
    });
    const f = forwarder(nameserverLine(s));
    for (let i = 0; i < 2; i++) {
      expect(rcodeOf(await f.query(makeQuery('nosoa.test', 'A'), 'udp'))).toBe(3);
      expect(rcodeOf(await f.query(makeQuery('fail.test', 'A'), 'udp'))).toBe(2);
      expect(dataOf(await f.query(makeQuery('zero.test', 'A'), 'udp'))).toEqual(['192.0.2.9']);
    }
    expect(f.stats.cacheHits).toBe(0);
    // The single server answered SERVFAIL: tried `attempts` (2) times per query.
    expect(s.udpQueries.filter((q) => q.questions?.[0].name === 'fail.test').length).toBe(4);
    expect(f.stats.servfails).toBe(2);
  });

  it('caps TTLs at maxTtlS', async () => {
    let t = 0;
    const s = await server(zoneHandler({ 'long.test': { A: ['192.0.2.7'], ttl: 1_000_000 } }));
    const f = forwarder(nameserverLine(s), { now: () => t, maxTtlS: 100 });
    await f.query(makeQuery('long.test', 'A'), 'udp');
    t += 99_000;
    await f.query(makeQuery('long.test', 'A'), 'udp');
    expect(s.udpQueries.length).toBe(1);
    t += 1_000;
    await f.query(makeQuery('long.test', 'A'), 'udp');
    expect(s.udpQueries.length).toBe(2);
  });

  it('identical queries in flight share one upstream exchange', async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s));
    const replies = await Promise.all([
      f.query(makeQuery('a.test', 'A', { id: 1 }), 'udp'),
      f.query(makeQuery('A.test', 'A', { id: 2 }), 'udp'),
      f.query(makeQuery('a.test', 'A', { id: 3 }), 'tcp'),
    ]);
    expect(replies.map(idOf)).toEqual([1, 2, 3]);
    expect(decode(replies[1]).questions?.[0].name).toBe('A.test');
    expect(replies.every((r) => dataOf(r)[0] === '192.0.2.1')).toBe(true);
    expect(s.udpQueries.length).toBe(1);
    expect(f.stats.coalesced).toBe(2);
  });
});

describe('failover', () => {
  it('first resolver port closed (ECONNREFUSED) → the second answers at once', async () => {
    const dead = await deadPort();
    const s = await server();
    const f = forwarder(`nameserver 127.0.0.1#${dead}\n` + nameserverLine(s));
    const t0 = performance.now();
    expect(dataOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toEqual(['192.0.2.1']);
    // Under one 300 ms per-server timeout: the ICMP error ended the attempt (the
    // counters below say so exactly; the time bound only has to stay under 300 ms).
    expect(performance.now() - t0).toBeLessThan(290);
    expect(f.stats).toMatchObject({ failovers: 1, upstreamErrors: 1, upstreamTimeouts: 0 });
  });

  it('first resolver blackholed → the second answers after one per-server timeout, within the deadline', async () => {
    const hole = await server(() => 'drop');
    const s = await server();
    const f = forwarder(nameserverLine(hole) + nameserverLine(s), { perServerTimeoutMs: 200, queryDeadlineMs: 1000 });
    const t0 = performance.now();
    expect(dataOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toEqual(['192.0.2.1']);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(1000);
    expect(f.stats).toMatchObject({ failovers: 1, upstreamTimeouts: 1 });
    // The failed server now goes last: the next query does not wait for it.
    expect(dataOf(await f.query(makeQuery('b.test', 'A'), 'udp'))).toEqual(['192.0.2.2']);
    expect(hole.udpQueries.length).toBe(1);
    expect(f.stats.upstreamTimeouts).toBe(1);
  });

  it('SERVFAIL and REFUSED from a resolver move on to the next one', async () => {
    const fail = await server(() => ({ flags: 2 }));
    const refuse = await server(() => ({ flags: 5 }));
    const s = await server();
    const f = forwarder(nameserverLine(fail) + nameserverLine(refuse) + nameserverLine(s));
    expect(dataOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toEqual(['192.0.2.1']);
    expect(f.stats.failovers).toBe(2);
    expect([fail.udpQueries.length, refuse.udpQueries.length, s.udpQueries.length]).toEqual([1, 1, 1]);
  });

  it('replies with a wrong ID or question are ignored (RFC 5452)', async () => {
    const liar = await server((q) => ({ id: ((q.id ?? 0) + 1) & 0xffff, answers: [] }));
    const wrongQ = await server(() => ({ questions: [{ type: 'A', name: 'evil.test' }] }));
    const s = await server();
    const f = forwarder(nameserverLine(liar) + nameserverLine(wrongQ) + nameserverLine(s), { perServerTimeoutMs: 150 });
    expect(dataOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toEqual(['192.0.2.1']);
    expect(f.stats.upstreamTimeouts).toBe(2);
  });

  it('all resolvers dead → SERVFAIL within the deadline (short timeouts)', async () => {
    const h1 = await server(() => 'drop');
    const h2 = await server(() => 'drop');
    const f = forwarder(nameserverLine(h1) + nameserverLine(h2), { perServerTimeoutMs: 150, queryDeadlineMs: 400 });
    const t0 = performance.now();
    const r = await f.query(makeQuery('a.test', 'A', { id: 0xabcd }), 'udp');
    const ms = performance.now() - t0;
    expect(rcodeOf(r)).toBe(2);
    expect(idOf(r)).toBe(0xabcd);
    expect(decode(r).questions?.[0].name).toBe('a.test');
    // The loop aims before the deadline; allow timer lateness on a loaded machine.
    expect(ms).toBeLessThan(600);
    expect(ms).toBeGreaterThan(300);
    expect(f.stats.servfails).toBe(1);
  });

  it('all resolvers refusing connections → SERVFAIL at once', async () => {
    const f = forwarder(`nameserver 127.0.0.1#${await deadPort()}\nnameserver 127.0.0.1#${await deadPort()}\n`);
    const t0 = performance.now();
    expect(rcodeOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toBe(2);
    // Refusals arrive at once (ICMP on loopback); the bound only has to be far below a timeout.
    expect(performance.now() - t0).toBeLessThan(1000);
    // Two servers × attempts:2.
    expect(f.stats.upstreamErrors).toBe(4);
  });

  test('with the default timeouts, all resolvers blackholed → SERVFAIL under 5 s', { timeout: 15_000 }, async () => {
    const h1 = await server(() => 'drop');
    const h2 = await server(() => 'drop');
    const h3 = await server(() => 'drop');
    const c = conf(nameserverLine(h1) + nameserverLine(h2) + nameserverLine(h3));
    const f = new DnsForwarder({ sockets: realHost, resolvConfPath: c.path });
    forwarders.push(f);
    const t0 = performance.now();
    const r = await f.query(makeQuery('a.test', 'A'), 'udp');
    const ms = performance.now() - t0;
    expect(rcodeOf(r)).toBe(2);
    expect(ms).toBeLessThan(5000);
    expect(ms).toBeGreaterThan(4000);
    // 1500 ms per server: h1, h2, h3, then h1 again for what is left of the
    // deadline (how much is left depends on timer lateness under load).
    expect(f.stats.upstreamTimeouts).toBeGreaterThanOrEqual(3);
    expect(f.stats.upstreamTimeouts).toBeLessThanOrEqual(4);
    console.log(`SERVFAIL with defaults after ${ms.toFixed(0)} ms`);
  });
});

describe('truncation', () => {
  const many = Array.from({ length: 40 }, (_, i) => `10.1.${i >> 8}.${i & 0xff}`);
  const bigHandler: Handler = (q, transport) => {
    const name = q.questions?.[0].name ?? '';
    const answers = many.map((a) => ({ type: 'A' as const, name, ttl: 300, data: a }));
    if (transport === 'udp') return { flags: dnsPacket.TRUNCATED_RESPONSE, answers: answers.slice(0, 2) };
    return { answers };
  };

  it('a TC reply over UDP is retried over TCP to the same server', async () => {
    const s = await server(bigHandler);
    const f = forwarder(nameserverLine(s));
    const r = await f.query(makeQuery('big.test', 'A', { edns: 4096 }), 'udp');
    expect(dataOf(r)).toEqual(many);
    expect(decode(r).flag_tc).toBe(false);
    expect([s.udpQueries.length, s.tcpQueries.length]).toEqual([1, 1]);
    expect(f.stats.tcpFallbacks).toBe(1);
  });

  it('a reply too big for a 512-byte guest goes out with TC; the TCP retry hits the cache', async () => {
    const s = await server(bigHandler);
    const f = forwarder(nameserverLine(s));
    const small = await f.query(makeQuery('big.test', 'A', { id: 5 }), 'udp');
    expect(small!.length).toBeLessThanOrEqual(512);
    const d = decode(small);
    expect(d.flag_tc).toBe(true);
    expect(idOf(small)).toBe(5);
    expect(d.questions?.[0].name).toBe('big.test');
    expect(f.stats.truncatedReplies).toBe(1);
    const full = await f.query(makeQuery('big.test', 'A', { id: 6 }), 'tcp');
    expect(dataOf(full)).toEqual(many);
    expect(f.stats.cacheHits).toBe(1);
    expect(s.tcpQueries.length).toBe(1);
  });

  it('a TC reply whose TCP retry fails is passed on as it is, not cached', async () => {
    const s = await startServer(bigHandler, { tcp: false });
    servers.push(s);
    const f = forwarder(nameserverLine(s));
    const r = await f.query(makeQuery('big.test', 'A', { edns: 4096 }), 'udp');
    expect(decode(r).flag_tc).toBe(true);
    await f.query(makeQuery('big.test', 'A', { edns: 4096 }), 'udp');
    expect(f.stats.cacheHits).toBe(0);
  });
});

describe('resolv.conf changes', () => {
  const one = (data: string): Handler => (q) => ({
    answers: [{ type: 'A', name: q.questions?.[0].name ?? '', ttl: 300, data }],
  });

  it('a file replaced by rename is picked up', async () => {
    const s1 = await server(one('192.0.2.101'));
    const s2 = await server(one('192.0.2.102'));
    const c = conf(nameserverLine(s1));
    const f = forwarder(c, { resolvConfCheckIntervalMs: 0 });
    expect(dataOf(await f.query(makeQuery('x1.test', 'A'), 'udp'))).toEqual(['192.0.2.101']);
    c.replace('# generated by NetworkManager\n' + nameserverLine(s2));
    expect(dataOf(await f.query(makeQuery('x2.test', 'A'), 'udp'))).toEqual(['192.0.2.102']);
  });

  it('a file rewritten in place (same size) is picked up', async () => {
    const s1 = await server(one('192.0.2.101'));
    const s2 = await server(one('192.0.2.102'));
    const c = conf(nameserverLine(s1));
    const f = forwarder(c, { resolvConfCheckIntervalMs: 0 });
    expect(dataOf(await f.query(makeQuery('x1.test', 'A'), 'udp'))).toEqual(['192.0.2.101']);
    c.overwrite(nameserverLine(s2));
    expect(dataOf(await f.query(makeQuery('x2.test', 'A'), 'udp'))).toEqual(['192.0.2.102']);
  });

  it('is checked at most once per interval', async () => {
    const s1 = await server(one('192.0.2.101'));
    const s2 = await server(one('192.0.2.102'));
    const c = conf(nameserverLine(s1));
    const f = forwarder(c, { resolvConfCheckIntervalMs: 60_000 });
    await f.query(makeQuery('x1.test', 'A'), 'udp');
    c.replace(nameserverLine(s2));
    expect(dataOf(await f.query(makeQuery('x2.test', 'A'), 'udp'))).toEqual(['192.0.2.101']);
  });
});

describe('malformed queries', () => {
  it('drops what cannot be answered and counts it', async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s));
    expect(await f.query(new Uint8Array(5), 'udp')).toBeNull();
    // A reply (QR set) is never answered.
    expect(await f.query(encodeReply(decode(makeQuery('a.test', 'A')), {}), 'udp')).toBeNull();
    // Unreadable question (label type 01).
    const bad = makeQuery('a.test', 'A');
    bad[12] = 0x41;
    expect(await f.query(bad, 'udp')).toBeNull();
    expect(f.stats.dropped).toBe(3);
    expect(s.udpQueries.length).toBe(0);
  });

  it('FORMERR when the question is readable but the rest is not, or qdcount ≠ 1', async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s));
    const q = makeQuery('a.test', 'A', { id: 0x7777 });
    q[11] = 1; // arcount 1, no record follows
    const r = await f.query(q, 'udp');
    expect(rcodeOf(r)).toBe(1);
    expect(idOf(r)).toBe(0x7777);
    expect(decode(r).questions?.[0].name).toBe('a.test');
    const two = makeQuery('a.test', 'A');
    two[5] = 2;
    const r2 = await f.query(two, 'tcp');
    expect(rcodeOf(r2)).toBe(1);
    expect(decode(r2).questions ?? []).toEqual([]);
    expect(f.stats.formerrs).toBe(2);
    expect(s.udpQueries.length + s.tcpQueries.length).toBe(0);
  });

  it('NOTIMP for other opcodes and zone transfers', async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s));
    const status = makeQuery('a.test', 'A');
    status[2] |= 2 << 3; // opcode STATUS
    expect(rcodeOf(await f.query(status, 'udp'))).toBe(4);
    expect(rcodeOf(await f.query(makeQuery('a.test', 'AXFR'), 'tcp'))).toBe(4);
    expect(f.stats.notimps).toBe(2);
  });
});

describe('static records', () => {
  it('answers A/AAAA locally, case-insensitively; other types get NODATA; nothing goes upstream', async () => {
    const s = await server();
    const f = forwarder(nameserverLine(s), {
      staticRecords: { 'host.usernet.internal': ['10.0.2.2', 'fd00::2'], 'Multi.Test.': ['192.0.2.5', '192.0.2.6'] },
    });
    const a = await f.query(makeQuery('HOST.usernet.internal', 'A', { id: 3 }), 'udp');
    expect(idOf(a)).toBe(3);
    expect(decode(a).flag_aa).toBe(true);
    expect(decode(a).questions?.[0].name).toBe('HOST.usernet.internal');
    expect(dataOf(a)).toEqual(['10.0.2.2']);
    expect(dataOf(await f.query(makeQuery('host.usernet.internal', 'AAAA'), 'tcp'))).toEqual(['fd00::2']);
    expect(dataOf(await f.query(makeQuery('multi.test', 'A'), 'udp'))).toEqual(['192.0.2.5', '192.0.2.6']);
    const mx = await f.query(makeQuery('multi.test', 'MX'), 'udp');
    expect([rcodeOf(mx), dataOf(mx)]).toEqual([0, []]);
    expect(f.stats.staticAnswers).toBe(4);
    expect(s.udpQueries.length + s.tcpQueries.length).toBe(0);
    // Other names still go upstream.
    expect(dataOf(await f.query(makeQuery('a.test', 'A'), 'udp'))).toEqual(['192.0.2.1']);
  });

  it('bad static records throw ERR_USERNET_INVALID_OPTION', () => {
    expect(() => new DnsForwarder({ sockets: realHost, staticRecords: { 'a..b': ['1.2.3.4'] } })).toThrow(UsernetError);
    expect(() => new DnsForwarder({ sockets: realHost, staticRecords: { 'a.b': ['1.2.3'] } })).toThrow(/not an IP literal/);
    expect(() => new DnsForwarder({ sockets: realHost, cacheEntries: -1 })).toThrow(UsernetError);
  });
});

describe('lifecycle', () => {
  const counts = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
    return out;
  };
  const handles = (c: Record<string, number>): number =>
    (c.UDPWrap ?? 0) + (c.TCPSocketWrap ?? 0) + (c.TCPServerWrap ?? 0) + (c.Timeout ?? 0);

  /** Waits (≤ 1 s) until no UDP/TCP handle is left and at most `limit` handles in all. */
  const settle = async (limit: number): Promise<void> => {
    for (let i = 0; i < 100; i++) {
      const c = counts();
      if (c.UDPWrap === undefined && c.TCPSocketWrap === undefined && handles(c) <= Math.max(limit, 1)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it('close() ends queries in flight and leaves no socket or timer behind', async () => {
    await settle(0);
    const before = handles(counts());
    const s = await server();
    // The hole tells when both queries reached it (so both are in flight), and never answers.
    const seen = new Set<string>();
    let bothSeen!: () => void;
    const inFlight = new Promise<void>((r) => (bothSeen = r));
    const hole = await server((_q, transport) => {
      seen.add(transport);
      if (seen.size === 2) bothSeen();
      return 'drop';
    });
    const c = conf(nameserverLine(s));
    const f = forwarder(c, { perServerTimeoutMs: 5000, queryDeadlineMs: 10_000, resolvConfCheckIntervalMs: 0 });
    await f.query(makeQuery('a.test', 'A'), 'udp'); // fills the cache
    c.replace(nameserverLine(hole));
    const pending = [f.query(makeQuery('b.test', 'A'), 'udp'), f.query(makeQuery('c.test', 'A'), 'tcp')];
    await inFlight;
    // The forwarder's UDP socket beside the servers' two; its TCP socket and the accepted end.
    expect(counts().UDPWrap).toBeGreaterThanOrEqual(3);
    expect(counts().TCPSocketWrap).toBeGreaterThanOrEqual(2);
    const t0 = performance.now();
    await f.close();
    expect(await Promise.all(pending)).toEqual([null, null]);
    // Ended by close(), not by their 5 s timers.
    expect(performance.now() - t0).toBeLessThan(500);
    expect(await f.query(makeQuery('a.test', 'A'), 'udp')).toBeNull();
    for (let i = 0; i < 100 && (counts().UDPWrap !== 2 || counts().TCPSocketWrap !== undefined); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    // Only the two test servers' sockets remain.
    expect(counts().UDPWrap).toBe(2);
    expect(counts()).not.toHaveProperty('TCPSocketWrap');
    await Promise.all(servers.splice(0).map((x) => x.close()));
    // A closed socket's handle is released in the loop's close phase, a moment after 'close'.
    await settle(before);
    expect(counts()).not.toHaveProperty('UDPWrap');
    expect(counts()).not.toHaveProperty('TCPSocketWrap');
    expect(handles(counts())).toBeLessThanOrEqual(before);
  });

  it('drops queries beyond maxInflight', async () => {
    const hole = await server(() => 'drop');
    const f = forwarder(nameserverLine(hole), { maxInflight: 2, perServerTimeoutMs: 100, queryDeadlineMs: 200 });
    const rs = await Promise.all(['b', 'c', 'd'].map((n) => f.query(makeQuery(`${n}.test`, 'A'), 'udp')));
    expect(rs.map(rcodeOf)).toEqual([2, 2, -1]);
    expect(f.stats.dropped).toBe(1);
  });
});

describe('the egress policy’s name guard (DnsNameGuard)', () => {
  /** www.chain.test → CNAME cdn.chain.test (TTL 300) → A 198.51.100.8 / AAAA 2001:db8::8 (TTL 30); an unrelated A after them. */
  const chainHandler: Handler = (q) => {
    const question = q.questions![0]!;
    const cname = { type: 'CNAME' as const, name: question.name, ttl: 300, data: 'cdn.chain.test' };
    const stray = { type: 'A' as const, name: 'elsewhere.test', ttl: 5, data: '203.0.113.1' };
    if (question.type === 'A') return { answers: [cname, { type: 'A', name: 'cdn.chain.test', ttl: 30, data: '198.51.100.8' }, stray] };
    return { answers: [cname, { type: 'AAAA', name: 'cdn.chain.test', ttl: 30, data: '2001:db8::8' }] };
  };

  it('reports the addresses of the CNAME chain with its smallest TTL, not strays; refuses names it does not allow with NXDOMAIN, asking nobody', async () => {
    const s = await server(chainHandler);
    const seen: Array<{ names: string[]; addresses: string[]; ttl: number }> = [];
    const f = forwarder(nameserverLine(s), {
      names: {
        active: () => true,
        allows: (name) => name.toLowerCase() !== 'blocked.test',
        answered: (names, addresses, ttl) =>
          seen.push({ names, addresses: addresses.map((a) => (typeof a === 'number' ? [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.') : Buffer.from(a).toString('hex'))), ttl }),
      },
    });
    expect(rcodeOf(await f.query(makeQuery('WWW.chain.test', 'A'), 'udp'))).toBe(0);
    expect(rcodeOf(await f.query(makeQuery('www.chain.test', 'AAAA'), 'udp'))).toBe(0);
    // From the cache: reported again (a binding is refreshed by every answer the guest gets).
    expect(rcodeOf(await f.query(makeQuery('www.chain.test', 'A'), 'udp'))).toBe(0);
    expect(seen[0]).toEqual({ names: ['www.chain.test', 'cdn.chain.test'], addresses: ['198.51.100.8'], ttl: 30 });
    expect(seen[1]).toEqual({ names: ['www.chain.test', 'cdn.chain.test'], addresses: ['20010db8000000000000000000000008'], ttl: 30 });
    expect(seen[2]!.addresses).toEqual(['198.51.100.8']);
    expect(seen[2]!.ttl).toBeLessThanOrEqual(30);
    const upstreamBefore = f.stats.upstreamQueries;
    const blocked = await f.query(makeQuery('Blocked.TEST', 'A'), 'udp');
    expect(rcodeOf(blocked)).toBe(3);
    expect(f.stats.upstreamQueries).toBe(upstreamBefore);
    expect(f.stats.refusedByPolicy).toBe(1);
    expect(seen).toHaveLength(3);
  });

  it('an inactive guard (no policy) is neither asked nor told', async () => {
    const s = await server(chainHandler);
    let calls = 0;
    const f = forwarder(nameserverLine(s), {
      names: { active: () => false, allows: () => (calls++, false), answered: () => void calls++ },
    });
    expect(rcodeOf(await f.query(makeQuery('www.chain.test', 'A'), 'udp'))).toBe(0);
    expect(calls).toBe(0);
    expect(f.stats.refusedByPolicy).toBe(0);
  });
});
