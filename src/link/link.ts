/**
 * A Link moves Ethernet frames between the stack and whatever carries them:
 * a TAP fd (link/tap.ts), an in-memory pair (link/memory.ts), later a VM socket.
 *
 * Input is delivered in batches: one call per wake-up with every frame that was
 * ready. Frames live in `buf` at `meta[2*i]` (offset) with length `meta[2*i+1]`.
 * The bytes belong to the link and are only valid during the call: anything that
 * must outlive it (a socket.write, a queue) copies them first (docs/architecture.md, Ownership).
 *
 * When `vnetHdr` is true every frame, in both directions, starts with the 10-byte
 * virtio-net header (wire/virtio-net.ts) and `offloads` holds the TUN_F_* mask
 * the kernel accepted.
 *
 * Output is a batch too: frame i is the concatenation of up to two slices,
 * described by six u32 in `meta` starting at 6*i:
 *   [bufIndex0, off0, len0, bufIndex1, off1, len1]   (len1 = 0 for one slice)
 * where bufIndex selects a buffer of `bufs`. Two slices let a header built in an
 * arena go out with a payload that lives elsewhere, without a copy.
 */
export interface Link {
  readonly mtu: number;
  readonly vnetHdr: boolean;
  /** TUN_F_* bits the kernel accepted (0 when vnetHdr is false). */
  readonly offloads: number;
  /** Starts delivering input batches to `onBatch`. Called once. */
  start(onBatch: BatchHandler): void;
  /**
   * Sends `count` frames. Returns how many were accepted; frames the device
   * refused (full queue, link down) are counted in `stats` and dropped, as a
   * real NIC would.
   */
  writeBatch(bufs: readonly Uint8Array[], meta: Uint32Array, count: number): number;
  /** Stops input and releases the device. Idempotent. */
  close(): void;
  readonly stats: LinkStats;
  /**
   * Optional: gives the pages of big preallocated buffers back to the kernel
   * while no batch is running (src/memory-reclaim.ts); they fill again on use.
   */
  releaseIdleMemory?(): void;
}

export type BatchHandler = (buf: Uint8Array, meta: Uint32Array, count: number) => void;

export interface LinkStats {
  rxFrames: number;
  rxBytes: number;
  rxBatches: number;
  txFrames: number;
  txBytes: number;
  txDropped: number;
  rxErrors: number;
}

export const OUTPUT_META_STRIDE = 6;

export function newLinkStats(): LinkStats {
  return { rxFrames: 0, rxBytes: 0, rxBatches: 0, txFrames: 0, txBytes: 0, txDropped: 0, rxErrors: 0 };
}

/**
 * A Link that wraps another (pcap.ts, faulty.ts): the device's properties and
 * every call pass through to `inner` unless the subclass overrides them.
 */
export abstract class LinkDecorator implements Link {
  constructor(readonly inner: Link) {}

  get mtu(): number {
    return this.inner.mtu;
  }

  get vnetHdr(): boolean {
    return this.inner.vnetHdr;
  }

  get offloads(): number {
    return this.inner.offloads;
  }

  get stats(): LinkStats {
    return this.inner.stats;
  }

  start(onBatch: BatchHandler): void {
    this.inner.start(onBatch);
  }

  writeBatch(bufs: readonly Uint8Array[], meta: Uint32Array, count: number): number {
    return this.inner.writeBatch(bufs, meta, count);
  }

  close(): void {
    this.inner.close();
  }

  releaseIdleMemory(): void {
    this.inner.releaseIdleMemory?.();
  }
}
