/** FaultyLink (src/link/faulty.ts): seeded loss, duplication and reordering of received frames, decorating any Link. */
import { describe, expect, it } from 'vitest';
import { FaultyLink, type LinkFaults } from '../../src/link/faulty.js';
import { OUTPUT_META_STRIDE } from '../../src/link/link.js';
import { createMemoryLinkPair } from '../../src/link/memory.js';

/** Sends frames 0..n-1 (two bytes each: its number) from the far side; returns what the faulty side received. */
async function run(n: number, faults: LinkFaults): Promise<{ got: number[]; link: FaultyLink }> {
  const [near, far] = createMemoryLinkPair();
  const link = new FaultyLink(near, faults);
  const got: number[] = [];
  link.start((buf, meta, count) => {
    for (let i = 0; i < count; i++) {
      expect(meta[2 * i + 1]).toBe(2);
      got.push((buf[meta[2 * i]] << 8) | buf[meta[2 * i] + 1]);
    }
  });
  far.start(() => {});
  const bufs = Array.from({ length: n }, (_, i) => Uint8Array.of(i >> 8, i & 0xff));
  const meta = new Uint32Array(n * OUTPUT_META_STRIDE);
  for (let i = 0; i < n; i++) meta.set([i, 0, 2, 0, 0, 0], i * OUTPUT_META_STRIDE);
  expect(far.writeBatch(bufs, meta, n)).toBe(n);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  return { got, link };
}

describe('FaultyLink', () => {
  it('without faults delivers every frame once, in order', async () => {
    const { got, link } = await run(100, {});
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(link.injected).toEqual({ lost: 0, duplicated: 0, reordered: 0 });
  });

  it('loss 1 drops everything; duplicate 1 delivers every frame twice', async () => {
    expect((await run(50, { loss: 1 })).got).toEqual([]);
    const twice = await run(50, { duplicate: 1 });
    expect(twice.got).toEqual(Array.from({ length: 50 }, (_, i) => [i, i]).flat());
    expect(twice.link.injected.duplicated).toBe(50);
  });

  it('reorders by swapping a frame with the one before it, and loses about what it is told, the same for a seed every run', async () => {
    const a = await run(2000, { loss: 0.1, reorder: 0.2, seed: 42 });
    const b = await run(2000, { loss: 0.1, reorder: 0.2, seed: 42 });
    expect(a.got).toEqual(b.got);
    expect(a.link.injected.lost).toBeGreaterThan(120);
    expect(a.link.injected.lost).toBeLessThan(280);
    expect(a.got.length).toBe(2000 - a.link.injected.lost);
    expect(a.link.injected.reordered).toBeGreaterThan(0);
    // Every frame that was not lost arrives exactly once, some of them out of order.
    expect(new Set(a.got).size).toBe(a.got.length);
    const outOfOrder = a.got.filter((v, i) => i > 0 && v < a.got[i - 1]).length;
    expect(outOfOrder).toBeGreaterThan(0);
    expect(outOfOrder).toBeLessThanOrEqual(a.link.injected.reordered);
    const c = await run(2000, { loss: 0.1, reorder: 0.2, seed: 43 });
    expect(c.got).not.toEqual(a.got);
  });

  it('passes what the stack sends through untouched and shares the inner link\'s properties', async () => {
    const [near, far] = createMemoryLinkPair({ mtu: 9000 });
    const link = new FaultyLink(near, { loss: 1 });
    expect(link.mtu).toBe(9000);
    const got: number[] = [];
    far.start((buf, meta, count) => {
      for (let i = 0; i < count; i++) got.push(buf[meta[2 * i]]);
    });
    link.start(() => {});
    const meta = new Uint32Array(OUTPUT_META_STRIDE);
    meta.set([0, 0, 1, 0, 0, 0]);
    expect(link.writeBatch([Uint8Array.of(7)], meta, 1)).toBe(1);
    await new Promise((r) => setImmediate(r));
    expect(got).toEqual([7]);
    expect(link.stats).toBe(near.stats);
  });
});
