/**
 * IPv4 header (RFC 791).
 *
 *   0               1               2               3
 *   +-------+-------+---------------+-------------------------------+
 *   |version|  ihl  |  DSCP  |  ECN |         total length          |
 *   +-------+-------+---------------+-----+-------------------------+
 *   |        identification         |0|D|M|  fragment offset (×8)  |
 *   +---------------+---------------+-----+-------------------------+
 *   |      ttl      |   protocol    |        header checksum        |
 *   +---------------+---------------+-------------------------------+
 *   |                        source address                         |
 *   |                      destination address                      |
 *   +---------------------------------------------------------------+
 *   |              options (ihl > 5), up to 40 bytes                |
 *
 * The payload is bounded by `totalLength`, not by what arrived: Ethernet pads
 * short frames to 60 bytes and the padding is not part of the datagram
 * (smoltcp `test_overlong`). `check()` guarantees headerLen ≤ totalLength ≤ len.
 *
 * The header checksum is not part of `check()`. The caller verifies it with
 * `verifyChecksum()` on ingress (and reports `Wire.BAD_CHECKSUM`); the kernel
 * always fills it, even with offloads (docs/architecture.md, Measured techniques).
 *
 * `fragOffset` is in bytes everywhere in this module (the wire field counts
 * 8-byte units).
 */
import { Wire, type WireCode } from './errors.js';
import { readIpv4, writeIpv4 } from './ipv4-address.js';

export const IPV4_HEADER_LEN = 20;
export const IPV4_MAX_HEADER_LEN = 60;

/** IP protocol numbers (IANA). ICMPV6 is listed for the IPv6 side of the stack. */
export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPV6: 58,
} as const;

export interface Ipv4Repr {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  /** The whole second byte: DSCP << 2 | ECN. */
  tos: number;
  ident: number;
  dontFragment: boolean;
  moreFragments: boolean;
  /** In bytes; a multiple of 8 on the wire. */
  fragOffset: number;
  /** Bytes after the header (totalLength − headerLen). */
  payloadLength: number;
}

export function newIpv4Repr(): Ipv4Repr {
  return {
    src: 0,
    dst: 0,
    protocol: 0,
    ttl: 0,
    tos: 0,
    ident: 0,
    dontFragment: false,
    moreFragments: false,
    fragOffset: 0,
    payloadLength: 0,
  };
}

export class Ipv4View {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at a datagram (the Ethernet payload); no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /**
   * OK iff the header and `totalLength` bytes lie within `len`. Setting `ihl`
   * or `totalLength` afterwards invalidates the guarantee.
   */
  check(): WireCode {
    if (this.len < IPV4_HEADER_LEN) return Wire.TRUNCATED;
    if (this.version !== 4) return Wire.BAD_VERSION;
    const headerLen = this.headerLen;
    if (headerLen < IPV4_HEADER_LEN || headerLen > this.len) return Wire.BAD_HEADER_LEN;
    const totalLength = this.totalLength;
    if (totalLength < headerLen || totalLength > this.len) return Wire.BAD_TOTAL_LEN;
    return Wire.OK;
  }

  get version(): number {
    return this.buf[this.off] >>> 4;
  }
  set version(v: number) {
    this.buf[this.off] = ((v & 0xf) << 4) | (this.buf[this.off] & 0xf);
  }
  /** Header length in 32-bit words. */
  get ihl(): number {
    return this.buf[this.off] & 0xf;
  }
  set ihl(v: number) {
    this.buf[this.off] = (this.buf[this.off] & 0xf0) | (v & 0xf);
  }
  /** Header length in bytes. */
  get headerLen(): number {
    return (this.buf[this.off] & 0xf) << 2;
  }
  get tos(): number {
    return this.buf[this.off + 1];
  }
  set tos(v: number) {
    this.buf[this.off + 1] = v;
  }
  get dscp(): number {
    return this.buf[this.off + 1] >>> 2;
  }
  get ecn(): number {
    return this.buf[this.off + 1] & 3;
  }
  get totalLength(): number {
    return (this.buf[this.off + 2] << 8) | this.buf[this.off + 3];
  }
  set totalLength(v: number) {
    this.buf[this.off + 2] = v >>> 8;
    this.buf[this.off + 3] = v & 0xff;
  }
  get ident(): number {
    return (this.buf[this.off + 4] << 8) | this.buf[this.off + 5];
  }
  set ident(v: number) {
    this.buf[this.off + 4] = v >>> 8;
    this.buf[this.off + 5] = v & 0xff;
  }
  get dontFragment(): boolean {
    return (this.buf[this.off + 6] & 0x40) !== 0;
  }
  set dontFragment(v: boolean) {
    this.buf[this.off + 6] = v ? this.buf[this.off + 6] | 0x40 : this.buf[this.off + 6] & ~0x40;
  }
  get moreFragments(): boolean {
    return (this.buf[this.off + 6] & 0x20) !== 0;
  }
  set moreFragments(v: boolean) {
    this.buf[this.off + 6] = v ? this.buf[this.off + 6] | 0x20 : this.buf[this.off + 6] & ~0x20;
  }
  /** In bytes. */
  get fragOffset(): number {
    return (((this.buf[this.off + 6] & 0x1f) << 8) | this.buf[this.off + 7]) << 3;
  }
  /** In bytes; the low 3 bits are dropped. */
  set fragOffset(bytes: number) {
    const units = bytes >>> 3;
    this.buf[this.off + 6] = (this.buf[this.off + 6] & 0xe0) | ((units >>> 8) & 0x1f);
    this.buf[this.off + 7] = units & 0xff;
  }
  /** Either a non-first fragment or a first fragment with more to come (RFC 791 §3.2). */
  get isFragment(): boolean {
    return (((this.buf[this.off + 6] & 0x3f) << 8) | this.buf[this.off + 7]) !== 0;
  }
  get ttl(): number {
    return this.buf[this.off + 8];
  }
  set ttl(v: number) {
    this.buf[this.off + 8] = v;
  }
  get protocol(): number {
    return this.buf[this.off + 9];
  }
  set protocol(v: number) {
    this.buf[this.off + 9] = v;
  }
  get checksum(): number {
    return (this.buf[this.off + 10] << 8) | this.buf[this.off + 11];
  }
  set checksum(v: number) {
    this.buf[this.off + 10] = v >>> 8;
    this.buf[this.off + 11] = v & 0xff;
  }
  get src(): number {
    return readIpv4(this.buf, this.off + 12);
  }
  set src(addr: number) {
    writeIpv4(this.buf, this.off + 12, addr);
  }
  get dst(): number {
    return readIpv4(this.buf, this.off + 16);
  }
  set dst(addr: number) {
    writeIpv4(this.buf, this.off + 16, addr);
  }
  /** Absolute offset of the payload in `buf`. */
  get payloadOffset(): number {
    return this.off + this.headerLen;
  }
  /** totalLength − headerLen: trailing Ethernet padding is not payload. */
  get payloadLength(): number {
    return this.totalLength - this.headerLen;
  }

  /** True iff the header checksum (over `headerLen` bytes, options included) is correct. */
  verifyChecksum(): boolean {
    return headerSum(this.buf, this.off, this.headerLen) === 0xffff;
  }
}

/**
 * Fills a caller-owned repr from a checked view. Does not verify the header
 * checksum (the view's `verifyChecksum()` does). Options are skipped: nothing
 * in this stack acts on them (Linux ignores most of them on local delivery too).
 */
export function parseIpv4Header(view: Ipv4View, repr: Ipv4Repr): WireCode {
  const code = view.check();
  if (code !== Wire.OK) return code;
  repr.src = view.src;
  repr.dst = view.dst;
  repr.protocol = view.protocol;
  repr.ttl = view.ttl;
  repr.tos = view.tos;
  repr.ident = view.ident;
  repr.dontFragment = view.dontFragment;
  repr.moreFragments = view.moreFragments;
  repr.fragOffset = view.fragOffset;
  repr.payloadLength = view.payloadLength;
  return Wire.OK;
}

/**
 * Writes a 20-byte header (no options) at `off`, header checksum included;
 * totalLength = 20 + payloadLength. Returns the bytes written (20).
 */
export function emitIpv4(repr: Ipv4Repr, buf: Uint8Array, off: number): number {
  const totalLength = IPV4_HEADER_LEN + repr.payloadLength;
  const units = repr.fragOffset >>> 3;
  buf[off] = 0x45;
  buf[off + 1] = repr.tos;
  buf[off + 2] = totalLength >>> 8;
  buf[off + 3] = totalLength & 0xff;
  buf[off + 4] = repr.ident >>> 8;
  buf[off + 5] = repr.ident & 0xff;
  buf[off + 6] =
    (repr.dontFragment ? 0x40 : 0) | (repr.moreFragments ? 0x20 : 0) | ((units >>> 8) & 0x1f);
  buf[off + 7] = units & 0xff;
  buf[off + 8] = repr.ttl;
  buf[off + 9] = repr.protocol;
  writeIpv4(buf, off + 12, repr.src);
  writeIpv4(buf, off + 16, repr.dst);
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  const sum = ~headerSum(buf, off, IPV4_HEADER_LEN) & 0xffff;
  buf[off + 10] = sum >>> 8;
  buf[off + 11] = sum & 0xff;
  return IPV4_HEADER_LEN;
}

/** Recomputes the header checksum of the header at `off` (options included). */
export function fillIpv4Checksum(buf: Uint8Array, off: number, headerLen: number): void {
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  const sum = ~headerSum(buf, off, headerLen) & 0xffff;
  buf[off + 10] = sum >>> 8;
  buf[off + 11] = sum & 0xff;
}

/**
 * Folded one's complement sum of a header (an even number of bytes ≤ 60).
 * A dedicated loop: checksum.ts's word path only starts at 64 bytes and this
 * runs once per datagram in each direction.
 */
function headerSum(buf: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += (buf[off + i] << 8) | buf[off + i + 1];
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

const EMPTY = new Uint8Array(0);
