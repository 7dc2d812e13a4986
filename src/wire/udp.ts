/**
 * UDP header (RFC 768).
 *
 *   0               2               4               6               8
 *   +---------------+---------------+---------------+---------------+
 *   |  source port  |   dest port   |    length     |   checksum    |
 *   +---------------+---------------+---------------+---------------+
 *
 * The view's `len` is the IP payload length. The datagram is bounded by the
 * UDP `length` field, which `check()` requires to be 8 ≤ length ≤ len; bytes
 * after `length` are ignored, as Linux does (`udp_rcv` trims the skb to it).
 *
 * Checksums over IPv4: 0 in the field means "none" (RFC 768); a computed 0 is
 * sent as 0xffff. With TAP offloads the kernel hands us NEEDS_CSUM frames whose
 * field holds only the pseudo-header sum: do not verify those
 * (docs/architecture.md, Measured techniques).
 */
import { Wire, type WireCode } from './errors.js';
import { addrSumV4, finish, fold, pseudoHeaderSum, sum16 } from './checksum.js';

export const UDP_HEADER_LEN = 8;
/** csum_offset of a NEEDS_CSUM UDP frame. */
export const UDP_CHECKSUM_OFFSET = 6;
const PROTO_UDP = 17;

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payloadLength: number;
}

export function newUdpRepr(): UdpRepr {
  return { srcPort: 0, dstPort: 0, payloadLength: 0 };
}

export class UdpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at a datagram (the IP payload); no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** OK iff 8 ≤ length ≤ len. Setting `length` afterwards invalidates the guarantee. */
  check(): WireCode {
    if (this.len < UDP_HEADER_LEN) return Wire.TRUNCATED;
    const length = this.length;
    if (length < UDP_HEADER_LEN || length > this.len) return Wire.BAD_TOTAL_LEN;
    return Wire.OK;
  }

  get srcPort(): number {
    return (this.buf[this.off] << 8) | this.buf[this.off + 1];
  }
  set srcPort(v: number) {
    this.buf[this.off] = v >>> 8;
    this.buf[this.off + 1] = v & 0xff;
  }
  get dstPort(): number {
    return (this.buf[this.off + 2] << 8) | this.buf[this.off + 3];
  }
  set dstPort(v: number) {
    this.buf[this.off + 2] = v >>> 8;
    this.buf[this.off + 3] = v & 0xff;
  }
  /** Header plus payload, in bytes. */
  get length(): number {
    return (this.buf[this.off + 4] << 8) | this.buf[this.off + 5];
  }
  set length(v: number) {
    this.buf[this.off + 4] = v >>> 8;
    this.buf[this.off + 5] = v & 0xff;
  }
  get checksum(): number {
    return (this.buf[this.off + 6] << 8) | this.buf[this.off + 7];
  }
  set checksum(v: number) {
    this.buf[this.off + 6] = v >>> 8;
    this.buf[this.off + 7] = v & 0xff;
  }
  get payloadOffset(): number {
    return this.off + UDP_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.length - UDP_HEADER_LEN;
  }

  /** True iff the checksum is absent (0) or correct for this pseudo-header (RFC 768). */
  verifyChecksumV4(src: number, dst: number): boolean {
    if (this.checksum === 0) return true;
    return this.verifyChecksum(addrSumV4(src, dst));
  }

  /**
   * Over IPv6, given the addresses' sum: the checksum is mandatory (RFC 8200
   * §8.1), so 0 is wrong there (Linux drops such datagrams too).
   */
  verifyChecksum6(addrSum: number): boolean {
    if (this.checksum === 0) return false;
    return this.verifyChecksum(addrSum);
  }

  private verifyChecksum(addrSum: number): boolean {
    const length = this.length;
    return finish(sum16(this.buf, this.off, length, pseudoHeaderSum(addrSum, PROTO_UDP, length))) === 0;
  }
}

export function parseUdp(view: UdpView, repr: UdpRepr): WireCode {
  const code = view.check();
  if (code !== Wire.OK) return code;
  repr.srcPort = view.srcPort;
  repr.dstPort = view.dstPort;
  repr.payloadLength = view.payloadLength;
  return Wire.OK;
}

/**
 * Writes the 8-byte header with length = 8 + payloadLength and a zero
 * checksum; fill the checksum afterwards with `fillUdpChecksumV4` or
 * `fillUdpPseudoChecksumV4`. Returns 8.
 */
export function emitUdpHeader(repr: UdpRepr, buf: Uint8Array, off: number): number {
  const length = UDP_HEADER_LEN + repr.payloadLength;
  buf[off] = repr.srcPort >>> 8;
  buf[off + 1] = repr.srcPort & 0xff;
  buf[off + 2] = repr.dstPort >>> 8;
  buf[off + 3] = repr.dstPort & 0xff;
  buf[off + 4] = length >>> 8;
  buf[off + 5] = length & 0xff;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  return UDP_HEADER_LEN;
}

/**
 * Computes the full checksum of the datagram at `off` (header and payload in
 * place, length taken from the header). A result of 0 is stored as 0xffff,
 * since 0 means "no checksum" (RFC 768).
 */
export function fillUdpChecksumV4(buf: Uint8Array, off: number, src: number, dst: number): void {
  fillUdpChecksum(buf, off, addrSumV4(src, dst));
}

/** fillUdpChecksumV4 for either family, given the addresses' sum. */
export function fillUdpChecksum(buf: Uint8Array, off: number, addrSum: number): void {
  const length = (buf[off + 4] << 8) | buf[off + 5];
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  let sum = finish(sum16(buf, off, length, pseudoHeaderSum(addrSum, PROTO_UDP, length)));
  if (sum === 0) sum = 0xffff;
  buf[off + 6] = sum >>> 8;
  buf[off + 7] = sum & 0xff;
}

/**
 * Stores the folded, uncomplemented pseudo-header sum, as Linux does for
 * CHECKSUM_PARTIAL (`udp4_hwcsum`): for frames sent with NEEDS_CSUM,
 * csum_start at the UDP header and csum_offset 6. For a UDP_L4 (USO)
 * super-frame the length is the whole super-datagram's, as in the header;
 * the kernel adjusts it per segment (captured: test/wire/golden.ts VNET_UDP_GSO).
 */
export function fillUdpPseudoChecksumV4(buf: Uint8Array, off: number, src: number, dst: number): void {
  fillUdpPseudoChecksum(buf, off, addrSumV4(src, dst));
}

/** fillUdpPseudoChecksumV4 for either family, given the addresses' sum. */
export function fillUdpPseudoChecksum(buf: Uint8Array, off: number, addrSum: number): void {
  const length = (buf[off + 4] << 8) | buf[off + 5];
  const sum = fold(pseudoHeaderSum(addrSum, PROTO_UDP, length));
  buf[off + 6] = sum >>> 8;
  buf[off + 7] = sum & 0xff;
}

const EMPTY = new Uint8Array(0);
