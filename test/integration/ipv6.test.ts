/**
 * IPv6 towards the guest over a memory link, the guest played by hand-built
 * frames (test/support/frames6.ts, independent of src/wire): Router
 * Advertisements, NDP, ICMPv6 echo, stateless DHCPv6, the address policy,
 * TCP and UDP relayed onto host IPv6 sockets (real ones on ::1, fakes where
 * loopback cannot produce the case), drops of bad input, and the IPv6 id
 * table returning to its baseline once flows are gone.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type HostNetwork, type StackOptions } from '../../src/index.js';
import { memoryHarness, type Harness } from '../support/memory-harness.js';
import { realHost, type HostUdp6Socket } from '../../src/nat/host.js';
import { ethernet, GATEWAY_MAC, GUEST_MAC, pingFrame } from '../support/frames.js';
import {
  ALL_NODES_MAC,
  checksum6,
  echo6Body,
  fragment6Frames,
  GUEST6,
  GUEST6_LL,
  icmp6,
  icmp6Frame,
  ip6,
  ip6Text,
  ipv6,
  llaOption,
  multicastMac,
  ndpOptions,
  nsBody,
  parse6,
  tcp6Frame,
  udp6,
  udp6Frame,
} from '../support/frames6.js';

const SYN = 2;
const ACK = 16;
const PSH = 8;
const RST = 4;

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const harness = (options: Partial<StackOptions> = {}): Harness => memoryHarness(options, (fn) => cleanups.push(fn));

const is6 = (f: Buffer): boolean => f.readUInt16BE(12) === 0x86dd;
const isIcmp6Type = (type: number) => (f: Buffer) => is6(f) && f[20] === 58 && f[54] === type;
const isTcp6 = (f: Buffer): boolean => is6(f) && f[20] === 6;
const isUdp6 = (f: Buffer): boolean => is6(f) && f[20] === 17;

const SENTINEL_IDENT = 0x5e17;
let sentinelSeq = 0;
/**
 * Sends an echo request to the stack and waits for its reply. The link
 * delivers frames in order and the stack answers them in order, so by then
 * every frame sent before it has been handled, and whatever the stack sent in
 * answer is in `h.sent`: a test can assert that nothing was, without a sleep.
 * From the link-local address, so the guest's global address learns nothing.
 */
async function handled(h: Harness): Promise<void> {
  const seq = ++sentinelSeq & 0xffff;
  if (h.stack.ipv6) {
    h.send(icmp6Frame(GUEST6_LL, 'fe80::2', 128, 0, echo6Body(SENTINEL_IDENT, seq, Buffer.from('sentinel')), GATEWAY_MAC, 64));
    await h.next((f) => isIcmp6Type(129)(f) && f.readUInt16BE(58) === SENTINEL_IDENT && f.readUInt16BE(60) === seq);
  } else {
    h.send(pingFrame('10.0.2.3', SENTINEL_IDENT, seq, Buffer.from('sentinel')));
    await h.next((f) => f.readUInt16BE(12) === 0x0800 && f[23] === 1 && f[34] === 0 && f.readUInt16BE(38) === SENTINEL_IDENT && f.readUInt16BE(40) === seq);
  }
}
/** `h.sent` from `from` on, without the sentinel's replies. */
const sentSince = (h: Harness, from: number): Buffer[] =>
  h.sent.slice(from).filter((f) => !(is6(f) && f[20] === 58 && f[54] === 129 && f.readUInt16BE(58) === SENTINEL_IDENT) && !(f.readUInt16BE(12) === 0x0800 && f[23] === 1 && f.readUInt16BE(38) === SENTINEL_IDENT));

describe('Router Advertisements (RFC 4861 §6.2, RFC 8106)', () => {
  it('go out unsolicited at start, to all nodes, with the prefix, MTU and RDNSS', async () => {
    const h = harness({ dns: { resolvConfPath: '/dev/null' } });
    const ra = parse6(await h.next(isIcmp6Type(134)));
    expect(ra.dstMac).toEqual(ALL_NODES_MAC);
    expect(ra.srcMac).toEqual(GATEWAY_MAC);
    expect(ra.src).toBe('fe80::2');
    expect(ra.dst).toBe('ff02::1');
    expect(ra.hopLimit).toBe(255);
    const b = ra.body;
    expect(b[4]).toBe(64); // cur hop limit
    expect(b[5] & 0x80).toBe(0); // M: no stateful addresses
    expect(b[5] & 0x40).toBe(0x40); // O: stateless DHCPv6 has the DNS servers too
    expect(b.readUInt16BE(6)).toBeGreaterThanOrEqual(600); // router lifetime
    const opts = new Map(ndpOptions(b, 16));
    expect(opts.get(1)!.subarray(2)).toEqual(GATEWAY_MAC);
    expect(opts.get(5)!.readUInt32BE(4)).toBe(1500);
    const prefix = opts.get(3)!;
    expect(prefix[2]).toBe(64);
    expect(prefix[3] & 0xc0).toBe(0xc0); // L and A
    expect(prefix.readUInt32BE(4)).toBe(86400);
    expect(prefix.readUInt32BE(8)).toBe(14400);
    expect(ip6Text(prefix, 16)).toBe('fd00::');
    const rdnss = opts.get(25)!;
    expect(rdnss.readUInt32BE(4)).toBeGreaterThan(0);
    expect(ip6Text(rdnss, 8)).toBe('fd00::3');
  });

  it('leave RDNSS out when DNS is disabled, and repeat on the stack timer', async () => {
    const h = harness({ dns: false });
    const first = parse6(await h.next(isIcmp6Type(134)));
    expect(new Map(ndpOptions(first.body, 16)).has(25)).toBe(false);
    const from = h.sent.length;
    h.clock.advance(60_000);
    await handled(h);
    expect(sentSince(h, from).filter(isIcmp6Type(134)).length).toBeGreaterThanOrEqual(2);
  });

  it('answer a Router Solicitation at once, to the soliciting address', async () => {
    const h = harness();
    await h.next(isIcmp6Type(134));
    h.send(icmp6Frame(GUEST6_LL, 'ff02::2', 133, 0, Buffer.concat([Buffer.alloc(4), llaOption(1, GUEST_MAC)]), multicastMac(ip6('ff02::2'))));
    const ra = parse6(await h.next(isIcmp6Type(134)));
    expect(ra.dst).toBe(GUEST6_LL);
    expect(ra.dstMac).toEqual(GUEST_MAC);
    expect(h.stack.stats().neighbours).toContainEqual({ ip: GUEST6_LL, mac: '02:00:00:00:00:64' });
  });

  it('ignore a Router Solicitation that fails validation (hop limit not 255)', async () => {
    const h = harness();
    await h.next(isIcmp6Type(134));
    const from = h.sent.length;
    h.send(icmp6Frame(GUEST6_LL, 'ff02::2', 133, 0, Buffer.alloc(4), multicastMac(ip6('ff02::2')), 64));
    await handled(h);
    expect(sentSince(h, from)).toEqual([]);
    expect(h.stack.stats().drops.ndp_invalid).toBe(1);
  });
});

describe('Neighbour Discovery (RFC 4861 §7)', () => {
  for (const target of ['fe80::2', 'fd00::2', 'fd00::3', 'fe80::3']) {
    it(`answers a solicitation for ${target} and learns the guest`, async () => {
      const h = harness();
      h.send(icmp6Frame(GUEST6, `ff02::1:ff00:${target.split(':').pop()}`, 135, 0, nsBody(target, llaOption(1, GUEST_MAC)), multicastMac(ip6(`ff02::1:ff00:${target.split(':').pop()}`))));
      const na = parse6(await h.next(isIcmp6Type(136)));
      expect(na.dst).toBe(GUEST6);
      expect(na.dstMac).toEqual(GUEST_MAC);
      expect(na.hopLimit).toBe(255);
      expect(na.body[4] & 0xe0).toBe(0xe0); // Router, Solicited, Override
      expect(ip6Text(na.body, 8)).toBe(target);
      expect(new Map(ndpOptions(na.body, 24)).get(2)!.subarray(2)).toEqual(GATEWAY_MAC);
      expect(h.stack.stats().neighbours).toContainEqual({ ip: GUEST6, mac: '02:00:00:00:00:64' });
    });
  }

  it('stays silent for other targets and for the guest’s own DAD probe', async () => {
    const h = harness();
    await h.next(isIcmp6Type(134));
    const from = h.sent.length;
    h.send(icmp6Frame('::', 'ff02::1:ff00:64', 135, 0, nsBody(GUEST6), multicastMac(ip6('ff02::1:ff00:64'))));
    await handled(h);
    // A DAD probe teaches nothing (its source is unspecified).
    expect(h.stack.stats().neighbours.filter((n) => n.ip !== GUEST6_LL)).toEqual([]);
    h.send(icmp6Frame(GUEST6, 'ff02::1:ff00:5', 135, 0, nsBody('fd00::5', llaOption(1, GUEST_MAC)), multicastMac(ip6('ff02::1:ff00:5'))));
    await handled(h);
    expect(sentSince(h, from)).toEqual([]);
  });

  it('answers a DAD probe for one of its own addresses, to all nodes (the guest must not take it)', async () => {
    const h = harness();
    await h.next(isIcmp6Type(134));
    h.send(icmp6Frame('::', 'ff02::1:ff00:2', 135, 0, nsBody('fd00::2'), multicastMac(ip6('ff02::1:ff00:2'))));
    const na = parse6(await h.next(isIcmp6Type(136)));
    expect(na.dst).toBe('ff02::1');
    expect(na.body[4] & 0x40).toBe(0); // not solicited (RFC 4861 §7.2.4)
  });

  it('learns the guest from a Neighbour Advertisement', async () => {
    const h = harness();
    const body = Buffer.concat([Buffer.from([0x20, 0, 0, 0]), ip6(GUEST6), llaOption(2, GUEST_MAC)]);
    h.send(icmp6Frame(GUEST6, 'ff02::1', 136, 0, body, ALL_NODES_MAC));
    await handled(h);
    expect(h.stack.stats().neighbours).toContainEqual({ ip: GUEST6, mac: '02:00:00:00:00:64' });
  });
});

describe('ICMPv6 echo', () => {
  it('answers echo requests to its own addresses', async () => {
    const h = harness();
    for (const dst of ['fd00::2', 'fd00::3', 'fe80::2']) {
      const src = dst.startsWith('fe80') ? GUEST6_LL : GUEST6;
      h.send(icmp6Frame(src, dst, 128, 0, echo6Body(0x1234, 7, Buffer.from('ping6 payload')), GATEWAY_MAC, 64));
      const reply = parse6(await h.next(isIcmp6Type(129)));
      expect(reply.src).toBe(dst);
      expect(reply.dst).toBe(src);
      expect(reply.body.readUInt16BE(4)).toBe(0x1234);
      expect(reply.body.readUInt16BE(6)).toBe(7);
      expect(reply.body.subarray(8).toString()).toBe('ping6 payload');
    }
  });

  it('drops one with a bad checksum, counted', async () => {
    const h = harness();
    const f = icmp6Frame(GUEST6, 'fd00::2', 128, 0, echo6Body(1, 1, Buffer.from('x')), GATEWAY_MAC, 64);
    f[f.length - 1] ^= 0xff;
    const from = h.sent.length;
    h.send(f);
    await handled(h);
    expect(sentSince(h, from).filter(isIcmp6Type(129))).toEqual([]);
    expect(h.stack.stats().drops.icmpv6_bad_checksum).toBe(1);
  });
});

describe('bad IPv6 input is dropped and counted', () => {
  const cases: Array<[string, () => Buffer, string]> = [
    ['a truncated header', () => ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, Buffer.alloc(30, 0x60)), 'ipv6_truncated'],
    ['a payload length past the frame', () => ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, ipv6({ src: GUEST6, dst: 'fd00::2', nextHeader: 59, payloadLength: 100 }, Buffer.alloc(10))), 'ipv6_bad_length'],
    ['a multicast source', () => ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, ipv6({ src: 'ff02::1', dst: 'fd00::2', nextHeader: 59 }, Buffer.alloc(0))), 'ipv6_bad_source'],
    ['UDP from the unspecified address', () => udp6Frame('::', '2001:db8::1', 5, 5, Buffer.from('x')), 'ipv6_bad_source'],
    [
      'a first fragment without the whole TCP header (RFC 7112)',
      () => ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, ipv6({ src: GUEST6, dst: '2001:db8::1', nextHeader: 44 }, Buffer.from([6, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8]))),
      'frag_incomplete_chain',
    ],
    [
      'a non-final fragment whose length is not a multiple of 8',
      () => ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, ipv6({ src: GUEST6, dst: '2001:db8::1', nextHeader: 44 }, Buffer.from([17, 0, 0, 9, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7]))),
      'frag_bad_length',
    ],
    [
      'a Routing header with segments left',
      () => ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, ipv6({ src: GUEST6, dst: '2001:db8::1', nextHeader: 43 }, Buffer.from([59, 0, 0, 1, 0, 0, 0, 0]))),
      'ipv6_bad_extension',
    ],
  ];
  for (const [what, frame, reason] of cases) {
    it(what, async () => {
      const h = harness();
      h.send(frame());
      await handled(h);
      expect(h.stack.stats().drops[reason], JSON.stringify(h.stack.stats().drops)).toBe(1);
    });
  }

  it('every truncation of a valid TCP SYN is dropped without a throw', async () => {
    const h = harness();
    const syn = tcp6Frame({ dst: '2001:db8::1', srcPort: 1000, dstPort: 80, seq: 1, flags: SYN });
    for (let n = 14; n < syn.length; n++) h.send(syn.subarray(0, n));
    await handled(h);
    const s = h.stack.stats();
    expect(s.drops.internal_error ?? 0).toBe(0);
    expect(s.tcp.flows).toBe(0);
  });

  it('IPv6 is dropped as unsupported when it is off', async () => {
    const h = harness({ ipv6: false });
    h.send(icmp6Frame(GUEST6, 'fd00::2', 128, 0, echo6Body(1, 1, Buffer.alloc(0)), GATEWAY_MAC, 64));
    await handled(h);
    expect(h.stack.stats().drops.ipv6_unsupported).toBe(1);
    expect(h.stack.ipv6).toBe(false);
    expect(h.sent.filter(is6)).toEqual([]);
  });

  it('IPv6 stays off below an MTU of 1280, and says so', () => {
    const lines: string[] = [];
    const h = harness({ mtu: 1000, log: (m) => lines.push(m) });
    expect(h.stack.ipv6).toBe(false);
    expect(lines.join('\n')).toMatch(/IPv6 stays off: the MTU \(1000\)/);
  });
});

describe('the address policy over IPv6', () => {
  it('refuses the rest of fd00::/64 with address unreachable, quoting the SYN', async () => {
    const h = harness();
    const syn = tcp6Frame({ dst: 'fd00::5', srcPort: 1000, dstPort: 80, seq: 1, flags: SYN });
    h.send(syn);
    const err = parse6(await h.next(isIcmp6Type(1)));
    expect(err.body[1]).toBe(3);
    expect(err.src).toBe('fd00::2');
    expect(err.dst).toBe(GUEST6);
    expect(err.body.subarray(8)).toEqual(syn.subarray(14));
  });

  it('with host loopback disabled, fd00::2 and fe80::2 are administratively prohibited', async () => {
    const h = harness({ disableHostLoopback: true });
    h.send(tcp6Frame({ dst: 'fd00::2', srcPort: 1000, dstPort: 80, seq: 1, flags: SYN }));
    const err = parse6(await h.next(isIcmp6Type(1)));
    expect(err.body[1]).toBe(1);
    h.send(udp6Frame(GUEST6_LL, 'fe80::2', 1000, 9, Buffer.from('x')));
    const err2 = parse6(await h.next(isIcmp6Type(1)));
    expect(err2.body[1]).toBe(1);
    expect(err2.src).toBe('fe80::2');
  });

  it('drops ::1, IPv4-mapped and IPv4-compatible destinations without a host socket', async () => {
    const asked: string[] = [];
    const host: HostNetwork = {
      ...realHost,
      connectTcp: (o) => {
        asked.push(o.host);
        return realHost.connectTcp(o);
      },
      createUdp6Socket: () => {
        asked.push('udp6');
        return 97;
      },
    };
    const h = harness({ host });
    const from = h.sent.length;
    for (const dst of ['::1', '::ffff:127.0.0.1', '::127.0.0.1', '::']) {
      h.send(tcp6Frame({ dst, srcPort: 1000, dstPort: 80, seq: 1, flags: SYN }));
      h.send(udp6Frame(GUEST6, dst, 1000, 53, Buffer.from('x')));
    }
    await handled(h);
    expect(asked).toEqual([]);
    expect(sentSince(h, from).filter((f) => isTcp6(f) || isUdp6(f))).toEqual([]);
  });
});

describe('TCP over IPv6', () => {
  it('relays a connection to fd00::2 onto the host’s ::1, MSS for IPv6, data both ways', async (ctx) => {
    const server = net.createServer({ allowHalfOpen: true });
    const accepted: net.Socket[] = [];
    server.on('connection', (s) => {
      accepted.push(s);
      s.on('error', () => {});
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '::1', resolve);
      });
    } catch (err) {
      ctx.skip(`SKIPPED: no IPv6 on this host's loopback (${(err as Error).message})`);
      return;
    }
    cleanups.push(() => {
      for (const s of accepted) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const port = (server.address() as net.AddressInfo).port;
    const h = harness();
    const before = h.stack.stats().ipv6!.addressesHeld;
    h.send(tcp6Frame({ dst: 'fd00::2', srcPort: 40000, dstPort: port, seq: 100, flags: SYN, options: Buffer.from([2, 4, 0x05, 0xa0]) }));
    const synAck = parse6(await h.next(isTcp6));
    expect(synAck.src).toBe('fd00::2');
    expect(synAck.dst).toBe(GUEST6);
    expect(synAck.body[13]).toBe(SYN | ACK);
    expect(synAck.body.readUInt32BE(8)).toBe(101);
    // MSS option: MTU 1500 − 60.
    expect(synAck.body.subarray(20, 24)).toEqual(Buffer.from([2, 4, 0x05, 0xa0]));
    const ours = synAck.body.readUInt32BE(4);
    h.send(tcp6Frame({ dst: 'fd00::2', srcPort: 40000, dstPort: port, seq: 101, ack: ours + 1, flags: ACK | PSH, data: Buffer.from('over v6') }));
    const got = await new Promise<Buffer>((r) => accepted[0].once('data', r));
    expect(got.toString()).toBe('over v6');
    expect(accepted[0].remoteAddress).toBe('::1');
    accepted[0].write('and back');
    const data = parse6(await h.next((f) => isTcp6(f) && parse6(f).body.length > 20));
    expect(data.body.subarray((data.body[12] >> 4) * 4).toString()).toBe('and back');
    expect(h.stack.connections()).toMatchObject([{ proto: 'tcp', guest: `[${GUEST6}]:40000`, remote: `[fd00::2]:${port}`, host: `[::1]:${port}`, state: 'ESTABLISHED' }]);
    // The guest resets: the flow goes, and so do the addresses it held.
    const ended = new Promise((r) => {
      accepted[0].once('end', r);
      accepted[0].once('close', r);
    });
    h.send(tcp6Frame({ dst: 'fd00::2', srcPort: 40000, dstPort: port, seq: 108, flags: RST }));
    await ended;
    expect(h.stack.connections()).toHaveLength(0);
    expect(h.stack.stats().ipv6!.addressesHeld).toBe(before);
  });

  it('a refused connection is a RST, an unreachable one an ICMPv6 error with the matching code', async () => {
    const errors: Record<string, string> = { '2001:db8::1': 'ECONNREFUSED', '2001:db8::2': 'ENETUNREACH', '2001:db8::3': 'EHOSTUNREACH', '2001:db8::4': 'EAFNOSUPPORT' };
    const host: HostNetwork = {
      ...realHost,
      connectTcp: (o) => {
        const s = new net.Socket();
        setImmediate(() => s.emit('error', Object.assign(new Error(errors[o.host]), { code: errors[o.host] })));
        return s;
      },
    };
    const h = harness({ host });
    h.send(tcp6Frame({ dst: '2001:db8::1', srcPort: 1, dstPort: 80, seq: 1, flags: SYN }));
    const rst = parse6(await h.next(isTcp6));
    expect(rst.body[13] & RST).toBe(RST);
    expect(rst.src).toBe('2001:db8::1');
    const want: Array<[string, number]> = [
      ['2001:db8::2', 0],
      ['2001:db8::3', 3],
      ['2001:db8::4', 0],
    ];
    for (const [dst, code] of want) {
      h.send(tcp6Frame({ dst, srcPort: 2, dstPort: 80, seq: 1, flags: SYN }));
      const e = parse6(await h.next(isIcmp6Type(1)));
      expect(e.body[1], dst).toBe(code);
      expect(ip6Text(e.body, 8 + 24)).toBe(dst); // the quoted SYN's destination
    }
  });
});

describe('UDP over IPv6', () => {
  class FakeUdp6 implements HostUdp6Socket {
    readonly localPort = 40123;
    readonly sent: Array<{ dst: string; port: number; data: string }> = [];
    message: ((src: Uint8Array, srcPort: number, buf: Uint8Array, off: number, len: number) => void) | null = null;
    icmp: ((dst: Uint8Array, dstPort: number, errno: number, type: number, code: number) => void) | null = null;
    closed = 0;
    send6(dst: Uint8Array, dstOff: number, dstPort: number, buf: Uint8Array, off: number, len: number): number {
      this.sent.push({ dst: ip6Text(dst, dstOff), port: dstPort, data: Buffer.from(buf.subarray(off, off + len)).toString() });
      return 0;
    }
    onMessage6(h: FakeUdp6['message'] & {}): void {
      this.message = h;
    }
    onIcmpError6(h: FakeUdp6['icmp'] & {}): void {
      this.icmp = h;
    }
    close(): void {
      this.closed++;
    }
  }

  it('one host socket per guest port; fd00::2 is ::1; replies from ::1 come from fd00::2; ICMPv6 errors are relayed', async () => {
    const sockets: FakeUdp6[] = [];
    const host: HostNetwork = {
      ...realHost,
      createUdp6Socket: () => {
        const s = new FakeUdp6();
        sockets.push(s);
        return s;
      },
    };
    const h = harness({ host });
    h.send(udp6Frame(GUEST6, 'fd00::2', 5000, 7, Buffer.from('to loopback')));
    h.send(udp6Frame(GUEST6, '2001:db8::9', 5000, 9, Buffer.from('to the world')));
    await handled(h);
    expect(sockets).toHaveLength(1);
    expect(sockets[0].sent).toEqual([
      { dst: '::1', port: 7, data: 'to loopback' },
      { dst: '2001:db8::9', port: 9, data: 'to the world' },
    ]);
    sockets[0].message!(ip6('::1'), 7, Buffer.from('xxreplyxx'), 2, 5);
    const reply = parse6(await h.next(isUdp6));
    expect(reply.src).toBe('fd00::2');
    expect(reply.dst).toBe(GUEST6);
    expect(reply.body.readUInt16BE(0)).toBe(7);
    expect(reply.body.readUInt16BE(2)).toBe(5000);
    expect(reply.body.subarray(8).toString()).toBe('reply');
    sockets[0].icmp!(ip6('2001:db8::9'), 9, 111, 1, 4);
    const err = parse6(await h.next(isIcmp6Type(1)));
    expect(err.body[1]).toBe(4);
    expect(ip6Text(err.body, 8 + 24)).toBe('2001:db8::9');
    expect(err.body.readUInt16BE(8 + 40 + 2)).toBe(9);
    expect(h.stack.connections()).toMatchObject([{ proto: 'udp', guest: `[${GUEST6}]:5000`, host: '[::]:40123' }]);
  });

  it('a host without IPv6 (EAFNOSUPPORT) answers at once with no-route, for UDP as for TCP', async () => {
    const host: HostNetwork = { ...realHost, createUdp6Socket: () => 97, ipv6Problem: () => 'EAFNOSUPPORT' };
    const lines: string[] = [];
    const h = harness({ host, log: (m) => lines.push(m) });
    expect(lines).toEqual([expect.stringMatching(/^usernet: the host has no IPv6 \(EAFNOSUPPORT\)/)]);
    h.send(udp6Frame(GUEST6, '2001:db8::9', 5000, 9, Buffer.from('x')));
    const err = parse6(await h.next(isIcmp6Type(1)));
    expect(err.body[1]).toBe(0);
    expect(h.stack.stats().drops.udp_no_socket).toBe(1);
  });

  it('a mapping expires and releases its socket and addresses', async () => {
    const sockets: FakeUdp6[] = [];
    const host: HostNetwork = { ...realHost, createUdp6Socket: () => (sockets.push(new FakeUdp6()), sockets[sockets.length - 1]) };
    const h = harness({ host });
    const before = h.stack.stats().ipv6!.addressesHeld;
    h.send(udp6Frame(GUEST6, '2001:db8::9', 5000, 9, Buffer.from('x')));
    await handled(h);
    expect(h.stack.stats().ipv6!.addressesHeld).toBe(before + 1);
    expect(sockets[0].closed).toBe(0);
    h.clock.advance(300_000);
    expect(sockets[0].closed).toBe(1);
    expect(h.stack.stats().ipv6!.addressesHeld).toBe(before);
  });
});

describe('stateless DHCPv6 (RFC 8415 §18.3.6)', () => {
  it('answers an Information-request with the DNS server', async () => {
    const h = harness({ dns: { resolvConfPath: '/dev/null' } });
    await h.next(isIcmp6Type(134));
    // Client ID (option 1) with a DUID-LL, Option Request (6) for 23 and 24, Elapsed Time (8).
    const duid = Buffer.from([0, 3, 0, 1, ...GUEST_MAC]);
    const body = Buffer.concat([
      Buffer.from([11, 0xab, 0xcd, 0xef]),
      Buffer.from([0, 1, 0, duid.length]),
      duid,
      Buffer.from([0, 6, 0, 4, 0, 23, 0, 24]),
      Buffer.from([0, 8, 0, 2, 0, 0]),
    ]);
    h.send(udp6Frame(GUEST6_LL, 'ff02::1:2', 546, 547, body, multicastMac(ip6('ff02::1:2'))));
    const reply = parse6(await h.next(isUdp6));
    expect(reply.src).toBe('fe80::2');
    expect(reply.dst).toBe(GUEST6_LL);
    const udp = reply.body;
    expect(udp.readUInt16BE(0)).toBe(547);
    expect(udp.readUInt16BE(2)).toBe(546);
    const m = udp.subarray(8);
    expect(m[0]).toBe(7); // Reply
    expect(m.subarray(1, 4)).toEqual(Buffer.from([0xab, 0xcd, 0xef]));
    const options = new Map<number, Buffer>();
    for (let at = 4; at + 4 <= m.length; ) {
      const code = m.readUInt16BE(at);
      const len = m.readUInt16BE(at + 2);
      options.set(code, m.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
    expect(options.get(1)).toEqual(duid);
    expect(options.get(2)!.readUInt16BE(0)).toBe(3); // Server ID: DUID-LL
    expect(ip6Text(options.get(23)!, 0)).toBe('fd00::3');
  });
});

describe('fragments from the guest are reassembled (RFC 8200 §4.5)', () => {
  /** Datagrams the stack sent in fragments, put back together: IPv6 header fields of the first, the upper layer whole. */
  function reassembleReplies(frames: Buffer[]): { src: string; dst: string; nextHeader: number; body: Buffer } {
    const parts = frames.map((f) => ({ offset: f.readUInt16BE(14 + 42) & 0xfff8, nextHeader: f[14 + 40], data: f.subarray(14 + 48, 14 + 40 + f.readUInt16BE(14 + 4)) }));
    parts.sort((a, b) => a.offset - b.offset);
    let at = 0;
    for (const p of parts) {
      expect(p.offset).toBe(at);
      at += p.data.length;
    }
    return { src: ip6Text(frames[0], 14 + 8), dst: ip6Text(frames[0], 14 + 24), nextHeader: parts[0].nextHeader, body: Buffer.concat(parts.map((p) => p.data)) };
  }
  const isFragment6 = (f: Buffer): boolean => is6(f) && f[20] === 44;

  it('a 4000-byte UDP datagram in three fragments reaches the host socket intact', async () => {
    const sent: Buffer[] = [];
    const host: HostNetwork = {
      ...realHost,
      createUdp6Socket: () => ({
        localPort: 40124,
        send6: (_dst: Uint8Array, _dstOff: number, _port: number, buf: Uint8Array, off: number, len: number) => (sent.push(Buffer.from(buf.subarray(off, off + len))), 0),
        onMessage6: () => {},
        onIcmpError6: () => {},
        close: () => {},
      }),
    };
    const h = harness({ host });
    const data = Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 13 + (i >> 8)) & 0xff));
    const frames = fragment6Frames(GUEST6, '2001:db8::9', 17, udp6(GUEST6, '2001:db8::9', 5000, 9, data), { chunk: 1448, ident: 0x1234_5678 });
    expect(frames).toHaveLength(3);
    for (const f of [frames[2], frames[0], frames[1]]) h.send(f);
    await handled(h);
    expect(sent).toEqual([data]);
    const s = h.stack.stats();
    expect(s.reassembly).toEqual({ fragments: 3, reassembled: 1, inProgress: 0, bytesHeld: 0 });
    expect(s.dropsTotal).toBe(0);
  });

  it('an echo request to fd00::2 in two fragments is answered, the reply fragmented to the MTU', async () => {
    const h = harness();
    await h.next(isIcmp6Type(134));
    const data = Buffer.from(Array.from({ length: 2500 }, (_, i) => i & 0xff));
    const request = icmp6(GUEST6, 'fd00::2', 128, 0, echo6Body(0x4242, 3, data));
    const frames = fragment6Frames(GUEST6, 'fd00::2', 58, request, { chunk: 1448, ident: 77 });
    expect(frames).toHaveLength(2);
    for (const f of frames) h.send(f);
    await handled(h);
    const replyFrames = [...h.sent.filter(isFragment6)];
    expect(replyFrames).toHaveLength(2);
    for (const f of replyFrames) expect(f.length).toBeLessThanOrEqual(1514);
    const reply = reassembleReplies(replyFrames);
    expect(reply).toMatchObject({ src: 'fd00::2', dst: GUEST6, nextHeader: 58 });
    expect(checksum6('fd00::2', GUEST6, 58, reply.body)).toBe(0);
    expect(reply.body[0]).toBe(129);
    expect(reply.body.readUInt16BE(4)).toBe(0x4242);
    expect(reply.body.subarray(8)).toEqual(data);
  });

  it('a DNS query to fd00::3 in three fragments is answered', async () => {
    const h = harness({ dns: { resolvConfPath: '/dev/null', staticRecords: { 'host.usernet.internal': ['fd00::2'] } } });
    const name = Buffer.concat(['host', 'usernet', 'internal'].map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])));
    const query = Buffer.concat([Buffer.from([0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), name, Buffer.from([0, 0, 28, 0, 1])]);
    const frames = fragment6Frames(GUEST6, 'fd00::3', 17, udp6(GUEST6, 'fd00::3', 5353, 53, query), { chunk: 16, ident: 78 });
    expect(frames).toHaveLength(3);
    for (const f of frames) h.send(f);
    const reply = parse6(await h.next(isUdp6));
    expect(reply.src).toBe('fd00::3');
    const dns = reply.body.subarray(8);
    expect(dns.readUInt16BE(0)).toBe(0xbeef);
    expect(dns.readUInt16BE(6)).toBe(1); // one answer
    expect(ip6Text(dns, dns.length - 16)).toBe('fd00::2');
  });

  it('a datagram whose first fragment came and whose last never did: Time Exceeded after 60 s, quoting the first', async () => {
    const h = harness();
    await h.next(isIcmp6Type(134));
    const [first] = fragment6Frames(GUEST6, '2001:db8::9', 17, udp6(GUEST6, '2001:db8::9', 5000, 9, Buffer.alloc(3000)), { chunk: 1448, ident: 79 });
    h.send(first);
    await handled(h);
    expect(h.stack.stats().reassembly.inProgress).toBe(1);
    const from = h.sent.length;
    h.clock.advance(59_999);
    await handled(h);
    expect(sentSince(h, from).filter(isIcmp6Type(3))).toEqual([]);
    h.clock.advance(1);
    const err = parse6(await h.next(isIcmp6Type(3)));
    expect(err.body[1]).toBe(1); // fragment reassembly time exceeded
    expect(err.src).toBe('fd00::2');
    expect(err.dst).toBe(GUEST6);
    expect(err.body.subarray(8)).toEqual(first.subarray(14, 14 + 1232));
    expect(h.stack.stats().reassembly).toMatchObject({ inProgress: 0, bytesHeld: 0 });
    expect(h.stack.stats().drops).toEqual({ frag_timeout: 1 });
  });
});
