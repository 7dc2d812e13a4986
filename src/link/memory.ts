/**
 * Two in-memory Links joined back to back, for tests and embedding: what one
 * side writes arrives at the other as an input batch on a later turn of the
 * event loop (never re-entrantly inside writeBatch), so the timing resembles
 * a real device. Loss, duplication and reordering come from wrapping a link
 * in FaultyLink (faulty.ts).
 */
import { newLinkStats, OUTPUT_META_STRIDE, type BatchHandler, type Link, type LinkStats } from './link.js';

export interface MemoryLinkOptions {
  mtu?: number;
  vnetHdr?: boolean;
  offloads?: number;
  /** Frames queued towards one side before further frames are dropped. */
  maxQueuedFrames?: number;
}

export class MemoryLink implements Link {
  readonly mtu: number;
  readonly vnetHdr: boolean;
  readonly offloads: number;
  readonly stats: LinkStats = newLinkStats();
  peer: MemoryLink | null = null;
  private handler: BatchHandler | null = null;
  private readonly queue: Uint8Array[] = [];
  private scheduled = false;
  private closed = false;
  private readonly maxQueued: number;

  constructor(options: MemoryLinkOptions = {}) {
    this.mtu = options.mtu ?? 1500;
    this.vnetHdr = options.vnetHdr ?? false;
    this.offloads = options.offloads ?? 0;
    this.maxQueued = options.maxQueuedFrames ?? 4096;
  }

  start(onBatch: BatchHandler): void {
    this.handler = onBatch;
    this.schedule();
  }

  writeBatch(bufs: readonly Uint8Array[], meta: Uint32Array, count: number): number {
    let written = 0;
    for (let i = 0; i < count; i++) {
      const m = i * OUTPUT_META_STRIDE;
      const len0 = meta[m + 2];
      const len1 = meta[m + 5];
      const frame = new Uint8Array(len0 + len1);
      frame.set(bufs[meta[m]].subarray(meta[m + 1], meta[m + 1] + len0), 0);
      if (len1 > 0) frame.set(bufs[meta[m + 3]].subarray(meta[m + 4], meta[m + 4] + len1), len0);
      if (this.peer === null || this.closed || !this.peer.deliver(frame)) {
        this.stats.txDropped++;
        continue;
      }
      this.stats.txFrames++;
      this.stats.txBytes += frame.length;
      written++;
    }
    return written;
  }

  /** Injects a frame as if the peer had sent it (tests use this as the guest side). */
  inject(frame: Uint8Array): void {
    this.deliver(Uint8Array.from(frame));
  }

  close(): void {
    this.closed = true;
    this.handler = null;
    this.queue.length = 0;
  }

  private deliver(frame: Uint8Array): boolean {
    if (this.closed || this.queue.length >= this.maxQueued) return false;
    this.queue.push(frame);
    this.schedule();
    return true;
  }

  private schedule(): void {
    if (this.scheduled || this.handler === null || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    const handler = this.handler;
    if (handler === null) return;
    const frames = this.queue.splice(0, this.queue.length);
    let total = 0;
    for (const f of frames) total += (f.length + 7) & ~7;
    const buf = new Uint8Array(total);
    const meta = new Uint32Array(frames.length * 2);
    let off = 0;
    frames.forEach((f, i) => {
      buf.set(f, off);
      meta[2 * i] = off;
      meta[2 * i + 1] = f.length;
      off += (f.length + 7) & ~7;
      this.stats.rxFrames++;
      this.stats.rxBytes += f.length;
    });
    this.stats.rxBatches++;
    handler(buf, meta, frames.length);
  }
}

/** Two links wired to each other. */
export function createMemoryLinkPair(a: MemoryLinkOptions = {}, b: MemoryLinkOptions = a): [MemoryLink, MemoryLink] {
  const left = new MemoryLink(a);
  const right = new MemoryLink(b);
  left.peer = right;
  right.peer = left;
  return [left, right];
}
