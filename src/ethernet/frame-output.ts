/**
 * Builds whole frames in the output queue's arena: the caller asks for room
 * for an L3 payload, writes it at the returned offset of `buf`, then `finish`
 * prepends the Ethernet header (and the virtio-net header when the link uses
 * one) and queues the frame.
 *
 * Frames carry complete checksums and an all-zero virtio-net header unless
 * the caller passes one (TCP segments: NEEDS_CSUM, and GSO for super-frames).
 */
import type { OutputQueue } from '../link/output-queue.js';
import { ETHERNET_HEADER_LEN, EtherType, writeMac } from '../wire/ethernet.js';
import { emitVirtioNet, VNET_HDR_LEN, type VirtioNetRepr } from '../wire/virtio-net.js';

export class FrameOutput {
  readonly buf: Uint8Array;
  /** Bytes in front of the L3 payload: virtio-net header (if any) and Ethernet. */
  readonly headroom: number;
  private frameStart = -1;

  constructor(
    private readonly queue: OutputQueue,
    readonly vnetHdr: boolean,
  ) {
    this.buf = queue.arena;
    this.headroom = (vnetHdr ? VNET_HDR_LEN : 0) + ETHERNET_HEADER_LEN;
  }

  /** Reserves a frame for up to `maxPayloadLen` L3 bytes; returns where they go in `buf`. */
  begin(maxPayloadLen: number): number {
    this.frameStart = this.queue.reserve(this.headroom + maxPayloadLen);
    return this.frameStart + this.headroom;
  }

  /**
   * Queues the frame begun last. `vnet` describes checksum/segmentation
   * offload for the kernel; without it the virtio-net header is all zeros.
   */
  finish(dstMac: number, srcMac: number, etherType: number, payloadLen: number, vnet?: VirtioNetRepr): void {
    this.finishWithTail(dstMac, srcMac, etherType, payloadLen, vnet, null, 0, 0);
  }

  /**
   * finish for a frame whose last `tailLen` bytes are not in the arena but
   * in `tail` from `tailOff` (OutputQueue.commit); `payloadLen` counts only
   * the L3 bytes written in the arena.
   */
  finishWithTail(dstMac: number, srcMac: number, etherType: number, payloadLen: number, vnet: VirtioNetRepr | undefined, tail: Uint8Array | null, tailOff: number, tailLen: number): void {
    const start = this.frameStart;
    const b = this.buf;
    let eth = start;
    if (this.vnetHdr) {
      if (vnet === undefined) b.fill(0, start, start + VNET_HDR_LEN);
      else emitVirtioNet(vnet, b, start);
      eth += VNET_HDR_LEN;
    }
    writeMac(b, eth, dstMac);
    writeMac(b, eth + 6, srcMac);
    b[eth + 12] = etherType >>> 8;
    b[eth + 13] = etherType & 0xff;
    this.queue.commit(start, this.headroom + payloadLen, tail, tailOff, tailLen);
    this.frameStart = -1;
  }
}

export { EtherType };
