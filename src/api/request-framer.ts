/**
 * Where one API request ends in the byte stream of its connection.
 *
 * slirp4netns does a single read() and parses whatever it got, so a request
 * written in two pieces loses its second half. We read on until the request
 * is known to be complete instead:
 *
 * - an object or array is complete at the bracket that closes the first one
 *   (strings and escapes are tracked, so `"}"` inside a string does not
 *   count); anything after it (RootlessKit's and Podman's trailing newline,
 *   a second object) is not part of the request, as parson ignores it too;
 * - anything else (a scalar, garbage, a stream of NUL bytes) is complete only
 *   at end of stream, which the connection reports by taking `request()`.
 *
 * The framer does not judge whether the bytes are valid JSON: mismatched
 * brackets still balance (`{]` is "complete") and the parser then refuses
 * them, exactly as slirp4netns would for the same bytes.
 *
 * A request is too large when it reaches `maxBytes` before it is complete,
 * or when the bracket that completes it is byte number `maxBytes` or later:
 * slirp4netns's 4096-byte buffer with `len == 4096` meaning "too large".
 * Only `maxBytes` bytes are ever held.
 */

export const FramerVerdict = {
  /** More bytes needed (or end of stream). */
  INCOMPLETE: 0,
  /** A whole object or array has arrived. */
  COMPLETE: 1,
  /** The request reached the size bound. */
  TOO_LARGE: 2,
} as const;

export type FramerVerdictCode = (typeof FramerVerdict)[keyof typeof FramerVerdict];

/** Scanner states. */
const Phase = {
  /** Before the first significant byte (whitespace and a leading BOM are skipped). */
  LEAD: 0,
  /** Inside a leading UTF-8 byte order mark. */
  BOM: 1,
  /** Inside an object or array, outside strings. */
  CONTAINER: 2,
  /** Inside a string inside a container. */
  STRING: 3,
  /** Right after a backslash inside a string. */
  ESCAPE: 4,
  /** The request does not start with a bracket: only end of stream completes it. */
  UNTIL_EOF: 5,
  DONE: 6,
} as const;

type PhaseCode = (typeof Phase)[keyof typeof Phase];

const BOM = [0xef, 0xbb, 0xbf];

export class RequestFramer {
  private readonly buf: Buffer;
  private length = 0;
  private phase: PhaseCode = Phase.LEAD;
  private depth = 0;
  /** Bytes of the complete request (up to the closing bracket), once known. */
  private end = -1;
  private verdict: FramerVerdictCode = FramerVerdict.INCOMPLETE;

  constructor(private readonly maxBytes: number) {
    if (!(Number.isInteger(maxBytes) && maxBytes >= 1)) throw new RangeError('RequestFramer: maxBytes must be an integer ≥ 1');
    this.buf = Buffer.allocUnsafe(maxBytes);
  }

  /** Bytes received and held so far. */
  get receivedBytes(): number {
    return this.length;
  }

  /** Takes the next chunk of the stream. Once COMPLETE or TOO_LARGE, further chunks are ignored. */
  push(chunk: Uint8Array): FramerVerdictCode {
    if (this.verdict !== FramerVerdict.INCOMPLETE) return this.verdict;
    const room = this.maxBytes - this.length;
    const n = Math.min(room, chunk.length);
    const start = this.length;
    this.buf.set(n === chunk.length ? chunk : chunk.subarray(0, n), start);
    this.length += n;
    for (let i = start; i < this.length; i++) {
      if (this.step(this.buf[i], i)) {
        this.end = i + 1;
        this.verdict = this.end >= this.maxBytes ? FramerVerdict.TOO_LARGE : FramerVerdict.COMPLETE;
        return this.verdict;
      }
    }
    if (this.length >= this.maxBytes) this.verdict = FramerVerdict.TOO_LARGE;
    return this.verdict;
  }

  /**
   * The request's bytes: up to the closing bracket when COMPLETE, otherwise
   * everything received (the caller has seen end of stream or given up
   * waiting). A view of the framer's buffer.
   */
  request(): Buffer {
    return this.buf.subarray(0, this.end >= 0 ? this.end : this.length);
  }

  /** One byte; true when it completes the request. */
  private step(b: number, at: number): boolean {
    switch (this.phase) {
      case Phase.LEAD:
        if (b === 0x20 || (b >= 0x09 && b <= 0x0d)) return false;
        if (b === BOM[0] && at === 0) {
          this.phase = Phase.BOM;
        } else if (b === 0x7b || b === 0x5b) {
          this.phase = Phase.CONTAINER;
          this.depth = 1;
        } else {
          this.phase = Phase.UNTIL_EOF;
        }
        return false;
      case Phase.BOM:
        if (b !== BOM[at]) this.phase = Phase.UNTIL_EOF;
        else if (at === BOM.length - 1) this.phase = Phase.LEAD;
        return false;
      case Phase.CONTAINER:
        if (b === 0x22) {
          this.phase = Phase.STRING;
        } else if (b === 0x7b || b === 0x5b) {
          this.depth++;
        } else if (b === 0x7d || b === 0x5d) {
          if (--this.depth === 0) {
            this.phase = Phase.DONE;
            return true;
          }
        }
        return false;
      case Phase.STRING:
        if (b === 0x5c) this.phase = Phase.ESCAPE;
        else if (b === 0x22) this.phase = Phase.CONTAINER;
        return false;
      case Phase.ESCAPE:
        this.phase = Phase.STRING;
        return false;
      default:
        return false;
    }
  }
}
