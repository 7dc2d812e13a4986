import { describe, expect, test } from 'vitest';
import { Wire } from '../../src/wire/errors.js';
import {
  ICMPV4_ERROR_MAX_QUOTED,
  ICMPV4_HEADER_LEN,
  Icmpv4Type,
  Icmpv4Unreach,
  Icmpv4View,
  emitIcmpv4Echo,
  emitIcmpv4Error,
  fillIcmpv4Checksum,
  isIcmpv4Error,
  newIcmpv4Repr,
  parseIcmpv4,
} from '../../src/wire/icmpv4.js';
import { IPV4_HEADER_LEN, Ipv4View } from '../../src/wire/ipv4.js';
import {
  ETH,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_ECHO_RR,
  ICMP_PORT_UNREACH,
  IPV4_FRAG_FIRST,
  UDP_CLOSED_PORT,
  a5,
  hex,
  pat,
  toHex,
} from './golden.js';

/** The ICMP message of a captured frame with a 20-byte IP header. */
function icmp(frame: Uint8Array): Uint8Array {
  return frame.subarray(ETH + IPV4_HEADER_LEN);
}

const ECHO_DATA = hex('dd1e0b6b000000007455000000000000736e657475736e65');

describe('ICMPv4 golden frames', () => {
  test('echo request: every field', () => {
    const m = icmp(ICMP_ECHO_REQUEST);
    const v = new Icmpv4View().wrap(ICMP_ECHO_REQUEST, ETH + 20, m.length);
    expect(v.check()).toBe(Wire.OK);
    expect(v.type).toBe(Icmpv4Type.ECHO_REQUEST);
    expect(v.code).toBe(0);
    expect(v.checksum).toBe(0xc29b);
    expect(v.ident).toBe(0x1bc8);
    expect(v.seq).toBe(1);
    expect(v.rest).toBe(0x1bc8_0001);
    expect(v.payloadOffset).toBe(ETH + 28);
    expect(v.payloadLength).toBe(24);
    expect(toHex(ICMP_ECHO_REQUEST.subarray(v.payloadOffset))).toBe(toHex(ECHO_DATA));
    expect(v.verifyChecksum()).toBe(true);
    const r = newIcmpv4Repr();
    expect(parseIcmpv4(v, r)).toBe(Wire.OK);
    expect(r).toEqual({ type: 8, code: 0, rest: 0x1bc8_0001, payloadOffset: ETH + 28, payloadLength: 24 });
  });

  test('echo reply', () => {
    const v = new Icmpv4View().wrap(ICMP_ECHO_REPLY, ETH + 20, 32);
    expect(v.check()).toBe(Wire.OK);
    expect(v.type).toBe(Icmpv4Type.ECHO_REPLY);
    expect(v.ident).toBe(0x1bc8);
    expect(v.seq).toBe(1);
    expect(v.verifyChecksum()).toBe(true);
  });

  test('echo request behind IP options', () => {
    const ipv = new Ipv4View().wrap(ICMP_ECHO_RR, ETH, ICMP_ECHO_RR.length - ETH);
    expect(ipv.check()).toBe(Wire.OK);
    const v = new Icmpv4View().wrap(ICMP_ECHO_RR, ipv.payloadOffset, ipv.payloadLength);
    expect(v.check()).toBe(Wire.OK);
    expect(v.type).toBe(Icmpv4Type.ECHO_REQUEST);
    expect(v.ident).toBe(0x1bc9);
    expect(v.payloadLength).toBe(8);
    expect(v.verifyChecksum()).toBe(true);
  });

  test('port unreachable quoting the whole offending datagram', () => {
    const v = new Icmpv4View().wrap(ICMP_PORT_UNREACH, ETH + 20, 52);
    expect(v.check()).toBe(Wire.OK);
    expect(v.type).toBe(Icmpv4Type.DEST_UNREACHABLE);
    expect(v.code).toBe(Icmpv4Unreach.PORT);
    expect(v.rest).toBe(0);
    expect(v.verifyChecksum()).toBe(true);
    expect(toHex(ICMP_PORT_UNREACH.subarray(v.payloadOffset))).toBe(toHex(UDP_CLOSED_PORT.subarray(ETH)));
    expect(isIcmpv4Error(v.type)).toBe(true);
  });
});

describe('emitIcmpv4Echo', () => {
  test('reproduces the captured request into a 0xa5 buffer', () => {
    for (const at of [0, 1, 34]) {
      const buf = a5(at + 40);
      const n = emitIcmpv4Echo(Icmpv4Type.ECHO_REQUEST, 0x1bc8, 1, ECHO_DATA, 0, ECHO_DATA.length, buf, at);
      expect(n).toBe(32);
      expect(toHex(buf.subarray(at, at + n))).toBe(toHex(icmp(ICMP_ECHO_REQUEST)));
      expect(buf[at + n]).toBe(0xa5);
    }
  });

  test('builds the captured reply from the request in another buffer', () => {
    const buf = a5(64);
    const n = emitIcmpv4Echo(
      Icmpv4Type.ECHO_REPLY,
      0x1bc8,
      1,
      ICMP_ECHO_REQUEST,
      ETH + 28,
      24,
      buf,
      10,
    );
    expect(toHex(buf.subarray(10, 10 + n))).toBe(toHex(icmp(ICMP_ECHO_REPLY)));
  });

  test('builds the reply in place over the request', () => {
    const buf = icmp(ICMP_ECHO_REQUEST).slice();
    const n = emitIcmpv4Echo(Icmpv4Type.ECHO_REPLY, 0x1bc8, 1, buf, 8, 24, buf, 0);
    expect(toHex(buf.subarray(0, n))).toBe(toHex(icmp(ICMP_ECHO_REPLY)));
  });

  test('overlapping source and destination in one buffer', () => {
    const data = pat(100);
    const buf = a5(200);
    buf.set(data, 4);
    // The payload at 4..104 moves to 18..118: overlapping, destination after source.
    const n = emitIcmpv4Echo(Icmpv4Type.ECHO_REQUEST, 7, 9, buf, 4, 100, buf, 10);
    expect(toHex(buf.subarray(18, 118))).toBe(toHex(data));
    expect(new Icmpv4View().wrap(buf, 10, n).verifyChecksum()).toBe(true);
  });

  test('odd payload length and empty payload', () => {
    for (const len of [0, 1, 3, 63, 64, 65, 1473]) {
      const buf = a5(len + 8);
      const n = emitIcmpv4Echo(Icmpv4Type.ECHO_REQUEST, 0xffff, 0xffff, pat(len), 0, len, buf, 0);
      expect(n).toBe(8 + len);
      const v = new Icmpv4View().wrap(buf, 0, n);
      expect(v.verifyChecksum()).toBe(true);
      expect(v.ident).toBe(0xffff);
      expect(v.seq).toBe(0xffff);
    }
  });
});

describe('emitIcmpv4Error', () => {
  test('reproduces the captured port unreachable', () => {
    for (const at of [0, 5]) {
      const buf = a5(at + 60);
      const n = emitIcmpv4Error(
        Icmpv4Type.DEST_UNREACHABLE,
        Icmpv4Unreach.PORT,
        0,
        UDP_CLOSED_PORT,
        ETH,
        UDP_CLOSED_PORT.length - ETH,
        buf,
        at,
      );
      expect(n).toBe(52);
      expect(toHex(buf.subarray(at, at + n))).toBe(toHex(icmp(ICMP_PORT_UNREACH)));
      expect(buf[at + n]).toBe(0xa5);
    }
  });

  test('quotes at most 548 bytes by default: the IP datagram stays within 576 (RFC 1812 §4.3.2.3)', () => {
    const quoted = IPV4_FRAG_FIRST.subarray(ETH);
    const buf = a5(1600);
    const n = emitIcmpv4Error(Icmpv4Type.TIME_EXCEEDED, 0, 0, quoted, 0, quoted.length, buf, 0);
    expect(n).toBe(ICMPV4_HEADER_LEN + ICMPV4_ERROR_MAX_QUOTED);
    expect(IPV4_HEADER_LEN + n).toBe(576);
    expect(buf[n]).toBe(0xa5);
    expect(toHex(buf.subarray(8, n))).toBe(toHex(quoted.subarray(0, 548)));
    expect(new Icmpv4View().wrap(buf, 0, n).verifyChecksum()).toBe(true);
  });

  test('an explicit maxQuoted: RFC 792 minimum of IP header + 8 bytes', () => {
    const quoted = UDP_CLOSED_PORT.subarray(ETH);
    const buf = a5(64);
    const n = emitIcmpv4Error(3, 1, 0, quoted, 0, quoted.length, buf, 0, 28);
    expect(n).toBe(36);
    expect(buf[36]).toBe(0xa5);
    expect(new Icmpv4View().wrap(buf, 0, n).verifyChecksum()).toBe(true);
  });

  test('FRAG_NEEDED carries the next-hop MTU in bytes 6..8 (RFC 1191)', () => {
    const buf = a5(64);
    const n = emitIcmpv4Error(3, Icmpv4Unreach.FRAG_NEEDED, 1400, UDP_CLOSED_PORT, ETH, 28, buf, 0);
    const v = new Icmpv4View().wrap(buf, 0, n);
    expect(v.code).toBe(4);
    expect(v.nextHopMtu).toBe(1400);
    expect(v.rest).toBe(1400);
    expect(toHex(buf.subarray(4, 8))).toBe('00000578');
  });

  test('PARAMETER_PROBLEM pointer in the top byte of rest', () => {
    const buf = a5(64);
    emitIcmpv4Error(Icmpv4Type.PARAMETER_PROBLEM, 0, 0x0c00_0000, UDP_CLOSED_PORT, ETH, 28, buf, 0);
    expect(toHex(buf.subarray(4, 8))).toBe('0c000000');
  });

  test('built in place: the quoted datagram overlaps the ICMP header being written', () => {
    const quoted = UDP_CLOSED_PORT.subarray(ETH);
    const buf = a5(100);
    buf.set(quoted, 4); // datagram at 4..48; the ICMP message goes to 0..52
    const n = emitIcmpv4Error(3, 3, 0, buf, 4, quoted.length, buf, 0);
    expect(toHex(buf.subarray(0, n))).toBe(toHex(icmp(ICMP_PORT_UNREACH)));
  });

  test('negative lengths quote nothing', () => {
    const buf = a5(16);
    expect(emitIcmpv4Error(3, 3, 0, UDP_CLOSED_PORT, ETH, -5, buf, 0)).toBe(8);
    expect(emitIcmpv4Error(3, 3, 0, UDP_CLOSED_PORT, ETH, 44, buf, 0, -1)).toBe(8);
    expect(buf[8]).toBe(0xa5);
  });
});

describe('ICMPv4 misc', () => {
  test('isIcmpv4Error', () => {
    expect([0, 3, 4, 5, 8, 11, 12, 13, 255].map(isIcmpv4Error)).toEqual([
      false, true, true, true, false, true, true, false, false,
    ]);
  });

  test('setters and fillIcmpv4Checksum', () => {
    const buf = a5(32);
    buf.set(ECHO_DATA, 8);
    const v = new Icmpv4View().wrap(buf, 0, 32);
    v.type = 8;
    v.code = 0;
    v.rest = 0;
    v.ident = 0x1bc8;
    v.seq = 1;
    fillIcmpv4Checksum(buf, 0, 32);
    expect(toHex(buf)).toBe(toHex(icmp(ICMP_ECHO_REQUEST)));
    v.checksum = 0xc29b;
    expect(v.verifyChecksum()).toBe(true);
  });

  test('truncation sweep: < 8 is TRUNCATED; a cut message fails the checksum', () => {
    const v = new Icmpv4View();
    const r = newIcmpv4Repr();
    for (const frame of [ICMP_ECHO_REQUEST, ICMP_PORT_UNREACH]) {
      const m = icmp(frame);
      for (let len = 0; len < m.length; len++) {
        const cut = m.slice(0, len);
        v.wrap(cut, 0, len);
        if (len < ICMPV4_HEADER_LEN) {
          expect(v.check()).toBe(Wire.TRUNCATED);
          expect(parseIcmpv4(v, r)).toBe(Wire.TRUNCATED);
        } else {
          expect(v.check()).toBe(Wire.OK);
          expect(v.payloadLength).toBe(len - 8);
          expect(v.verifyChecksum()).toBe(false);
        }
      }
    }
  });
});
