/**
 * IPv4 fragment reassembly (RFC 791 §3.2, RFC 815), bounded.
 *
 * Theory of operation
 * -------------------
 * Fragments are keyed by (src, dst, protocol, ident). Each fragment's payload
 * is copied once into its own small buffer (the input batch buffer is reused
 * by the link, so nothing may point into it). When the fragments cover
 * [0, total) without a gap, the datagram is assembled into one scratch buffer
 * with the first fragment's header and handed to the caller, valid only
 * during that call.
 *
 * Limits, because fragments are the classic memory-exhaustion attack:
 *  - `maxBytes`: payload bytes held across all datagrams (default 4 MiB, the
 *    size of Linux's ipfrag_high_thresh); a fragment that would exceed it is
 *    dropped and counted.
 *  - `maxDatagrams`: datagrams in progress; the oldest is evicted.
 *  - `timeoutMs`: an incomplete datagram is discarded after 30 s (Linux's
 *    ipfrag_time).
 * Overlapping fragments discard the whole datagram, as Linux has done since
 * 2018 for IPv4 and RFC 5722 requires for IPv6: overlaps have no legitimate
 * use and are how IDS-evasion and teardrop attacks work.
 */
import { Drop, type DropCounters } from '../stats.js';
import { fillIpv4Checksum } from '../wire/ipv4.js';

export interface ReassemblyOptions {
  maxBytes?: number;
  maxDatagrams?: number;
  timeoutMs?: number;
}

interface Piece {
  offset: number;
  data: Uint8Array;
}

interface Pending {
  key: string;
  pieces: Piece[];
  bytes: number;
  /** Total payload length, known once the last fragment (MF=0) arrived; -1 before. */
  total: number;
  /** The first fragment's header (options included), copied. */
  header: Uint8Array | null;
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

export class Reassembler {
  private readonly pending = new Map<string, Pending>();
  private readonly scratch = new Uint8Array(65535 + 60);
  private bytesHeld = 0;
  private fragmentsSeen = 0;
  private reassembled = 0;
  readonly maxBytes: number;
  readonly maxDatagrams: number;
  readonly timeoutMs: number;

  constructor(
    private readonly drops: DropCounters,
    options: ReassemblyOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 4 << 20;
    this.maxDatagrams = options.maxDatagrams ?? 64;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /**
   * Takes one fragment: the IP header at `ipOff` (`headerLen` bytes) and
   * `payloadLen` payload bytes after it. When it completes a datagram,
   * `deliver(buf, off, totalLen)` is called with the whole datagram.
   */
  input(
    buf: Uint8Array,
    ipOff: number,
    headerLen: number,
    payloadLen: number,
    fragOffset: number,
    moreFragments: boolean,
    nowMs: number,
    deliver: (buf: Uint8Array, off: number, len: number) => void,
  ): void {
    this.fragmentsSeen++;
    const end = fragOffset + payloadLen;
    if (headerLen + end > 65535 || (moreFragments && (payloadLen & 7) !== 0)) {
      // A datagram cannot exceed 65535 bytes; non-final fragments carry multiples of 8.
      this.drops.add(Drop.FRAG_TOO_LARGE);
      return;
    }
    const key = fragmentKey(buf, ipOff);
    let p = this.pending.get(key);
    if (p === undefined) {
      if (this.pending.size >= this.maxDatagrams) this.discard(this.pending.values().next().value as Pending, Drop.FRAG_LIMIT);
      p = { key, pieces: [], bytes: 0, total: -1, header: null, deadlineMs: nowMs + this.timeoutMs };
      this.pending.set(key, p);
    }
    if (this.bytesHeld + payloadLen > this.maxBytes || p.pieces.length >= MAX_PIECES) {
      this.drops.add(Drop.FRAG_LIMIT);
      return;
    }
    for (const piece of p.pieces) {
      if (fragOffset < piece.offset + piece.data.length && piece.offset < end) {
        this.discard(p, Drop.FRAG_OVERLAP);
        return;
      }
    }
    if (!moreFragments) {
      if (p.total >= 0 && p.total !== end) {
        this.discard(p, Drop.FRAG_OVERLAP);
        return;
      }
      p.total = end;
    }
    if (p.total >= 0 && end > p.total) {
      this.discard(p, Drop.FRAG_OVERLAP);
      return;
    }
    if (fragOffset === 0) p.header = buf.slice(ipOff, ipOff + headerLen);
    p.pieces.push({ offset: fragOffset, data: buf.slice(ipOff + headerLen, ipOff + headerLen + payloadLen) });
    p.bytes += payloadLen;
    this.bytesHeld += payloadLen;
    if (p.total < 0 || p.header === null || p.bytes !== p.total) return;

    // Non-overlapping pieces whose sizes add up to the total cover it exactly.
    const header = p.header;
    const out = this.scratch;
    out.set(header, 0);
    for (const piece of p.pieces) out.set(piece.data, header.length + piece.offset);
    const totalLen = header.length + p.total;
    out[2] = totalLen >>> 8;
    out[3] = totalLen & 0xff;
    out[6] &= 0x40; // keep DF, clear MF and the offset
    out[7] = 0;
    fillIpv4Checksum(out, 0, header.length);
    this.remove(p);
    this.reassembled++;
    deliver(out, 0, totalLen);
  }

  /** Discards datagrams whose deadline passed; returns the earliest remaining deadline. */
  expire(nowMs: number): number {
    let next = Infinity;
    for (const p of this.pending.values()) {
      if (p.deadlineMs <= nowMs) this.discard(p, Drop.FRAG_TIMEOUT);
      else if (p.deadlineMs < next) next = p.deadlineMs;
    }
    return next;
  }

  /** Datagrams being reassembled (cheap: the stack asks after every batch). */
  get inProgress(): number {
    return this.pending.size;
  }

  get stats(): ReassemblyStats {
    return {
      fragments: this.fragmentsSeen,
      reassembled: this.reassembled,
      inProgress: this.pending.size,
      bytesHeld: this.bytesHeld,
    };
  }

  private discard(p: Pending, reason: (typeof Drop)[keyof typeof Drop]): void {
    this.drops.add(reason);
    this.remove(p);
  }

  private remove(p: Pending): void {
    this.bytesHeld -= p.bytes;
    this.pending.delete(p.key);
  }
}

function fragmentKey(buf: Uint8Array, ipOff: number): string {
  // Fragments are rare on a TAP with offloads; a string key keeps this simple.
  let key = '';
  for (const i of [4, 5, 9, 12, 13, 14, 15, 16, 17, 18, 19]) key += String.fromCharCode(buf[ipOff + i]);
  return key;
}
