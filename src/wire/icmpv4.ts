/**
 * ICMP for IPv4 (RFC 792): echo and the error messages the stack emits or
 * relays.
 *
 *   0       1       2               4                               8
 *   +-------+-------+---------------+-------------------------------+
 *   | type  | code  |   checksum    |  rest of header (4 bytes)     |
 *   +-------+-------+---------------+-------------------------------+
 *   | echo: ident (2) + seq (2); frag-needed: unused (2) + MTU (2);  |
 *   | parameter problem: pointer (1) + unused (3); others: unused   |
 *   +---------------------------------------------------------------+
 *   | payload: echo data, or the quoted offending datagram          |
 *
 * The checksum covers the whole ICMP message (header and payload). The view's
 * `len` is the IP payload length, so trailing Ethernet padding is excluded.
 */
import { Wire, type WireCode } from './errors.js';
import { finish, sum16 } from './checksum.js';

export const ICMPV4_HEADER_LEN = 8;

/**
 * RFC 1812 §4.3.2.3: an error carries as much of the offending datagram as fits
 * without the ICMP datagram exceeding 576 bytes: 576 − 20 (IP) − 8 (ICMP).
 */
export const ICMPV4_ERROR_MAX_QUOTED = 548;

export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

/** Codes of DEST_UNREACHABLE (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1). */
export const Icmpv4Unreach = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  /** "Fragmentation needed and DF set"; the next-hop MTU goes in bytes 6..8 (RFC 1191). */
  FRAG_NEEDED: 4,
  NET_PROHIBITED: 9,
  HOST_PROHIBITED: 10,
  ADMIN_PROHIBITED: 13,
} as const;

/** Codes of TIME_EXCEEDED. */
export const Icmpv4TimeExceeded = {
  TTL: 0,
  REASSEMBLY: 1,
} as const;

/**
 * True for the error types. RFC 1122 §3.2.2: never send an error about an
 * error (nor about a non-first fragment, a broadcast or a multicast).
 */
export function isIcmpv4Error(type: number): boolean {
  return (
    type === Icmpv4Type.DEST_UNREACHABLE ||
    type === Icmpv4Type.SOURCE_QUENCH ||
    type === Icmpv4Type.REDIRECT ||
    type === Icmpv4Type.TIME_EXCEEDED ||
    type === Icmpv4Type.PARAMETER_PROBLEM
  );
}

export interface Icmpv4Repr {
  type: number;
  code: number;
  /** Bytes 4..8 as a u32: for echo, ident << 16 | seq. */
  rest: number;
  /** Absolute offset of the payload (echo data or quoted datagram) in the view's buffer. */
  payloadOffset: number;
  payloadLength: number;
}

export function newIcmpv4Repr(): Icmpv4Repr {
  return { type: 0, code: 0, rest: 0, payloadOffset: 0, payloadLength: 0 };
}

/**
 * What ICMP for IPv4 and ICMPv6 share: the 8-byte header (RFC 792, RFC 4443
 * §2.1) and the echo fields (RFC 4443 §4). Each family's view adds its own
 * checksum rule and its own uses of bytes 4..8.
 */
export class IcmpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at an ICMP message (the IP payload); no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  check(): WireCode {
    return this.len < ICMPV4_HEADER_LEN ? Wire.TRUNCATED : Wire.OK;
  }

  get type(): number {
    return this.buf[this.off];
  }
  set type(v: number) {
    this.buf[this.off] = v;
  }
  get code(): number {
    return this.buf[this.off + 1];
  }
  set code(v: number) {
    this.buf[this.off + 1] = v;
  }
  get checksum(): number {
    return (this.buf[this.off + 2] << 8) | this.buf[this.off + 3];
  }
  set checksum(v: number) {
    this.buf[this.off + 2] = v >>> 8;
    this.buf[this.off + 3] = v & 0xff;
  }
  /** Echo identifier (bytes 4..6). */
  get ident(): number {
    return (this.buf[this.off + 4] << 8) | this.buf[this.off + 5];
  }
  set ident(v: number) {
    this.buf[this.off + 4] = v >>> 8;
    this.buf[this.off + 5] = v & 0xff;
  }
  /** Echo sequence number (bytes 6..8). */
  get seq(): number {
    return (this.buf[this.off + 6] << 8) | this.buf[this.off + 7];
  }
  set seq(v: number) {
    this.buf[this.off + 6] = v >>> 8;
    this.buf[this.off + 7] = v & 0xff;
  }
  /** Bytes 4..8 as a u32. */
  get rest(): number {
    return (
      ((this.buf[this.off + 4] << 24) |
        (this.buf[this.off + 5] << 16) |
        (this.buf[this.off + 6] << 8) |
        this.buf[this.off + 7]) >>>
      0
    );
  }
  set rest(v: number) {
    this.buf[this.off + 4] = v >>> 24;
    this.buf[this.off + 5] = (v >>> 16) & 0xff;
    this.buf[this.off + 6] = (v >>> 8) & 0xff;
    this.buf[this.off + 7] = v & 0xff;
  }
  get payloadOffset(): number {
    return this.off + ICMPV4_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.len - ICMPV4_HEADER_LEN;
  }
}

export class Icmpv4View extends IcmpView {
  /** Next-hop MTU of a FRAG_NEEDED error (bytes 6..8, RFC 1191 §4); same bytes as `seq`. */
  get nextHopMtu(): number {
    return (this.buf[this.off + 6] << 8) | this.buf[this.off + 7];
  }

  /** True iff the checksum over the whole message (`len` bytes) is correct. */
  verifyChecksum(): boolean {
    return finish(sum16(this.buf, this.off, this.len)) === 0;
  }
}

/** Fills a caller-owned repr from a checked view. Does not verify the checksum. */
export function parseIcmpv4(view: Icmpv4View, repr: Icmpv4Repr): WireCode {
  const code = view.check();
  if (code !== Wire.OK) return code;
  repr.type = view.type;
  repr.code = view.code;
  repr.rest = view.rest;
  repr.payloadOffset = view.payloadOffset;
  repr.payloadLength = view.payloadLength;
  return Wire.OK;
}

/**
 * Writes an echo request or reply: header, `payloadLen` bytes copied from
 * `payload` at `payloadOff`, and the checksum. The payload may already sit in
 * place (`payload === buf`, `payloadOff === off + 8`: the reply built over the
 * request) or overlap the destination anywhere, header included. Returns the
 * ICMP message length.
 */
export function emitIcmpv4Echo(
  type: number,
  ident: number,
  seq: number,
  payload: Uint8Array,
  payloadOff: number,
  payloadLen: number,
  buf: Uint8Array,
  off: number,
): number {
  const len = writeIcmpEcho(type, ident, seq, payload, payloadOff, payloadLen, buf, off);
  fillIcmpv4Checksum(buf, off, len);
  return len;
}

/**
 * The echo message of either family (RFC 792, RFC 4443 §4) but its checksum,
 * which only the caller knows how to cover. Returns the message length.
 */
export function writeIcmpEcho(
  type: number,
  ident: number,
  seq: number,
  payload: Uint8Array,
  payloadOff: number,
  payloadLen: number,
  buf: Uint8Array,
  off: number,
): number {
  // Copy first: the source may overlap the 8 header bytes about to be written.
  copyBytes(payload, payloadOff, buf, off + ICMPV4_HEADER_LEN, payloadLen);
  buf[off] = type;
  buf[off + 1] = 0;
  buf[off + 4] = ident >>> 8;
  buf[off + 5] = ident & 0xff;
  buf[off + 6] = seq >>> 8;
  buf[off + 7] = seq & 0xff;
  return ICMPV4_HEADER_LEN + payloadLen;
}

/**
 * Writes an error message quoting the offending datagram (RFC 792; RFC 1812
 * §4.3.2.3): `quoted` holds that datagram from its IP header on, and at most
 * `maxQuoted` bytes of it are copied. `rest` is bytes 4..8 (0, or the next-hop
 * MTU for FRAG_NEEDED, or pointer << 24 for PARAMETER_PROBLEM). Returns the
 * ICMP message length. `quoted` may overlap the destination (an error built
 * in place in front of the datagram it quotes).
 *
 * The caller decides whether an error may be sent at all (RFC 1122 §3.2.2:
 * not about an ICMP error, a non-first fragment, a broadcast or multicast).
 */
export function emitIcmpv4Error(
  type: number,
  code: number,
  rest: number,
  quoted: Uint8Array,
  quotedOff: number,
  quotedLen: number,
  buf: Uint8Array,
  off: number,
  maxQuoted: number = ICMPV4_ERROR_MAX_QUOTED,
): number {
  const len = writeIcmpError(type, code, rest, quoted, quotedOff, quotedLen, maxQuoted, buf, off);
  fillIcmpv4Checksum(buf, off, len);
  return len;
}

/**
 * The error message of either family (RFC 792, RFC 4443 §3) but its
 * checksum: header and at most `maxQuoted` bytes of the offending datagram.
 * Returns the message length.
 */
export function writeIcmpError(
  type: number,
  code: number,
  rest: number,
  quoted: Uint8Array,
  quotedOff: number,
  quotedLen: number,
  maxQuoted: number,
  buf: Uint8Array,
  off: number,
): number {
  const n = quotedLen < maxQuoted ? (quotedLen > 0 ? quotedLen : 0) : maxQuoted > 0 ? maxQuoted : 0;
  copyBytes(quoted, quotedOff, buf, off + ICMPV4_HEADER_LEN, n);
  buf[off] = type;
  buf[off + 1] = code;
  buf[off + 4] = rest >>> 24;
  buf[off + 5] = (rest >>> 16) & 0xff;
  buf[off + 6] = (rest >>> 8) & 0xff;
  buf[off + 7] = rest & 0xff;
  return ICMPV4_HEADER_LEN + n;
}

/** Recomputes the checksum of the `len`-byte ICMP message at `off`. */
export function fillIcmpv4Checksum(buf: Uint8Array, off: number, len: number): void {
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  const sum = finish(sum16(buf, off, len));
  buf[off + 2] = sum >>> 8;
  buf[off + 3] = sum & 0xff;
}

function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, len: number): void {
  if (len <= 0 || (src === dst && srcOff === dstOff)) return;
  // TypedArray#set copies as if through a temporary when both views share a
  // buffer, so overlapping regions come out right.
  dst.set(src.subarray(srcOff, srcOff + len), dstOff);
}

const EMPTY = new Uint8Array(0);
