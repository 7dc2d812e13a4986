import { describe, expect, it } from 'vitest';
import { Reassembly } from '../../src/tcp/reassembly.js';
import { prng } from './sim.js';

const bytesAt = (start: number, len: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (start + i) & 0xff);

function drain(r: Reassembly, from: number): number[] {
  const out: number[] = [];
  let at = from;
  while (!r.isEmpty && r.firstStart <= at) {
    const s = r.firstStart;
    const d = r.firstData;
    r.dropFirst();
    for (let i = at - s; i < d.length; i++) out.push(d[i]);
    at = Math.max(at, s + d.length);
  }
  return out;
}

describe('Reassembly', () => {
  it('stores only bytes not held yet; duplicates store nothing', () => {
    const r = new Reassembly(16);
    expect(r.insert(10, bytesAt(10, 10), 0, 10)).toBe(10);
    expect(r.insert(10, bytesAt(10, 10), 0, 10)).toBe(0);
    expect(r.insert(5, bytesAt(5, 10), 0, 10)).toBe(5);
    expect(r.insert(18, bytesAt(18, 10), 0, 10)).toBe(8);
    expect(r.bytes).toBe(23);
    expect(r.blockCount).toBe(3);
  });

  it('a segment spanning several holes fills each of them', () => {
    const r = new Reassembly(16);
    r.insert(10, bytesAt(10, 2), 0, 2);
    r.insert(20, bytesAt(20, 2), 0, 2);
    expect(r.insert(5, bytesAt(5, 25), 0, 25)).toBe(21);
    expect(drain(r, 5)).toEqual(Array.from(bytesAt(5, 25)));
  });

  it('copies: the caller may reuse its buffer', () => {
    const r = new Reassembly(16);
    const buf = bytesAt(0, 4);
    r.insert(1, buf, 1, 2);
    buf.fill(0);
    expect(Array.from(r.firstData)).toEqual([1, 2]);
  });

  it('stops at maxBlocks', () => {
    const r = new Reassembly(2);
    r.insert(10, bytesAt(10, 1), 0, 1);
    r.insert(20, bytesAt(20, 1), 0, 1);
    expect(r.insert(30, bytesAt(30, 1), 0, 1)).toBe(0);
    expect(r.blockCount).toBe(2);
  });

  it('SACK ranges: newest first, contiguous blocks merged, none below rcvNxt (RFC 2018 §4)', () => {
    const r = new Reassembly(16);
    r.insert(10, bytesAt(10, 5), 0, 5);
    r.insert(30, bytesAt(30, 5), 0, 5);
    r.insert(15, bytesAt(15, 5), 0, 5);
    const out = new Float64Array(8);
    expect(r.sackRanges(out, 4, 0)).toBe(2);
    expect(Array.from(out.subarray(0, 4))).toEqual([10, 20, 30, 35]);
    expect(r.sackRanges(out, 1, 0)).toBe(1);
    expect(r.sackRanges(out, 4, 25)).toBe(1);
    expect(Array.from(out.subarray(0, 2))).toEqual([30, 35]);
  });

  it('reassembles any arrival order of overlapping random segments', () => {
    const rand = prng(77);
    for (let run = 0; run < 50; run++) {
      const r = new Reassembly(1000);
      const total = 500;
      let delivered: number[] = [];
      let next = 0;
      for (let k = 0; k < 200 && next < total; k++) {
        const start = next + Math.floor(rand() * 60) - 10;
        const len = 1 + Math.floor(rand() * 30);
        const s = Math.max(start, next);
        const e = Math.min(start + len, total);
        if (e <= s) continue;
        if (s === next) {
          delivered = delivered.concat(Array.from(bytesAt(s, e - s)));
          next = e;
          const more = drain(r, next);
          delivered = delivered.concat(more);
          next += more.length;
        } else {
          r.insert(s, bytesAt(s, e - s), 0, e - s);
        }
      }
      expect(delivered).toEqual(Array.from(bytesAt(0, next)));
    }
  });
});
