/**
 * TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018).
 *
 *   0               2               4                               8
 *   +---------------+---------------+-------------------------------+
 *   |  source port  |   dest port   |        sequence number        |
 *   +---------------+---------------+-------------------------------+
 *   |     acknowledgment number     |doff|rsv| flags |    window    |
 *   +-------------------------------+-------+-------+---------------+
 *   |   checksum    | urgent pointer|  options (doff > 5) ...       |
 *   +---------------+---------------+-------------------------------+
 *    8              12  13          14              16      18      20
 *
 * The view's `len` is the whole segment (IP payloadLength): header, options
 * and payload. `check()` guarantees 20 ≤ headerLen ≤ len.
 *
 * Options are parsed into the Repr without allocation: absent values are
 * 0 / −1 / false, SACK blocks go into a preallocated Uint32Array. Following
 * Linux `tcp_parse_options` rather than rejecting: a known option with the
 * wrong length is ignored, an unknown option is skipped by its length. Only
 * options that cannot be skipped (length 0 or 1, or running past the header)
 * make the segment BAD_OPTIONS; Linux stops parsing there, we drop the segment,
 * since a header that cannot be walked is corrupt.
 *
 * Sequence numbers and timestamps are u32 (`>>> 0`); compare them only with
 * the wraparound-safe helpers of tcp/seq.ts.
 */
import { readU32, writeU32 } from './bytes.js';
import { Wire, type WireCode } from './errors.js';
import { addrSumV4, finish, fold, pseudoHeaderSum, sum16 } from './checksum.js';

export const TCP_HEADER_LEN = 20;
export const TCP_MAX_HEADER_LEN = 60;
/** Option space: 60 − 20 bytes. */
export const TCP_MAX_OPTIONS_LEN = 40;
/** csum_offset of a NEEDS_CSUM TCP frame. */
export const TCP_CHECKSUM_OFFSET = 16;
/** RFC 7323 §2.3: a larger received shift count is logged and treated as 14. */
export const TCP_MAX_WINDOW_SCALE = 14;
const PROTO_TCP = 6;

export const TcpFlag = {
  FIN: 1,
  SYN: 2,
  RST: 4,
  PSH: 8,
  ACK: 16,
  URG: 32,
  ECE: 64,
  CWR: 128,
} as const;

export const TcpOption = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

/** Flags as tcpdump prints them ("S.", "F.", "R", "P."): for logs and test messages. */
export function tcpFlagsToString(flags: number): string {
  let s = '';
  if (flags & TcpFlag.SYN) s += 'S';
  if (flags & TcpFlag.FIN) s += 'F';
  if (flags & TcpFlag.RST) s += 'R';
  if (flags & TcpFlag.PSH) s += 'P';
  if (flags & TcpFlag.URG) s += 'U';
  if (flags & TcpFlag.ECE) s += 'E';
  if (flags & TcpFlag.CWR) s += 'W';
  if (flags & TcpFlag.ACK) s += '.';
  return s === '' ? 'none' : s;
}

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Bitmask of TcpFlag (the 8 bits of byte 13; the reserved bits are not kept). */
  flags: number;
  /** The raw 16-bit field, unscaled. */
  window: number;
  urgent: number;
  /** MSS option value; 0 = absent. */
  mss: number;
  /**
   * Window-scale shift count as received; −1 = absent. Not clamped here: the
   * TCP layer must use min(windowScale, TCP_MAX_WINDOW_SCALE) (RFC 7323 §2.3).
   */
  windowScale: number;
  sackPermitted: boolean;
  hasTimestamps: boolean;
  tsVal: number;
  tsEcr: number;
  /** Number of SACK blocks in `sackBlocks` (0..4). */
  sackCount: number;
  /** [left0, right0, left1, right1, ...], u32 sequence numbers. */
  sackBlocks: Uint32Array;
  /** Absolute offset of the payload in the view's buffer (parse only; emit ignores it). */
  payloadOffset: number;
  payloadLength: number;
}

/** A reusable repr with every option absent. */
/** No options: MSS, window scale, SACK-permitted, timestamps and SACK blocks all absent (an RST's, or a parse's start). */
export function clearTcpOptions(repr: TcpRepr): void {
  repr.mss = 0;
  repr.windowScale = -1;
  repr.sackPermitted = false;
  repr.hasTimestamps = false;
  repr.sackCount = 0;
}

export function newTcpRepr(): TcpRepr {
  return {
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    urgent: 0,
    mss: 0,
    windowScale: -1,
    sackPermitted: false,
    hasTimestamps: false,
    tsVal: 0,
    tsEcr: 0,
    sackCount: 0,
    sackBlocks: new Uint32Array(8),
    payloadOffset: 0,
    payloadLength: 0,
  };
}

/** Copies every field of `from` into `to` (the payload position included); no allocation. */
export function copyTcpRepr(from: TcpRepr, to: TcpRepr): void {
  to.srcPort = from.srcPort;
  to.dstPort = from.dstPort;
  to.seq = from.seq;
  to.ack = from.ack;
  to.flags = from.flags;
  to.window = from.window;
  to.urgent = from.urgent;
  to.mss = from.mss;
  to.windowScale = from.windowScale;
  to.sackPermitted = from.sackPermitted;
  to.hasTimestamps = from.hasTimestamps;
  to.tsVal = from.tsVal;
  to.tsEcr = from.tsEcr;
  to.sackCount = from.sackCount;
  to.sackBlocks.set(from.sackBlocks);
  to.payloadOffset = from.payloadOffset;
  to.payloadLength = from.payloadLength;
}

export class TcpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at a segment (the IP payload); no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** OK iff 20 ≤ headerLen ≤ len. Setting `dataOffset` afterwards invalidates the guarantee. */
  check(): WireCode {
    if (this.len < TCP_HEADER_LEN) return Wire.TRUNCATED;
    const headerLen = this.headerLen;
    if (headerLen < TCP_HEADER_LEN || headerLen > this.len) return Wire.BAD_HEADER_LEN;
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
  get seq(): number {
    return readU32(this.buf, this.off + 4);
  }
  set seq(v: number) {
    writeU32(this.buf, this.off + 4, v);
  }
  get ack(): number {
    return readU32(this.buf, this.off + 8);
  }
  set ack(v: number) {
    writeU32(this.buf, this.off + 8, v);
  }
  /** Header length in 32-bit words. */
  get dataOffset(): number {
    return this.buf[this.off + 12] >>> 4;
  }
  /** Also clears the reserved bits and NS (RFC 3540, historic). */
  set dataOffset(words: number) {
    this.buf[this.off + 12] = (words & 0xf) << 4;
  }
  /** Header length in bytes, options included. */
  get headerLen(): number {
    return (this.buf[this.off + 12] >>> 4) << 2;
  }
  get flags(): number {
    return this.buf[this.off + 13];
  }
  set flags(v: number) {
    this.buf[this.off + 13] = v;
  }
  get window(): number {
    return (this.buf[this.off + 14] << 8) | this.buf[this.off + 15];
  }
  set window(v: number) {
    this.buf[this.off + 14] = v >>> 8;
    this.buf[this.off + 15] = v & 0xff;
  }
  get checksum(): number {
    return (this.buf[this.off + 16] << 8) | this.buf[this.off + 17];
  }
  set checksum(v: number) {
    this.buf[this.off + 16] = v >>> 8;
    this.buf[this.off + 17] = v & 0xff;
  }
  get urgent(): number {
    return (this.buf[this.off + 18] << 8) | this.buf[this.off + 19];
  }
  set urgent(v: number) {
    this.buf[this.off + 18] = v >>> 8;
    this.buf[this.off + 19] = v & 0xff;
  }
  get payloadOffset(): number {
    return this.off + this.headerLen;
  }
  get payloadLength(): number {
    return this.len - this.headerLen;
  }

  /** True iff the checksum over the whole segment (`len` bytes) is correct for this pseudo-header. */
  verifyChecksumV4(src: number, dst: number): boolean {
    return this.verifyChecksum(addrSumV4(src, dst));
  }

  /** The same for either family, given the addresses' sum (checksum.ts addrSumV4, ipv6WordSum). */
  verifyChecksum(addrSum: number): boolean {
    return finish(sum16(this.buf, this.off, this.len, pseudoHeaderSum(addrSum, PROTO_TCP, this.len))) === 0;
  }
}

/**
 * Fills a caller-owned repr from the view: fixed fields, options and payload
 * bounds. Returns BAD_OPTIONS for options that cannot be walked (see the top of
 * the file). Does not verify the checksum.
 */
export function parseTcp(view: TcpView, repr: TcpRepr): WireCode {
  const code = view.check();
  if (code !== Wire.OK) return code;
  const buf = view.buf;
  const off = view.off;
  const headerLen = view.headerLen;
  repr.srcPort = view.srcPort;
  repr.dstPort = view.dstPort;
  repr.seq = view.seq;
  repr.ack = view.ack;
  repr.flags = view.flags;
  repr.window = view.window;
  repr.urgent = view.urgent;
  repr.payloadOffset = off + headerLen;
  repr.payloadLength = view.len - headerLen;
  clearTcpOptions(repr);
  repr.tsVal = 0;
  repr.tsEcr = 0;

  const end = off + headerLen;
  let i = off + TCP_HEADER_LEN;
  while (i < end) {
    const kind = buf[i];
    if (kind === TcpOption.END) break;
    if (kind === TcpOption.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return Wire.BAD_OPTIONS;
    const optLen = buf[i + 1];
    if (optLen < 2 || i + optLen > end) return Wire.BAD_OPTIONS;
    switch (kind) {
      case TcpOption.MSS:
        if (optLen === 4) repr.mss = (buf[i + 2] << 8) | buf[i + 3];
        break;
      case TcpOption.WINDOW_SCALE:
        if (optLen === 3) repr.windowScale = buf[i + 2];
        break;
      case TcpOption.SACK_PERMITTED:
        if (optLen === 2) repr.sackPermitted = true;
        break;
      case TcpOption.SACK:
        // RFC 2018 §3: 2 + 8n bytes; at most 4 blocks fit in 40 bytes of options.
        if (optLen >= 10 && ((optLen - 2) & 7) === 0) {
          const count = (optLen - 2) >>> 3;
          const blocks = repr.sackBlocks;
          for (let b = 0; b < count; b++) {
            blocks[2 * b] = readU32(buf, i + 2 + 8 * b);
            blocks[2 * b + 1] = readU32(buf, i + 6 + 8 * b);
          }
          repr.sackCount = count;
        }
        break;
      case TcpOption.TIMESTAMPS:
        if (optLen === 10) {
          repr.hasTimestamps = true;
          repr.tsVal = readU32(buf, i + 2);
          repr.tsEcr = readU32(buf, i + 6);
        }
        break;
      default:
        break;
    }
    i += optLen;
  }
  return Wire.OK;
}

/**
 * How many of the repr's SACK blocks `emitTcpHeader` writes: as many as fit in
 * the option space left by the other options (Linux `tcp_established_options`).
 */
export function tcpEmittedSackCount(repr: TcpRepr): number {
  if (repr.sackCount <= 0) return 0;
  const room = TCP_MAX_OPTIONS_LEN - fixedOptionsLength(repr) - 4;
  const fit = room < 0 ? 0 : room >>> 3;
  const want = repr.sackCount < 4 ? repr.sackCount : 4;
  return want < fit ? want : fit;
}

/** Bytes of options `emitTcpHeader` writes (a multiple of 4, at most 40). */
export function tcpOptionsLength(repr: TcpRepr): number {
  const sacks = tcpEmittedSackCount(repr);
  return fixedOptionsLength(repr) + (sacks > 0 ? 4 + 8 * sacks : 0);
}

function fixedOptionsLength(repr: TcpRepr): number {
  let n = 0;
  if (repr.mss > 0) n += 4;
  if (repr.hasTimestamps) n += 12;
  else if (repr.sackPermitted) n += 4;
  if (repr.windowScale >= 0) n += 4;
  return n;
}

/**
 * Writes the header and options at `off`, checksum zero (fill it afterwards
 * with `fillTcpChecksumV4` or `fillTcpPseudoChecksumV4`). Returns the header
 * length. `payloadOffset`/`payloadLength` of the repr are not used.
 *
 * Option layout is Linux's `tcp_options_write`, every option 4-byte aligned
 * with NOPs, so a Linux peer sees the shapes it sends itself:
 *   MSS                         02 04 mm mm
 *   SACK-permitted + timestamps 04 02 08 0a <tsVal> <tsEcr>
 *     (timestamps alone)        01 01 08 0a <tsVal> <tsEcr>
 *     (SACK-permitted alone)    01 01 04 02
 *   window scale                01 03 03 ws
 *   SACK blocks                 01 01 05 (2+8n) <left right>×n
 * MSS, window scale and SACK-permitted are for SYNs (RFC 9293 §3.7.1,
 * RFC 7323 §2.2, RFC 2018 §2); the caller decides what to set.
 */
export function emitTcpHeader(repr: TcpRepr, buf: Uint8Array, off: number): number {
  const sacks = tcpEmittedSackCount(repr);
  const headerLen = TCP_HEADER_LEN + fixedOptionsLength(repr) + (sacks > 0 ? 4 + 8 * sacks : 0);
  buf[off] = repr.srcPort >>> 8;
  buf[off + 1] = repr.srcPort & 0xff;
  buf[off + 2] = repr.dstPort >>> 8;
  buf[off + 3] = repr.dstPort & 0xff;
  writeU32(buf, off + 4, repr.seq);
  writeU32(buf, off + 8, repr.ack);
  buf[off + 12] = (headerLen >>> 2) << 4;
  buf[off + 13] = repr.flags;
  buf[off + 14] = repr.window >>> 8;
  buf[off + 15] = repr.window & 0xff;
  buf[off + 16] = 0;
  buf[off + 17] = 0;
  buf[off + 18] = repr.urgent >>> 8;
  buf[off + 19] = repr.urgent & 0xff;

  let i = off + TCP_HEADER_LEN;
  if (repr.mss > 0) {
    buf[i] = TcpOption.MSS;
    buf[i + 1] = 4;
    buf[i + 2] = repr.mss >>> 8;
    buf[i + 3] = repr.mss & 0xff;
    i += 4;
  }
  if (repr.hasTimestamps) {
    if (repr.sackPermitted) {
      buf[i] = TcpOption.SACK_PERMITTED;
      buf[i + 1] = 2;
    } else {
      buf[i] = TcpOption.NOP;
      buf[i + 1] = TcpOption.NOP;
    }
    buf[i + 2] = TcpOption.TIMESTAMPS;
    buf[i + 3] = 10;
    writeU32(buf, i + 4, repr.tsVal);
    writeU32(buf, i + 8, repr.tsEcr);
    i += 12;
  } else if (repr.sackPermitted) {
    buf[i] = TcpOption.NOP;
    buf[i + 1] = TcpOption.NOP;
    buf[i + 2] = TcpOption.SACK_PERMITTED;
    buf[i + 3] = 2;
    i += 4;
  }
  if (repr.windowScale >= 0) {
    buf[i] = TcpOption.NOP;
    buf[i + 1] = TcpOption.WINDOW_SCALE;
    buf[i + 2] = 3;
    buf[i + 3] = repr.windowScale;
    i += 4;
  }
  if (sacks > 0) {
    buf[i] = TcpOption.NOP;
    buf[i + 1] = TcpOption.NOP;
    buf[i + 2] = TcpOption.SACK;
    buf[i + 3] = 2 + 8 * sacks;
    i += 4;
    const blocks = repr.sackBlocks;
    for (let b = 0; b < sacks; b++) {
      writeU32(buf, i, blocks[2 * b]);
      writeU32(buf, i + 4, blocks[2 * b + 1]);
      i += 8;
    }
  }
  return headerLen;
}

/**
 * Computes the full checksum of the `len`-byte segment at `off` (header and
 * payload in place).
 */
export function fillTcpChecksumV4(buf: Uint8Array, off: number, len: number, src: number, dst: number): void {
  fillTcpChecksum(buf, off, len, addrSumV4(src, dst));
}

/** fillTcpChecksumV4 for either family, given the addresses' sum. */
export function fillTcpChecksum(buf: Uint8Array, off: number, len: number, addrSum: number): void {
  buf[off + 16] = 0;
  buf[off + 17] = 0;
  const sum = finish(sum16(buf, off, len, pseudoHeaderSum(addrSum, PROTO_TCP, len)));
  buf[off + 16] = sum >>> 8;
  buf[off + 17] = sum & 0xff;
}

/**
 * Stores the folded, uncomplemented pseudo-header sum for a segment sent with
 * NEEDS_CSUM (csum_start at the TCP header, csum_offset 16), as Linux does for
 * CHECKSUM_PARTIAL.
 *
 * `len` is the TCP length of the frame as written, header plus ALL its
 * payload, also for a TCPV4 GSO super-frame: Linux `__tcp_v4_send_check`
 * uses skb->len of the unsegmented skb, and `tcp_gso_segment` later swaps the
 * length in each segment's pseudo sum (the `delta` it adds). The capture in
 * test/wire/golden.ts (VNET_TCP_GSO: 6032-byte TCP length, gso_size 1448)
 * holds exactly the whole-length sum. The payload bytes are not read.
 */
export function fillTcpPseudoChecksumV4(buf: Uint8Array, off: number, len: number, src: number, dst: number): void {
  fillTcpPseudoChecksum(buf, off, len, addrSumV4(src, dst));
}

/** fillTcpPseudoChecksumV4 for either family, given the addresses' sum (Linux tcp_v6_send_check does the same for TCPV6). */
export function fillTcpPseudoChecksum(buf: Uint8Array, off: number, len: number, addrSum: number): void {
  const sum = fold(pseudoHeaderSum(addrSum, PROTO_TCP, len));
  buf[off + 16] = sum >>> 8;
  buf[off + 17] = sum & 0xff;
}

const EMPTY = new Uint8Array(0);
