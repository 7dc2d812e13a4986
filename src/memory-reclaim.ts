/**
 * Giving memory back after bulk traffic.
 *
 * A relay that moved gigabytes holds tens of megabytes it no longer uses,
 * and nothing returns them by itself once traffic stops (measured with
 * iperf3 at MTU 1500: 56 MB idle, 93–107 MB after 3 s each way, still so
 * 15 s later):
 *
 * - The buffers host reads land in (nat/native-stream.ts's 1 MiB slabs) and
 *   the send buffers' chunks become garbage as the guest acknowledges them,
 *   but the garbage collector runs only when JavaScript allocates, and an
 *   idle relay allocates nothing: their ArrayBuffers stay (18–40 MB).
 * - When the collector does free them, glibc keeps the pages: blocks that
 *   size come from its arenas once its dynamic mmap threshold has risen, and
 *   free() returns them to the arena, not to the kernel (~28 MB free in the
 *   C heap after one such run).
 *
 * So, once the link has moved at least `minBytes` since the last reclaim and
 * then stayed quiet (under 64 KiB) for a whole `intervalMs`, this runs
 * `release` (the CLI's gives back the pages of the TAP read slots and the
 * output arena, ~8 MB that bulk traffic touched end to end), one full
 * collection and, a second later, malloc_trim(0) (the addon's mallocTrim).
 * Checking costs one timer per interval (unref'd: it never keeps a process
 * alive) and reads two counters; nothing runs on the data path. A full
 * collection of this heap (~10 MB) takes a few milliseconds, taken only
 * while nothing moves.
 *
 * The collector is reached through v8.setFlagsFromString('--expose-gc') and
 * a fresh context's `gc`, unless the process already has `globalThis.gc`.
 * An embedder whose own heap is large may prefer not to force full
 * collections: this is opt-in for the library, on in the CLI.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadNative } from './link/native.js';

export interface MemoryReclaimOptions {
  /** How long the link must be quiet (and how often it is checked), ms. Default 5000. */
  intervalMs?: number;
  /** Bytes the link must have moved since the last reclaim for another to pay. Default 16 MiB. */
  minBytes?: number;
  /** Called first at each reclaim: e.g. `() => stack.releaseIdleMemory()`. */
  release?: () => void;
}

export interface MemoryReclaimStats {
  /** Reclaims run. */
  runs: number;
  /** Free bytes the C heap held before the last malloc_trim (mallinfo2), or -1 without the addon. */
  lastHeapFreeBytes: number;
}

export interface MemoryReclaimer {
  readonly stats: MemoryReclaimStats;
  stop(): void;
}

/** Bytes an interval may move and still count as quiet. */
const QUIET_BYTES = 64 * 1024;
/** From the collection to malloc_trim (see below). */
const TRIM_DELAY_MS = 1000;

let cachedGc: (() => void) | null | undefined;

/** A full-collection function, or null when this V8 will not give one. */
function fullGc(): (() => void) | null {
  if (cachedGc !== undefined) return cachedGc;
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return (cachedGc = existing);
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    cachedGc = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    cachedGc = null;
  }
  return cachedGc;
}

/**
 * Watches `bytesMoved` (a monotonic counter, e.g. the link's rxBytes + txBytes)
 * and reclaims once traffic of at least `minBytes` has been followed by a
 * quiet interval.
 */
export function reclaimMemoryWhenIdle(bytesMoved: () => number, options: MemoryReclaimOptions = {}): MemoryReclaimer {
  const intervalMs = options.intervalMs ?? 5000;
  const minBytes = options.minBytes ?? 16 << 20;
  const stats: MemoryReclaimStats = { runs: 0, lastHeapFreeBytes: -1 };
  let seen = bytesMoved();
  let pending = 0;
  const timer = setInterval(() => {
    const now = bytesMoved();
    const moved = now - seen;
    seen = now;
    // A guest is never fully silent (a keepalive or an NDP probe every few
    // seconds): an interval that moved less than QUIET_BYTES counts as quiet.
    if (moved >= QUIET_BYTES) {
      pending += moved;
      return;
    }
    if (pending < minBytes) return;
    pending = 0;
    stats.runs++;
    options.release?.();
    fullGc()?.();
    // V8 frees the backing stores of dead ArrayBuffers on a background
    // thread after the collection: trimming at once found them still taken.
    trimTimer = setTimeout(trim, TRIM_DELAY_MS);
    trimTimer.unref();
  }, intervalMs);
  timer.unref();
  let trimTimer: NodeJS.Timeout | null = null;
  const trim = (): void => {
    trimTimer = null;
    try {
      stats.lastHeapFreeBytes = loadNative().mallocTrim();
    } catch {
      stats.lastHeapFreeBytes = -1;
    }
  };
  return {
    stats,
    stop: () => {
      clearInterval(timer);
      if (trimTimer !== null) clearTimeout(trimTimer);
    },
  };
}
