/**
 * Property test: random and mutated byte strings through every parser.
 *
 * For each input of n bytes and each view:
 *  - nothing throws;
 *  - check(), and after a passed check every getter, verify method and parse,
 *    read only indices in [off, off + len): checked twice, once through a
 *    Proxy that records every index read outside the array (a Uint8Array
 *    returns undefined there, which `<<`/`|` would silently turn into 0), and
 *    once differentially: the same bytes followed by 0x00s or by 0xffs must
 *    give identical results;
 *  - after a passed check, numeric getters return integers.
 */
import { describe, expect, test } from 'vitest';
import { ArpView, newArpRepr, parseArp } from '../../src/wire/arp.js';
import { Wire, type WireCode } from '../../src/wire/errors.js';
import { EthernetView, parseEthernet } from '../../src/wire/ethernet.js';
import { Icmpv4View, newIcmpv4Repr, parseIcmpv4 } from '../../src/wire/icmpv4.js';
import { Dhcpv6View } from '../../src/wire/dhcpv6.js';
import { Icmpv6View, newIcmpv6Repr, parseIcmpv6 } from '../../src/wire/icmpv6.js';
import {
  NdpIp,
  NdpView,
  newNeighborAdvertisementRepr,
  newNeighborSolicitationRepr,
  newRouterAdvertisementRepr,
  newRouterSolicitationRepr,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  parseRouterAdvertisement,
  parseRouterSolicitation,
} from '../../src/wire/ndp.js';
import { Ipv4View, newIpv4Repr, parseIpv4Header } from '../../src/wire/ipv4.js';
import { TcpView, newTcpRepr, parseTcp } from '../../src/wire/tcp.js';
import { UdpView, newUdpRepr, parseUdp } from '../../src/wire/udp.js';
import { VirtioNetView, newVirtioNetRepr, parseVirtioNet } from '../../src/wire/virtio-net.js';
import {
  ARP_REQUEST,
  ETH,
  ICMP_ECHO_RR,
  ICMP_PORT_UNREACH,
  IPV4_FRAG_LAST,
  TCP_SACK2,
  TCP_SYN,
  UDP_HELLO,
  VNET_TCP_GSO_HEAD,
  prng,
  randomBytes,
} from './golden.js';
import {
  DHCP6_INFO_REQUEST,
  DHCP6_REPLY_DNSMASQ,
  DHCP6_SOLICIT,
  L4,
  NDP_DAD_NS,
  NDP_NA,
  NDP_NS,
  NDP_RA_DNSMASQ,
  NDP_RS,
} from './golden6.js';

interface AnyView {
  buf: Uint8Array;
  off: number;
  len: number;
  wrap(buf: Uint8Array, off: number, len: number): unknown;
  check(): WireCode;
}

interface Subject {
  name: string;
  view: AnyView;
  getters: string[];
  /** Everything observable after a passed check, beyond the getters. */
  extra(view: AnyView): unknown[];
  parse(view: AnyView): unknown[];
}

/** Getters of the view's class and of the classes it extends. */
function gettersOf(view: object): string[] {
  const names: string[] = [];
  for (let proto = Object.getPrototypeOf(view); proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    const desc = Object.getOwnPropertyDescriptors(proto);
    for (const k of Object.keys(desc)) if (desc[k].get !== undefined && !names.includes(k)) names.push(k);
  }
  return names;
}

function subject<V extends AnyView>(
  name: string,
  view: V,
  parse: (v: V) => unknown[],
  extra: (v: V) => unknown[] = () => [],
): Subject {
  return {
    name,
    view,
    getters: gettersOf(view),
    parse: parse as (v: AnyView) => unknown[],
    extra: extra as (v: AnyView) => unknown[],
  };
}

const SRC = 0x0a00_0001;
const DST = 0x0a00_0002;

function flat(r: object): unknown[] {
  return Object.values(r).map((x) =>
    x instanceof Uint32Array || x instanceof Uint8Array
      ? Array.from(x)
      : Array.isArray(x)
        ? x.map((e: object) => flat(e))
        : x,
  );
}

/** An NdpView whose check() has a fixed IP context, so the harness can call it bare. */
class NdpViewFrom extends NdpView {
  constructor(private readonly ipClasses: number) {
    super();
  }
  override check(): ReturnType<NdpView['check']> {
    return super.check(255, this.ipClasses);
  }
}

const RS_REPR = newRouterSolicitationRepr();
const NS_REPR = newNeighborSolicitationRepr();
const NA_REPR = newNeighborAdvertisementRepr();
const RA_REPR = newRouterAdvertisementRepr();

/** All four NDP parsers; the RA's arrays only as far as they were filled (whole, they dominate the run time). */
function parseNdp(v: NdpView, ipClasses: number): unknown[] {
  const ra = RA_REPR;
  return [
    parseRouterSolicitation(v, 255, ipClasses, RS_REPR),
    parseNeighborSolicitation(v, 255, ipClasses, NS_REPR),
    parseNeighborAdvertisement(v, 255, ipClasses, NA_REPR),
    parseRouterAdvertisement(v, 255, ipClasses, ra),
    ...flat(RS_REPR),
    ...flat(NS_REPR),
    ...flat(NA_REPR),
    ...flat({ ...ra, prefixes: ra.prefixes.slice(0, ra.prefixCount), rdnss: ra.rdnss.subarray(0, 16 * ra.rdnssCount), dnssl: ra.dnssl.subarray(0, ra.dnsslLength) }),
  ];
}
const FROM_LL = NdpIp.SRC_LINK_LOCAL | NdpIp.DST_MULTICAST;
const FROM_DAD = NdpIp.SRC_UNSPECIFIED | NdpIp.DST_MULTICAST | NdpIp.DST_SOLICITED_NODE;

const SUBJECTS: Subject[] = [
  subject('ethernet', new EthernetView(), (v) => {
    const r = { dst: 0, src: 0, etherType: 0 };
    return [parseEthernet(v, r), ...flat(r)];
  }),
  subject('arp', new ArpView(), (v) => {
    const r = newArpRepr();
    return [parseArp(v, r), ...flat(r)];
  }),
  subject(
    'ipv4',
    new Ipv4View(),
    (v) => {
      const r = newIpv4Repr();
      return [parseIpv4Header(v, r), ...flat(r)];
    },
    (v) => [v.verifyChecksum()],
  ),
  subject(
    'icmpv4',
    new Icmpv4View(),
    (v) => {
      const r = newIcmpv4Repr();
      return [parseIcmpv4(v, r), ...flat(r)];
    },
    (v) => [v.verifyChecksum()],
  ),
  subject(
    'icmpv6',
    new Icmpv6View(),
    (v) => {
      const r = newIcmpv6Repr();
      return [parseIcmpv6(v, r), ...flat(r)];
    },
    (v) => [v.verifyChecksum(0x1234)],
  ),
  subject('ndp from a link-local source', new NdpViewFrom(FROM_LL), (v) => parseNdp(v, FROM_LL), (v) => [
    v.findOption(1),
    v.findOption(25),
  ]),
  subject('ndp from ::', new NdpViewFrom(FROM_DAD), (v) => parseNdp(v, FROM_DAD)),
  subject(
    'dhcpv6',
    new Dhcpv6View(),
    () => [],
    (v) => {
      const walk: number[] = [];
      for (let p = v.firstOptionOffset; p >= 0; p = v.nextOption(p)) walk.push(p);
      return [v.requestsOption(23), ...walk];
    },
  ),
  subject(
    'udp',
    new UdpView(),
    (v) => {
      const r = newUdpRepr();
      return [parseUdp(v, r), ...flat(r)];
    },
    (v) => [v.verifyChecksumV4(SRC, DST)],
  ),
  subject(
    'tcp',
    new TcpView(),
    (v) => {
      const r = newTcpRepr();
      return [parseTcp(v, r), ...flat(r)];
    },
    (v) => [v.verifyChecksumV4(SRC, DST)],
  ),
  subject(
    'virtio-net',
    new VirtioNetView(),
    (v) => {
      const r = newVirtioNetRepr();
      return [parseVirtioNet(v, r), ...flat(r)];
    },
    (v) => [v.checkFrame(v.len - 10)],
  ),
];

/** Everything the subject exposes for `len` bytes at `off` of `buf`. */
function observe(s: Subject, buf: Uint8Array, off: number, len: number): unknown[] {
  const v = s.view;
  v.wrap(buf, off, len);
  const code = v.check();
  const out: unknown[] = [code];
  if (code === Wire.OK) {
    for (const g of s.getters) {
      const value = (v as unknown as Record<string, unknown>)[g];
      if (typeof value === 'number') {
        if (!Number.isInteger(value)) throw new Error(`${s.name}.${g} = ${value} after a passed check`);
        // Offsets and lengths are relative to the buffer: bounded by the view
        // (-1: what they locate is absent).
        if (/Offset$/.test(g) && g !== 'fragOffset' && g !== 'csumOffset' && g !== 'dataOffset' && value !== -1) {
          if (value < off || value > off + len) throw new Error(`${s.name}.${g} = ${value} outside the view`);
        }
        if (/Length$/.test(g) && g !== 'totalLength' && (value < 0 || value > len)) {
          throw new Error(`${s.name}.${g} = ${value} outside the view`);
        }
      } else if (typeof value !== 'boolean') {
        throw new Error(`${s.name}.${g} is ${typeof value}`);
      }
      out.push(value);
    }
    out.push(...s.extra(v));
  }
  out.push(...s.parse(v));
  return out;
}

/** A Proxy over `data` that records every index read outside [0, length). */
function tracked(data: Uint8Array): { buf: Uint8Array; outside: number[] } {
  const outside: number[] = [];
  const buf = new Proxy(data, {
    get(target, key) {
      if (typeof key === 'string' && /^-?\d+$/.test(key)) {
        const i = Number(key);
        if (i < 0 || i >= target.length) outside.push(i);
      }
      return Reflect.get(target, key);
    },
  });
  return { buf, outside };
}

function runAll(data: Uint8Array): void {
  const n = data.length;
  for (const s of SUBJECTS) {
    // 1. Exact-length array behind a Proxy: no index outside it is read.
    const t = tracked(data);
    const viaProxy = observe(s, t.buf, 0, n);
    if (t.outside.length > 0) {
      throw new Error(`${s.name} read index ${t.outside[0]} of a ${n}-byte buffer (${toHexShort(data)})`);
    }
    // 2. Same bytes inside larger buffers, at an odd offset, with different
    //    neighbours: results depend only on [off, off + len).
    const off = 3;
    const lo = new Uint8Array(off + n + 64);
    const hi = new Uint8Array(off + n + 64).fill(0xff);
    lo.set(data, off);
    hi.set(data, off);
    const a = observe(s, lo, off, n);
    const b = observe(s, hi, off, n);
    const shiftBack = (xs: unknown[]) => JSON.stringify(xs);
    if (shiftBack(a) !== shiftBack(b)) {
      throw new Error(`${s.name} depends on bytes past len for ${toHexShort(data)}`);
    }
    if (a[0] !== viaProxy[0]) throw new Error(`${s.name}: check() differs by offset`);
  }
}

function toHexShort(b: Uint8Array): string {
  return Array.from(b.subarray(0, 80), (x) => x.toString(16).padStart(2, '0')).join('') + (b.length > 80 ? '…' : '');
}

/** Seeds for mutation: each golden at the layer each parser expects. */
const SEEDS: Uint8Array[] = [
  ARP_REQUEST,
  ARP_REQUEST.subarray(ETH),
  UDP_HELLO.subarray(ETH),
  UDP_HELLO.subarray(ETH + 20),
  ICMP_ECHO_RR.subarray(ETH),
  ICMP_PORT_UNREACH.subarray(ETH + 20),
  IPV4_FRAG_LAST.subarray(ETH),
  TCP_SYN.subarray(ETH + 20),
  TCP_SACK2.subarray(ETH + 20),
  VNET_TCP_GSO_HEAD,
  NDP_RS.subarray(L4),
  NDP_DAD_NS.subarray(L4),
  NDP_NS.subarray(L4),
  NDP_NA.subarray(L4),
  NDP_RA_DNSMASQ.subarray(L4),
  DHCP6_INFO_REQUEST.subarray(L4 + 8),
  DHCP6_SOLICIT.subarray(L4 + 8),
  DHCP6_REPLY_DNSMASQ.subarray(L4 + 8),
];

describe('every parser on hostile bytes', () => {
  test('20,000 random buffers of random lengths', () => {
    const rand = prng(0x5eed);
    for (let k = 0; k < 20_000; k++) {
      const r = rand();
      const n = r < 0.7 ? (rand() * 80) | 0 : r < 0.95 ? (rand() * 200) | 0 : (rand() * 1600) | 0;
      runAll(randomBytes(rand, n));
    }
  });

  test('20,000 mutated golden frames (bit flips, cuts, lying length bytes)', () => {
    const rand = prng(0xbadc0de);
    let passedTcpCheck = 0;
    let passedNdpCheck = 0;
    let passedDhcpv6Check = 0;
    for (let k = 0; k < 20_000; k++) {
      const seed = SEEDS[(rand() * SEEDS.length) | 0];
      const cut = rand() < 0.3 ? (rand() * (seed.length + 1)) | 0 : seed.length;
      const data = seed.slice(0, cut);
      const flips = 1 + ((rand() * 4) | 0);
      for (let f = 0; f < flips && data.length > 0; f++) {
        const at = (rand() * Math.min(data.length, 64)) | 0;
        if (rand() < 0.5) data[at] ^= 1 << ((rand() * 8) | 0);
        else data[at] = (rand() * 256) | 0;
      }
      runAll(data);
      const t = new TcpView().wrap(data, 0, data.length);
      if (t.check() === Wire.OK) passedTcpCheck++;
      if (new NdpView().wrap(data, 0, data.length).check(255, FROM_LL) === Wire.OK) passedNdpCheck++;
      if (new Dhcpv6View().wrap(data, 0, data.length).check() === Wire.OK) passedDhcpv6Check++;
    }
    // The mutations must exercise the accept path, not only the reject path.
    expect(passedTcpCheck).toBeGreaterThan(1000);
    expect(passedNdpCheck).toBeGreaterThan(1000);
    expect(passedDhcpv6Check).toBeGreaterThan(1000);
  });

  test('every TCP option byte value at every position of a 40-byte option space', () => {
    const base = TCP_SYN.slice(ETH + 20, ETH + 20 + 60);
    base[12] = 15 << 4;
    for (let pos = 20; pos < 60; pos++) {
      for (let value = 0; value < 256; value++) {
        const s = base.slice();
        s[pos] = value;
        const r = newTcpRepr();
        const code = parseTcp(new TcpView().wrap(s, 0, 60), r);
        expect(code === Wire.OK || code === Wire.BAD_OPTIONS).toBe(true);
        expect(r.sackCount).toBeLessThanOrEqual(4);
      }
    }
  });
});
