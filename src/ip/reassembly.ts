/**
 * IP fragment reassembly for both families, bounded: IPv4 (RFC 791 §3.2,
 * RFC 815) and IPv6 (RFC 8200 §4.5, RFC 5722).
 *
 * Theory of operation
 * -------------------
 * The family's input describes each fragment in a FragmentRepr (numbers
 * only, one reused object per input) and says where its parts are; the
 * reassembler does not parse headers. What differs by family:
 *
 *                 key (which datagram)          unfragmentable part (from the first fragment)
 *   IPv4          src, dst, protocol, ident     the IP header, options included
 *                 (RFC 791 §3.2)
 *   IPv6          src, dst, identification      the fixed header and the extension headers
 *                 (RFC 8200 §4.5)               before the Fragment header
 *
 * Addresses in the key are numbers: IPv4's u32, IPv6's ids (ip/ipv6-ids.ts,
 * negative), which the reassembler acquires while it holds the datagram. So
 * the key is four numbers for either family (hashed into a Map,
 * ip/hash-chains.ts), and the families cannot meet in it (IPv6 has no
 * protocol in its key: it is −1).
 *
 * Each fragment's data is copied once into its own small buffer (the link
 * reuses its input buffer, so nothing may point into it), and the first
 * fragment's headers too. When the data covers [0, total) without a gap, the
 * datagram is assembled into one scratch buffer and handed to the client,
 * valid only during that call:
 *
 *   IPv6 first fragment                       reassembled datagram
 *   +-------+---------+------+--------+       +-------+---------+--------+--------+--
 *   | fixed | DestOpt | Frag | data 0 |  -->  | fixed | DestOpt | data 0 | data 1 | ..
 *   | NH 60 | NH 44   | NH 17|        |       | NH 60 | NH 17   |        |        |
 *   +-------+---------+------+--------+       +-------+---------+--------+--------+--
 *
 * RFC 8200 §4.5: the Fragment header goes, the Next Header field that named
 * it takes the Fragment header's Next Header, the Payload Length becomes that
 * of the whole. IPv4 gets its total length, MF and offset cleared (DF kept)
 * and a new header checksum. The client then dispatches the datagram as if
 * it had arrived whole, verifying its upper-layer checksum.
 *
 * Rules, both families:
 *  - Overlapping fragments discard the whole datagram (RFC 5722 §4 and RFC
 *    8200 §4.5 for IPv6; Linux has done the same for IPv4 since 2018):
 *    overlaps have no legitimate use and are how IDS evasion and teardrop
 *    attacks work. Fragments arriving later start a new datagram.
 *  - An exact duplicate (same offset, length and bytes) is dropped alone and
 *    the datagram kept: links duplicate, and RFC 8200 §4.5 allows it.
 *  - A non-final fragment whose data is not a multiple of 8 bytes is dropped
 *    (RFC 8200 §4.5; offsets count 8-byte units in both families), so is an
 *    empty one, and so is one that would make the datagram larger than its
 *    length field can say (65535 bytes of IPv4 total length, of IPv6 payload
 *    length). The caller hears which (FragResult), for IPv6's Parameter
 *    Problem.
 *
 * Limits, because fragments are the classic memory-exhaustion attack:
 *  - `maxBytes`: bytes held across all datagrams, data and copied headers
 *    (default 4 MiB, Linux's ipfrag_high_thresh and ip6frag_high_thresh); a
 *    fragment that would exceed it is dropped.
 *  - `maxDatagrams`: datagrams in progress (default 64); the oldest is evicted.
 *  - MAX_PIECES fragments per datagram.
 *  - A deadline per datagram from its first-arriving fragment: 30 s for IPv4,
 *    following Linux (ipfrag_time) rather than the 60–120 s RFC 1122 §3.3.2
 *    recommends, as before IPv6 came; 60 s for IPv6, as RFC 8200 §4.5 says
 *    (and Linux's ip6frag_time). When an IPv6 datagram whose
 *    first fragment arrived times out, the client gets that fragment to
 *    quote in an ICMPv6 Time Exceeded (RFC 8200 §4.5).
 *
 * One instance serves both families, with one set of limits: the fragments
 * all come from one guest, so one budget bounds what that guest can make us
 * hold, whatever family it uses (two instances would double the bound when
 * IPv6 is on), and the stack asks one object for one deadline. A guest
 * flooding IPv6 fragments can evict its own IPv4 datagrams; it only hurts
 * itself.
 */
import { randomInt } from 'node:crypto';
import { Drop, type DropCounters, type DropReason } from '../stats.js';
import { fillIpv4Checksum } from '../wire/ipv4.js';
import { IPV6_HEADER_LEN } from '../wire/ipv6.js';
import { chainIn, chainOut, hash4 } from './hash-chains.js';
import type { Ipv6Ids } from './ipv6-ids.js';

export interface ReassemblyOptions {
  maxBytes?: number;
  maxDatagrams?: number;
  /** IPv4 (default 30 s). */
  timeoutMs?: number;
  /** IPv6 (default 60 s, RFC 8200 §4.5). */
  ipv6TimeoutMs?: number;
}

/** One fragment as its family's input describes it; offsets are from the IP header's start. */
export interface FragmentRepr {
  /** IPv4 addresses, or IPv6 ids (negative): the family test. */
  src: number;
  dst: number;
  /** IPv4's protocol, part of its key; −1 for IPv6. */
  protocol: number;
  /** Identification: IPv4's 16 bits, IPv6's 32. */
  ident: number;
  /** Length of the unfragmentable part (see the table above). */
  headerLen: number;
  /** Where this fragment's data starts: headerLen for IPv4, past the Fragment header for IPv6. */
  dataOff: number;
  dataLen: number;
  /** In bytes. */
  fragOffset: number;
  moreFragments: boolean;
  /** IPv6: the Next Header field that names the Fragment header; −1 for IPv4. */
  nextHeaderFieldOff: number;
  /** The guest's MAC, for the Time Exceeded of an IPv6 datagram. */
  srcMac: number;
}

export function newFragmentRepr(): FragmentRepr {
  return { src: 0, dst: 0, protocol: -1, ident: 0, headerLen: 0, dataOff: 0, dataLen: 0, fragOffset: 0, moreFragments: false, nextHeaderFieldOff: -1, srcMac: 0 };
}

/** What input() did with a fragment; every drop is counted. */
export const FragResult = {
  /** Kept: its datagram is not complete yet. */
  HELD: 0,
  /** It completed its datagram, which went to the client. */
  REASSEMBLED: 1,
  /** Dropped: a limit, an overlap (which took its datagram along), a duplicate, no data. */
  DROPPED: 2,
  /** Dropped: not final and its data not a multiple of 8 bytes. */
  BAD_LENGTH: 3,
  /** Dropped: its offset and length go past the largest datagram. */
  TOO_LARGE: 4,
} as const;
export type FragResult = (typeof FragResult)[keyof typeof FragResult];

/** The family's input, which gets the datagrams back. */
export interface ReassemblyClient {
  /** A whole datagram at buf[off..off+len), valid only during the call. */
  reassembled(buf: Uint8Array, off: number, len: number): void;
  /**
   * A datagram timed out after its first fragment arrived; `first` holds
   * that fragment from its IP header on (valid only during the call), from
   * `src` at `srcMac`. Asked only of IPv6 datagrams (RFC 8200 §4.5).
   */
  timedOut?(first: Uint8Array, off: number, len: number, src: number, srcMac: number): void;
}

interface Piece {
  offset: number;
  data: Uint8Array;
}

interface Pending {
  src: number;
  dst: number;
  protocol: number;
  ident: number;
  readonly hash: number;
  /** Next datagram with the same hash. */
  next: Pending | null;
  client: ReassemblyClient;
  pieces: Piece[];
  /** Data bytes held; the datagram is complete when they add up to `total`. */
  bytes: number;
  /** Total data length, known once the last fragment (M=0) arrived; −1 before. */
  total: number;
  /** The first fragment's bytes before its data (for IPv6 the Fragment header too), copied; null before it arrives. */
  header: Uint8Array | null;
  headerLen: number;
  nextHeaderFieldOff: number;
  srcMac: number;
  startedMs: number;
  deadlineMs: number;
}

export interface ReassemblyStats {
  fragments: number;
  reassembled: number;
  inProgress: number;
  bytesHeld: number;
}

/**
 * Fragments kept per datagram. A 64 KiB datagram at MTU 576 needs 120; the
 * bound keeps the overlap scan linear in a small constant against floods of
 * 8-byte fragments.
 */
const MAX_PIECES = 256;

/** The largest value of the length field that would describe the datagram (IPv4 total, IPv6 payload). */
const MAX_LENGTH_FIELD = 65535;

export class Reassembler {
  /** Datagrams by key hash; colliding ones are chained (ip/hash-chains.ts). */
  private readonly pending = new Map<number, Pending>();
  private count = 0;
  private readonly scratch = new Uint8Array(IPV6_HEADER_LEN + MAX_LENGTH_FIELD);
  private readonly seed = randomInt(0, 0x7fff_ffff);
  private bytesHeld = 0;
  private fragmentsSeen = 0;
  private reassembledCount = 0;
  readonly maxBytes: number;
  readonly maxDatagrams: number;
  readonly timeoutMs: number;
  readonly ipv6TimeoutMs: number;

  constructor(
    private readonly drops: DropCounters,
    private readonly ids: Pick<Ipv6Ids, 'acquire' | 'release'>,
    options: ReassemblyOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 4 << 20;
    this.maxDatagrams = options.maxDatagrams ?? 64;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.ipv6TimeoutMs = options.ipv6TimeoutMs ?? 60_000;
  }

  /**
   * Takes the fragment whose IP header is at buf[ipOff], described by `f`.
   * When it completes a datagram, `client.reassembled` gets it before this
   * returns.
   */
  input(buf: Uint8Array, ipOff: number, f: FragmentRepr, nowMs: number, client: ReassemblyClient): FragResult {
    this.fragmentsSeen++;
    const start = f.fragOffset;
    const end = start + f.dataLen;
    const v6 = f.src < 0;
    if (f.dataLen === 0) {
      this.drops.add(Drop.FRAG_BAD_LENGTH);
      return FragResult.DROPPED;
    }
    if (f.moreFragments && (f.dataLen & 7) !== 0) {
      this.drops.add(Drop.FRAG_BAD_LENGTH);
      return FragResult.BAD_LENGTH;
    }
    if (lengthField(v6, f.headerLen, end) > MAX_LENGTH_FIELD) {
      this.drops.add(Drop.FRAG_TOO_LARGE);
      return FragResult.TOO_LARGE;
    }
    const hash = hash4(this.seed, f.src, f.dst, f.protocol, f.ident);
    let p = this.find(hash, f);
    const cost = f.dataLen + (start === 0 ? f.dataOff : 0);
    if (this.bytesHeld + cost > this.maxBytes || (p !== null && p.pieces.length >= MAX_PIECES)) {
      this.drops.add(Drop.FRAG_LIMIT);
      return FragResult.DROPPED;
    }
    const dataStart = ipOff + f.dataOff;
    if (p === null) p = this.create(hash, f, nowMs, client);
    else {
      const clash = this.clash(p, buf, dataStart, f);
      if (clash !== null) {
        if (clash === Drop.FRAG_OVERLAP) this.remove(p);
        this.drops.add(clash);
        return FragResult.DROPPED;
      }
    }
    if (!f.moreFragments) p.total = end;
    if (start === 0) {
      p.header = buf.slice(ipOff, dataStart);
      p.headerLen = f.headerLen;
      p.nextHeaderFieldOff = f.nextHeaderFieldOff;
      p.srcMac = f.srcMac;
      this.bytesHeld += f.dataOff;
    }
    p.pieces.push({ offset: start, data: buf.slice(dataStart, dataStart + f.dataLen) });
    p.bytes += f.dataLen;
    this.bytesHeld += f.dataLen;
    if (p.total < 0 || p.header === null || p.bytes !== p.total) return FragResult.HELD;

    // Each fragment was within bounds with its own headers; the datagram has the first one's.
    if (lengthField(v6, p.headerLen, p.total) > MAX_LENGTH_FIELD) {
      this.remove(p);
      this.drops.add(Drop.FRAG_TOO_LARGE);
      return FragResult.DROPPED;
    }
    // Non-overlapping pieces whose sizes add up to the total cover it exactly.
    const out = this.scratch;
    const headerLen = p.headerLen;
    out.set(p.header.subarray(0, headerLen), 0);
    for (const piece of p.pieces) out.set(piece.data, headerLen + piece.offset);
    const len = headerLen + p.total;
    if (v6) {
      // RFC 8200 §4.5: the header that named the Fragment header now names what it named.
      out[p.nextHeaderFieldOff] = p.header[headerLen];
      writeU16(out, 4, len - IPV6_HEADER_LEN);
    } else {
      writeU16(out, 2, len);
      out[6] &= 0x40; // keep DF, clear MF and the offset
      out[7] = 0;
      fillIpv4Checksum(out, 0, headerLen);
    }
    this.remove(p);
    this.reassembledCount++;
    client.reassembled(out, 0, len);
    return FragResult.REASSEMBLED;
  }

  /** Discards datagrams whose deadline passed; returns the earliest remaining deadline. */
  expire(nowMs: number): number {
    let next = Infinity;
    for (const head of [...this.pending.values()]) {
      for (let p: Pending | null = head; p !== null; ) {
        const after: Pending | null = p.next;
        if (p.deadlineMs <= nowMs) {
          this.timedOut(p);
          this.remove(p);
          this.drops.add(Drop.FRAG_TIMEOUT);
        } else if (p.deadlineMs < next) next = p.deadlineMs;
        p = after;
      }
    }
    return next;
  }

  /** The earliest deadline, passed or not (Infinity when idle); expire() does the discarding. */
  get nextDeadlineMs(): number {
    let next = Infinity;
    for (const head of this.pending.values()) {
      for (let p: Pending | null = head; p !== null; p = p.next) if (p.deadlineMs < next) next = p.deadlineMs;
    }
    return next;
  }

  /** Datagrams being reassembled (cheap: the stack asks after every batch). */
  get inProgress(): number {
    return this.count;
  }

  get stats(): ReassemblyStats {
    return {
      fragments: this.fragmentsSeen,
      reassembled: this.reassembledCount,
      inProgress: this.count,
      bytesHeld: this.bytesHeld,
    };
  }

  /** Why the fragment cannot join `p`: an overlap (discards `p`), a duplicate (drops only the fragment), or null. */
  private clash(p: Pending, buf: Uint8Array, dataStart: number, f: FragmentRepr): DropReason | null {
    const start = f.fragOffset;
    const end = start + f.dataLen;
    // The last fragment fixes the total: a second one that disagrees, or data past it, contradicts it.
    if (!f.moreFragments && p.total >= 0 && p.total !== end) return Drop.FRAG_OVERLAP;
    if (p.total >= 0 && end > p.total) return Drop.FRAG_OVERLAP;
    for (const piece of p.pieces) {
      const pieceEnd = piece.offset + piece.data.length;
      if (!f.moreFragments && pieceEnd > end) return Drop.FRAG_OVERLAP;
      if (start >= pieceEnd || piece.offset >= end) continue;
      // RFC 8200 §4.5: exact duplicates may be dropped while the datagram is kept.
      const duplicate = piece.offset === start && pieceEnd === end && (f.moreFragments ? p.total !== end : p.total === end) && sameBytes(piece.data, buf, dataStart);
      return duplicate ? Drop.FRAG_DUPLICATE : Drop.FRAG_OVERLAP;
    }
    return null;
  }

  private create(hash: number, f: FragmentRepr, nowMs: number, client: ReassemblyClient): Pending {
    if (this.count >= this.maxDatagrams) {
      this.remove(this.oldest()!);
      this.drops.add(Drop.FRAG_LIMIT);
    }
    const p: Pending = {
      src: f.src,
      dst: f.dst,
      protocol: f.protocol,
      ident: f.ident,
      hash,
      next: null,
      client,
      pieces: [],
      bytes: 0,
      total: -1,
      header: null,
      headerLen: 0,
      nextHeaderFieldOff: -1,
      srcMac: 0,
      startedMs: nowMs,
      deadlineMs: nowMs + (f.src < 0 ? this.ipv6TimeoutMs : this.timeoutMs),
    };
    chainIn(this.pending, p);
    this.count++;
    if (f.src < 0) {
      // Held beyond this batch: the ids must outlive the stack's sweep.
      this.ids.acquire(f.src);
      this.ids.acquire(f.dst);
    }
    return p;
  }

  private find(hash: number, f: FragmentRepr): Pending | null {
    for (let p = this.pending.get(hash) ?? null; p !== null; p = p.next) {
      if (p.src === f.src && p.dst === f.dst && p.ident === f.ident && p.protocol === f.protocol) return p;
    }
    return null;
  }

  private oldest(): Pending | null {
    let oldest: Pending | null = null;
    for (const head of this.pending.values()) {
      for (let p: Pending | null = head; p !== null; p = p.next) if (oldest === null || p.startedMs < oldest.startedMs) oldest = p;
    }
    return oldest;
  }

  /** RFC 8200 §4.5: Time Exceeded only if the first fragment arrived; it is the one quoted. */
  private timedOut(p: Pending): void {
    const client = p.client;
    if (p.src >= 0 || p.header === null || client.timedOut === undefined) return;
    const out = this.scratch;
    out.set(p.header, 0);
    let len = p.header.length;
    for (const piece of p.pieces) {
      if (piece.offset !== 0) continue;
      out.set(piece.data, len);
      len += piece.data.length;
    }
    client.timedOut(out, 0, len, p.src, p.srcMac);
  }

  private remove(p: Pending): void {
    chainOut(this.pending, p);
    this.count--;
    this.bytesHeld -= p.bytes + (p.header === null ? 0 : p.header.length);
    if (p.src < 0) {
      this.ids.release(p.src);
      this.ids.release(p.dst);
    }
  }

}

/** The length field that would describe the datagram: IPv4's total length, IPv6's payload length. */
function lengthField(v6: boolean, headerLen: number, dataLen: number): number {
  return v6 ? headerLen - IPV6_HEADER_LEN + dataLen : headerLen + dataLen;
}

function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v & 0xff;
}

function sameBytes(a: Uint8Array, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[bOff + i]) return false;
  return true;
}
