/**
 * IPv6 header (RFC 8200 §3) and the extension headers the stack walks.
 *
 *   0               1               2               3
 *   +-------+-------+-------+-------+-------------------------------+
 *   |version| traffic class |              flow label               |
 *   +-------+---------------+-------+---------------+---------------+
 *   |        payload length         |  next header  |   hop limit   |
 *   +-------------------------------+---------------+---------------+
 *   |                 source address (16 bytes)                    |
 *   |               destination address (16 bytes)                 |
 *   +---------------------------------------------------------------+
 *
 * As for IPv4, the payload is bounded by `payloadLength`, not by what
 * arrived (Ethernet pads short frames): `check()` guarantees
 * 40 + payloadLength ≤ len. There is no header checksum. A payload length of
 * 0 with a Hop-by-Hop jumbo option (RFC 2675) is not supported: jumbograms
 * cannot cross an Ethernet link.
 *
 * Addresses stay in the buffer: `srcOff`/`dstOff` give where; the data path
 * turns them into numbers through src/ip/ipv6-ids.ts.
 */
import { Wire, type WireCode } from './errors.js';

export const IPV6_HEADER_LEN = 40;
export const IPV6_ADDR_LEN = 16;
/** Offsets of the addresses inside the header. */
export const IPV6_SRC_OFFSET = 8;
export const IPV6_DST_OFFSET = 24;
/** The smallest MTU an IPv6 link may have (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;
export const IPV6_FRAGMENT_HEADER_LEN = 8;

/** Next Header values of the extension headers (IANA), and No Next Header. */
export const Ipv6Ext = {
  HOP_BY_HOP: 0,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AUTH: 51,
  NONE: 59,
  DEST_OPTIONS: 60,
  MOBILITY: 135,
} as const;

export interface Ipv6Repr {
  /** The whole traffic class byte (DSCP << 2 | ECN). */
  trafficClass: number;
  flowLabel: number;
  /** Bytes after the fixed header, extension headers included. */
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
}

export function newIpv6Repr(): Ipv6Repr {
  return { trafficClass: 0, flowLabel: 0, payloadLength: 0, nextHeader: 0, hopLimit: 64 };
}

export class Ipv6View {
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

  /** OK iff the fixed header and `payloadLength` bytes after it lie within `len`. */
  check(): WireCode {
    if (this.len < IPV6_HEADER_LEN) return Wire.TRUNCATED;
    if (this.version !== 6) return Wire.BAD_VERSION;
    if (IPV6_HEADER_LEN + this.payloadLength > this.len) return Wire.BAD_TOTAL_LEN;
    return Wire.OK;
  }

  get version(): number {
    return this.buf[this.off] >>> 4;
  }
  get trafficClass(): number {
    const b = this.buf;
    return ((b[this.off] & 0xf) << 4) | (b[this.off + 1] >>> 4);
  }
  get flowLabel(): number {
    const b = this.buf;
    const o = this.off;
    return ((b[o + 1] & 0xf) << 16) | (b[o + 2] << 8) | b[o + 3];
  }
  get payloadLength(): number {
    return (this.buf[this.off + 4] << 8) | this.buf[this.off + 5];
  }
  get nextHeader(): number {
    return this.buf[this.off + 6];
  }
  get hopLimit(): number {
    return this.buf[this.off + 7];
  }
  get srcOff(): number {
    return this.off + IPV6_SRC_OFFSET;
  }
  get dstOff(): number {
    return this.off + IPV6_DST_OFFSET;
  }
}

export function parseIpv6Header(view: Ipv6View, repr: Ipv6Repr): WireCode {
  const code = view.check();
  if (code !== Wire.OK) return code;
  repr.trafficClass = view.trafficClass;
  repr.flowLabel = view.flowLabel;
  repr.payloadLength = view.payloadLength;
  repr.nextHeader = view.nextHeader;
  repr.hopLimit = view.hopLimit;
  return Wire.OK;
}

/**
 * Writes the fixed header at `off`, with the addresses copied from
 * src[srcOff..+16] and dst[dstOff..+16]. Returns 40.
 */
export function emitIpv6(repr: Ipv6Repr, src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, buf: Uint8Array, off: number): number {
  const tc = repr.trafficClass;
  const fl = repr.flowLabel;
  buf[off] = 0x60 | (tc >>> 4);
  buf[off + 1] = ((tc & 0xf) << 4) | ((fl >>> 16) & 0xf);
  buf[off + 2] = (fl >>> 8) & 0xff;
  buf[off + 3] = fl & 0xff;
  buf[off + 4] = repr.payloadLength >>> 8;
  buf[off + 5] = repr.payloadLength & 0xff;
  buf[off + 6] = repr.nextHeader;
  buf[off + 7] = repr.hopLimit;
  copyAddr(src, srcOff, buf, off + IPV6_SRC_OFFSET);
  copyAddr(dst, dstOff, buf, off + IPV6_DST_OFFSET);
  return IPV6_HEADER_LEN;
}

/** Copies the 16 bytes of an address (no subarray: this runs per packet). */
export function copyAddr(from: Uint8Array, fromOff: number, to: Uint8Array, toOff: number): void {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) to[toOff + i] = from[fromOff + i];
}

/** Whether the 16 bytes at a and b are the same address. */
export function sameAddr(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}

/** Where walkIpv6 found the upper-layer header, and the Fragment header if any. */
export interface Ipv6Walk {
  proto: number;
  l4Off: number;
  /** A Fragment header was found (its fields below are valid). */
  fragment: boolean;
  /** Fragment offset in bytes. */
  fragOffset: number;
  moreFragments: boolean;
  fragIdent: number;
  /** Offset of the Fragment header itself, and of the byte naming it (the previous Next Header field). */
  fragHeaderOff: number;
  fragNextHeaderFieldOff: number;
}

export function newIpv6Walk(): Ipv6Walk {
  return { proto: 0, l4Off: 0, fragment: false, fragOffset: 0, moreFragments: false, fragIdent: 0, fragHeaderOff: 0, fragNextHeaderFieldOff: 0 };
}

/**
 * Where the upper-layer header starts, found by walking the extension
 * headers (RFC 8200 §4) of the datagram whose fixed header is at `off` and
 * whose end is `end`. The result goes to `out`: `proto` (the upper-layer
 * Next Header value), `l4Off`, and for a Fragment header its fields; for a
 * fragment other than the first, `proto` and `l4Off` are the Fragment
 * header's Next Header and where its data starts.
 *
 * Hop-by-Hop and Destination Options are skipped (their options are not
 * acted on: we are the final destination only for our own addresses, and
 * nothing we serve needs an option); Routing with Segments Left 0 is
 * skipped, any other Routing header makes the datagram unsupported (RFC 8200
 * §4.4 would have us answer Parameter Problem; a guest has no business
 * source-routing through us). Hop-by-Hop anywhere but first is malformed
 * (§4.3). A walk is bounded by the datagram: at most `end − off` bytes and,
 * since each header is at least 8 bytes, at most that / 8 headers.
 */
export function walkIpv6(buf: Uint8Array, off: number, end: number, out: Ipv6Walk): WireCode {
  let next = buf[off + 6];
  let nextFieldOff = off + 6;
  let at = off + IPV6_HEADER_LEN;
  out.fragment = false;
  for (;;) {
    switch (next) {
      case Ipv6Ext.HOP_BY_HOP:
      case Ipv6Ext.DEST_OPTIONS:
      case Ipv6Ext.ROUTING: {
        if (next === Ipv6Ext.HOP_BY_HOP && at !== off + IPV6_HEADER_LEN) return Wire.BAD_FIELD;
        if (at + 8 > end) return Wire.TRUNCATED;
        const len = (buf[at + 1] + 1) << 3;
        if (at + len > end) return Wire.TRUNCATED;
        if (next === Ipv6Ext.ROUTING && buf[at + 3] !== 0) return Wire.UNSUPPORTED;
        nextFieldOff = at;
        next = buf[at];
        at += len;
        continue;
      }
      case Ipv6Ext.FRAGMENT: {
        if (out.fragment) return Wire.BAD_FIELD; // two Fragment headers
        if (at + IPV6_FRAGMENT_HEADER_LEN > end) return Wire.TRUNCATED;
        out.fragment = true;
        out.fragHeaderOff = at;
        out.fragNextHeaderFieldOff = nextFieldOff;
        out.fragOffset = ((buf[at + 2] << 8) | buf[at + 3]) & 0xfff8;
        out.moreFragments = (buf[at + 3] & 1) !== 0;
        out.fragIdent = ((buf[at + 4] << 24) | (buf[at + 5] << 16) | (buf[at + 6] << 8) | buf[at + 7]) >>> 0;
        nextFieldOff = at;
        next = buf[at];
        at += IPV6_FRAGMENT_HEADER_LEN;
        // Headers after the Fragment header belong to the fragmentable part:
        // only the first fragment (offset 0) has them, so stop here unless it
        // is one. A first fragment is walked to its upper-layer header, which
        // it must hold (RFC 7112 §5); a truncated chain is TRUNCATED.
        if (out.fragOffset !== 0) {
          out.proto = next;
          out.l4Off = at;
          return Wire.OK;
        }
        continue;
      }
      default:
        out.proto = next;
        out.l4Off = at;
        return Wire.OK;
    }
  }
}

/** Writes an 8-byte Fragment header (RFC 8200 §4.5); `fragOffset` in bytes, a multiple of 8. */
export function emitIpv6Fragment(nextHeader: number, fragOffset: number, moreFragments: boolean, ident: number, buf: Uint8Array, off: number): number {
  buf[off] = nextHeader;
  buf[off + 1] = 0;
  const field = (fragOffset & 0xfff8) | (moreFragments ? 1 : 0);
  buf[off + 2] = field >>> 8;
  buf[off + 3] = field & 0xff;
  buf[off + 4] = ident >>> 24;
  buf[off + 5] = (ident >>> 16) & 0xff;
  buf[off + 6] = (ident >>> 8) & 0xff;
  buf[off + 7] = ident & 0xff;
  return IPV6_FRAGMENT_HEADER_LEN;
}

const EMPTY = new Uint8Array(0);
