import { describe, expect, it } from 'vitest';
import { StaticRecords, parseIpv4, parseIpv6 } from '../../src/dns/static-records.js';
import { encodeDnsName, dnsNameKey } from '../../src/wire/dns.js';
import { toHex } from '../wire/golden.js';

const key = (name: string): string => {
  const w = encodeDnsName(name)!;
  return dnsNameKey(w, 0, w.length, 0)!;
};

describe('IP literals', () => {
  it('IPv4', () => {
    expect(toHex(parseIpv4('10.0.2.3'))).toBe('0a000203');
  });

  it('IPv6 in every shape', () => {
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
    ];
    for (const [text, hex] of cases) expect(toHex(parseIpv6(text)), text).toBe(hex);
  });
});

describe('StaticRecords', () => {
  it('groups by case-insensitive name, keeps order, merges duplicates', () => {
    const s = new StaticRecords({
      'Host.Internal.': ['10.0.2.2', 'fd00::2', '10.0.2.5'],
      'host.internal': ['10.0.2.6'],
    });
    const e = s.lookup(key('HOST.internal'))!;
    expect(e.a.map(toHex)).toEqual(['0a000202', '0a000205', '0a000206']);
    expect(e.aaaa.map(toHex)).toEqual(['fd000000000000000000000000000002']);
    expect(s.lookup(key('other.internal'))).toBeUndefined();
  });

  it('rejects scoped IPv6 and non-literals', () => {
    expect(() => new StaticRecords({ a: ['fe80::1%eth0'] })).toThrow(/not an IP literal/);
    expect(() => new StaticRecords({ a: ['example.com'] })).toThrow(/not an IP literal/);
    expect(() => new StaticRecords({ 'a b': ['1.2.3.4'] })).toThrow(/not a DNS name/);
  });
});
