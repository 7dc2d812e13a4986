import { describe, expect, test } from 'vitest';
import { dnsNameText, encodeDnsNameList, skipUncompressedDnsName } from '../../src/wire/dns.js';
import { Wire } from '../../src/wire/errors.js';
import { Icmpv6View } from '../../src/wire/icmpv6.js';
import { ipv6WordSum, parseIpv6 } from '../../src/wire/ipv6-address.js';
import {
  NDP_HOP_LIMIT,
  NDP_MAX_RDNSS_PER_OPTION,
  NO_MAC,
  NaFlag,
  NdpIp,
  NdpOption,
  NdpView,
  emitNeighborAdvertisement,
  emitNeighborSolicitation,
  emitRouterAdvertisement,
  emitRouterSolicitation,
  isSolicitedNode6,
  ndpIpClasses,
  newNeighborAdvertisementRepr,
  newNeighborSolicitationRepr,
  newRouterAdvertisementRepr,
  newRouterSolicitationRepr,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  parseRouterAdvertisement,
  parseRouterSolicitation,
  routerAdvertisementLength,
  type RouterAdvertisementRepr,
} from '../../src/wire/ndp.js';
import { a5, concat, hex, toHex } from './golden.js';
import {
  IP6,
  L4,
  MAC_A6,
  MAC_B6,
  NDP_DAD_NS,
  NDP_NA,
  NDP_NA_UNICAST,
  NDP_NS,
  NDP_NS_UNICAST,
  NDP_RA_DNSMASQ,
  NDP_RS,
} from './golden6.js';

const addr = (s: string): Uint8Array => parseIpv6(s)!;
const LL_A = addr('fe80::ff:fe00:1');
const LL_B = addr('fe80::ff:fe00:2');

function addrSumOf(frame: Uint8Array): number {
  return ipv6WordSum(frame, IP6 + 8) + ipv6WordSum(frame, IP6 + 24);
}
function sum(src: Uint8Array, dst: Uint8Array): number {
  return ipv6WordSum(src, 0) + ipv6WordSum(dst, 0);
}
/** View, hop limit and address classes of a captured NDP frame. */
function ndp(frame: Uint8Array): [NdpView, number, number] {
  return [new NdpView().wrap(frame, L4, frame.length - L4), frame[IP6 + 7], ndpIpClasses(frame, IP6 + 8, IP6 + 24)];
}
/** The names of a run of uncompressed wire names, as text. */
function names(buf: Uint8Array, off: number, len: number): string[] {
  const out: string[] = [];
  for (let p = off; p < off + len; ) {
    out.push(dnsNameText(buf, p - 12, off + len, p)!);
    p = skipUncompressedDnsName(buf, p, off + len);
    expect(p).toBeGreaterThan(0);
  }
  return out;
}
function wireNames(...list: string[]): Uint8Array {
  return encodeDnsNameList(list)!;
}

describe('address classes', () => {
  test('solicited-node and the NdpIp bits of the captures', () => {
    expect(isSolicitedNode6(addr('ff02::1:ff00:2'), 0)).toBe(true);
    expect(isSolicitedNode6(addr('ff02::1:ffab:cdef'), 0)).toBe(true);
    expect(isSolicitedNode6(addr('ff02::1'), 0)).toBe(false);
    expect(isSolicitedNode6(addr('ff02::2:ff00:2'), 0)).toBe(false);
    expect(isSolicitedNode6(addr('ff05::1:ff00:2'), 0)).toBe(false);
    expect(isSolicitedNode6(addr('fe80::1:ff00:2'), 0)).toBe(false);
    expect(ndp(NDP_DAD_NS)[2]).toBe(NdpIp.SRC_UNSPECIFIED | NdpIp.DST_MULTICAST | NdpIp.DST_SOLICITED_NODE);
    expect(ndp(NDP_NS)[2]).toBe(NdpIp.SRC_LINK_LOCAL | NdpIp.DST_MULTICAST | NdpIp.DST_SOLICITED_NODE);
    expect(ndp(NDP_NA)[2]).toBe(NdpIp.SRC_LINK_LOCAL);
    expect(ndp(NDP_RS)[2]).toBe(NdpIp.SRC_LINK_LOCAL | NdpIp.DST_MULTICAST);
  });
});

describe('NDP golden frames', () => {
  test('Router Solicitation with SLLA', () => {
    const [v, hop, cls] = ndp(NDP_RS);
    expect(hop).toBe(255);
    expect(v.check(hop, cls)).toBe(Wire.OK);
    expect(v.type).toBe(133);
    expect(v.optionsOffset).toBe(L4 + 8);
    expect(v.sourceMac).toBe(MAC_A6);
    expect(v.targetMac).toBe(NO_MAC);
    const r = newRouterSolicitationRepr();
    expect(parseRouterSolicitation(v, hop, cls, r)).toBe(Wire.OK);
    expect(r).toEqual({ sourceMac: MAC_A6 });
  });

  test('DAD Neighbor Solicitation from ::, with a Nonce option and no SLLA', () => {
    const [v, hop, cls] = ndp(NDP_DAD_NS);
    expect(v.check(hop, cls)).toBe(Wire.OK);
    expect(v.findOption(NdpOption.NONCE)).toBe(L4 + 24);
    expect(toHex(NDP_DAD_NS.subarray(L4 + 26, L4 + 32))).toBe('aabcc55a3f80');
    const r = newNeighborSolicitationRepr();
    const target = r.target;
    expect(parseNeighborSolicitation(v, hop, cls, r)).toBe(Wire.OK);
    expect(r.target).toBe(target); // the repr's own array, filled in place
    expect(toHex(r.target)).toBe(toHex(LL_A));
    expect(r.sourceMac).toBe(NO_MAC);
  });

  test('address-resolution NS and its NA', () => {
    let [v, hop, cls] = ndp(NDP_NS);
    const ns = newNeighborSolicitationRepr();
    expect(parseNeighborSolicitation(v, hop, cls, ns)).toBe(Wire.OK);
    expect(toHex(ns.target)).toBe(toHex(LL_B));
    expect(ns.sourceMac).toBe(MAC_A6);
    [v, hop, cls] = ndp(NDP_NA);
    expect(v.naFlags).toBe(NaFlag.SOLICITED | NaFlag.OVERRIDE);
    const na = newNeighborAdvertisementRepr();
    expect(parseNeighborAdvertisement(v, hop, cls, na)).toBe(Wire.OK);
    expect(na).toEqual({ router: false, solicited: true, override: true, target: LL_B, targetMac: MAC_B6 });
  });

  test('unicast probe NS and an NA without TLLA', () => {
    let [v, hop, cls] = ndp(NDP_NS_UNICAST);
    const ns = newNeighborSolicitationRepr();
    expect(parseNeighborSolicitation(v, hop, cls, ns)).toBe(Wire.OK);
    expect(toHex(ns.target)).toBe(toHex(LL_A));
    expect(ns.sourceMac).toBe(MAC_B6);
    [v, hop, cls] = ndp(NDP_NA_UNICAST);
    const na = newNeighborAdvertisementRepr();
    expect(parseNeighborAdvertisement(v, hop, cls, na)).toBe(Wire.OK);
    expect(na).toEqual({ router: false, solicited: true, override: false, target: LL_A, targetMac: NO_MAC });
  });

  test("dnsmasq's Router Advertisement: every field and option", () => {
    const [v, hop, cls] = ndp(NDP_RA_DNSMASQ);
    expect(cls & NdpIp.SRC_LINK_LOCAL).toBeTruthy();
    expect(v.check(hop, cls)).toBe(Wire.OK);
    expect(v.curHopLimit).toBe(64);
    expect(v.raFlags).toBe(0x40);
    expect(v.routerLifetime).toBe(1800);
    expect(v.reachableTimeMs).toBe(0);
    expect(v.retransTimerMs).toBe(0);
    const r = newRouterAdvertisementRepr();
    expect(parseRouterAdvertisement(v, hop, cls, r)).toBe(Wire.OK);
    expect(r.curHopLimit).toBe(64);
    expect(r.managed).toBe(false);
    expect(r.other).toBe(true);
    expect(r.routerLifetime).toBe(1800);
    expect(r.sourceMac).toBe(MAC_B6);
    expect(r.mtu).toBe(1500);
    expect(r.prefixCount).toBe(1);
    expect(r.prefixes[0]).toEqual({
      prefixLength: 64,
      onLink: true,
      autonomous: true,
      validLifetime: 3600,
      preferredLifetime: 3600,
      prefix: addr('fd00::'),
    });
    expect(r.rdnssLifetime).toBe(3600);
    expect(r.rdnssCount).toBe(1);
    expect(toHex(r.rdnss.subarray(0, 16))).toBe(toHex(addr('fd00::3')));
    expect(r.dnsslLifetime).toBe(3600);
    expect(r.dnsslLength).toBe(28);
    expect(names(r.dnssl, 0, r.dnsslLength)).toEqual(['example.test', 'corp.example']);
  });
});

describe('NDP emitters reproduce the captures', () => {
  test('RS', () => {
    const buf = a5(40);
    const n = emitRouterSolicitation(MAC_A6, buf, 3, addrSumOf(NDP_RS));
    expect(n).toBe(16);
    expect(toHex(buf.subarray(3, 3 + n))).toBe(toHex(NDP_RS.subarray(L4)));
    expect(buf[2]).toBe(0xa5);
    expect(buf[3 + n]).toBe(0xa5);
  });

  test('NS with SLLA, and DAD NS without it', () => {
    const buf = a5(64);
    let n = emitNeighborSolicitation(LL_B, 0, MAC_A6, buf, 1, addrSumOf(NDP_NS));
    expect(n).toBe(32);
    expect(toHex(buf.subarray(1, 1 + n))).toBe(toHex(NDP_NS.subarray(L4)));
    expect(buf[1 + n]).toBe(0xa5);
    // The captured DAD probe adds a Nonce; the rest is ours byte for byte.
    buf.fill(0xa5);
    n = emitNeighborSolicitation(NDP_DAD_NS, L4 + 8, NO_MAC, buf, 0, addrSumOf(NDP_DAD_NS));
    expect(n).toBe(24);
    expect(buf[24]).toBe(0xa5);
    expect(toHex(buf.subarray(4, 24))).toBe(toHex(NDP_DAD_NS.subarray(L4 + 4, L4 + 24)));
    expect(new Icmpv6View().wrap(buf, 0, n).verifyChecksum(addrSumOf(NDP_DAD_NS))).toBe(true);
  });

  test('NA with and without TLLA', () => {
    const buf = a5(64);
    let n = emitNeighborAdvertisement(NaFlag.SOLICITED | NaFlag.OVERRIDE, LL_B, 0, MAC_B6, buf, 5, addrSumOf(NDP_NA));
    expect(toHex(buf.subarray(5, 5 + n))).toBe(toHex(NDP_NA.subarray(L4)));
    expect(buf[5 + n]).toBe(0xa5);
    buf.fill(0xa5);
    n = emitNeighborAdvertisement(NaFlag.SOLICITED, LL_A, 0, NO_MAC, buf, 0, addrSumOf(NDP_NA_UNICAST));
    expect(n).toBe(24);
    expect(toHex(buf.subarray(0, n))).toBe(toHex(NDP_NA_UNICAST.subarray(L4)));
    expect(buf[n]).toBe(0xa5);
  });

  test("RA: parse then emit gives dnsmasq's bytes back", () => {
    const [v, hop, cls] = ndp(NDP_RA_DNSMASQ);
    const r = newRouterAdvertisementRepr();
    expect(parseRouterAdvertisement(v, hop, cls, r)).toBe(Wire.OK);
    expect(routerAdvertisementLength(r)).toBe(NDP_RA_DNSMASQ.length - L4);
    const buf = a5(200);
    const n = emitRouterAdvertisement(r, buf, 7, addrSumOf(NDP_RA_DNSMASQ));
    expect(n).toBe(128);
    expect(toHex(buf.subarray(7, 7 + n))).toBe(toHex(NDP_RA_DNSMASQ.subarray(L4)));
    expect(buf[6]).toBe(0xa5);
    expect(buf[7 + n]).toBe(0xa5);
  });
});

/** An RA as the stack will send it, with several of everything. */
function bigRa(): RouterAdvertisementRepr {
  const r = newRouterAdvertisementRepr();
  r.curHopLimit = 64;
  r.managed = false;
  r.other = true;
  r.routerLifetime = 9000;
  r.reachableTimeMs = 30000;
  r.retransTimerMs = 1000;
  r.sourceMac = 0x52_54_00_12_34_56;
  r.mtu = 65520;
  r.prefixCount = 3;
  const texts = ['fd00::', 'fd00:1:2:300::', '2001:db8::'];
  for (let i = 0; i < 3; i++) {
    Object.assign(r.prefixes[i], {
      prefixLength: 64 - 8 * i,
      onLink: i !== 1,
      autonomous: i !== 2,
      validLifetime: 0xffff_ffff,
      preferredLifetime: 600 * i,
    });
    r.prefixes[i].prefix.set(addr(texts[i]));
  }
  r.rdnssLifetime = 0xffff_ffff;
  r.rdnss = concat(addr('fd00::3'), addr('fd00::53'), addr('2001:db8::1'));
  r.rdnssCount = 3;
  r.dnsslLifetime = 1200;
  r.dnssl = wireNames('example.test', 'a.b.c.example', 'x');
  r.dnsslLength = r.dnssl.length;
  return r;
}

describe('emitRouterAdvertisement', () => {
  const SUM = sum(LL_B, addr('ff02::1'));

  test('round trip with several prefixes, RDNSS addresses and DNSSL names', () => {
    const r = bigRa();
    const buf = a5(400);
    const n = emitRouterAdvertisement(r, buf, 2, SUM);
    expect(n).toBe(routerAdvertisementLength(r));
    expect(n).toBe(16 + 3 * 32 + 8 + 8 + 40 + 56);
    expect(buf[2 + n]).toBe(0xa5);
    expect(new Icmpv6View().wrap(buf, 2, n).verifyChecksum(SUM)).toBe(true);
    const v = new NdpView().wrap(buf, 2, n);
    expect(v.check(255, NdpIp.SRC_LINK_LOCAL | NdpIp.DST_MULTICAST)).toBe(Wire.OK);
    const back = newRouterAdvertisementRepr();
    expect(parseRouterAdvertisement(v, 255, NdpIp.SRC_LINK_LOCAL, back)).toBe(Wire.OK);
    expect({ ...back, prefixes: back.prefixes.slice(0, 3), rdnss: back.rdnss.slice(0, 48), dnssl: back.dnssl.slice(0, back.dnsslLength) }).toEqual(
      { ...r, prefixes: r.prefixes.slice(0, 3) },
    );
    expect(names(back.dnssl, 0, back.dnsslLength)).toEqual(['example.test', 'a.b.c.example', 'x']);
  });

  test('DNSSL padding: every names length pads with zeros to a multiple of 8', () => {
    for (let label = 1; label <= 30; label++) {
      const r = newRouterAdvertisementRepr();
      r.dnssl = wireNames('a'.repeat(label) + '.test');
      r.dnsslLength = r.dnssl.length;
      r.dnsslLifetime = 1;
      const buf = a5(100);
      const n = emitRouterAdvertisement(r, buf, 0, SUM);
      expect(n % 8).toBe(0);
      expect(buf[17]).toBe((n - 16) / 8);
      expect(buf.subarray(24 + r.dnsslLength, n).every((b) => b === 0)).toBe(true);
      expect(buf[n]).toBe(0xa5);
      const back = newRouterAdvertisementRepr();
      expect(parseRouterAdvertisement(new NdpView().wrap(buf, 0, n), 255, NdpIp.SRC_LINK_LOCAL, back)).toBe(Wire.OK);
      expect(back.dnsslLength).toBe(r.dnsslLength);
    }
  });

  test('prefix bits past the prefix length go out as zero (RFC 4861 §4.6.2)', () => {
    const r = newRouterAdvertisementRepr();
    r.prefixCount = 1;
    r.prefixes[0].prefixLength = 60;
    r.prefixes[0].prefix.set(addr('fd00:1234:5678:9abc:ffff::1'));
    const buf = a5(64);
    emitRouterAdvertisement(r, buf, 0, SUM);
    expect(toHex(buf.subarray(32, 48))).toBe(toHex(addr('fd00:1234:5678:9ab0::')));
  });

  test('nothing optional: a bare 16-byte RA; 127 RDNSS addresses fit one option, 128 throw', () => {
    const r = newRouterAdvertisementRepr();
    const buf = a5(4096);
    expect(emitRouterAdvertisement(r, buf, 0, SUM)).toBe(16);
    expect(buf[16]).toBe(0xa5);
    r.rdnss = new Uint8Array(16 * 128).fill(0x20);
    r.rdnssCount = NDP_MAX_RDNSS_PER_OPTION;
    const n = emitRouterAdvertisement(r, buf, 0, SUM);
    expect(n).toBe(16 + 8 + 127 * 16);
    expect(buf[17]).toBe(255);
    r.rdnssCount = 128;
    expect(() => emitRouterAdvertisement(r, buf, 0, SUM)).toThrow(RangeError);
  });
});

/** An NS from fe80::ff:fe00:1 with the given options after the target. */
function nsWith(options: Uint8Array, target = LL_B): Uint8Array {
  const buf = new Uint8Array(24 + options.length);
  emitNeighborSolicitation(target, 0, NO_MAC, buf, 0, 0);
  buf.set(options, 24);
  return buf;
}
const LL = NdpIp.SRC_LINK_LOCAL;
const MCAST_SN = NdpIp.DST_MULTICAST | NdpIp.DST_SOLICITED_NODE;

describe('NdpView.check: RFC 4861 §6.1 and §7.1 validity', () => {
  test('hop limit must be 255 and the code 0, for every type', () => {
    for (const frame of [NDP_RS, NDP_NS, NDP_NA, NDP_RA_DNSMASQ]) {
      const [v, hop, cls] = ndp(frame);
      expect(hop).toBe(NDP_HOP_LIMIT);
      expect(v.check(254, cls)).toBe(Wire.BAD_FIELD);
      expect(v.check(64, cls)).toBe(Wire.BAD_FIELD);
      const bad = frame.slice();
      bad[L4 + 1] = 1;
      expect(ndp(bad)[0].check(hop, cls)).toBe(Wire.BAD_FIELD);
    }
  });

  test('minimum lengths: RS 8, RA 16, NS/NA 24', () => {
    const v = new NdpView();
    const cases: [Uint8Array, number][] = [
      [NDP_RS, 8],
      [NDP_RA_DNSMASQ, 16],
      [NDP_NS, 24],
      [NDP_NA, 24],
    ];
    for (const [frame, min] of cases) {
      const m = frame.slice(L4);
      for (let len = 0; len < min; len++) expect(v.wrap(m, 0, len).check(255, LL | MCAST_SN)).toBe(Wire.TRUNCATED);
      expect(v.wrap(m, 0, min).check(255, LL)).toBe(Wire.OK);
    }
  });

  test('other ICMPv6 types are UNSUPPORTED; a parser for another type says so too', () => {
    const m = NDP_NS.slice(L4);
    for (const t of [128, 137, 143, 0]) {
      m[0] = t;
      expect(new NdpView().wrap(m, 0, m.length).check()).toBe(Wire.UNSUPPORTED);
    }
    const [v, hop, cls] = ndp(NDP_NS);
    expect(parseNeighborAdvertisement(v, hop, cls, newNeighborAdvertisementRepr())).toBe(Wire.UNSUPPORTED);
    expect(parseRouterSolicitation(v, hop, cls, newRouterSolicitationRepr())).toBe(Wire.UNSUPPORTED);
    expect(parseRouterAdvertisement(v, hop, cls, newRouterAdvertisementRepr())).toBe(Wire.UNSUPPORTED);
  });

  test('NS: a multicast target is invalid', () => {
    const m = nsWith(new Uint8Array(0), addr('ff02::1'));
    expect(new NdpView().wrap(m, 0, m.length).check(255, LL)).toBe(Wire.BAD_FIELD);
  });

  test('NS from ::: destination must be solicited-node, and no SLLA', () => {
    const [v, hop] = ndp(NDP_DAD_NS);
    const src0 = NdpIp.SRC_UNSPECIFIED;
    expect(v.check(hop, src0 | MCAST_SN)).toBe(Wire.OK);
    expect(v.check(hop, src0 | NdpIp.DST_MULTICAST)).toBe(Wire.BAD_FIELD); // e.g. to ff02::1
    expect(v.check(hop, src0)).toBe(Wire.BAD_FIELD); // unicast
    const [w] = ndp(NDP_NS);
    expect(w.check(hop, src0 | MCAST_SN)).toBe(Wire.BAD_FIELD); // carries an SLLA
    expect(w.check(hop, LL | MCAST_SN)).toBe(Wire.OK);
  });

  test('RS from :: must not carry an SLLA', () => {
    const [v, hop] = ndp(NDP_RS);
    expect(v.check(hop, NdpIp.SRC_UNSPECIFIED | NdpIp.DST_MULTICAST)).toBe(Wire.BAD_FIELD);
    const bare = NDP_RS.slice(L4, L4 + 8);
    expect(new NdpView().wrap(bare, 0, 8).check(hop, NdpIp.SRC_UNSPECIFIED | NdpIp.DST_MULTICAST)).toBe(Wire.OK);
  });

  test('NA: multicast target invalid; Solicited to a multicast destination invalid', () => {
    const [v, hop, cls] = ndp(NDP_NA);
    expect(v.check(hop, cls | NdpIp.DST_MULTICAST)).toBe(Wire.BAD_FIELD);
    const unsolicited = NDP_NA.slice(L4);
    unsolicited[4] = NaFlag.OVERRIDE;
    expect(new NdpView().wrap(unsolicited, 0, unsolicited.length).check(hop, LL | NdpIp.DST_MULTICAST)).toBe(Wire.OK);
    const m = NDP_NA.slice(L4);
    m[8] = 0xff;
    expect(new NdpView().wrap(m, 0, m.length).check(hop, cls)).toBe(Wire.BAD_FIELD);
  });

  test('RA: the source must be link-local', () => {
    const [v, hop] = ndp(NDP_RA_DNSMASQ);
    expect(v.check(hop, NdpIp.DST_MULTICAST)).toBe(Wire.BAD_FIELD);
    expect(v.check(hop, LL | NdpIp.DST_MULTICAST)).toBe(Wire.OK);
  });

  test('an option of length 0 anywhere invalidates the message', () => {
    for (const opts of ['0000', '01010200000000010e00', '0e01aabbccddeeff0500', '0e01aabbccddeeff0100000000000000']) {
      const m = nsWith(hex(opts));
      expect(new NdpView().wrap(m, 0, m.length).check(255, LL)).toBe(Wire.BAD_OPTIONS);
    }
  });

  test('an option running past the end, or a lone type byte, invalidates the message', () => {
    for (const opts of ['01', '0102020000000001', '0e01aabbccddeeff01010200']) {
      const m = nsWith(hex(opts));
      expect(new NdpView().wrap(m, 0, m.length).check(255, LL)).toBe(Wire.BAD_OPTIONS);
    }
  });

  test('a link-layer address option that is not 8 bytes invalidates the message (RFC 2464 §6, as Linux)', () => {
    const m = nsWith(hex('010202000000000100000000000000'.padEnd(32, '0')));
    expect(new NdpView().wrap(m, 0, m.length).check(255, LL)).toBe(Wire.BAD_OPTIONS);
    const n = nsWith(hex('0202020000000001'.padEnd(32, '0')));
    expect(new NdpView().wrap(n, 0, n.length).check(255, LL)).toBe(Wire.BAD_OPTIONS);
  });

  test('unknown options are skipped; the first SLLA counts', () => {
    const m = nsWith(hex('fe0100000000000001010200000000aa0101020000000bbb'));
    const v = new NdpView().wrap(m, 0, m.length);
    expect(v.check(255, LL)).toBe(Wire.OK);
    expect(v.sourceMac).toBe(0x0200_0000_00aa);
    expect(v.findOption(NdpOption.SOURCE_LL_ADDR)).toBe(32);
    expect(v.findOption(NdpOption.SOURCE_LL_ADDR, 40)).toBe(40);
    expect(v.findOption(NdpOption.MTU)).toBe(-1);
  });
});

describe('RA options that are invalid on their own are skipped (RFC 8106 §5.3.1)', () => {
  /** A minimal RA with the given options. */
  function raWith(options: string): RouterAdvertisementRepr {
    const m = concat(hex('8600000040400708000000000000000'.padEnd(32, '0')), hex(options));
    const r = newRouterAdvertisementRepr();
    expect(parseRouterAdvertisement(new NdpView().wrap(m, 0, m.length), 255, LL, r)).toBe(Wire.OK);
    return r;
  }
  const RDNSS_OK = '1903 0000 00000e10 fd000000000000000000000000000003'.replace(/ /g, '');

  test('RDNSS of length 2 or of an even length; the first valid one counts', () => {
    expect(raWith('1902000000000e10' + '00'.repeat(8)).rdnssCount).toBe(0);
    expect(raWith('1904000000000e10' + '00'.repeat(24)).rdnssCount).toBe(0);
    const second = RDNSS_OK.slice(0, -2) + '04';
    const r = raWith('1902000000000e10' + '00'.repeat(8) + RDNSS_OK + second);
    expect(r.rdnssCount).toBe(1);
    expect(toHex(r.rdnss.subarray(0, 16))).toBe(toHex(addr('fd00::3')));
  });

  test('RDNSS with more addresses than the repr holds keeps the first ones', () => {
    const list = Array.from({ length: 10 }, (_, i) => toHex(addr(`fd00::${i + 1}`))).join('');
    const r = raWith(`1915000000000e10${list}`);
    expect(r.rdnssCount).toBe(8);
    expect(toHex(r.rdnss.subarray(112, 128))).toBe(toHex(addr('fd00::8')));
  });

  test('DNSSL: a pointer, nonzero padding, no name, or length 1 make it ignored', () => {
    const head = (len: number): string => `1f${len.toString(16).padStart(2, '0')}000000000e10`;
    expect(raWith(head(2) + '0474657374000000').dnsslLength).toBe(6); // "test", 2 bytes padding
    expect(raWith(head(2) + 'c00c000000000000').dnsslLength).toBe(0);
    expect(raWith(head(2) + '0474657374000001').dnsslLength).toBe(0);
    expect(raWith(head(2) + '0000000000000000').dnsslLength).toBe(0);
    expect(raWith(head(1)).dnsslLength).toBe(0);
    expect(raWith(head(2) + '0874657374000000').dnsslLength).toBe(0); // label runs past the option
  });

  test('Prefix Information or MTU of the wrong length; more prefixes than the repr holds', () => {
    expect(raWith('0303' + '00'.repeat(22)).prefixCount).toBe(0);
    expect(raWith('05020000000005dc' + '00'.repeat(8)).mtu).toBe(0);
    const one = '0304' + '40c0' + '00000e10'.repeat(2) + '00000000' + toHex(addr('fd00::'));
    expect(raWith(one.repeat(10)).prefixCount).toBe(8);
  });
});

describe('truncation sweeps', () => {
  test('every cut of every capture gives a code, OK only at an option boundary', () => {
    const v = new NdpView();
    for (const frame of [NDP_RS, NDP_DAD_NS, NDP_NS, NDP_NA, NDP_NS_UNICAST, NDP_NA_UNICAST, NDP_RA_DNSMASQ]) {
      const m = frame.slice(L4);
      const [, hop, cls] = ndp(frame);
      const boundaries = new Set<number>();
      const full = new NdpView().wrap(m, 0, m.length);
      for (let p = full.optionsOffset; p <= m.length; p += m[p + 1] << 3 || 1) boundaries.add(p);
      for (let len = 0; len < m.length; len++) {
        const cut = m.slice(0, len);
        const code = v.wrap(cut, 0, len).check(hop, cls);
        expect(code === Wire.OK).toBe(boundaries.has(len));
        expect([Wire.OK, Wire.TRUNCATED, Wire.BAD_OPTIONS]).toContain(code);
        expect(() => {
          parseNeighborSolicitation(v, hop, cls, newNeighborSolicitationRepr());
          parseNeighborAdvertisement(v, hop, cls, newNeighborAdvertisementRepr());
          parseRouterSolicitation(v, hop, cls, newRouterSolicitationRepr());
          parseRouterAdvertisement(v, hop, cls, newRouterAdvertisementRepr());
        }).not.toThrow();
      }
    }
  });
});
