import { describe, expect, it } from 'vitest';
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqInWindow, seqLe, seqLt, seqMax, seqMin, seqSub } from '../../src/tcp/seq.js';

const MAX = 0xffffffff;

describe('seq.ts: modulo-2^32 sequence arithmetic (RFC 9293 §3.4)', () => {
  it('adds and wraps', () => {
    expect(seqAdd(MAX, 1)).toBe(0);
    expect(seqAdd(MAX - 5, 10)).toBe(4);
    expect(seqAdd(3, -5)).toBe(MAX - 1);
    expect(seqAdd(0, 0x1_0000_0000)).toBe(0);
  });

  it('differences are signed across the wrap', () => {
    expect(seqDiff(4, MAX - 5)).toBe(10);
    expect(seqDiff(MAX - 5, 4)).toBe(-10);
    expect(seqSub(4, MAX - 5)).toBe(10);
    expect(seqSub(MAX - 5, 4)).toBe(0x1_0000_0000 - 10);
  });

  it('compares across the wrap', () => {
    expect(seqLt(MAX, 0)).toBe(true);
    expect(seqGt(0, MAX)).toBe(true);
    expect(seqLe(5, 5)).toBe(true);
    expect(seqGe(5, 5)).toBe(true);
    expect(seqLt(5, 5)).toBe(false);
    expect(seqLt(MAX - 100, 100)).toBe(true);
    expect(seqGt(100, MAX - 100)).toBe(true);
    // 2^31 − 1 ahead is still "after".
    expect(seqGt(seqAdd(7, 0x7fffffff), 7)).toBe(true);
  });

  it('max and min pick by sequence order', () => {
    expect(seqMax(MAX, 3)).toBe(3);
    expect(seqMin(MAX, 3)).toBe(MAX);
  });

  it('windows are half-open [start, start + size), also across the wrap', () => {
    expect(seqInWindow(MAX, MAX - 1, 3)).toBe(true);
    expect(seqInWindow(0, MAX - 1, 3)).toBe(true);
    expect(seqInWindow(1, MAX - 1, 3)).toBe(false);
    expect(seqInWindow(MAX - 2, MAX - 1, 3)).toBe(false);
    expect(seqInWindow(5, 5, 0)).toBe(false);
  });

  it('ranges are closed [first, last]', () => {
    expect(seqInRange(MAX, MAX - 1, 2)).toBe(true);
    expect(seqInRange(2, MAX - 1, 2)).toBe(true);
    expect(seqInRange(3, MAX - 1, 2)).toBe(false);
    expect(seqInRange(7, 7, 7)).toBe(true);
  });

  it('agrees with BigInt reference arithmetic on random pairs', () => {
    let x = 12345;
    const rnd = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
    for (let i = 0; i < 2_000; i++) {
      const a = rnd();
      const d = (rnd() % 0x7fffffff) - 0x3fffffff;
      const b = seqAdd(a, d);
      expect(seqDiff(b, a)).toBe(d);
      expect(seqLt(a, b)).toBe(d > 0);
      expect(Number((BigInt(a) + BigInt(d) + (1n << 32n)) % (1n << 32n))).toBe(b);
    }
  });
});
