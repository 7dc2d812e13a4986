/**
 * A fault-injecting decorator for any Link, in the sense of gVisor's link
 * endpoints: the frames it receives are dropped, duplicated or reordered with
 * a seeded PRNG before they reach the stack; what the stack sends passes
 * through untouched. Tests wrap a MemoryLink in it (loss and reordering
 * against the TCP endpoint); nothing in the data path knows about it.
 */
import { LinkDecorator, type BatchHandler, type Link } from './link.js';

export interface LinkFaults {
  /** Probability (0..1) that a received frame is dropped. */
  loss?: number;
  /** Probability that a received frame is delivered twice. */
  duplicate?: number;
  /** Probability that a received frame goes before the one received just before it in its batch. */
  reorder?: number;
  /** PRNG seed (a given seed and input give the same faults every run). */
  seed?: number;
}

export class FaultyLink extends LinkDecorator {
  /** Frames dropped, duplicated and reordered so far. */
  readonly injected = { lost: 0, duplicated: 0, reordered: 0 };
  private readonly faults: Required<LinkFaults>;
  private rng: number;

  constructor(inner: Link, faults: LinkFaults) {
    super(inner);
    this.faults = { loss: 0, duplicate: 0, reorder: 0, seed: 1, ...faults };
    this.rng = this.faults.seed >>> 0 || 1;
  }

  override start(onBatch: BatchHandler): void {
    this.inner.start((buf, meta, count) => this.deliver(buf, meta, count, onBatch));
  }

  /** The batch with the faults applied, as a new buffer and meta in the input layout. */
  private deliver(buf: Uint8Array, meta: Uint32Array, count: number, onBatch: BatchHandler): void {
    const f = this.faults;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const frame = buf.subarray(meta[2 * i], meta[2 * i] + meta[2 * i + 1]);
      if (f.loss > 0 && this.random() < f.loss) {
        this.injected.lost++;
        continue;
      }
      if (f.reorder > 0 && frames.length > 0 && this.random() < f.reorder) {
        frames.splice(frames.length - 1, 0, frame);
        this.injected.reordered++;
      } else {
        frames.push(frame);
      }
      if (f.duplicate > 0 && this.random() < f.duplicate) {
        frames.push(frame);
        this.injected.duplicated++;
      }
    }
    if (frames.length === 0) return;
    let total = 0;
    for (const fr of frames) total += (fr.length + 7) & ~7;
    const out = new Uint8Array(total);
    const outMeta = new Uint32Array(frames.length * 2);
    let off = 0;
    frames.forEach((fr, i) => {
      out.set(fr, off);
      outMeta[2 * i] = off;
      outMeta[2 * i + 1] = fr.length;
      off += (fr.length + 7) & ~7;
    });
    onBatch(out, outMeta, frames.length);
  }

  private random(): number {
    // xorshift32: deterministic per seed, good enough for fault injection.
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng / 0x1_0000_0000;
  }
}
