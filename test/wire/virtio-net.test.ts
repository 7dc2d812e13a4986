import { describe, expect, test } from 'vitest';
import { Wire } from '../../src/wire/errors.js';
import { EthernetView, EtherType } from '../../src/wire/ethernet.js';
import { fillTcpChecksumV4, fillTcpPseudoChecksumV4 } from '../../src/wire/tcp.js';
import { fillUdpChecksumV4, fillUdpPseudoChecksumV4 } from '../../src/wire/udp.js';
import {
  GsoType,
  VNET_HDR_LEN,
  VirtioNetView,
  VnetFlag,
  completeChecksum,
  emitVirtioNet,
  emitVirtioNetNone,
  newVirtioNetRepr,
  parseVirtioNet,
  type VirtioNetRepr,
} from '../../src/wire/virtio-net.js';
import {
  ARP_REQUEST,
  VNET_ARP_NONE,
  VNET_TCP_GSO,
  VNET_TCP_SYN_PARTIAL,
  VNET_UDP_GSO,
  VNET_UDP_PARTIAL,
  a5,
  pat,
  prng,
  toHex,
} from './golden.js';

const NONE: VirtioNetRepr = { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
const PARTIAL_UDP: VirtioNetRepr = { ...NONE, flags: VnetFlag.NEEDS_CSUM, csumStart: 34, csumOffset: 6 };
const PARTIAL_TCP: VirtioNetRepr = { ...NONE, flags: VnetFlag.NEEDS_CSUM, csumStart: 34, csumOffset: 16 };

const GOLDEN: [string, Uint8Array, VirtioNetRepr][] = [
  ['plain frame (no offload)', VNET_ARP_NONE, NONE],
  ['UDP, NEEDS_CSUM', VNET_UDP_PARTIAL, PARTIAL_UDP],
  ['TCP SYN, NEEDS_CSUM', VNET_TCP_SYN_PARTIAL, PARTIAL_TCP],
  ['USO super-frame', VNET_UDP_GSO, { ...PARTIAL_UDP, gsoType: GsoType.UDP_L4, hdrLen: 42, gsoSize: 1000 }],
  ['TSO super-frame', VNET_TCP_GSO, { ...PARTIAL_TCP, gsoType: GsoType.TCPV4, hdrLen: 66, gsoSize: 1448 }],
];

describe('virtio_net_hdr golden headers', () => {
  test.each(GOLDEN)('%s: little-endian fields', (_name, frame, want) => {
    const v = new VirtioNetView().wrap(frame, 0, frame.length);
    expect(v.check()).toBe(Wire.OK);
    expect(v.flags).toBe(want.flags);
    expect(v.gsoType).toBe(want.gsoType);
    expect(v.hdrLen).toBe(want.hdrLen);
    expect(v.gsoSize).toBe(want.gsoSize);
    expect(v.csumStart).toBe(want.csumStart);
    expect(v.csumOffset).toBe(want.csumOffset);
    expect(v.frameOffset).toBe(10);
    expect(v.frameLength).toBe(frame.length - 10);
    expect(v.checkFrame(v.frameLength)).toBe(Wire.OK);
    const r = newVirtioNetRepr();
    expect(parseVirtioNet(v, r)).toBe(Wire.OK);
    expect(r).toEqual(want);
  });

  test.each(GOLDEN)('%s: emit writes the same 10 bytes', (_name, frame, repr) => {
    for (const at of [0, 1, 54]) {
      const buf = a5(at + 12);
      expect(emitVirtioNet(repr, buf, at)).toBe(VNET_HDR_LEN);
      expect(toHex(buf.subarray(at, at + 10))).toBe(toHex(frame.subarray(0, 10)));
      expect(buf[at + 10]).toBe(0xa5);
    }
  });

  test('emitVirtioNetNone zeroes exactly 10 bytes', () => {
    const buf = a5(14);
    expect(emitVirtioNetNone(buf, 2)).toBe(10);
    expect(toHex(buf)).toBe('a5a5' + '00'.repeat(10) + 'a5a5');
  });

  test('the frame follows the header', () => {
    expect(toHex(VNET_ARP_NONE.subarray(10))).toBe(toHex(ARP_REQUEST));
    const eth = new EthernetView().wrap(VNET_TCP_GSO, 10, VNET_TCP_GSO.length - 10);
    expect(eth.etherType).toBe(EtherType.IPV4);
  });

  test('setters and round trip with 16-bit extremes', () => {
    const buf = a5(10);
    const v = new VirtioNetView().wrap(buf, 0, 10);
    v.flags = VnetFlag.DATA_VALID;
    v.gsoType = GsoType.TCPV6 | GsoType.ECN;
    v.hdrLen = 0xffff;
    v.gsoSize = 0x1234;
    v.csumStart = 0x8001;
    v.csumOffset = 0x00ff;
    expect(toHex(buf)).toBe('0284ffff34120180ff00');
    const r = newVirtioNetRepr();
    expect(parseVirtioNet(v, r)).toBe(Wire.OK);
    const again = a5(10);
    emitVirtioNet(r, again, 0);
    expect(toHex(again)).toBe(toHex(buf));
  });
});

describe('virtio_net_hdr checks', () => {
  test('truncation: fewer than 10 bytes', () => {
    const v = new VirtioNetView();
    const r = newVirtioNetRepr();
    for (let len = 0; len < 10; len++) {
      v.wrap(VNET_TCP_GSO.slice(0, len), 0, len);
      expect(v.check()).toBe(Wire.TRUNCATED);
      expect(parseVirtioNet(v, r)).toBe(Wire.TRUNCATED);
    }
  });

  test('checkFrame: NEEDS_CSUM must point inside the frame', () => {
    const buf = a5(10);
    const v = new VirtioNetView().wrap(buf, 0, 10);
    emitVirtioNet(PARTIAL_TCP, buf, 0);
    expect(v.checkFrame(52)).toBe(Wire.OK);
    expect(v.checkFrame(51)).toBe(Wire.BAD_FIELD);
    v.csumStart = 0xffff;
    expect(v.checkFrame(1500)).toBe(Wire.BAD_FIELD);
    v.flags = 0;
    expect(v.checkFrame(1500)).toBe(Wire.OK);
  });

  test('checkFrame: GSO needs a gso_size; unknown GSO types are UNSUPPORTED', () => {
    const buf = a5(10);
    const v = new VirtioNetView().wrap(buf, 0, 10);
    emitVirtioNet({ ...PARTIAL_TCP, gsoType: GsoType.TCPV4, gsoSize: 0 }, buf, 0);
    expect(v.checkFrame(1000)).toBe(Wire.BAD_FIELD);
    v.gsoSize = 1448;
    expect(v.checkFrame(1000)).toBe(Wire.OK);
    v.gsoType = GsoType.TCPV4 | GsoType.ECN;
    expect(v.checkFrame(1000)).toBe(Wire.OK);
    v.gsoType = 2;
    expect(v.checkFrame(1000)).toBe(Wire.UNSUPPORTED);
    v.gsoType = 0x7f;
    expect(v.checkFrame(1000)).toBe(Wire.UNSUPPORTED);
  });
});

describe('completeChecksum', () => {
  test('refuses a field outside the frame and writes nothing', () => {
    const buf = a5(40);
    expect(completeChecksum(buf, 0, 40, 34, 6)).toBe(Wire.BAD_FIELD);
    expect(completeChecksum(buf, 0, 40, 0xffff, 0xffff)).toBe(Wire.BAD_FIELD);
    expect(toHex(buf)).toBe('a5'.repeat(40));
  });

  test('pseudo sum + completion = full checksum, for TCP and UDP at every alignment and many lengths', () => {
    const rand = prng(2);
    const src = 0xc0a8_0102;
    const dst = 0x0a00_0202;
    for (const shift of [0, 1, 2, 3]) {
      for (let k = 0; k < 60; k++) {
        const l4Len = 8 + ((rand() * 3000) | 0);
        const frameLen = 34 + l4Len;
        const backing = new Uint8Array(shift + frameLen + 16);
        const frame = backing.subarray(shift, shift + frameLen + 16);
        frame.set(pat(l4Len, k), 34);
        const udp = k % 2 === 0;
        if (udp) {
          frame[34 + 4] = l4Len >>> 8;
          frame[34 + 5] = l4Len & 0xff;
        } else {
          frame[34 + 12] = 0x50;
        }
        const full = frame.slice();
        if (udp) fillUdpChecksumV4(full, 34, src, dst);
        else fillTcpChecksumV4(full, 34, l4Len, src, dst);
        if (udp) fillUdpPseudoChecksumV4(frame, 34, src, dst);
        else fillTcpPseudoChecksumV4(frame, 34, l4Len, src, dst);
        expect(completeChecksum(frame, 0, frameLen, 34, udp ? 6 : 16)).toBe(Wire.OK);
        expect(toHex(frame.subarray(0, frameLen))).toBe(toHex(full.subarray(0, frameLen)));
      }
    }
  });

  test('a completed checksum of 0 is written as 0xffff (CSUM_MANGLED_0)', () => {
    // L4 data whose one's complement sum is 0xffff once the field is included.
    const frame = new Uint8Array(38);
    frame[34] = 0xff;
    frame[35] = 0xff;
    expect(completeChecksum(frame, 0, 38, 34, 2)).toBe(Wire.OK);
    expect(toHex(frame.subarray(36, 38))).toBe('ffff');
  });
});
