import { describe, expect, it } from 'vitest';
import {
  eui64FromMac,
  ipv6ToString,
  ipv6WordSum,
  isLinkLocal6,
  isLoopback6,
  isMulticast6,
  isUnspecified6,
  isV4Compatible6,
  isV4Mapped6,
  parseIpv6,
  prefixMatch6,
  solicitedNode6,
} from '../../src/wire/ipv6-address.js';
import { toHex } from './golden.js';

const a = (text: string): Uint8Array => parseIpv6(text)!;

describe('parseIpv6', () => {
  it('every shape glibc inet_pton takes', () => {
    const cases: [string, string][] = [
      ['::', '00000000000000000000000000000000'],
      ['::1', '00000000000000000000000000000001'],
      ['fd00::3', 'fd000000000000000000000000000003'],
      ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001'],
      ['2001:DB8::8:800:200c:417a', '20010db80000000000080800200c417a'],
      ['1::', '00010000000000000000000000000000'],
      ['::ffff:192.0.2.128', '00000000000000000000ffffc0000280'],
      ['::1.2.3.4', '00000000000000000000000001020304'],
      ['1:2:3:4:5:6:7.8.9.10', '0001000200030004000500060708090a'],
      ['::ffff:0.0.0.0', '00000000000000000000ffff00000000'],
    ];
    for (const [text, hex] of cases) expect(toHex(a(text)), text).toBe(hex);
  });

  it('refuses zones, brackets, IPv4 and junk', () => {
    for (const t of ['fe80::1%eth0', '[::1]', '10.0.2.2', '', ':::', '1:2:3:4:5:6:7:8:9', 'g::1', '::1 ']) expect(parseIpv6(t), t).toBeUndefined();
  });
});

describe('ipv6ToString (RFC 5952)', () => {
  it('canonical text', () => {
    const cases: [string, string][] = [
      ['::', '::'],
      ['::1', '::1'],
      ['FD00:0:0:0:0:0:0:2', 'fd00::2'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // §4.2.3: the first of equal runs
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // §4.2.2: a single 0 is not compressed
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // §4.2.3: the longest run
      ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
      ['fe80::2', 'fe80::2'],
      ['1:0:0:0:0:0:0:0', '1::'],
    ];
    for (const [text, want] of cases) expect(ipv6ToString(a(text)), text).toBe(want);
  });

  it('round-trips random addresses through Node’s own parser', async () => {
    const { isIPv6 } = await import('node:net');
    const buf = new Uint8Array(16);
    for (let i = 0; i < 500; i++) {
      for (let j = 0; j < 16; j++) buf[j] = Math.random() < 0.5 ? 0 : (Math.random() * 256) | 0;
      const text = ipv6ToString(buf);
      expect(isIPv6(text), text).toBe(true);
      expect(toHex(a(text))).toBe(toHex(buf));
    }
  });

  it('reads at an offset', () => {
    const buf = new Uint8Array(20);
    buf.set(a('fd00::100'), 4);
    expect(ipv6ToString(buf, 4)).toBe('fd00::100');
  });
});

describe('address classes', () => {
  it('classifies', () => {
    expect(isUnspecified6(a('::'), 0)).toBe(true);
    expect(isLoopback6(a('::1'), 0)).toBe(true);
    expect(isLoopback6(a('::2'), 0)).toBe(false);
    expect(isMulticast6(a('ff02::1'), 0)).toBe(true);
    expect(isLinkLocal6(a('fe80::2'), 0)).toBe(true);
    expect(isLinkLocal6(a('febf::2'), 0)).toBe(true);
    expect(isLinkLocal6(a('fec0::2'), 0)).toBe(false);
    expect(isV4Mapped6(a('::ffff:127.0.0.1'), 0)).toBe(true);
    expect(isV4Mapped6(a('::fffe:127.0.0.1'), 0)).toBe(false);
    expect(isV4Compatible6(a('::127.0.0.1'), 0)).toBe(true);
    expect(isV4Compatible6(a('::1'), 0)).toBe(false);
    expect(isV4Compatible6(a('::'), 0)).toBe(false);
  });

  it('prefixMatch6', () => {
    expect(prefixMatch6(a('fd00::1234'), 0, a('fd00::'), 0, 64)).toBe(true);
    expect(prefixMatch6(a('fd00:0:0:1::1'), 0, a('fd00::'), 0, 64)).toBe(false);
    expect(prefixMatch6(a('2001:db8::'), 0, a('2001:db9::'), 0, 31)).toBe(true);
    expect(prefixMatch6(a('2001:db8::'), 0, a('2001:db9::'), 0, 32)).toBe(false);
    expect(prefixMatch6(a('::1'), 0, a('::2'), 0, 0)).toBe(true);
  });

  it('solicited-node multicast and EUI-64 as Linux derives them', () => {
    const out = new Uint8Array(16);
    solicitedNode6(a('fd00::5054:ff:fe12:3456'), 0, out, 0);
    expect(ipv6ToString(out)).toBe('ff02::1:ff12:3456');
    const addr = a('fd00::');
    eui64FromMac(0x5255_0a00_0264, addr, 0);
    expect(ipv6ToString(addr)).toBe('fd00::5055:aff:fe00:264');
  });

  it('word sum', () => {
    expect(ipv6WordSum(a('fd00::2'), 0)).toBe(0xfd00 + 2);
    expect(ipv6WordSum(a('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), 0)).toBe(8 * 0xffff);
  });
});
