import { describe, expect, it } from 'vitest';
import { Ipv6Ids } from '../../src/ip/ipv6-ids.js';
import { parseIpv6 } from '../../src/wire/ipv6-address.js';
import { addrSumV4 } from '../../src/wire/checksum.js';

const a = (t: string): Uint8Array => parseIpv6(t)!;

describe('Ipv6Ids', () => {
  it('gives one negative id per address, at any offset', () => {
    const ids = new Ipv6Ids();
    const buf = new Uint8Array(40);
    buf.set(a('fd00::100'), 3);
    const x = ids.id(buf, 3);
    expect(x).toBeLessThan(0);
    expect(ids.id(a('fd00::100'), 0)).toBe(x);
    expect(ids.id(a('fd00::101'), 0)).not.toBe(x);
    expect(ids.format(x)).toBe('fd00::100');
    expect(ids.formatWithPort(x, 80)).toBe('[fd00::100]:80');
    expect(ids.format(0x0a000202)).toBe('10.0.2.2');
    const out = new Uint8Array(16);
    ids.write(x, out, 0);
    expect(out).toEqual(a('fd00::100'));
  });

  it('frees unreferenced entries at the sweep, keeps acquired ones until released', () => {
    const ids = new Ipv6Ids();
    const kept = ids.id(a('2001:db8::1'), 0);
    ids.id(a('2001:db8::2'), 0);
    ids.acquire(kept);
    expect(ids.size).toBe(2);
    ids.sweep();
    expect(ids.size).toBe(1);
    expect(ids.format(kept)).toBe('2001:db8::1');
    ids.acquire(kept);
    ids.release(kept);
    ids.sweep();
    expect(ids.size).toBe(1);
    ids.release(kept);
    expect(ids.size).toBe(1); // until the sweep
    ids.sweep();
    expect(ids.size).toBe(0);
    expect(() => ids.format(kept)).toThrow();
  });

  it('re-finds an entry released and looked up again before the sweep', () => {
    const ids = new Ipv6Ids();
    const x = ids.intern(a('fd00::2'));
    ids.release(x);
    expect(ids.id(a('fd00::2'), 0)).toBe(x);
    ids.acquire(x);
    ids.sweep();
    expect(ids.format(x)).toBe('fd00::2');
  });

  it('chains colliding hashes and unlinks from any position', () => {
    const ids = new Ipv6Ids();
    // Force collisions by giving every entry the same hash bucket.
    const map = (ids as unknown as { byHash: Map<number, unknown> }).byHash;
    const realGet = map.get.bind(map);
    const realSet = map.set.bind(map);
    map.get = (() => realGet(7)) as typeof map.get;
    map.set = ((_k: number, v: unknown) => realSet(7, v)) as typeof map.set;
    const list = ['::a', '::b', '::c', '::d'].map((t) => ids.intern(a(t)));
    expect(new Set(list).size).toBe(4);
    ids.release(list[2]);
    ids.sweep();
    ids.release(list[0]);
    ids.sweep();
    expect(ids.format(list[1])).toBe('::b');
    expect(ids.format(list[3])).toBe('::d');
    expect(ids.id(a('::d'), 0)).toBe(list[3]);
    expect(ids.size).toBe(2);
  });

  it('reuses freed slots', () => {
    const ids = new Ipv6Ids();
    const x = ids.id(a('::5'), 0);
    ids.sweep();
    const y = ids.id(a('::6'), 0);
    expect(y).toBe(x);
  });

  it('address sums for either family', () => {
    const ids = new Ipv6Ids();
    const s = ids.id(a('fd00::100'), 0);
    const d = ids.id(a('2001:db8::1'), 0);
    expect(ids.addrSum(s, d)).toBe(0xfd00 + 0x100 + 0x2001 + 0xdb8 + 1);
    expect(ids.addrSum(0x0a000264, 0xc6336401)).toBe(addrSumV4(0x0a000264, 0xc6336401));
  });

  it('refuses a release without an acquire', () => {
    const ids = new Ipv6Ids();
    const x = ids.id(a('::7'), 0);
    expect(() => ids.release(x)).toThrow();
  });
});
