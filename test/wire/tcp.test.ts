import { describe, expect, test } from 'vitest';
import { Wire } from '../../src/wire/errors.js';
import { Ipv4View } from '../../src/wire/ipv4.js';
import {
  TCP_HEADER_LEN,
  TCP_MAX_OPTIONS_LEN,
  TcpFlag,
  TcpView,
  emitTcpHeader,
  fillTcpChecksumV4,
  fillTcpPseudoChecksumV4,
  newTcpRepr,
  parseTcp,
  tcpEmittedSackCount,
  tcpFlagsToString,
  tcpOptionsLength,
  type TcpRepr,
} from '../../src/wire/tcp.js';
import { completeChecksum } from '../../src/wire/virtio-net.js';
import {
  ETH,
  IP_A,
  IP_B,
  TCP_ACK,
  TCP_DATA,
  TCP_FIN,
  TCP_PSH_DATA,
  TCP_SACK1,
  TCP_SACK2,
  TCP_SYN,
  TCP_SYN_ACK,
  VNET_ETH,
  VNET_TCP_GSO,
  VNET_TCP_SYN_PARTIAL,
  a5,
  concat,
  fill,
  hex,
  pat,
  prng,
  toHex,
} from './golden.js';

const L4 = ETH + 20;
const { FIN, SYN, RST, PSH, ACK, URG, ECE, CWR } = TcpFlag;

function seg(frame: Uint8Array): Uint8Array {
  return frame.subarray(L4);
}

/** A repr with everything set, for `{ ...R, field }` overrides. */
function repr(over: Partial<TcpRepr> & { sacks?: number[] } = {}): TcpRepr {
  const r = newTcpRepr();
  const { sacks, ...rest } = over;
  Object.assign(r, rest);
  if (sacks) {
    r.sackBlocks.set(sacks);
    r.sackCount = sacks.length / 2;
  }
  return r;
}

interface Golden {
  name: string;
  frame: Uint8Array;
  /** Direction: A → B or B → A (for the pseudo-header). */
  aToB: boolean;
  want: TcpRepr;
  headerLen: number;
  checksum: number;
}

const A_TO_B = { srcPort: 40001, dstPort: 8080 };
const B_TO_A = { srcPort: 8080, dstPort: 40001 };

const GOLDEN: Golden[] = [
  {
    name: 'SYN',
    frame: TCP_SYN,
    aToB: true,
    headerLen: 40,
    checksum: 0x40b1,
    want: repr({
      ...A_TO_B, seq: 0xeaec97c0, ack: 0, flags: SYN, window: 64240,
      mss: 1460, sackPermitted: true, hasTimestamps: true, tsVal: 0xbc35fda3, tsEcr: 0, windowScale: 10,
      payloadOffset: L4 + 40, payloadLength: 0,
    }),
  },
  {
    name: 'SYN-ACK',
    frame: TCP_SYN_ACK,
    aToB: false,
    headerLen: 40,
    checksum: 0x9afd,
    want: repr({
      ...B_TO_A, seq: 0xc4fbd563, ack: 0xeaec97c1, flags: SYN | ACK, window: 65160,
      mss: 1460, sackPermitted: true, hasTimestamps: true, tsVal: 0xc9923e18, tsEcr: 0xbc35fda3, windowScale: 10,
      payloadOffset: L4 + 40, payloadLength: 0,
    }),
  },
  {
    name: 'ACK',
    frame: TCP_ACK,
    aToB: true,
    headerLen: 32,
    checksum: 0xc815,
    want: repr({
      ...A_TO_B, seq: 0xeaec97c1, ack: 0xc4fbd564, flags: ACK, window: 63,
      hasTimestamps: true, tsVal: 0xbc35fda4, tsEcr: 0xc9923e18, payloadOffset: L4 + 32, payloadLength: 0,
    }),
  },
  {
    name: 'data (1448 bytes)',
    frame: TCP_DATA,
    aToB: true,
    headerLen: 32,
    checksum: (TCP_DATA[L4 + 16] << 8) | TCP_DATA[L4 + 17],
    want: repr({
      ...A_TO_B, seq: 0xeaec97c1, ack: 0xc4fbd564, flags: ACK, window: 63,
      hasTimestamps: true, tsVal: 0xbc35fda5, tsEcr: 0xc9923e18, payloadOffset: L4 + 32, payloadLength: 1448,
    }),
  },
  {
    name: 'dup ACK with one SACK block',
    frame: TCP_SACK1,
    aToB: false,
    headerLen: 44,
    checksum: 0x6aa8,
    want: repr({
      ...B_TO_A, seq: 0xc4fbd564, ack: 0xeaec9d69, flags: ACK, window: 70,
      hasTimestamps: true, tsVal: 0xc9923e19, tsEcr: 0xbc35fda5, sacks: [0xeaeca311, 0xeaeca8b9],
      payloadOffset: L4 + 44, payloadLength: 0,
    }),
  },
  {
    name: 'dup ACK with two SACK blocks',
    frame: TCP_SACK2,
    aToB: false,
    headerLen: 52,
    checksum: 0x1250,
    want: repr({
      ...B_TO_A, seq: 0xc4fbd564, ack: 0xeaec9d69, flags: ACK, window: 73,
      hasTimestamps: true, tsVal: 0xc9923e19, tsEcr: 0xbc35fda5,
      sacks: [0xeaecae61, 0xeaecb409, 0xeaeca311, 0xeaeca8b9],
      payloadOffset: L4 + 52, payloadLength: 0,
    }),
  },
  {
    name: 'PSH with 8 bytes',
    frame: TCP_PSH_DATA,
    aToB: false,
    headerLen: 32,
    checksum: 0xb8d3,
    want: repr({
      ...B_TO_A, seq: 0xc4fbd564, ack: 0xeaecb701, flags: PSH | ACK, window: 81,
      hasTimestamps: true, tsVal: 0xc9923e19, tsEcr: 0xbc35fda5, payloadOffset: L4 + 32, payloadLength: 8,
    }),
  },
  {
    name: 'FIN',
    frame: TCP_FIN,
    aToB: false,
    headerLen: 32,
    checksum: 0xa8b8,
    want: repr({
      ...B_TO_A, seq: 0xc4fbd56c, ack: 0xeaecb701, flags: FIN | ACK, window: 81,
      hasTimestamps: true, tsVal: 0xc9923e19, tsEcr: 0xbc35fda5, payloadOffset: L4 + 32, payloadLength: 0,
    }),
  },
];

function addrs(g: Golden): [number, number] {
  return g.aToB ? [IP_A, IP_B] : [IP_B, IP_A];
}

describe('TCP golden frames', () => {
  test.each(GOLDEN)('$name: fields, options, checksum', (g) => {
    const [src, dst] = addrs(g);
    const ip = new Ipv4View().wrap(g.frame, ETH, g.frame.length - ETH);
    expect(ip.check()).toBe(Wire.OK);
    const v = new TcpView().wrap(g.frame, ip.payloadOffset, ip.payloadLength);
    expect(v.check()).toBe(Wire.OK);
    expect(v.srcPort).toBe(g.want.srcPort);
    expect(v.dstPort).toBe(g.want.dstPort);
    expect(v.seq).toBe(g.want.seq);
    expect(v.ack).toBe(g.want.ack);
    expect(v.dataOffset).toBe(g.headerLen / 4);
    expect(v.headerLen).toBe(g.headerLen);
    expect(v.flags).toBe(g.want.flags);
    expect(v.window).toBe(g.want.window);
    expect(v.checksum).toBe(g.checksum);
    expect(v.urgent).toBe(0);
    expect(v.payloadOffset).toBe(g.want.payloadOffset);
    expect(v.payloadLength).toBe(g.want.payloadLength);
    expect(v.verifyChecksumV4(src, dst)).toBe(true);
    expect(v.verifyChecksumV4(src, dst ^ 0x100)).toBe(false);
    const r = newTcpRepr();
    expect(parseTcp(v, r)).toBe(Wire.OK);
    expect(r).toEqual(g.want);
  });

  test.each(GOLDEN)('$name: emitTcpHeader + fillTcpChecksumV4 reproduce the segment (Linux option layout)', (g) => {
    const [src, dst] = addrs(g);
    const s = seg(g.frame);
    expect(tcpOptionsLength(g.want)).toBe(g.headerLen - 20);
    for (const at of [0, 1, 2, 3]) {
      const buf = a5(at + s.length + 4);
      buf.set(s.subarray(g.headerLen), at + g.headerLen);
      expect(emitTcpHeader(g.want, buf, at)).toBe(g.headerLen);
      expect(toHex(buf.subarray(at + 16, at + 18))).toBe('0000');
      fillTcpChecksumV4(buf, at, s.length, src, dst);
      expect(toHex(buf.subarray(at, at + s.length))).toBe(toHex(s));
      expect(buf[at + s.length]).toBe(0xa5);
    }
  });

  test('data segment payload is the captured pattern', () => {
    const v = new TcpView().wrap(TCP_DATA, L4, TCP_DATA.length - L4);
    expect(v.check()).toBe(Wire.OK);
    expect(toHex(TCP_DATA.subarray(v.payloadOffset))).toBe(toHex(pat(1448)));
  });

  test('Ethernet padding: the IP layer bounds the segment', () => {
    const padded = concat(TCP_ACK, fill(0, 6));
    const ip = new Ipv4View().wrap(padded, ETH, padded.length - ETH);
    expect(ip.check()).toBe(Wire.OK);
    const v = new TcpView().wrap(padded, ip.payloadOffset, ip.payloadLength);
    expect(v.payloadLength).toBe(0);
    expect(v.verifyChecksumV4(IP_A, IP_B)).toBe(true);
  });

  test('setters rebuild the FIN', () => {
    const s = seg(TCP_FIN);
    const buf = a5(32);
    buf.set(s.subarray(20, 32), 20);
    const v = new TcpView().wrap(buf, 0, 32);
    v.srcPort = 8080;
    v.dstPort = 40001;
    v.seq = 0xc4fbd56c;
    v.ack = 0xeaecb701;
    v.dataOffset = 8;
    v.flags = FIN | ACK;
    v.window = 81;
    v.checksum = 0xa8b8;
    v.urgent = 0;
    expect(toHex(buf)).toBe(toHex(s));
  });
});

describe('TCP with TAP offloads', () => {
  test('SYN with NEEDS_CSUM: the field holds the pseudo-header sum for 40 bytes', () => {
    const f = VNET_TCP_SYN_PARTIAL.slice();
    const at = VNET_ETH + 20;
    const field = toHex(f.subarray(at + 16, at + 18));
    expect(field).toBe('1431');
    f[at + 16] = 0xa5;
    fillTcpPseudoChecksumV4(f, at, 40, IP_A, IP_B);
    expect(toHex(f.subarray(at + 16, at + 18))).toBe(field);
    const v = new TcpView().wrap(f, at, 40);
    expect(v.verifyChecksumV4(IP_A, IP_B)).toBe(false);
    expect(completeChecksum(f, 10, f.length - 10, 34, 16)).toBe(Wire.OK);
    expect(v.verifyChecksumV4(IP_A, IP_B)).toBe(true);
  });

  test('TSO super-frame: the pseudo sum uses the whole 6032-byte TCP length, not gso_size + header', () => {
    const f = VNET_TCP_GSO.slice();
    const ip = new Ipv4View().wrap(f, VNET_ETH, f.length - VNET_ETH);
    expect(ip.check()).toBe(Wire.OK);
    expect(ip.totalLength).toBe(6052);
    const v = new TcpView().wrap(f, ip.payloadOffset, ip.payloadLength);
    expect(v.check()).toBe(Wire.OK);
    expect(v.len).toBe(6032);
    expect(v.payloadLength).toBe(6000);
    expect(v.flags).toBe(PSH | ACK);
    const r = newTcpRepr();
    expect(parseTcp(v, r)).toBe(Wire.OK);
    expect(r.hasTimestamps).toBe(true);
    expect(v.checksum).toBe(0x2b99);
    f[v.off + 16] = 0;
    f[v.off + 17] = 0;
    fillTcpPseudoChecksumV4(f, v.off, v.len, IP_A, IP_B);
    expect(v.checksum).toBe(0x2b99);
    // With the length of one segment (32 + 1448) the sum would differ.
    fillTcpPseudoChecksumV4(f, v.off, 32 + 1448, IP_A, IP_B);
    expect(v.checksum).not.toBe(0x2b99);
  });

  test('completing a super-frame checksum in software makes it verify as one segment', () => {
    const f = VNET_TCP_GSO.slice();
    expect(completeChecksum(f, 10, f.length - 10, 34, 16)).toBe(Wire.OK);
    expect(new TcpView().wrap(f, VNET_ETH + 20, 6032).verifyChecksumV4(IP_A, IP_B)).toBe(true);
  });
});

describe('TCP options', () => {
  /** A segment of 20 + options bytes; `opts` is hex (spaces allowed), padded with EOL to a multiple of 4. */
  function withOptions(opts: string): Uint8Array {
    let h = opts.replace(/ /g, '');
    while (h.length % 8 !== 0) h += '00';
    const o = hex(h);
    const s = new Uint8Array(20 + o.length);
    s.set(seg(TCP_ACK).subarray(0, 20));
    s[12] = ((20 + o.length) / 4) << 4;
    s.set(o, 20);
    return s;
  }

  function parse(s: Uint8Array): [number, TcpRepr] {
    const r = newTcpRepr();
    const code = parseTcp(new TcpView().wrap(s, 0, s.length), r);
    return [code, r];
  }

  test('no options', () => {
    const [code, r] = parse(withOptions(''));
    expect(code).toBe(Wire.OK);
    expect(r.mss).toBe(0);
    expect(r.windowScale).toBe(-1);
    expect(r.sackPermitted).toBe(false);
    expect(r.hasTimestamps).toBe(false);
    expect(r.sackCount).toBe(0);
  });

  test('parse resets options left over from the previous segment', () => {
    const r = newTcpRepr();
    const v = new TcpView();
    expect(parseTcp(v.wrap(seg(TCP_SACK2), 0, seg(TCP_SACK2).length), r)).toBe(Wire.OK);
    expect(parseTcp(v.wrap(seg(TCP_SYN), 0, 40), r)).toBe(Wire.OK);
    expect(r.sackCount).toBe(0);
    expect(parseTcp(v.wrap(withOptions(''), 0, 20), r)).toBe(Wire.OK);
    expect([r.mss, r.windowScale, r.sackPermitted, r.hasTimestamps, r.tsVal, r.tsEcr]).toEqual([0, -1, false, false, 0, 0]);
  });

  test('EOL ends the list; what follows is not parsed', () => {
    const [code, r] = parse(withOptions('020405b4 00 ff0001'));
    expect(code).toBe(Wire.OK);
    expect(r.mss).toBe(1460);
  });

  test('unknown options are skipped by their length', () => {
    const [code, r] = parse(withOptions('1e0400000204 05b4 2202 0303 07 01'));
    expect(code).toBe(Wire.OK);
    expect(r.mss).toBe(1460);
    expect(r.windowScale).toBe(7);
  });

  test('known options with a wrong length are ignored (Linux tcp_parse_options)', () => {
    const [code, r] = parse(withOptions('020305 030407ff 0403 00 080b000000010000000200 05060000000001'));
    expect(code).toBe(Wire.OK);
    expect(r.mss).toBe(0);
    expect(r.windowScale).toBe(-1);
    expect(r.sackPermitted).toBe(false);
    expect(r.hasTimestamps).toBe(false);
    expect(r.sackCount).toBe(0);
  });

  test('a window scale above 14 is reported as received', () => {
    const [, r] = parse(withOptions('01030310'));
    expect(r.windowScale).toBe(16);
  });

  test('four SACK blocks (no timestamps)', () => {
    const blocks = [1, 2, 3, 4, 0xfffffffe, 0xffffffff, 0x80000000, 0x80000001];
    const body = blocks.map((b) => b.toString(16).padStart(8, '0')).join('');
    const [code, r] = parse(withOptions('0101 0522' + body));
    expect(code).toBe(Wire.OK);
    expect(r.sackCount).toBe(4);
    expect(Array.from(r.sackBlocks)).toEqual(blocks);
  });

  test.each([
    ['length 0', '02000000'],
    ['length 1', '03010000'],
    ['length 0 of an unknown kind', '1e000000'],
    ['MSS running past the header', '01010204'],
    ['window scale running past the header', '01010303'],
    ['timestamps running past the header', '0101080a00000001'],
    ['SACK running past the header', '0101050a00000001'],
    ['a kind without its length byte at the very end', '01010102'],
    ['a 41-byte option in 40 bytes of option space', '1e29' + '00'.repeat(38)],
  ])('malformed: %s is BAD_OPTIONS', (_name, opts) => {
    const [code] = parse(withOptions(opts));
    expect(code).toBe(Wire.BAD_OPTIONS);
  });

  test('emit: each option alone, NOP-padded to 4 bytes', () => {
    const cases: [Partial<TcpRepr>, string][] = [
      [{ mss: 1460 }, '020405b4'],
      [{ windowScale: 0 }, '01030300'],
      [{ windowScale: 14 }, '0103030e'],
      [{ sackPermitted: true }, '01010402'],
      [{ hasTimestamps: true, tsVal: 1, tsEcr: 0xffffffff }, '0101080a00000001ffffffff'],
      [{ sackPermitted: true, hasTimestamps: true, tsVal: 2, tsEcr: 3 }, '0402080a0000000200000003'],
    ];
    for (const [over, opts] of cases) {
      const r = repr(over);
      const buf = a5(60);
      const n = emitTcpHeader(r, buf, 0);
      expect(n).toBe(20 + opts.length / 2);
      expect(tcpOptionsLength(r)).toBe(opts.length / 2);
      expect(toHex(buf.subarray(20, n))).toBe(opts);
      expect(buf[12] >>> 4).toBe(n / 4);
      expect(buf[n]).toBe(0xa5);
    }
  });

  test('emit limits SACK blocks to the 40-byte option space (Linux tcp_established_options)', () => {
    const four = [1, 2, 3, 4, 5, 6, 7, 8];
    const withTs = repr({ hasTimestamps: true, tsVal: 9, tsEcr: 10, sacks: four });
    expect(tcpEmittedSackCount(withTs)).toBe(3);
    expect(tcpOptionsLength(withTs)).toBe(TCP_MAX_OPTIONS_LEN);
    const buf = a5(64);
    expect(emitTcpHeader(withTs, buf, 0)).toBe(60);
    expect(buf[60]).toBe(0xa5);
    const [code, back] = parse(buf.slice(0, 60));
    expect(code).toBe(Wire.OK);
    expect(back.sackCount).toBe(3);
    expect(Array.from(back.sackBlocks.subarray(0, 6))).toEqual([1, 2, 3, 4, 5, 6]);

    const noTs = repr({ sacks: four });
    expect(tcpEmittedSackCount(noTs)).toBe(4);
    expect(tcpOptionsLength(noTs)).toBe(36);

    // SYN-style options use 20 bytes; 20 are left: 4 + 2 × 8.
    const full = repr({ mss: 1460, sackPermitted: true, hasTimestamps: true, windowScale: 7, sacks: four });
    expect(tcpEmittedSackCount(full)).toBe(2);
    expect(tcpOptionsLength(full)).toBe(40);
    expect(tcpEmittedSackCount(repr({ sackCount: -1 }))).toBe(0);
  });

  test('round trip: random reprs through emit and parse', () => {
    const rand = prng(9293);
    const u32 = () => Math.floor(rand() * 2 ** 32);
    const u16 = () => Math.floor(rand() * 2 ** 16);
    const out = newTcpRepr();
    for (let k = 0; k < 3000; k++) {
      const sackCount = rand() < 0.5 ? 0 : 1 + ((rand() * 4) | 0);
      const r = repr({
        srcPort: u16(),
        dstPort: u16(),
        seq: u32(),
        ack: u32(),
        flags: (rand() * 256) | 0,
        window: u16(),
        urgent: u16(),
        mss: rand() < 0.5 ? 0 : 1 + (u16() % 65535),
        windowScale: rand() < 0.5 ? -1 : (rand() * 15) | 0,
        sackPermitted: rand() < 0.5,
        hasTimestamps: rand() < 0.5,
        sacks: Array.from({ length: 2 * sackCount }, u32),
      });
      if (!r.hasTimestamps) {
        r.tsVal = 0;
        r.tsEcr = 0;
      } else {
        r.tsVal = u32();
        r.tsEcr = u32();
      }
      const payload = (rand() * 100) | 0;
      const buf = a5(60 + payload);
      const headerLen = emitTcpHeader(r, buf, 0);
      expect(headerLen).toBe(20 + tcpOptionsLength(r));
      expect(headerLen).toBeLessThanOrEqual(60);
      const len = headerLen + payload;
      fillTcpChecksumV4(buf, 0, len, 0xc0a8_0101, 0x0808_0808);
      const v = new TcpView().wrap(buf, 0, len);
      expect(parseTcp(v, out)).toBe(Wire.OK);
      expect(v.verifyChecksumV4(0xc0a8_0101, 0x0808_0808)).toBe(true);
      const emitted = tcpEmittedSackCount(r);
      const want = { ...r, sackCount: emitted, payloadOffset: headerLen, payloadLength: payload };
      want.sackBlocks = r.sackBlocks.slice();
      want.sackBlocks.fill(0, 2 * emitted);
      const got = { ...out, sackBlocks: out.sackBlocks.slice() };
      got.sackBlocks.fill(0, 2 * out.sackCount);
      expect(got).toEqual(want);
    }
  });
});

describe('TCP malformed input', () => {
  test('truncation sweep: < 20 TRUNCATED, < headerLen BAD_HEADER_LEN, then OK with a failing checksum', () => {
    const v = new TcpView();
    const r = newTcpRepr();
    for (const g of GOLDEN) {
      const [src, dst] = addrs(g);
      const s = seg(g.frame);
      for (let len = 0; len < s.length; len++) {
        const cut = s.slice(0, len);
        v.wrap(cut, 0, len);
        const code = v.check();
        if (len < TCP_HEADER_LEN) expect(code).toBe(Wire.TRUNCATED);
        else if (len < g.headerLen) expect(code).toBe(Wire.BAD_HEADER_LEN);
        else {
          expect(code).toBe(Wire.OK);
          expect(v.payloadLength).toBe(len - g.headerLen);
          expect(v.verifyChecksumV4(src, dst)).toBe(false);
        }
        expect(parseTcp(v, r)).toBe(code);
      }
    }
  });

  test('dataOffset < 5 is BAD_HEADER_LEN', () => {
    const s = seg(TCP_ACK).slice();
    for (let doff = 0; doff < 5; doff++) {
      s[12] = doff << 4;
      expect(new TcpView().wrap(s, 0, s.length).check()).toBe(Wire.BAD_HEADER_LEN);
    }
  });

  test('dataOffset past the end is BAD_HEADER_LEN', () => {
    const s = seg(TCP_ACK).slice(); // 32 bytes
    s[12] = 9 << 4;
    expect(new TcpView().wrap(s, 0, s.length).check()).toBe(Wire.BAD_HEADER_LEN);
    s[12] = 15 << 4;
    expect(new TcpView().wrap(s, 0, s.length).check()).toBe(Wire.BAD_HEADER_LEN);
  });

  test('the reserved bits and NS next to dataOffset are ignored', () => {
    const s = seg(TCP_ACK).slice();
    s[12] |= 0x0f;
    const v = new TcpView().wrap(s, 0, s.length);
    expect(v.check()).toBe(Wire.OK);
    expect(v.headerLen).toBe(32);
  });
});

test('tcpFlagsToString', () => {
  expect(tcpFlagsToString(SYN)).toBe('S');
  expect(tcpFlagsToString(SYN | ACK)).toBe('S.');
  expect(tcpFlagsToString(FIN | PSH | ACK)).toBe('FP.');
  expect(tcpFlagsToString(RST)).toBe('R');
  expect(tcpFlagsToString(URG | ECE | CWR)).toBe('UEW');
  expect(tcpFlagsToString(0)).toBe('none');
});
