/**
 * reclaimMemoryWhenIdle (src/memory-reclaim.ts) on fake timers: it reclaims
 * once traffic of at least minBytes has been followed by a quiet interval,
 * never while traffic flows or after too little, counts a trickle under
 * 64 KiB as quiet, trims the C heap a second after the collection, and
 * stop() ends it. Also the addon's two primitives it relies on.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadNative } from '../../src/link/native.js';
import { reclaimMemoryWhenIdle } from '../../src/memory-reclaim.js';

let native: ReturnType<typeof loadNative> | null = null;
try {
  native = loadNative();
} catch {
  console.warn('\n*** SKIPPED: the memory-reclaim addon tests: the native addon is not built (npm install) ***\n');
}

describe('reclaimMemoryWhenIdle', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(minBytes = 1000) {
    let moved = 0;
    const release = vi.fn();
    const r = reclaimMemoryWhenIdle(() => moved, { intervalMs: 100, minBytes, release });
    return { r, release, move: (n: number) => (moved += n) };
  }

  it('reclaims once after enough traffic and a quiet interval, then waits for new traffic', () => {
    const { r, release, move } = setup(1 << 20);
    for (let i = 0; i < 5; i++) {
      move(1 << 20);
      vi.advanceTimersByTime(100);
    }
    expect(release).not.toHaveBeenCalled(); // still moving
    vi.advanceTimersByTime(100); // quiet
    expect(release).toHaveBeenCalledTimes(1);
    expect(r.stats.runs).toBe(1);
    vi.advanceTimersByTime(1000); // the trim, a second after the collection
    if (native === null) expect(r.stats.lastHeapFreeBytes).toBe(-1);
    else expect(r.stats.lastHeapFreeBytes).toBeGreaterThanOrEqual(0);
    vi.advanceTimersByTime(1000); // quiet goes on: nothing new to reclaim
    expect(release).toHaveBeenCalledTimes(1);
    r.stop();
  });

  it('a trickle under 64 KiB per interval is quiet; too little traffic reclaims nothing', () => {
    const { r, release, move } = setup(1 << 20);
    move(900_000); // under minBytes
    vi.advanceTimersByTime(100);
    vi.advanceTimersByTime(500);
    expect(release).not.toHaveBeenCalled();
    move(200_000); // now over it, in total
    vi.advanceTimersByTime(100);
    move(60_000); // a keepalive-sized trickle: quiet
    vi.advanceTimersByTime(100);
    expect(release).toHaveBeenCalledTimes(1);
    r.stop();
  });

  it('stop() ends it', () => {
    const { r, release, move } = setup(10);
    move(1 << 20);
    vi.advanceTimersByTime(100);
    r.stop();
    vi.advanceTimersByTime(1000);
    expect(release).not.toHaveBeenCalled();
  });
});

describe.skipIf(native === null)('the addon: releasePages and mallocTrim', () => {
  it('releasePages gives the whole pages back: they read as zeros, the edges keep their bytes', () => {
    const buf = Buffer.allocUnsafeSlow(1 << 20).fill(0xab);
    const view = buf.subarray(100, buf.length - 100);
    const released = native!.releasePages(view);
    expect(released).toBeGreaterThan((1 << 20) - 3 * 4096);
    expect(released % 4096).toBe(0);
    expect(buf[50]).toBe(0xab); // before the first whole page of the view
    expect(buf[buf.length - 50]).toBe(0xab);
    expect(buf.subarray(8192, 8192 + 4096).every((b) => b === 0)).toBe(true);
    expect(native!.releasePages(new Uint8Array(100))).toBe(0);
    expect(() => native!.releasePages('x' as unknown as Uint8Array)).toThrow(/Uint8Array/);
  });

  it('mallocTrim reports the free bytes the C heap held', () => {
    expect(native!.mallocTrim()).toBeGreaterThanOrEqual(0);
  });
});
