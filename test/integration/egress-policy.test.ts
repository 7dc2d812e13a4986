/**
 * The egress policy in the stack (StackOptions.policy, Stack.setPolicy),
 * over a memory link with a host that only records what it is asked for:
 * a denied TCP SYN, UDP datagram or ICMP echo gets ICMP (ICMPv6)
 * administratively prohibited at once and never reaches a host socket; an
 * allowed one does; the host-loopback mapping is judged by the address the
 * guest names; usernet's own DNS service is not subject to it; policies
 * change at runtime; denials are counted per rule; bad policies are refused
 * whole; name rules match what the DNS forwarder answered, and names no
 * rule allows get NXDOMAIN.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UsernetError, type HostNetwork, type StackOptions } from '../../src/index.js';
import { realHost } from '../../src/nat/host.js';
import { makeQuery } from '../dns/test-server.js';
import { arpRequest, ethernet, GATEWAY_MAC, GUEST_MAC, ipv4, pingFrame, tcpFrame, udp } from '../support/frames.js';
import { echo6Body, GUEST6, icmp6Frame, parse6, tcp6Frame, udp6Frame } from '../support/frames6.js';
import { memoryHarness, type Harness } from '../support/memory-harness.js';

const SYN = 2;
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** What the stack asked the host for: "tcp 198.51.100.5:443", "udp", "ping". */
function recordingHost(asked: string[]): HostNetwork {
  return {
    ...realHost,
    connectTcp: (o) => {
      asked.push(`tcp ${o.host}:${o.port}`);
      const s = new net.Socket(); // never connects; the stack closes it
      cleanups.push(() => void s.destroy());
      return s;
    },
    createUdpSocket: () => {
      asked.push('udp');
      return 24; // EMFILE: no socket (the datagram is dropped); the test only needs the request
    },
    createUdp6Socket: () => {
      asked.push('udp6');
      return 24;
    },
    openPingSocket: () => {
      asked.push('ping');
      return 'not in this test';
    },
    openPing6Socket: () => {
      asked.push('ping6');
      return 'not in this test';
    },
  };
}

function harness(policy: StackOptions['policy'], extra: Partial<StackOptions> = {}): { h: Harness; asked: string[] } {
  const asked: string[] = [];
  const h = memoryHarness({ host: recordingHost(asked), policy, ...extra }, (fn) => cleanups.push(fn));
  return { h, asked };
}

const isIcmp4 = (f: Buffer): boolean => f.readUInt16BE(12) === 0x0800 && f[23] === 1;
const isUnreach4 = (f: Buffer): boolean => isIcmp4(f) && f[34] === 3;
const isUnreach6 = (f: Buffer): boolean => f.readUInt16BE(12) === 0x86dd && f[20] === 58 && f[54] === 1;
const syn = (dst: string, dstPort: number, srcPort = 40000): Buffer => tcpFrame({ dst, srcPort, dstPort, seq: 1, flags: SYN });
const udpFrame = (dst: string, dstPort: number, data: Buffer): Buffer =>
  ethernet(GATEWAY_MAC, GUEST_MAC, 0x0800, ipv4({ src: '10.0.2.100', dst, protocol: 17 }, udp('10.0.2.100', dst, 5000, dstPort, data)));
const SENTINEL_IDENT = 0x5e17;
let sentinelSeq = 0;
/**
 * Pings the stack's own net+3 (answered by the stack, never judged by the
 * policy nor asked of the host) and waits for the reply without consuming
 * frames. The link delivers in order and the stack answers in order, so by
 * then every frame sent before has been handled, and each host socket the
 * stack was going to ask for has been asked for: `asked` is complete.
 */
async function handled(h: Harness): Promise<void> {
  const seq = ++sentinelSeq & 0xffff;
  const from = h.sent.length;
  h.send(pingFrame('10.0.2.3', SENTINEL_IDENT, seq, Buffer.from('sentinel')));
  const isReply = (f: Buffer): boolean => isIcmp4(f) && f[34] === 0 && f.readUInt16BE(38) === SENTINEL_IDENT && f.readUInt16BE(40) === seq;
  for (let turns = 0; !h.sent.slice(from).some(isReply); turns++) {
    if (turns === 10_000) throw new Error('the stack never answered the sentinel echo');
    await new Promise((r) => setImmediate(r));
  }
}

describe('egress policy in the stack', () => {
  it('default deny: TCP, UDP and ping get administratively prohibited at once, quoting the datagram; no host socket', async () => {
    const { h, asked } = harness('default deny');
    h.send(syn('198.51.100.5', 443));
    const t = await h.next(isUnreach4);
    expect([t[34], t[35]]).toEqual([3, 13]);
    expect(t.subarray(42 + 16, 42 + 20)).toEqual(Buffer.from([198, 51, 100, 5])); // the quoted SYN's destination
    h.send(udpFrame('198.51.100.5', 53, Buffer.from('q')));
    expect((await h.next(isUnreach4))[35]).toBe(13);
    h.send(pingFrame('198.51.100.5', 7, 1, Buffer.alloc(8)));
    expect((await h.next(isUnreach4))[35]).toBe(13);
    await handled(h);
    expect(asked).toEqual([]);
    expect(h.stack.stats().policy).toEqual({ default: { rule: 'default deny', allowed: 0, denied: 3 }, rules: [] });
  });

  it('allow by CIDR, protocol and port: only that reaches the host; first match wins', async () => {
    const { h, asked } = harness(['default deny', 'deny tcp:198.51.100.7', 'allow tcp:198.51.100.0/24:443', 'allow udp:198.51.100.0/24:5353-5354']);
    h.send(syn('198.51.100.5', 443, 40001));
    h.send(syn('198.51.100.5', 80, 40002));
    h.send(syn('198.51.100.7', 443, 40003));
    h.send(udpFrame('198.51.100.9', 5354, Buffer.from('u')));
    h.send(udpFrame('198.51.100.9', 5355, Buffer.from('u')));
    await handled(h);
    expect(asked).toEqual(['tcp 198.51.100.5:443', 'udp']);
    const refused = h.drain(isUnreach4);
    expect(refused.map((f) => f[35])).toEqual([13, 13, 13]);
    const c = h.stack.stats().policy!;
    expect(c.rules.map((r) => [r.allowed, r.denied])).toEqual([[0, 1], [1, 0], [1, 0]]);
    expect(c.rules.map((r) => r.rule)).toEqual(['deny tcp:198.51.100.7', 'allow tcp:198.51.100.0/24:443', 'allow udp:198.51.100.0/24:5353-5354']);
    expect(c.default).toEqual({ rule: 'default deny', allowed: 0, denied: 2 });
  });

  it('"deny private" covers the gateway (the host-loopback mapping) by the address the guest names; other hosts go on', async () => {
    const { h, asked } = harness('deny private');
    h.send(syn('10.0.2.2', 8080));
    expect((await h.next(isUnreach4))[35]).toBe(13);
    h.send(syn('192.168.1.1', 22, 40005));
    expect((await h.next(isUnreach4))[35]).toBe(13);
    h.send(syn('198.51.100.5', 443, 40006));
    await handled(h);
    expect(asked).toEqual(['tcp 198.51.100.5:443']);
  });

  it('usernet’s own DNS at net+3 is not subject to it (only the names it answers are)', async () => {
    const { h } = harness(['default deny', 'allow tcp:own.test:443'], { dns: { resolvConfPath: '/dev/null', staticRecords: { 'own.test': ['192.0.2.9'] } } });
    h.send(udpFrame('10.0.2.3', 53, Buffer.from(makeQuery('own.test', 'A'))));
    const reply = await h.next((f) => f.readUInt16BE(12) === 0x0800 && f[23] === 17 && f.readUInt16BE(34) === 53);
    expect(reply.subarray(reply.length - 4)).toEqual(Buffer.from([192, 0, 2, 9]));
    const c = h.stack.stats().policy!;
    expect([c.default.denied, c.rules[0]!.denied]).toEqual([0, 0]);
  });

  it('IPv6: a denied prefix gets ICMPv6 administratively prohibited; fd00::2 is judged as named', async () => {
    const { h, asked } = harness(['deny [2001:db8::/32]', 'deny tcp:[fd00::2]:22']);
    h.send(tcp6Frame({ dst: '2001:db8::5', srcPort: 40010, dstPort: 443, seq: 1, flags: SYN }));
    const e = parse6(await h.next(isUnreach6));
    expect(e.body[1]).toBe(1);
    h.send(udp6Frame(GUEST6, '2001:db8::5', 5000, 53, Buffer.from('x')));
    expect(parse6(await h.next(isUnreach6)).body[1]).toBe(1);
    h.send(icmp6Frame(GUEST6, '2001:db8::5', 128, 0, echo6Body(1, 1, Buffer.alloc(4))));
    expect(parse6(await h.next(isUnreach6)).body[1]).toBe(1);
    h.send(tcp6Frame({ dst: 'fd00::2', srcPort: 40011, dstPort: 22, seq: 1, flags: SYN }));
    expect(parse6(await h.next(isUnreach6)).body[1]).toBe(1);
    h.send(tcp6Frame({ dst: '2001:db9::5', srcPort: 40012, dstPort: 443, seq: 1, flags: SYN }));
    await handled(h);
    expect(asked).toEqual(['tcp 2001:db9::5:443']);
  });

  it('setPolicy replaces it at runtime (new flows only), policy() gives the canonical rules, null removes it', async () => {
    const { h, asked } = harness(undefined);
    expect(h.stack.policy()).toBeNull();
    expect(h.stack.stats().policy).toBeNull();
    h.stack.setPolicy('default deny\nallow tcp:198.51.100.0/24:443 # the registry');
    expect(h.stack.policy()).toEqual(['default deny', 'allow tcp:198.51.100.0/24:443']);
    h.send(syn('198.51.100.5', 80, 40020));
    expect((await h.next(isUnreach4))[35]).toBe(13);
    h.stack.setPolicy(null);
    h.send(syn('198.51.100.5', 80, 40021));
    await handled(h);
    expect(asked).toEqual(['tcp 198.51.100.5:80']);
  });

  it('by name: NXDOMAIN for names no rule allows; flows to what the forwarder answered for an allowed name, on that rule’s protocol and ports, until the TTL (floor 60 s) runs out', async () => {
    const { h, asked } = harness(['default deny', 'allow tcp:registry.test:443', 'allow udp:*.ntp.test:123'], {
      dns: { resolvConfPath: '/dev/null', staticRecords: { 'registry.test': ['198.51.100.5'], 'a.ntp.test': ['198.51.100.6'], 'other.test': ['198.51.100.7'] } },
    });
    const isDnsReply = (f: Buffer): boolean => f.readUInt16BE(12) === 0x0800 && f[23] === 17 && f.readUInt16BE(34) === 53;
    const ask = async (name: string): Promise<Buffer> => {
      h.send(udpFrame('10.0.2.3', 53, Buffer.from(makeQuery(name, 'A'))));
      return (await h.next(isDnsReply)).subarray(42);
    };
    const registry = await ask('Registry.TEST');
    expect(registry[3] & 15).toBe(0);
    expect(registry.subarray(registry.length - 4)).toEqual(Buffer.from([198, 51, 100, 5]));
    expect((await ask('other.test'))[3] & 15).toBe(3); // NXDOMAIN: no rule lets anything reach it
    expect(h.stack.stats().dns!.refusedByPolicy).toBe(1);
    expect((await ask('a.ntp.test'))[3] & 15).toBe(0);

    h.send(syn('198.51.100.5', 443, 40030)); // registry.test:443: allowed
    h.send(syn('198.51.100.5', 80, 40031)); // registry.test, another port: denied
    h.send(syn('198.51.100.7', 443, 40032)); // an address no allowed name gave: denied
    h.send(udpFrame('198.51.100.6', 123, Buffer.from('ntp'))); // *.ntp.test:123/udp: allowed
    h.send(syn('198.51.100.6', 123, 40033)); // the same address over TCP: denied
    await handled(h);
    expect(asked).toEqual(['tcp 198.51.100.5:443', 'udp']);
    expect(h.drain(isUnreach4).map((f) => f[35])).toEqual([13, 13, 13]);

    h.clock.advance(61_000); // past the binding (TTL 60 s, the floor)
    h.send(syn('198.51.100.5', 443, 40034));
    expect((await h.next(isUnreach4))[35]).toBe(13);
    expect(asked).toHaveLength(2);
  });

  it('inbound port forwards are not egress: under default deny a host client still reaches the guest', async () => {
    const { h } = harness('default deny');
    // The guest's MAC, learned from its ARP request (the stack answers it).
    h.send(arpRequest('10.0.2.100', '10.0.2.2'));
    await h.next((f) => f.readUInt16BE(12) === 0x0806);
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await h.stack.addForward({ proto: 'tcp', hostAddr: '127.0.0.1', hostPort: port, guestAddr: '10.0.2.100', guestPort: 80 });
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    cleanups.push(() => void client.destroy());
    const synToGuest = await h.next((f) => f.readUInt16BE(12) === 0x0800 && f[23] === 6 && f.readUInt16BE(36) === 80 && (f[47] & SYN) !== 0);
    expect(synToGuest.subarray(30, 34)).toEqual(Buffer.from([10, 0, 2, 100]));
    expect(h.stack.stats().policy!.default.denied).toBe(0);
  });

  it('with debug, each denial is one log line naming the flow and the rule', async () => {
    const logs: string[] = [];
    const { h } = harness(['deny tcp:198.51.100.0/24:80', 'deny [2001:db8::/32]'], { debug: true, log: (m) => logs.push(m) });
    h.send(syn('198.51.100.5', 80, 40040));
    await h.next(isUnreach4);
    h.send(icmp6Frame(GUEST6, '2001:db8::5', 128, 0, echo6Body(1, 1, Buffer.alloc(4))));
    await h.next(isUnreach6);
    expect(logs.filter((l) => l.includes('egress policy'))).toEqual([
      'usernet: egress policy: tcp to 198.51.100.5:80 denied by "deny tcp:198.51.100.0/24:80"',
      'usernet: egress policy: icmp to [2001:db8::5] denied by "deny 2001:db8::/32"',
    ]);
  });

  it('a bad policy is refused whole, with every line and reason; the old one stays', () => {
    const { h } = harness('deny tcp:198.51.100.0/24');
    let err: unknown = null;
    try {
      h.stack.setPolicy(['allow tcp:10.0.0.0/33:443', 'permit tcp:any', 'deny udp:198.51.100.1:0']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsernetError);
    expect((err as UsernetError).code).toBe('ERR_USERNET_INVALID_POLICY');
    const msg = (err as Error).message;
    expect(msg).toContain('line 1: "allow tcp:10.0.0.0/33:443"');
    expect(msg).toContain('line 2');
    expect(msg).toContain('line 3');
    expect(h.stack.policy()).toEqual(['default allow', 'deny tcp:198.51.100.0/24']);
  });
});
