/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766 §8): each message is
 * preceded by its length as a 2-byte big-endian number. A stream delivers
 * arbitrary chunks, so a message can arrive split over many chunks and a
 * chunk can hold many messages (RFC 7766 §6.2.1.1 pipelining).
 *
 * The 16-bit prefix caps a message at 65535 bytes, so at most 65537 bytes
 * ever need to be held for one message; `maxPendingBytes` bounds what is
 * buffered between calls (the tail of a message not yet complete). Complete
 * messages are handed out at once and do not count.
 *
 * Handed-out messages are copies: the caller may reuse its chunk buffers, and
 * the consumer (an asynchronous forwarder) may keep a message as long as it
 * likes.
 */

export const DNS_TCP_PREFIX_LEN = 2;
/** Prefix plus the largest message the prefix can announce. */
export const DNS_TCP_MAX_FRAME = DNS_TCP_PREFIX_LEN + 65535;

export const TcpFramerResult = {
  OK: 0,
  /** More than `maxPendingBytes` would have to wait for the rest of a message; the framer is now unusable. */
  OVERFLOW: 1,
} as const;

export type TcpFramerResultCode = (typeof TcpFramerResult)[keyof typeof TcpFramerResult];

export class DnsTcpFramer {
  private readonly maxPendingBytes: number;
  /** Holds the incomplete tail; sized for the largest frame on first need. */
  private pending: Uint8Array = EMPTY;
  private pendingLen = 0;
  private failed = false;

  /**
   * `maxPendingBytes` below 65537 refuses large messages a peer may
   * legitimately send (a guest's TCP query is rarely over 512 bytes, so a
   * server-side framer may well choose a small bound).
   */
  constructor(maxPendingBytes = DNS_TCP_MAX_FRAME) {
    if (!(Number.isInteger(maxPendingBytes) && maxPendingBytes >= DNS_TCP_PREFIX_LEN)) {
      throw new RangeError('DnsTcpFramer: maxPendingBytes must be an integer ≥ 2');
    }
    this.maxPendingBytes = maxPendingBytes;
  }

  /** Bytes held for an incomplete message. */
  get pendingBytes(): number {
    return this.pendingLen;
  }

  /**
   * Consumes a chunk and appends every message it completes to `out`.
   * Zero-length messages are handed out too (the consumer drops them as
   * malformed). After OVERFLOW, every call returns OVERFLOW: the caller should
   * close the connection.
   */
  push(chunk: Uint8Array, out: Uint8Array[]): TcpFramerResultCode {
    if (this.failed) return TcpFramerResult.OVERFLOW;
    let p = 0;
    const n = chunk.length;
    if (this.pendingLen > 0) {
      // Complete the prefix, then the message, from the front of the chunk.
      while (this.pendingLen < DNS_TCP_PREFIX_LEN && p < n) this.append(chunk[p++]);
      if (this.pendingLen < DNS_TCP_PREFIX_LEN) return TcpFramerResult.OK;
      const want = DNS_TCP_PREFIX_LEN + ((this.pending[0] << 8) | this.pending[1]);
      if (want > this.maxPendingBytes && want - this.pendingLen > n - p) return this.overflow();
      const take = Math.min(want - this.pendingLen, n - p);
      this.ensure(want);
      this.pending.set(chunk.subarray(p, p + take), this.pendingLen);
      this.pendingLen += take;
      p += take;
      if (this.pendingLen < want) return TcpFramerResult.OK;
      out.push(this.pending.slice(DNS_TCP_PREFIX_LEN, want));
      this.pendingLen = 0;
    }
    while (n - p >= DNS_TCP_PREFIX_LEN) {
      const len = (chunk[p] << 8) | chunk[p + 1];
      if (n - p - DNS_TCP_PREFIX_LEN < len) break;
      out.push(chunk.slice(p + DNS_TCP_PREFIX_LEN, p + DNS_TCP_PREFIX_LEN + len));
      p += DNS_TCP_PREFIX_LEN + len;
    }
    const rest = n - p;
    if (rest === 0) return TcpFramerResult.OK;
    if (rest > this.maxPendingBytes) return this.overflow();
    if (rest >= DNS_TCP_PREFIX_LEN && DNS_TCP_PREFIX_LEN + ((chunk[p] << 8) | chunk[p + 1]) > this.maxPendingBytes) {
      return this.overflow();
    }
    this.ensure(rest);
    this.pending.set(chunk.subarray(p), 0);
    this.pendingLen = rest;
    return TcpFramerResult.OK;
  }

  /** Forgets any partial message (a new connection). */
  reset(): void {
    this.pendingLen = 0;
    this.failed = false;
  }

  private append(b: number): void {
    this.ensure(this.pendingLen + 1);
    this.pending[this.pendingLen++] = b;
  }

  private ensure(n: number): void {
    if (this.pending.length >= n) return;
    const next = new Uint8Array(Math.min(DNS_TCP_MAX_FRAME, Math.max(n, 512, this.pending.length * 2)));
    next.set(this.pending.subarray(0, this.pendingLen));
    this.pending = next;
  }

  private overflow(): TcpFramerResultCode {
    this.failed = true;
    this.pendingLen = 0;
    this.pending = EMPTY;
    return TcpFramerResult.OVERFLOW;
  }
}

/** `msg` with its 2-byte length prefix. Throws RangeError over 65535 bytes (a caller bug). */
export function frame(msg: Uint8Array): Uint8Array {
  if (msg.length > 65535) throw new RangeError('frame: DNS message over 65535 bytes');
  const out = new Uint8Array(DNS_TCP_PREFIX_LEN + msg.length);
  out[0] = msg.length >>> 8;
  out[1] = msg.length & 0xff;
  out.set(msg, DNS_TCP_PREFIX_LEN);
  return out;
}

const EMPTY = new Uint8Array(0);
