/**
 * `struct virtio_net_hdr` (10 bytes), which precedes every frame in both
 * directions on a TAP opened with IFF_VNET_HDR (docs/architecture.md, Measured techniques).
 *
 *   0       1       2               4               6               8              10
 *   +-------+-------+---------------+---------------+---------------+---------------+
 *   | flags |gsoType|    hdrLen     |    gsoSize    |   csumStart   |  csumOffset   |
 *   +-------+-------+---------------+---------------+---------------+---------------+
 *
 * The 16-bit fields are LITTLE-endian: the legacy virtio rule is native order,
 * and the addon sets TUNSETVNETLE so that this holds on any host.
 *
 * From the kernel, almost every TCP/UDP frame carries NEEDS_CSUM: the L4
 * checksum field holds only the pseudo-header sum. Treat such frames as
 * checksum-valid and never verify them (§1.3). To the kernel, send TCP/UDP
 * with NEEDS_CSUM and the pseudo-header sum in the field (tcp.ts/udp.ts
 * `fill*PseudoChecksumV4`); DATA_VALID is ignored by tun on write (§1.4).
 */
import { Wire, type WireCode } from './errors.js';
import { finish, sum16 } from './checksum.js';

export const VNET_HDR_LEN = 10;

export const VnetFlag = {
  /** The L4 checksum is partial: complete it from csumStart, store at csumStart + csumOffset. */
  NEEDS_CSUM: 1,
  /** The checksum was verified already (set by the kernel for forwarded, verified skbs). */
  DATA_VALID: 2,
} as const;

export const GsoType = {
  NONE: 0,
  TCPV4: 1,
  /** Legacy UFO; removed from Linux in 4.14. */
  UDP: 3,
  TCPV6: 4,
  /** UDP segmentation offload (USO, Linux 6.2+ on tun). */
  UDP_L4: 5,
  /** Flag bit: the TCP super-segment carries CWR. */
  ECN: 0x80,
} as const;

export interface VirtioNetRepr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function newVirtioNetRepr(): VirtioNetRepr {
  return { flags: 0, gsoType: GsoType.NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
}

export class VirtioNetView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at the header; `len` may include the frame after it. No validation. */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  check(): WireCode {
    return this.len < VNET_HDR_LEN ? Wire.TRUNCATED : Wire.OK;
  }

  /**
   * Semantic check against the Ethernet frame that follows (`frameLen` bytes),
   * after `check()` passed: NEEDS_CSUM must point inside the frame, and a GSO
   * type needs a non-zero gsoSize (the rules of `virtio_net_hdr_to_skb`).
   * Returns BAD_FIELD otherwise, UNSUPPORTED for an unknown GSO type.
   */
  checkFrame(frameLen: number): WireCode {
    if (this.flags & VnetFlag.NEEDS_CSUM) {
      if (this.csumStart + this.csumOffset + 2 > frameLen) return Wire.BAD_FIELD;
    }
    const gso = this.gsoType & ~GsoType.ECN;
    if (gso === GsoType.NONE) return Wire.OK;
    if (gso !== GsoType.TCPV4 && gso !== GsoType.TCPV6 && gso !== GsoType.UDP_L4 && gso !== GsoType.UDP) {
      return Wire.UNSUPPORTED;
    }
    if (this.gsoSize === 0) return Wire.BAD_FIELD;
    return Wire.OK;
  }

  get flags(): number {
    return this.buf[this.off];
  }
  set flags(v: number) {
    this.buf[this.off] = v;
  }
  get gsoType(): number {
    return this.buf[this.off + 1];
  }
  set gsoType(v: number) {
    this.buf[this.off + 1] = v;
  }
  /** Ethernet + IP + L4 header bytes: a hint in both directions. */
  get hdrLen(): number {
    return this.buf[this.off + 2] | (this.buf[this.off + 3] << 8);
  }
  set hdrLen(v: number) {
    this.buf[this.off + 2] = v & 0xff;
    this.buf[this.off + 3] = v >>> 8;
  }
  /** Payload bytes per segment (the MSS) of a GSO frame. */
  get gsoSize(): number {
    return this.buf[this.off + 4] | (this.buf[this.off + 5] << 8);
  }
  set gsoSize(v: number) {
    this.buf[this.off + 4] = v & 0xff;
    this.buf[this.off + 5] = v >>> 8;
  }
  /** Offset of the L4 header from the start of the Ethernet frame. */
  get csumStart(): number {
    return this.buf[this.off + 6] | (this.buf[this.off + 7] << 8);
  }
  set csumStart(v: number) {
    this.buf[this.off + 6] = v & 0xff;
    this.buf[this.off + 7] = v >>> 8;
  }
  /** Offset of the checksum field from csumStart: 16 for TCP, 6 for UDP. */
  get csumOffset(): number {
    return this.buf[this.off + 8] | (this.buf[this.off + 9] << 8);
  }
  set csumOffset(v: number) {
    this.buf[this.off + 8] = v & 0xff;
    this.buf[this.off + 9] = v >>> 8;
  }
  /** Absolute offset of the Ethernet frame in `buf`. */
  get frameOffset(): number {
    return this.off + VNET_HDR_LEN;
  }
  get frameLength(): number {
    return this.len - VNET_HDR_LEN;
  }
}

export function parseVirtioNet(view: VirtioNetView, repr: VirtioNetRepr): WireCode {
  const code = view.check();
  if (code !== Wire.OK) return code;
  repr.flags = view.flags;
  repr.gsoType = view.gsoType;
  repr.hdrLen = view.hdrLen;
  repr.gsoSize = view.gsoSize;
  repr.csumStart = view.csumStart;
  repr.csumOffset = view.csumOffset;
  return Wire.OK;
}

/** Writes the 10-byte header at `off`; returns 10. */
export function emitVirtioNet(repr: VirtioNetRepr, buf: Uint8Array, off: number): number {
  buf[off] = repr.flags;
  buf[off + 1] = repr.gsoType;
  buf[off + 2] = repr.hdrLen & 0xff;
  buf[off + 3] = repr.hdrLen >>> 8;
  buf[off + 4] = repr.gsoSize & 0xff;
  buf[off + 5] = repr.gsoSize >>> 8;
  buf[off + 6] = repr.csumStart & 0xff;
  buf[off + 7] = repr.csumStart >>> 8;
  buf[off + 8] = repr.csumOffset & 0xff;
  buf[off + 9] = repr.csumOffset >>> 8;
  return VNET_HDR_LEN;
}

/** Writes an all-zero header (no offload; checksums complete) at `off`; returns 10. */
export function emitVirtioNetNone(buf: Uint8Array, off: number): number {
  for (let i = 0; i < VNET_HDR_LEN; i++) buf[off + i] = 0;
  return VNET_HDR_LEN;
}

/**
 * Finishes a NEEDS_CSUM partial checksum in software, as Linux
 * `skb_checksum_help` does: sums from `csumStart` to the end of the frame
 * (the field's pseudo-header sum included), stores the complement at
 * csumStart + csumOffset, and writes 0 as 0xffff (CSUM_MANGLED_0, which UDP
 * needs and which TCP reads as the same value).
 *
 * `frameLen` must end where the L4 data ends (bounded by the IP totalLength,
 * so Ethernet padding is excluded). For a GSO super-frame this yields the
 * checksum of the super-segment as one segment. Returns BAD_FIELD, touching
 * nothing, when the field lies outside the frame.
 */
export function completeChecksum(
  buf: Uint8Array,
  frameOff: number,
  frameLen: number,
  csumStart: number,
  csumOffset: number,
): WireCode {
  if (csumStart + csumOffset + 2 > frameLen) return Wire.BAD_FIELD;
  const field = frameOff + csumStart + csumOffset;
  let sum = finish(sum16(buf, frameOff + csumStart, frameLen - csumStart));
  if (sum === 0) sum = 0xffff;
  buf[field] = sum >>> 8;
  buf[field + 1] = sum & 0xff;
  return Wire.OK;
}

const EMPTY = new Uint8Array(0);
