import { describe, expect, it } from 'vitest';
import { SendBuffer } from '../../src/tcp/send-buffer.js';
import { prng } from './sim.js';

function read(b: SendBuffer, off: number, len: number): number[] {
  const dst = new Uint8Array(len + 4).fill(0xa5);
  b.copyOut(off, len, dst, 2);
  expect(dst[0]).toBe(0xa5);
  expect(dst[len + 2]).toBe(0xa5);
  return Array.from(dst.subarray(2, 2 + len));
}

describe('SendBuffer', () => {
  it('queues chunks without copying and reads across chunk boundaries', () => {
    const b = new SendBuffer();
    const c1 = Uint8Array.of(1, 2, 3);
    b.push(c1);
    b.push(Uint8Array.of(4, 5));
    b.push(new Uint8Array(0));
    b.push(Uint8Array.of(6));
    expect(b.length).toBe(6);
    expect(read(b, 0, 6)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(read(b, 2, 3)).toEqual([3, 4, 5]);
    // Owned, not copied: a change to the chunk shows (the relay must not reuse it).
    c1[2] = 33;
    expect(read(b, 2, 1)).toEqual([33]);
  });

  it('release drops acknowledged bytes, whole chunks and parts', () => {
    const b = new SendBuffer();
    b.push(Uint8Array.of(1, 2, 3));
    b.push(Uint8Array.of(4, 5));
    b.release(2);
    expect(b.length).toBe(3);
    expect(read(b, 0, 3)).toEqual([3, 4, 5]);
    b.release(2);
    expect(read(b, 0, 1)).toEqual([5]);
    b.release(1);
    expect(b.length).toBe(0);
    b.push(Uint8Array.of(9));
    expect(read(b, 0, 1)).toEqual([9]);
  });

  it('rejects reads outside the queued bytes; zero-length reads are fine', () => {
    const b = new SendBuffer();
    b.push(Uint8Array.of(1, 2));
    expect(() => b.copyOut(1, 2, new Uint8Array(2), 0)).toThrow(RangeError);
    b.copyOut(2, 0, new Uint8Array(0), 0);
  });

  it('clear forgets everything', () => {
    const b = new SendBuffer();
    b.push(Uint8Array.of(1, 2));
    b.clear();
    expect(b.length).toBe(0);
  });

  it('matches a flat reference under random pushes, releases and reads (cursor cache, compaction)', () => {
    const rand = prng(5);
    const b = new SendBuffer();
    let ref: number[] = [];
    let next = 0;
    for (let step = 0; step < 5000; step++) {
      const r = rand();
      if (r < 0.4) {
        const n = Math.floor(rand() * 50);
        const c = new Uint8Array(n);
        for (let i = 0; i < n; i++) c[i] = next++ & 0xff;
        b.push(c);
        ref = ref.concat(Array.from(c));
      } else if (r < 0.6) {
        const n = Math.floor(rand() * (ref.length + 1));
        b.release(n);
        ref = ref.slice(n);
      } else if (ref.length > 0) {
        // Sequential reads, like the segments of a burst, and random ones.
        const off = rand() < 0.5 ? 0 : Math.floor(rand() * ref.length);
        let o = off;
        while (o < ref.length && rand() < 0.9) {
          const len = Math.min(ref.length - o, 1 + Math.floor(rand() * 40));
          expect(read(b, o, len)).toEqual(ref.slice(o, o + len));
          o += len;
        }
      }
      expect(b.length).toBe(ref.length);
    }
  });
});
