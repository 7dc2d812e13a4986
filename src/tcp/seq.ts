/**
 * Wraparound-safe arithmetic on 32-bit TCP sequence numbers (RFC 9293 §3.4:
 * "all arithmetic dealing with sequence numbers must be performed modulo
 * 2**32"), after gVisor's pkg/tcpip/seqnum.
 *
 * Sequence numbers are plain numbers in [0, 2^32). `a < b` means "b is at most
 * 2^31 − 1 ahead of a": the signed 32-bit difference (`| 0`) decides, so
 * comparisons stay right across the wrap as long as the two numbers are less
 * than 2^31 apart, which every TCP window is (RFC 7323 §2.3 caps it at 2^30).
 * Results are normalised with `>>> 0`.
 *
 * The same helpers serve 32-bit timestamps (RFC 7323 §5.2 compares TSvals
 * with the same signed-difference rule).
 */

/** a + n, modulo 2^32. `n` may be negative. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** The signed distance from `b` to `a` (a − b) in (−2^31, 2^31]. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/**
 * a − b as an unsigned distance in [0, 2^32): how far `a` is ahead of `b`.
 * Use it only when the caller knows `a` is not behind `b` (a length).
 */
export function seqSub(a: number, b: number): number {
  return (a - b) >>> 0;
}

export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

export function seqGe(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** The later of two sequence numbers. */
export function seqMax(a: number, b: number): number {
  return ((a - b) | 0) >= 0 ? a : b;
}

/** The earlier of two sequence numbers. */
export function seqMin(a: number, b: number): number {
  return ((a - b) | 0) <= 0 ? a : b;
}

/**
 * True iff `v` lies in the half-open window [start, start + size). A zero-size
 * window holds nothing. `size` must be below 2^31.
 */
export function seqInWindow(v: number, start: number, size: number): boolean {
  return ((v - start) >>> 0) < size;
}

/** True iff `v` lies in [first, last], both inclusive (RFC 9293's "=<" tests). */
export function seqInRange(v: number, first: number, last: number): boolean {
  return ((v - first) >>> 0) <= ((last - first) >>> 0);
}
