import { describe, expect, test } from 'vitest';
import { Wire } from '../../src/wire/errors.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import {
  UDP_HEADER_LEN,
  UdpView,
  emitUdpHeader,
  fillUdpChecksumV4,
  fillUdpPseudoChecksumV4,
  newUdpRepr,
  parseUdp,
  type UdpRepr,
} from '../../src/wire/udp.js';
import { completeChecksum } from '../../src/wire/virtio-net.js';
import {
  ETH,
  IP_A,
  IP_B,
  UDP_CLOSED_PORT,
  UDP_HELLO,
  UDP_ODD,
  VNET_ETH,
  VNET_UDP_GSO,
  VNET_UDP_PARTIAL,
  a5,
  concat,
  fill,
  pat,
  prng,
  toHex,
} from './golden.js';

const L4 = ETH + 20;

function udp(frame: Uint8Array): Uint8Array {
  return frame.subarray(L4);
}

const GOLDEN: [string, Uint8Array, UdpRepr, number, string][] = [
  ['hello usernet', UDP_HELLO, { srcPort: 40000, dstPort: 9999, payloadLength: 13 }, 0x2734, 'hello usernet'],
  ['odd length', UDP_ODD, { srcPort: 40000, dstPort: 9999, payloadLength: 3 }, 0x5521, 'odd'],
  ['closed port', UDP_CLOSED_PORT, { srcPort: 40000, dstPort: 9998, payloadLength: 16 }, 0x4c60, 'to a closed port'],
];

describe('UDP golden frames', () => {
  test.each(GOLDEN)('%s: fields, checksum, parse', (_name, frame, want, csum, text) => {
    const v = new UdpView().wrap(frame, L4, frame.length - L4);
    expect(v.check()).toBe(Wire.OK);
    expect(v.srcPort).toBe(want.srcPort);
    expect(v.dstPort).toBe(want.dstPort);
    expect(v.length).toBe(8 + want.payloadLength);
    expect(v.checksum).toBe(csum);
    expect(v.payloadOffset).toBe(L4 + 8);
    expect(v.payloadLength).toBe(want.payloadLength);
    expect(new TextDecoder().decode(frame.subarray(v.payloadOffset, v.payloadOffset + v.payloadLength))).toBe(text);
    expect(v.verifyChecksumV4(IP_A, IP_B)).toBe(true);
    expect(v.verifyChecksumV4(IP_B, IP_A)).toBe(true); // the pseudo-header sum is symmetric
    expect(v.verifyChecksumV4(IP_A, IP_B + 1)).toBe(false);
    const r = newUdpRepr();
    expect(parseUdp(v, r)).toBe(Wire.OK);
    expect(r).toEqual(want);
  });

  test.each(GOLDEN)('%s: emit + fillUdpChecksumV4 reproduce the bytes', (_name, frame, repr) => {
    const d = udp(frame);
    for (const at of [0, 1, 2, 3]) {
      const buf = a5(at + d.length + 4);
      buf.set(d.subarray(8), at + 8);
      expect(emitUdpHeader(repr, buf, at)).toBe(UDP_HEADER_LEN);
      expect(toHex(buf.subarray(at + 6, at + 8))).toBe('0000');
      fillUdpChecksumV4(buf, at, IP_A, IP_B);
      expect(toHex(buf.subarray(at, at + d.length))).toBe(toHex(d));
      expect(buf[at + d.length]).toBe(0xa5);
    }
  });

  test('bytes after the UDP length (Ethernet padding) are ignored', () => {
    const padded = concat(UDP_ODD, fill(0, 60 - UDP_ODD.length));
    const v = new UdpView().wrap(padded, L4, padded.length - L4);
    expect(v.check()).toBe(Wire.OK);
    expect(v.payloadLength).toBe(3);
    expect(v.verifyChecksumV4(IP_A, IP_B)).toBe(true);
    padded[padded.length - 1] = 0x77;
    expect(v.verifyChecksumV4(IP_A, IP_B)).toBe(true);
  });

  test('checksum 0 means none over IPv4', () => {
    const d = udp(UDP_HELLO).slice();
    d[6] = 0;
    d[7] = 0;
    d[10] ^= 0xff;
    expect(new UdpView().wrap(d, 0, d.length).verifyChecksumV4(IP_A, IP_B)).toBe(true);
  });

  test('a computed checksum of 0 is sent as 0xffff (RFC 768) and verifies', () => {
    const buf = a5(10);
    emitUdpHeader({ srcPort: 1, dstPort: 2, payloadLength: 2 }, buf, 0);
    buf[8] = 0;
    buf[9] = 0;
    fillUdpChecksumV4(buf, 0, IP_A, IP_B);
    const c = (buf[6] << 8) | buf[7];
    // A payload word equal to the checksum of the zero payload makes the sum 0xffff.
    buf[8] = c >>> 8;
    buf[9] = c & 0xff;
    fillUdpChecksumV4(buf, 0, IP_A, IP_B);
    expect(toHex(buf.subarray(6, 8))).toBe('ffff');
    expect(new UdpView().wrap(buf, 0, 10).verifyChecksumV4(IP_A, IP_B)).toBe(true);
  });

  test('a corrupted payload fails verification', () => {
    const d = udp(UDP_HELLO).slice();
    d[9] ^= 1;
    expect(new UdpView().wrap(d, 0, d.length).verifyChecksumV4(IP_A, IP_B)).toBe(false);
  });

  test('round trip with random reprs and payloads up to 64 KB', () => {
    const rand = prng(768);
    const out = newUdpRepr();
    for (let k = 0; k < 200; k++) {
      const len = k === 0 ? 65527 : (rand() * 3000) | 0;
      const r: UdpRepr = { srcPort: (rand() * 65536) | 0, dstPort: (rand() * 65536) | 0, payloadLength: len };
      const buf = a5(8 + len);
      buf.set(pat(len, k), 8);
      emitUdpHeader(r, buf, 0);
      fillUdpChecksumV4(buf, 0, 0xc0a8_0001, 0xffff_fffe);
      const v = new UdpView().wrap(buf, 0, buf.length);
      expect(parseUdp(v, out)).toBe(Wire.OK);
      expect(out).toEqual(r);
      expect(v.verifyChecksumV4(0xc0a8_0001, 0xffff_fffe)).toBe(true);
    }
  });

  test('setters', () => {
    const buf = a5(8);
    const v = new UdpView().wrap(buf, 0, 8);
    v.srcPort = 40000;
    v.dstPort = 9999;
    v.length = 21;
    v.checksum = 0x2734;
    expect(toHex(buf)).toBe(toHex(udp(UDP_HELLO).subarray(0, 8)));
  });
});

describe('UDP with TAP offloads (NEEDS_CSUM)', () => {
  test('fillUdpPseudoChecksumV4 stores what Linux stores for CHECKSUM_PARTIAL', () => {
    const f = VNET_UDP_PARTIAL.slice();
    const at = VNET_ETH + 20;
    expect(toHex(f.subarray(at + 6, at + 8))).toBe('1429');
    f[at + 6] = 0xa5;
    f[at + 7] = 0xa5;
    fillUdpPseudoChecksumV4(f, at, IP_A, IP_B);
    expect(toHex(f)).toBe(toHex(VNET_UDP_PARTIAL));
    // A partial checksum does not verify as a full one.
    expect(new UdpView().wrap(f, at, 21).verifyChecksumV4(IP_A, IP_B)).toBe(false);
  });

  test('completing the partial sum gives the full checksum Linux sends without offloads', () => {
    const f = VNET_UDP_PARTIAL.slice();
    expect(completeChecksum(f, 10, f.length - 10, 34, 6)).toBe(Wire.OK);
    expect(toHex(f.subarray(VNET_ETH + 20))).toBe(toHex(udp(UDP_HELLO)));
  });

  test('USO super-frame: the pseudo sum covers the whole 2508-byte datagram', () => {
    const f = VNET_UDP_GSO.slice();
    const ip = new Ipv4View().wrap(f, VNET_ETH, f.length - VNET_ETH);
    expect(ip.check()).toBe(Wire.OK);
    const v = new UdpView().wrap(f, ip.payloadOffset, ip.payloadLength);
    expect(v.check()).toBe(Wire.OK);
    expect(v.length).toBe(2508);
    expect(v.payloadLength).toBe(2500);
    expect(v.checksum).toBe(0x1de0);
    f[v.off + 6] = 0;
    f[v.off + 7] = 0;
    fillUdpPseudoChecksumV4(f, v.off, IP_A, IP_B);
    expect(v.checksum).toBe(0x1de0);
  });
});

describe('UDP malformed input', () => {
  test('truncation sweep: every cut of every golden datagram fails check()', () => {
    const v = new UdpView();
    const r = newUdpRepr();
    for (const [, frame] of GOLDEN) {
      const d = udp(frame);
      for (let len = 0; len < d.length; len++) {
        const cut = d.slice(0, len);
        const code = v.wrap(cut, 0, len).check();
        expect(code).toBe(len < 8 ? Wire.TRUNCATED : Wire.BAD_TOTAL_LEN);
        expect(parseUdp(v, r)).toBe(code);
      }
    }
  });

  test('length < 8 is BAD_TOTAL_LEN', () => {
    const d = udp(UDP_HELLO).slice();
    for (const length of [0, 1, 7]) {
      d[4] = 0;
      d[5] = length;
      expect(new UdpView().wrap(d, 0, d.length).check()).toBe(Wire.BAD_TOTAL_LEN);
    }
    d[5] = 8;
    expect(new UdpView().wrap(d, 0, d.length).check()).toBe(Wire.OK);
  });

  test('length larger than the IP payload is BAD_TOTAL_LEN', () => {
    const d = udp(UDP_HELLO).slice();
    d[5] = 22;
    expect(new UdpView().wrap(d, 0, d.length).check()).toBe(Wire.BAD_TOTAL_LEN);
    d[4] = 0xff;
    d[5] = 0xff;
    expect(new UdpView().wrap(d, 0, d.length).check()).toBe(Wire.BAD_TOTAL_LEN);
  });
});
