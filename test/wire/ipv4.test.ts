import { describe, expect, test } from 'vitest';
import { Wire } from '../../src/wire/errors.js';
import {
  IPV4_HEADER_LEN,
  IpProtocol,
  Ipv4View,
  emitIpv4,
  fillIpv4Checksum,
  newIpv4Repr,
  parseIpv4Header,
  type Ipv4Repr,
} from '../../src/wire/ipv4.js';
import {
  ETH,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_ECHO_RR,
  ICMP_PORT_UNREACH,
  IPV4_FRAG_FIRST,
  IPV4_FRAG_LAST,
  IP_A,
  IP_B,
  TCP_DATA,
  TCP_SYN,
  UDP_HELLO,
  UDP_ODD,
  a5,
  concat,
  fill,
  prng,
  toHex,
} from './golden.js';

function ip(frame: Uint8Array): Uint8Array {
  return frame.subarray(ETH);
}

const BASE: Ipv4Repr = {
  src: IP_A,
  dst: IP_B,
  protocol: IpProtocol.ICMP,
  ttl: 64,
  tos: 0,
  ident: 0,
  dontFragment: false,
  moreFragments: false,
  fragOffset: 0,
  payloadLength: 0,
};

/** The captured headers without options, as reprs. */
const GOLDEN: [string, Uint8Array, Ipv4Repr][] = [
  ['echo request (DF)', ICMP_ECHO_REQUEST, { ...BASE, ident: 0x1b41, dontFragment: true, payloadLength: 32 }],
  ['echo reply', ICMP_ECHO_REPLY, { ...BASE, src: IP_B, dst: IP_A, ident: 0x48cb, payloadLength: 32 }],
  ['first fragment (MF)', IPV4_FRAG_FIRST, { ...BASE, ident: 0x1b43, moreFragments: true, payloadLength: 1480 }],
  ['last fragment (offset 1480)', IPV4_FRAG_LAST, { ...BASE, ident: 0x1b43, fragOffset: 1480, payloadLength: 128 }],
  ['UDP', UDP_HELLO, { ...BASE, protocol: IpProtocol.UDP, ident: 0xd29f, dontFragment: true, payloadLength: 21 }],
  [
    'ICMP error (tos 0xc0)',
    ICMP_PORT_UNREACH,
    { ...BASE, src: IP_B, dst: IP_A, tos: 0xc0, ident: 0x4946, payloadLength: 52 },
  ],
  ['TCP SYN', TCP_SYN, { ...BASE, protocol: IpProtocol.TCP, ident: 0xc150, dontFragment: true, payloadLength: 40 }],
];

describe('IPv4 golden frames', () => {
  test.each(GOLDEN)('%s: fields, checksum, parse', (_name, frame, want) => {
    const v = new Ipv4View().wrap(frame, ETH, frame.length - ETH);
    expect(v.check()).toBe(Wire.OK);
    expect(v.version).toBe(4);
    expect(v.ihl).toBe(5);
    expect(v.headerLen).toBe(20);
    expect(v.tos).toBe(want.tos);
    expect(v.dscp).toBe(want.tos >>> 2);
    expect(v.ecn).toBe(want.tos & 3);
    expect(v.totalLength).toBe(20 + want.payloadLength);
    expect(v.ident).toBe(want.ident);
    expect(v.dontFragment).toBe(want.dontFragment);
    expect(v.moreFragments).toBe(want.moreFragments);
    expect(v.fragOffset).toBe(want.fragOffset);
    expect(v.isFragment).toBe(want.moreFragments || want.fragOffset !== 0);
    expect(v.ttl).toBe(64);
    expect(v.protocol).toBe(want.protocol);
    expect(v.checksum).toBe((frame[ETH + 10] << 8) | frame[ETH + 11]);
    expect(v.src).toBe(want.src);
    expect(v.dst).toBe(want.dst);
    expect(v.payloadOffset).toBe(ETH + 20);
    expect(v.payloadLength).toBe(want.payloadLength);
    expect(v.verifyChecksum()).toBe(true);
    const r = newIpv4Repr();
    expect(parseIpv4Header(v, r)).toBe(Wire.OK);
    expect(r).toEqual(want);
  });

  test.each(GOLDEN)('%s: emit reproduces the 20 header bytes, checksum included', (_name, frame, repr) => {
    for (const at of [0, 3, 24]) {
      const buf = a5(at + 24);
      expect(emitIpv4(repr, buf, at)).toBe(IPV4_HEADER_LEN);
      expect(toHex(buf.subarray(at, at + 20))).toBe(toHex(frame.subarray(ETH, ETH + 20)));
      expect(buf[at + 20]).toBe(0xa5);
    }
  });

  test('header with a 40-byte Record Route option (ihl 15)', () => {
    const v = new Ipv4View().wrap(ICMP_ECHO_RR, ETH, ICMP_ECHO_RR.length - ETH);
    expect(v.check()).toBe(Wire.OK);
    expect(v.ihl).toBe(15);
    expect(v.headerLen).toBe(60);
    expect(v.totalLength).toBe(76);
    expect(v.payloadOffset).toBe(ETH + 60);
    expect(v.payloadLength).toBe(16);
    expect(v.verifyChecksum()).toBe(true);
    expect(ICMP_ECHO_RR[v.payloadOffset]).toBe(8); // the ICMP echo request starts after the options
  });

  test('fillIpv4Checksum recomputes over options too', () => {
    const b = ip(ICMP_ECHO_RR).slice();
    const want = toHex(b);
    b[10] = 0x12;
    b[11] = 0x34;
    b[8] = 63;
    fillIpv4Checksum(b, 0, 60);
    expect(new Ipv4View().wrap(b, 0, b.length).verifyChecksum()).toBe(true);
    b[8] = 64;
    fillIpv4Checksum(b, 0, 60);
    expect(toHex(b)).toBe(want);
  });

  test('verifyChecksum catches a flipped bit', () => {
    const b = ip(UDP_HELLO).slice();
    const v = new Ipv4View().wrap(b, 0, b.length);
    for (let bit = 0; bit < 160; bit++) {
      b[bit >>> 3] ^= 1 << (bit & 7);
      expect(v.verifyChecksum()).toBe(false);
      b[bit >>> 3] ^= 1 << (bit & 7);
    }
    expect(v.verifyChecksum()).toBe(true);
  });

  test('Ethernet padding is not payload (totalLength bounds it)', () => {
    const padded = concat(UDP_ODD, fill(0, 60 - UDP_ODD.length));
    const v = new Ipv4View().wrap(padded, ETH, padded.length - ETH);
    expect(v.check()).toBe(Wire.OK);
    expect(v.len).toBe(46);
    expect(v.payloadLength).toBe(11);
  });

  test('setters rebuild a header; fragOffset is in bytes', () => {
    const b = a5(20);
    const v = new Ipv4View().wrap(b, 0, 20);
    v.version = 4;
    v.ihl = 5;
    v.tos = 0;
    v.totalLength = 148;
    v.ident = 0x1b43;
    b[6] = 0; // flags byte was 0xa5: setters preserve the bits they do not own
    v.dontFragment = true;
    v.dontFragment = false;
    v.moreFragments = true;
    v.moreFragments = false;
    v.fragOffset = 1480;
    v.ttl = 64;
    v.protocol = IpProtocol.ICMP;
    v.src = IP_A;
    v.dst = IP_B;
    v.checksum = 0;
    fillIpv4Checksum(b, 0, 20);
    expect(toHex(b)).toBe(toHex(ip(IPV4_FRAG_LAST).subarray(0, 20)));
    v.fragOffset = 8 * 0x1fff;
    v.moreFragments = true;
    expect(v.fragOffset).toBe(65528);
    expect(v.moreFragments).toBe(true);
    expect(v.dontFragment).toBe(false);
  });

  test('round trip parse(emit(r)) for random reprs', () => {
    const rand = prng(791);
    const u = (bits: number) => Math.floor(rand() * 2 ** bits);
    const buf = a5(20 + 1500);
    const out = newIpv4Repr();
    for (let k = 0; k < 1000; k++) {
      const r: Ipv4Repr = {
        src: u(32),
        dst: u(32),
        protocol: u(8),
        ttl: u(8),
        tos: u(8),
        ident: u(16),
        dontFragment: rand() < 0.5,
        moreFragments: rand() < 0.5,
        fragOffset: u(13) * 8,
        payloadLength: u(11) % 1500,
      };
      emitIpv4(r, buf, 0);
      const v = new Ipv4View().wrap(buf, 0, 20 + r.payloadLength);
      expect(parseIpv4Header(v, out)).toBe(Wire.OK);
      expect(out).toEqual(r);
      expect(v.verifyChecksum()).toBe(true);
    }
  });

  test('a 64 KB datagram: totalLength 65535', () => {
    const buf = a5(65535);
    emitIpv4({ ...BASE, payloadLength: 65515 }, buf, 0);
    const v = new Ipv4View().wrap(buf, 0, 65535);
    expect(v.check()).toBe(Wire.OK);
    expect(v.totalLength).toBe(65535);
    expect(v.payloadLength).toBe(65515);
  });
});

describe('IPv4 malformed input', () => {
  const frames = [ICMP_ECHO_REQUEST, ICMP_ECHO_RR, IPV4_FRAG_FIRST, IPV4_FRAG_LAST, UDP_HELLO, ICMP_PORT_UNREACH, TCP_DATA];

  test('truncation sweep: every cut of every golden datagram fails check() without throwing', () => {
    const v = new Ipv4View();
    const r = newIpv4Repr();
    for (const frame of frames) {
      const d = ip(frame);
      for (let len = 0; len < d.length; len++) {
        const cut = d.slice(0, len);
        const code = v.wrap(cut, 0, len).check();
        expect(code).not.toBe(Wire.OK);
        expect(parseIpv4Header(v, r)).toBe(code);
        if (len < 20) expect(code).toBe(Wire.TRUNCATED);
      }
      expect(v.wrap(d, 0, d.length).check()).toBe(Wire.OK);
    }
  });

  test('totalLength larger than what arrived', () => {
    const d = ip(UDP_HELLO).slice();
    d[3] += 1;
    expect(new Ipv4View().wrap(d, 0, d.length).check()).toBe(Wire.BAD_TOTAL_LEN);
    d[2] = 0xff;
    expect(new Ipv4View().wrap(d, 0, d.length).check()).toBe(Wire.BAD_TOTAL_LEN);
  });

  test('totalLength smaller than the header', () => {
    const d = ip(UDP_HELLO).slice();
    for (const total of [0, 1, 19]) {
      d[2] = 0;
      d[3] = total;
      expect(new Ipv4View().wrap(d, 0, d.length).check()).toBe(Wire.BAD_TOTAL_LEN);
    }
    d[3] = 20;
    const v = new Ipv4View().wrap(d, 0, d.length);
    expect(v.check()).toBe(Wire.OK);
    expect(v.payloadLength).toBe(0);
  });

  test('ihl < 5 is BAD_HEADER_LEN', () => {
    const d = ip(UDP_HELLO).slice();
    for (let ihl = 0; ihl < 5; ihl++) {
      d[0] = 0x40 | ihl;
      expect(new Ipv4View().wrap(d, 0, d.length).check()).toBe(Wire.BAD_HEADER_LEN);
    }
  });

  test('ihl past the end is BAD_HEADER_LEN', () => {
    const d = ip(UDP_HELLO).slice(); // 41 bytes
    d[0] = 0x4b; // 44-byte header
    expect(new Ipv4View().wrap(d, 0, d.length).check()).toBe(Wire.BAD_HEADER_LEN);
    d[0] = 0x4a; // 40: fits, but totalLength 41 leaves 1 byte: fine
    expect(new Ipv4View().wrap(d, 0, d.length).check()).toBe(Wire.OK);
  });

  test('ihl past totalLength but within the frame is BAD_TOTAL_LEN', () => {
    const d = concat(ip(UDP_HELLO), fill(0, 30));
    d[0] = 0x4f; // 60 > totalLength 41
    expect(new Ipv4View().wrap(d, 0, d.length).check()).toBe(Wire.BAD_TOTAL_LEN);
  });

  test('version other than 4 is BAD_VERSION', () => {
    const d = ip(UDP_HELLO).slice();
    for (const ver of [0, 5, 6, 15]) {
      d[0] = (ver << 4) | 5;
      expect(new Ipv4View().wrap(d, 0, d.length).check()).toBe(Wire.BAD_VERSION);
    }
  });

  test('check() ignores the checksum; verifyChecksum() reports it', () => {
    const d = ip(UDP_HELLO).slice();
    d[11] ^= 0xff;
    const v = new Ipv4View().wrap(d, 0, d.length);
    expect(v.check()).toBe(Wire.OK);
    expect(v.verifyChecksum()).toBe(false);
  });
});
