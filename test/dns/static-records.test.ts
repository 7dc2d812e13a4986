import { describe, expect, it } from 'vitest';
import { StaticRecords } from '../../src/dns/static-records.js';
import { encodeDnsName, dnsNameKey } from '../../src/wire/dns.js';
import { toHex } from '../wire/golden.js';

const key = (name: string): string => {
  const w = encodeDnsName(name)!;
  return dnsNameKey(w, 0, w.length, 0)!;
};

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
