import { describe, expect, test } from 'vitest';
import { Wire } from '../../src/wire/errors.js';
import {
  ICMPV6_ERROR_MAX_QUOTED,
  ICMPV6_HEADER_LEN,
  ICMPV6_NEXT_HEADER,
  Icmpv6ParamProblem,
  Icmpv6TimeExceeded,
  Icmpv6Type,
  Icmpv6Unreach,
  Icmpv6View,
  emitIcmpv6Echo,
  emitIcmpv6Error,
  fillIcmpv6Checksum,
  isIcmpv6Error,
  newIcmpv6Repr,
  parseIcmpv6,
} from '../../src/wire/icmpv6.js';
import { IPV6_HEADER_LEN, IPV6_MIN_MTU, Ipv6View, newIpv6Walk, walkIpv6 } from '../../src/wire/ipv6.js';
import { ipv6WordSum } from '../../src/wire/ipv6-address.js';
import { a5, pat, toHex } from './golden.js';
import {
  ICMP6_ECHO_REPLY,
  ICMP6_ECHO_REQUEST,
  ICMP6_PORT_UNREACH,
  IP6,
  L4,
  MLD2_REPORT,
  MLD2_REPORT_4,
  MLD_L4,
  NDP_DAD_NS,
  NDP_NA,
  NDP_NA_UNICAST,
  NDP_NS,
  NDP_NS_UNICAST,
  NDP_RA_DNSMASQ,
  NDP_RS,
  UDP6_CLOSED_PORT,
} from './golden6.js';

/** The addresses' word sum of a captured frame's IPv6 header. */
function addrSumOf(frame: Uint8Array): number {
  return ipv6WordSum(frame, IP6 + 8) + ipv6WordSum(frame, IP6 + 24);
}

/** A view on the ICMPv6 message of a frame with a plain 40-byte IPv6 header. */
function icmpView(frame: Uint8Array, at = L4): Icmpv6View {
  return new Icmpv6View().wrap(frame, at, frame.length - at);
}

const ECHO_DATA = ICMP6_ECHO_REQUEST.slice(L4 + 8);
/** fe80::ff:fe00:1 ↔ fe80::ff:fe00:2: the sum is the same both ways. */
const SUM_AB = addrSumOf(ICMP6_ECHO_REQUEST);

describe('ICMPv6 golden frames', () => {
  test('echo request: every field', () => {
    const ip = new Ipv6View().wrap(ICMP6_ECHO_REQUEST, IP6, ICMP6_ECHO_REQUEST.length - IP6);
    expect(ip.check()).toBe(Wire.OK);
    expect(ip.nextHeader).toBe(ICMPV6_NEXT_HEADER);
    expect(ip.payloadLength).toBe(32);
    const v = icmpView(ICMP6_ECHO_REQUEST);
    expect(v.check()).toBe(Wire.OK);
    expect(v.type).toBe(Icmpv6Type.ECHO_REQUEST);
    expect(v.code).toBe(0);
    expect(v.checksum).toBe(0x8a70);
    expect(v.ident).toBe(0x1c80);
    expect(v.seq).toBe(1);
    expect(v.rest).toBe(0x1c80_0001);
    expect(v.payloadOffset).toBe(L4 + 8);
    expect(v.payloadLength).toBe(24);
    expect(toHex(ECHO_DATA.subarray(16))).toBe(toHex(Uint8Array.from('snetusne', (c) => c.charCodeAt(0))));
    expect(v.verifyChecksum(SUM_AB)).toBe(true);
    expect(v.verifyChecksum(SUM_AB + 1)).toBe(false);
    const r = newIcmpv6Repr();
    expect(parseIcmpv6(v, r)).toBe(Wire.OK);
    expect(r).toEqual({ type: 128, code: 0, rest: 0x1c80_0001, payloadOffset: L4 + 8, payloadLength: 24 });
    expect(isIcmpv6Error(v.type)).toBe(false);
  });

  test('echo reply', () => {
    const v = icmpView(ICMP6_ECHO_REPLY);
    expect(v.type).toBe(Icmpv6Type.ECHO_REPLY);
    expect(v.checksum).toBe(0x8970);
    expect(v.ident).toBe(0x1c80);
    expect(v.seq).toBe(1);
    expect(v.verifyChecksum(addrSumOf(ICMP6_ECHO_REPLY))).toBe(true);
  });

  test('port unreachable quoting the whole offending datagram', () => {
    const v = icmpView(ICMP6_PORT_UNREACH);
    expect(v.check()).toBe(Wire.OK);
    expect(v.type).toBe(Icmpv6Type.DEST_UNREACHABLE);
    expect(v.code).toBe(Icmpv6Unreach.PORT);
    expect(v.rest).toBe(0);
    expect(v.checksum).toBe(0x5b61);
    expect(v.verifyChecksum(addrSumOf(ICMP6_PORT_UNREACH))).toBe(true);
    expect(v.payloadLength).toBe(61);
    expect(toHex(ICMP6_PORT_UNREACH.subarray(v.payloadOffset))).toBe(toHex(UDP6_CLOSED_PORT.subarray(IP6)));
    expect(isIcmpv6Error(v.type)).toBe(true);
  });

  test('every captured NDP message has a valid checksum and its type', () => {
    const cases: [Uint8Array, number][] = [
      [NDP_RS, Icmpv6Type.ROUTER_SOLICITATION],
      [NDP_RA_DNSMASQ, Icmpv6Type.ROUTER_ADVERTISEMENT],
      [NDP_DAD_NS, Icmpv6Type.NEIGHBOR_SOLICITATION],
      [NDP_NS, Icmpv6Type.NEIGHBOR_SOLICITATION],
      [NDP_NS_UNICAST, Icmpv6Type.NEIGHBOR_SOLICITATION],
      [NDP_NA, Icmpv6Type.NEIGHBOR_ADVERTISEMENT],
      [NDP_NA_UNICAST, Icmpv6Type.NEIGHBOR_ADVERTISEMENT],
    ];
    for (const [frame, type] of cases) {
      const v = icmpView(frame);
      expect(v.type).toBe(type);
      expect(v.code).toBe(0);
      expect(v.verifyChecksum(addrSumOf(frame))).toBe(true);
      // One flipped bit anywhere in the message fails it.
      const bad = frame.slice();
      bad[bad.length - 1] ^= 0x10;
      expect(icmpView(bad).verifyChecksum(addrSumOf(bad))).toBe(false);
    }
  });

  test('MLDv2 reports behind a Hop-by-Hop header with Router Alert', () => {
    for (const [frame, records, checksum] of [
      [MLD2_REPORT, 1, 0x7207],
      [MLD2_REPORT_4, 4, 0x68b1],
    ] as const) {
      const end = IP6 + IPV6_HEADER_LEN + new Ipv6View().wrap(frame, IP6, frame.length - IP6).payloadLength;
      expect(end).toBe(frame.length);
      const w = newIpv6Walk();
      expect(walkIpv6(frame, IP6, end, w)).toBe(Wire.OK);
      expect(w.proto).toBe(ICMPV6_NEXT_HEADER);
      expect(w.l4Off).toBe(MLD_L4);
      // Router Alert (RFC 2711), value 0 = MLD.
      expect(toHex(frame.subarray(IP6 + 40 + 2, IP6 + 40 + 6))).toBe('05020000');
      const v = new Icmpv6View().wrap(frame, w.l4Off, end - w.l4Off);
      expect(v.type).toBe(Icmpv6Type.MLDV2_REPORT);
      expect(v.code).toBe(0);
      expect(v.checksum).toBe(checksum);
      expect((frame[w.l4Off + 6] << 8) | frame[w.l4Off + 7]).toBe(records);
      // The checksum covers the ICMPv6 message only, not the Hop-by-Hop header.
      expect(v.verifyChecksum(addrSumOf(frame))).toBe(true);
    }
  });
});

describe('emitIcmpv6Echo', () => {
  test('reproduces the captured request and reply into a 0xa5 buffer', () => {
    for (const at of [0, 1, 54]) {
      const buf = a5(at + 40);
      const n = emitIcmpv6Echo(Icmpv6Type.ECHO_REQUEST, 0x1c80, 1, ECHO_DATA, 0, 24, buf, at, SUM_AB);
      expect(n).toBe(32);
      expect(toHex(buf.subarray(at, at + n))).toBe(toHex(ICMP6_ECHO_REQUEST.subarray(L4)));
      expect(buf[at + n]).toBe(0xa5);
      if (at > 0) expect(buf[at - 1]).toBe(0xa5);
    }
    const buf = a5(64);
    const n = emitIcmpv6Echo(Icmpv6Type.ECHO_REPLY, 0x1c80, 1, ICMP6_ECHO_REQUEST, L4 + 8, 24, buf, 10, SUM_AB);
    expect(toHex(buf.subarray(10, 10 + n))).toBe(toHex(ICMP6_ECHO_REPLY.subarray(L4)));
  });

  test('builds the reply in place over the request', () => {
    const buf = ICMP6_ECHO_REQUEST.slice(L4);
    const n = emitIcmpv6Echo(Icmpv6Type.ECHO_REPLY, 0x1c80, 1, buf, 8, 24, buf, 0, SUM_AB);
    expect(toHex(buf.subarray(0, n))).toBe(toHex(ICMP6_ECHO_REPLY.subarray(L4)));
  });

  test('odd and empty payloads verify; ident/seq round-trip', () => {
    for (const len of [0, 1, 3, 63, 64, 65, 1232, 1453]) {
      const buf = a5(len + 8);
      const n = emitIcmpv6Echo(Icmpv6Type.ECHO_REQUEST, 0xffff, 0xfffe, pat(len), 0, len, buf, 0, 0x12345);
      expect(n).toBe(8 + len);
      const v = new Icmpv6View().wrap(buf, 0, n);
      expect(v.verifyChecksum(0x12345)).toBe(true);
      expect(v.ident).toBe(0xffff);
      expect(v.seq).toBe(0xfffe);
      const r = newIcmpv6Repr();
      expect(parseIcmpv6(v, r)).toBe(Wire.OK);
      expect(r.rest).toBe(0xffff_fffe);
    }
  });
});

describe('emitIcmpv6Error', () => {
  test('reproduces the captured port unreachable', () => {
    for (const at of [0, 3]) {
      const buf = a5(at + 80);
      const q = UDP6_CLOSED_PORT;
      const n = emitIcmpv6Error(1, Icmpv6Unreach.PORT, 0, q, IP6, q.length - IP6, buf, at, addrSumOf(ICMP6_PORT_UNREACH));
      expect(n).toBe(69);
      expect(toHex(buf.subarray(at, at + n))).toBe(toHex(ICMP6_PORT_UNREACH.subarray(L4)));
      expect(buf[at + n]).toBe(0xa5);
    }
  });

  test('quotes at most 1232 bytes: the error packet stays within 1280 (RFC 4443 §2.4(c))', () => {
    expect(ICMPV6_ERROR_MAX_QUOTED).toBe(1232);
    const big = pat(1500);
    const buf = a5(1600);
    const n = emitIcmpv6Error(Icmpv6Type.TIME_EXCEEDED, Icmpv6TimeExceeded.HOP_LIMIT, 0, big, 0, 1500, buf, 0, 7);
    expect(n).toBe(ICMPV6_HEADER_LEN + 1232);
    expect(IPV6_HEADER_LEN + n).toBe(IPV6_MIN_MTU);
    expect(buf[n]).toBe(0xa5);
    expect(toHex(buf.subarray(8, n))).toBe(toHex(big.subarray(0, 1232)));
    expect(new Icmpv6View().wrap(buf, 0, n).verifyChecksum(7)).toBe(true);
    // Exactly at the limit and one under it.
    expect(emitIcmpv6Error(3, 0, 0, big, 0, 1232, buf, 0, 7)).toBe(1240);
    expect(emitIcmpv6Error(3, 0, 0, big, 0, 1231, buf, 0, 7)).toBe(1239);
  });

  test('Packet Too Big carries a 32-bit MTU, Parameter Problem a 32-bit pointer', () => {
    const buf = a5(80);
    const q = UDP6_CLOSED_PORT.subarray(IP6);
    let n = emitIcmpv6Error(Icmpv6Type.PACKET_TOO_BIG, 0, 1280, q, 0, q.length, buf, 0, 9);
    let v = new Icmpv6View().wrap(buf, 0, n);
    expect(toHex(buf.subarray(0, 8))).toBe(`0200${toHex(buf.subarray(2, 4))}00000500`);
    expect(v.mtu).toBe(1280);
    expect(v.verifyChecksum(9)).toBe(true);
    n = emitIcmpv6Error(Icmpv6Type.PARAMETER_PROBLEM, Icmpv6ParamProblem.NEXT_HEADER, 0x8000_0028, q, 0, q.length, buf, 0, 9);
    v = new Icmpv6View().wrap(buf, 0, n);
    expect(v.code).toBe(1);
    expect(v.pointer).toBe(0x8000_0028);
    expect(toHex(buf.subarray(4, 8))).toBe('80000028');
    expect(v.verifyChecksum(9)).toBe(true);
  });

  test('built in place: the quoted packet overlaps the header being written', () => {
    const q = UDP6_CLOSED_PORT.subarray(IP6);
    const buf = a5(100);
    buf.set(q, 4);
    const n = emitIcmpv6Error(1, 4, 0, buf, 4, q.length, buf, 0, addrSumOf(ICMP6_PORT_UNREACH));
    expect(toHex(buf.subarray(0, n))).toBe(toHex(ICMP6_PORT_UNREACH.subarray(L4)));
  });

  test('a negative length quotes nothing', () => {
    const buf = a5(16);
    expect(emitIcmpv6Error(1, 3, 0, UDP6_CLOSED_PORT, 0, -5, buf, 0, 0)).toBe(8);
    expect(buf[8]).toBe(0xa5);
  });
});

describe('ICMPv6 misc', () => {
  test('type and code tables', () => {
    expect(Icmpv6Unreach).toEqual({
      NO_ROUTE: 0, ADMIN_PROHIBITED: 1, BEYOND_SCOPE: 2, ADDRESS: 3, PORT: 4, SOURCE_POLICY: 5, REJECT_ROUTE: 6,
    });
    expect([Icmpv6Type.MLD_QUERY, Icmpv6Type.MLD_REPORT, Icmpv6Type.MLD_DONE, Icmpv6Type.MLDV2_REPORT]).toEqual([
      130, 131, 132, 143,
    ]);
    expect([133, 134, 135, 136, 137]).toEqual([
      Icmpv6Type.ROUTER_SOLICITATION,
      Icmpv6Type.ROUTER_ADVERTISEMENT,
      Icmpv6Type.NEIGHBOR_SOLICITATION,
      Icmpv6Type.NEIGHBOR_ADVERTISEMENT,
      Icmpv6Type.REDIRECT,
    ]);
  });

  test('isIcmpv6Error: types below 128 (RFC 4443 §2.1)', () => {
    expect([0, 1, 2, 3, 4, 127, 128, 129, 133, 143, 255].map(isIcmpv6Error)).toEqual([
      true, true, true, true, true, true, false, false, false, false, false,
    ]);
  });

  test('setters and fillIcmpv6Checksum rebuild the captured request', () => {
    const buf = a5(32);
    buf.set(ECHO_DATA, 8);
    const v = new Icmpv6View().wrap(buf, 0, 32);
    v.type = 128;
    v.code = 0;
    v.ident = 0x1c80;
    v.seq = 1;
    fillIcmpv6Checksum(buf, 0, 32, SUM_AB);
    expect(toHex(buf)).toBe(toHex(ICMP6_ECHO_REQUEST.subarray(L4)));
  });

  test('truncation sweep: < 8 is TRUNCATED; a cut message fails the checksum', () => {
    const v = new Icmpv6View();
    const r = newIcmpv6Repr();
    for (const frame of [ICMP6_ECHO_REQUEST, ICMP6_PORT_UNREACH, NDP_RA_DNSMASQ]) {
      const m = frame.subarray(L4);
      const sum = addrSumOf(frame);
      for (let len = 0; len < m.length; len++) {
        const cut = m.slice(0, len);
        v.wrap(cut, 0, len);
        if (len < ICMPV6_HEADER_LEN) {
          expect(v.check()).toBe(Wire.TRUNCATED);
          expect(parseIcmpv6(v, r)).toBe(Wire.TRUNCATED);
        } else {
          expect(v.check()).toBe(Wire.OK);
          expect(v.payloadLength).toBe(len - 8);
          expect(v.verifyChecksum(sum)).toBe(false);
        }
      }
    }
  });
});
