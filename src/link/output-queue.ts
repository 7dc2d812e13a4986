/**
 * Collects the frames the stack produces while it handles one input batch (or
 * one timer tick) and hands them to the link in a single writeBatch call.
 *
 * Frames are built in place in a preallocated arena (`reserve` then
 * `commit`). The arena is reused after every flush, so nothing may keep a
 * view of it. A queue that fills up flushes early: the bound is the arena,
 * never memory growth.
 *
 * A frame may have a second slice outside the arena (`commit`'s `tail`): TCP
 * payloads go out from the relay's read slab instead of being copied in
 * behind their headers. Copying was ~9 % of the helper's CPU in a host→guest
 * bulk transfer (perf; the copy of 64 KB costs several microseconds, not
 * "under one"). The tail's buffer is referenced until the flush, and its
 * bytes must not change before it.
 */
import { OUTPUT_META_STRIDE, type Link } from './link.js';
import { loadNative } from './native.js';

const DEFAULT_ARENA_BYTES = 1 << 20;
const DEFAULT_MAX_FRAMES = 1024;
/** Largest frame the stack ever builds in the arena: vnet header + Ethernet + 64 KiB IP. */
export const MAX_FRAME_BYTES = 10 + 14 + 65535;

export class OutputQueue {
  readonly arena: Uint8Array;
  private readonly meta: Uint32Array;
  /** [arena, then the tails' buffers of this batch, each once]. */
  private readonly bufs: Uint8Array[];
  /** The last tail's buffer and its index in bufs (tails of one batch mostly share one). */
  private lastTail: Uint8Array | null = null;
  private lastTailIdx = 0;
  private readonly maxFrames: number;
  private used = 0;
  private count = 0;
  /** Start of the frame handed out by the last reserve() that is not yet committed. */
  private reserved = -1;

  constructor(
    private readonly link: Link,
    arenaBytes = DEFAULT_ARENA_BYTES,
    maxFrames = DEFAULT_MAX_FRAMES,
  ) {
    if (arenaBytes < MAX_FRAME_BYTES) throw new RangeError('arena smaller than one frame');
    this.arena = Buffer.allocUnsafeSlow(arenaBytes);
    this.maxFrames = maxFrames;
    this.meta = new Uint32Array(maxFrames * OUTPUT_META_STRIDE);
    this.bufs = [this.arena];
  }

  /** Frames queued and not yet flushed. */
  get pending(): number {
    return this.count;
  }

  /**
   * Returns the arena offset where a frame of at most `maxLen` bytes can be
   * written; the frame goes out only once committed. Flushes first when full.
   * Offsets are 8-byte aligned so word-wise checksums stay on the fast path.
   */
  reserve(maxLen: number): number {
    if (this.used + maxLen > this.arena.length || this.count === this.maxFrames) this.flush();
    this.reserved = this.used;
    return this.used;
  }

  /**
   * Queues the frame reserved at `off`: `len` bytes of the arena, then
   * `tailLen` bytes of `tail` from `tailOff` (none when tail is null).
   */
  commit(off: number, len: number, tail: Uint8Array | null = null, tailOff = 0, tailLen = 0): void {
    if (off !== this.reserved) throw new Error('OutputQueue.commit without a matching reserve');
    this.reserved = -1;
    const m = this.count * OUTPUT_META_STRIDE;
    const meta = this.meta;
    meta[m] = 0;
    meta[m + 1] = off;
    meta[m + 2] = len;
    if (tail !== null && tailLen > 0) {
      if (tail !== this.lastTail) {
        this.lastTail = tail;
        this.lastTailIdx = this.bufs.length;
        this.bufs.push(tail);
      }
      meta[m + 3] = this.lastTailIdx;
      meta[m + 4] = tailOff;
      meta[m + 5] = tailLen;
    } else {
      meta[m + 5] = 0;
    }
    this.used = (off + len + 7) & ~7;
    this.count++;
  }

  /**
   * When nothing is queued: the arena's pages go back to the kernel (bulk
   * traffic touched all of its megabytes). Without the addon, nothing.
   */
  releaseIdleMemory(): void {
    if (this.count !== 0 || this.reserved !== -1) return;
    try {
      loadNative().releasePages(this.arena);
    } catch {
      // No addon (MemoryLink users): the pages stay.
    }
  }

  /** Writes every queued frame in one call and resets the arena. */
  flush(): void {
    if (this.count > 0) this.link.writeBatch(this.bufs, this.meta, this.count);
    if (this.bufs.length > 1) this.bufs.length = 1;
    this.lastTail = null;
    this.count = 0;
    this.used = 0;
    this.reserved = -1;
  }
}
