import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { NameBindings, exactName, nameMatches, normalizeName, suffixPattern } from '../../src/policy/name-bindings.js';
import { parseIpv4 } from '../../src/wire/ipv4-address.js';
import { parseIpv6 } from '../../src/wire/ipv6-address.js';

const v4 = (t: string): number => parseIpv4(t)!;
const v6 = (t: string): Uint8Array => parseIpv6(t)!;

/** Whether `addr` is bound, at `now`, to a name `pattern` matches. */
function bound(t: NameBindings, addr: number | Uint8Array, pattern: string, now: number): boolean {
  const e = typeof addr === 'number' ? t.find4(addr) : t.find6(addr, 0);
  if (e === null) return false;
  const p = pattern.startsWith('*.') ? suffixPattern(pattern.slice(2)) : exactName(pattern);
  return t.boundTo(e, p, now);
}

describe('name patterns', () => {
  it('match an exact name, case-insensitively, with or without the trailing dot', () => {
    const p = exactName('Registry.Example.');
    expect(nameMatches(p, normalizeName('registry.example'))).toBe(true);
    expect(nameMatches(p, normalizeName('REGISTRY.EXAMPLE.'))).toBe(true);
    expect(nameMatches(p, 'a.registry.example')).toBe(false);
    expect(nameMatches(p, 'registry.example.com')).toBe(false);
    expect(nameMatches(p, 'registry.exampl')).toBe(false);
  });

  it('match names strictly below a *. suffix, not the suffix itself', () => {
    const p = suffixPattern('example.com');
    expect(nameMatches(p, 'a.example.com')).toBe(true);
    expect(nameMatches(p, 'a.b.example.com')).toBe(true);
    expect(nameMatches(p, 'example.com')).toBe(false);
    // A label boundary, not a string suffix.
    expect(nameMatches(p, 'badexample.com')).toBe(false);
    expect(nameMatches(p, 'example.com.evil')).toBe(false);
    expect(nameMatches(p, '.example.com')).toBe(false);
  });
});

describe('NameBindings', () => {
  it('binds IPv4 and IPv6 addresses to a name and finds them by address', () => {
    const t = new NameBindings();
    const clock = new ManualClock(1000);
    t.record('Registry.Example.', [v4('198.51.100.7'), v6('2001:db8::7')], 300, clock.now());
    expect(bound(t, v4('198.51.100.7'), 'registry.example', clock.now())).toBe(true);
    expect(bound(t, v6('2001:db8::7'), 'registry.example', clock.now())).toBe(true);
    expect(bound(t, v4('198.51.100.8'), 'registry.example', clock.now())).toBe(false);
    expect(bound(t, v6('2001:db8::8'), 'registry.example', clock.now())).toBe(false);
    expect(bound(t, v4('198.51.100.7'), 'other.example', clock.now())).toBe(false);
    expect(bound(t, v4('198.51.100.7'), '*.example', clock.now())).toBe(true);
    expect(t.namesOf(v4('198.51.100.7'), clock.now())).toEqual(['registry.example']);
    expect(t.size).toBe(2);
  });

  it('finds an IPv6 address at any offset and copies what it records', () => {
    const t = new NameBindings();
    const a = v6('2001:db8::1');
    t.record('a.example', [a], 300, 0);
    a.fill(0);
    const buf = new Uint8Array(40);
    buf.set(v6('2001:db8::1'), 7);
    const e = t.find6(buf, 7);
    expect(e).not.toBeNull();
    expect(t.boundTo(e!, exactName('a.example'), 0)).toBe(true);
    expect(t.find6(new Uint8Array(16), 0)).toBeNull();
  });

  it('keeps IPv4 and IPv4-mapped IPv6 apart', () => {
    const t = new NameBindings();
    t.record('a.example', [v4('198.51.100.7')], 300, 0);
    expect(t.find6(v6('::ffff:198.51.100.7'), 0)).toBeNull();
    t.record('b.example', [v6('::ffff:198.51.100.8')], 300, 0);
    expect(t.find4(v4('198.51.100.8'))).toBeNull();
  });

  it('expires a binding after its TTL, driven by the manual clock', () => {
    const t = new NameBindings({ ttlFloorSeconds: 0 });
    const clock = new ManualClock(5000);
    t.record('a.example', [v4('198.51.100.1')], 120, clock.now());
    clock.advance(119_999);
    expect(bound(t, v4('198.51.100.1'), 'a.example', clock.now())).toBe(true);
    clock.advance(1);
    expect(bound(t, v4('198.51.100.1'), 'a.example', clock.now())).toBe(false);
    expect(t.namesOf(v4('198.51.100.1'), clock.now())).toEqual([]);
  });

  it('holds a short TTL for the floor (60 s by default), then lets it go', () => {
    const t = new NameBindings();
    expect(t.ttlFloorSeconds).toBe(60);
    const clock = new ManualClock();
    t.record('cdn.example', [v4('198.51.100.2')], 5, clock.now());
    t.record('zero.example', [v4('198.51.100.3')], 0, clock.now());
    clock.advance(30_000); // TTL long gone: a reconnect still works
    expect(bound(t, v4('198.51.100.2'), 'cdn.example', clock.now())).toBe(true);
    expect(bound(t, v4('198.51.100.3'), 'zero.example', clock.now())).toBe(true);
    clock.advance(29_999);
    expect(bound(t, v4('198.51.100.2'), 'cdn.example', clock.now())).toBe(true);
    clock.advance(1);
    expect(bound(t, v4('198.51.100.2'), 'cdn.example', clock.now())).toBe(false);
    expect(bound(t, v4('198.51.100.3'), 'zero.example', clock.now())).toBe(false);
  });

  it('takes a configured floor and caps an absurd TTL', () => {
    const t = new NameBindings({ ttlFloorSeconds: 10, ttlCapSeconds: 3600 });
    t.record('a.example', [v4('198.51.100.4')], 1, 0);
    t.record('b.example', [v4('198.51.100.5')], 0x7fff_ffff, 0);
    expect(bound(t, v4('198.51.100.4'), 'a.example', 9_999)).toBe(true);
    expect(bound(t, v4('198.51.100.4'), 'a.example', 10_000)).toBe(false);
    expect(bound(t, v4('198.51.100.5'), 'b.example', 3_599_999)).toBe(true);
    expect(bound(t, v4('198.51.100.5'), 'b.example', 3_600_000)).toBe(false);
  });

  it('extends a binding recorded again, never shortens it', () => {
    const t = new NameBindings({ ttlFloorSeconds: 0 });
    t.record('a.example', [v4('198.51.100.6')], 100, 0);
    t.record('a.example', [v4('198.51.100.6')], 10, 50_000); // would end at 60 s
    expect(bound(t, v4('198.51.100.6'), 'a.example', 99_999)).toBe(true);
    t.record('a.example', [v4('198.51.100.6')], 100, 90_000);
    expect(bound(t, v4('198.51.100.6'), 'a.example', 189_999)).toBe(true);
    expect(bound(t, v4('198.51.100.6'), 'a.example', 190_000)).toBe(false);
    expect(t.size).toBe(1);
  });

  it('binds every name of a CNAME chain to the addresses at its end', () => {
    const t = new NameBindings();
    t.record(['registry.example', 'registry.cdn.example.net', 'edge7.cdnprovider.example'], [v4('198.51.100.9'), v6('2001:db8::9')], 300, 0);
    for (const name of ['registry.example', 'registry.cdn.example.net', 'edge7.cdnprovider.example']) {
      expect(bound(t, v4('198.51.100.9'), name, 0)).toBe(true);
      expect(bound(t, v6('2001:db8::9'), name, 0)).toBe(true);
    }
    expect(bound(t, v4('198.51.100.9'), '*.cdnprovider.example', 0)).toBe(true);
    expect(bound(t, v4('198.51.100.9'), 'cdn.example.net', 0)).toBe(false);
    expect(t.namesOf(v6('2001:db8::9'), 0).sort()).toEqual(['edge7.cdnprovider.example', 'registry.cdn.example.net', 'registry.example']);
    expect(t.size).toBe(6);
  });

  it('lets one address carry several names, each with its own lifetime', () => {
    const t = new NameBindings({ ttlFloorSeconds: 0 });
    t.record('a.example', [v4('198.51.100.10')], 10, 0);
    t.record('b.example', [v4('198.51.100.10')], 100, 0);
    expect(bound(t, v4('198.51.100.10'), 'a.example', 5_000)).toBe(true);
    expect(bound(t, v4('198.51.100.10'), 'a.example', 10_000)).toBe(false);
    expect(bound(t, v4('198.51.100.10'), 'b.example', 10_000)).toBe(true);
  });

  it('is bounded: evicts expired bindings first, then the oldest recorded', () => {
    const t = new NameBindings({ maxEntries: 3, ttlFloorSeconds: 0 });
    t.record('b.example', [v4('198.51.100.2')], 100, 0);
    t.record('short.example', [v4('198.51.100.1')], 1, 0);
    t.record('c.example', [v4('198.51.100.3')], 100, 0);
    // short.example has expired by now: it goes, not b (the oldest live one).
    t.record('d.example', [v4('198.51.100.4')], 100, 2_000);
    expect(t.size).toBe(3);
    expect(t.find4(v4('198.51.100.1'))).toBeNull();
    expect(bound(t, v4('198.51.100.2'), 'b.example', 2_000)).toBe(true);
    // Nothing expired: the oldest recorded (b) goes; recording c again made it newer than d.
    t.record('c.example', [v4('198.51.100.3')], 100, 3_000);
    t.record('e.example', [v4('198.51.100.5')], 100, 3_000);
    expect(t.size).toBe(3);
    expect(t.find4(v4('198.51.100.2'))).toBeNull();
    t.record('f.example', [v4('198.51.100.6')], 100, 3_000);
    expect(t.find4(v4('198.51.100.4'))).toBeNull();
    expect(t.namesOf(v4('198.51.100.3'), 3_000)).toEqual(['c.example']);
    expect(t.namesOf(v4('198.51.100.5'), 3_000)).toEqual(['e.example']);
    expect(t.namesOf(v4('198.51.100.6'), 3_000)).toEqual(['f.example']);
  });

  it('stays at its bound under a flood of IPv6 answers, and lookups keep working', () => {
    const t = new NameBindings({ maxEntries: 64 });
    const a = v6('2001:db8::');
    for (let i = 0; i < 1000; i++) {
      a[14] = i >> 8;
      a[15] = i & 0xff;
      t.record(`n${i}.example`, [a], 300, i);
      expect(t.size).toBeLessThanOrEqual(64);
    }
    a[14] = 999 >> 8;
    a[15] = 999 & 0xff;
    expect(bound(t, a, 'n999.example', 1000)).toBe(true);
    a[15] = 0;
    a[14] = 0;
    expect(t.find6(a, 0)).toBeNull();
  });

  it('prune drops expired bindings and their address entries', () => {
    const t = new NameBindings({ ttlFloorSeconds: 0 });
    t.record('a.example', [v4('198.51.100.1'), v6('2001:db8::1')], 10, 0);
    t.record('b.example', [v4('198.51.100.2')], 100, 0);
    t.prune(9_999);
    expect(t.size).toBe(3);
    t.prune(10_000);
    expect(t.size).toBe(1);
    expect(t.find4(v4('198.51.100.1'))).toBeNull();
    expect(t.find6(v6('2001:db8::1'), 0)).toBeNull();
    expect(t.find4(v4('198.51.100.2'))).not.toBeNull();
    t.clear();
    expect(t.size).toBe(0);
  });

  it('refuses malformed addresses and options (programming errors)', () => {
    const t = new NameBindings();
    expect(() => t.record('a.example', [-1], 60, 0)).toThrow(RangeError);
    expect(() => t.record('a.example', [2 ** 32], 60, 0)).toThrow(RangeError);
    expect(() => t.record('a.example', [new Uint8Array(4)], 60, 0)).toThrow(RangeError);
    expect(() => new NameBindings({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new NameBindings({ ttlFloorSeconds: 100, ttlCapSeconds: 10 })).toThrow(RangeError);
  });
});
