/**
 * ICMPv6 (RFC 4443): echo, the error messages the stack emits or relays, and
 * the type numbers of the messages other modules parse (NDP: wire/ndp.ts,
 * RFC 4861; MLD: RFC 2710, RFC 3810).
 *
 *   0       1       2               4                               8
 *   +-------+-------+---------------+-------------------------------+
 *   | type  | code  |   checksum    |  rest of header (4 bytes)     |
 *   +-------+-------+---------------+-------------------------------+
 *   | echo: ident (2) + seq (2); Packet Too Big: MTU (4);           |
 *   | Parameter Problem: pointer (4); other errors: unused          |
 *   +---------------------------------------------------------------+
 *   | payload: echo data, or as much of the offending packet as fits |
 *
 * The header is the ICMPv4 one (wire/icmpv4.ts), but the checksum also
 * covers the IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1), so every
 * function that touches it takes the addresses' word sum (`addrSum`,
 * ipv6WordSum(src) + ipv6WordSum(dst)). The view's `len` is the ICMPv6
 * message length (the IPv6 payload after any extension headers), so trailing
 * Ethernet padding is excluded.
 */
import { finish, pseudoHeaderSum, sum16 } from './checksum.js';
import { IcmpView, writeIcmpEcho, writeIcmpError } from './icmpv4.js';
import { IPV6_HEADER_LEN, IPV6_MIN_MTU } from './ipv6.js';
import { Wire, type WireCode } from './errors.js';

export const ICMPV6_HEADER_LEN = 8;
/** Next Header value of ICMPv6 (IANA). */
export const ICMPV6_NEXT_HEADER = 58;

/**
 * RFC 4443 §2.4(c): an error carries as much of the invoking packet as fits
 * without the error packet exceeding the minimum IPv6 MTU: 1280 − 40 − 8.
 */
export const ICMPV6_ERROR_MAX_QUOTED = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN;

/** Message types (RFC 4443 §2.1 and the IANA registry). */
export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  /** MLDv1 (RFC 2710 §3.6); a v2 query is the same type, longer (RFC 3810 §5.1). */
  MLD_QUERY: 130,
  MLD_REPORT: 131,
  MLD_DONE: 132,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
  REDIRECT: 137,
  /** RFC 3810 §5.2. */
  MLDV2_REPORT: 143,
} as const;

/** Codes of DEST_UNREACHABLE (RFC 4443 §3.1). */
export const Icmpv6Unreach = {
  NO_ROUTE: 0,
  ADMIN_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS: 3,
  PORT: 4,
  SOURCE_POLICY: 5,
  REJECT_ROUTE: 6,
} as const;

/** Codes of TIME_EXCEEDED (RFC 4443 §3.3). */
export const Icmpv6TimeExceeded = {
  HOP_LIMIT: 0,
  REASSEMBLY: 1,
} as const;

/** Codes of PARAMETER_PROBLEM (RFC 4443 §3.4; 3 from RFC 7112 §4). */
export const Icmpv6ParamProblem = {
  HEADER_FIELD: 0,
  NEXT_HEADER: 1,
  OPTION: 2,
  INCOMPLETE_CHAIN: 3,
} as const;

/**
 * True for the error types: RFC 4443 §2.1 gives errors the types 0..127 and
 * informational messages 128..255. §2.4(e): never send an error about an
 * error (nor, mostly, about a multicast destination).
 */
export function isIcmpv6Error(type: number): boolean {
  return type < 128;
}

export interface Icmpv6Repr {
  type: number;
  code: number;
  /** Bytes 4..8 as a u32: ident << 16 | seq for echo, the MTU of PACKET_TOO_BIG, the pointer of PARAMETER_PROBLEM. */
  rest: number;
  /** Absolute offset of the payload (echo data or quoted packet) in the view's buffer. */
  payloadOffset: number;
  payloadLength: number;
}

export function newIcmpv6Repr(): Icmpv6Repr {
  return { type: 0, code: 0, rest: 0, payloadOffset: 0, payloadLength: 0 };
}

export class Icmpv6View extends IcmpView {
  /** The MTU of a PACKET_TOO_BIG (RFC 4443 §3.2): all of bytes 4..8. */
  get mtu(): number {
    return this.rest;
  }
  /** The offset of the offending byte of a PARAMETER_PROBLEM (RFC 4443 §3.4): all of bytes 4..8. */
  get pointer(): number {
    return this.rest;
  }

  /** True iff the checksum over the pseudo-header and the whole message (`len` bytes) is correct. */
  verifyChecksum(addrSum: number): boolean {
    return finish(sum16(this.buf, this.off, this.len, pseudoHeaderSum(addrSum, ICMPV6_NEXT_HEADER, this.len))) === 0;
  }
}

/** Fills a caller-owned repr from a checked view. Does not verify the checksum. */
export function parseIcmpv6(view: Icmpv6View, repr: Icmpv6Repr): WireCode {
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
 * Writes an echo request or reply (RFC 4443 §4.1, §4.2): header, `payloadLen`
 * bytes copied from `payload` at `payloadOff`, and the checksum. As for
 * emitIcmpv4Echo, the payload may already sit in place or overlap the
 * destination anywhere. Returns the ICMPv6 message length.
 */
export function emitIcmpv6Echo(
  type: number,
  ident: number,
  seq: number,
  payload: Uint8Array,
  payloadOff: number,
  payloadLen: number,
  buf: Uint8Array,
  off: number,
  addrSum: number,
): number {
  const len = writeIcmpEcho(type, ident, seq, payload, payloadOff, payloadLen, buf, off);
  fillIcmpv6Checksum(buf, off, len, addrSum);
  return len;
}

/**
 * Writes an error message quoting the invoking packet: `quoted` holds it from
 * its IPv6 header on, and at most ICMPV6_ERROR_MAX_QUOTED bytes of it are
 * copied (RFC 4443 §2.4(c)). `param32` is bytes 4..8: 0, the MTU of
 * PACKET_TOO_BIG, or the pointer of PARAMETER_PROBLEM. `addrSum` is for the
 * error's own addresses (its source is us, its destination the invoking
 * packet's source). Returns the ICMPv6 message length. `quoted` may overlap
 * the destination (an error built in place in front of the packet it quotes).
 *
 * The caller decides whether an error may be sent at all (RFC 4443 §2.4(e):
 * not about an error, nor about a multicast destination except PACKET_TOO_BIG
 * and PARAMETER_PROBLEM code 2, nor from an unspecified or multicast source)
 * and rate-limits them (§2.4(f)).
 */
export function emitIcmpv6Error(
  type: number,
  code: number,
  param32: number,
  quoted: Uint8Array,
  qOff: number,
  qLen: number,
  buf: Uint8Array,
  off: number,
  addrSum: number,
): number {
  const len = writeIcmpError(type, code, param32, quoted, qOff, qLen, ICMPV6_ERROR_MAX_QUOTED, buf, off);
  fillIcmpv6Checksum(buf, off, len, addrSum);
  return len;
}

/** Recomputes the checksum of the `len`-byte ICMPv6 message at `off` (RFC 4443 §2.3). */
export function fillIcmpv6Checksum(buf: Uint8Array, off: number, len: number, addrSum: number): void {
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  const sum = finish(sum16(buf, off, len, pseudoHeaderSum(addrSum, ICMPV6_NEXT_HEADER, len)));
  buf[off + 2] = sum >>> 8;
  buf[off + 3] = sum & 0xff;
}
