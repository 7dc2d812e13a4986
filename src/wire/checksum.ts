/**
 * The Internet checksum (RFC 1071): the 16-bit one's complement of the one's
 * complement sum of the data taken as big-endian 16-bit words.
 *
 * `sum16` returns an unfolded running sum (a plain JS number, exact far beyond
 * 64 KB of data) so callers can chain a pseudo-header, a header and a payload
 * that live in different buffers; `finish` folds and complements it.
 *
 * Speed: summing bytes pairwise runs at ~1.7 GB/s on the project's machines;
 * reading 32-bit words through a Uint32Array with several accumulators runs at
 * 6–8 GB/s (docs/architecture.md, Measured techniques). Uint32Array reads are native
 * (little-endian on every platform Node supports here), so the words are summed
 * byte-swapped and swapped back once at the end: one's complement addition
 * commutes with byte swapping (RFC 1071 §2(B)).
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Folds a running sum to 16 bits, without complementing. */
export function fold(sum: number): number {
  // A running sum can exceed 2^32, so fold with division rather than 32-bit shifts.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** The checksum to store in a header: complement of the folded sum. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** Adds `len` bytes at `off` to the running sum `initial`. `off` may be odd. */
export function sum16(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  let i = off;
  const end = off + len;
  // Bring i to a 4-byte boundary of the underlying ArrayBuffer so that the
  // word loop below can use an aligned Uint32Array. Whether the first byte is
  // a high or a low byte depends on its position relative to `off`.
  const absolute = buf.byteOffset + i;
  const misalign = (4 - (absolute & 3)) & 3;
  if (len >= 256 && LITTLE_ENDIAN && (misalign & 1) === 0) {
    if (misalign === 2) {
      sum += (buf[i] << 8) | buf[i + 1];
      i += 2;
    }
    const words = (end - i) >>> 2;
    const w = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    let a = 0;
    let b = 0;
    let c = 0;
    let d = 0;
    let k = 0;
    const n4 = words & ~3;
    for (; k < n4; k += 4) {
      a += w[k];
      b += w[k + 1];
      c += w[k + 2];
      d += w[k + 3];
    }
    for (; k < words; k++) a += w[k];
    // Each accumulator holds at most words × 2^32 < 2^53 for any frame size.
    const swapped = fold(fold(a) + fold(b) + fold(c) + fold(d));
    sum += ((swapped & 0xff) << 8) | (swapped >>> 8);
    i += words << 2;
  }
  // Bytes at an even distance from `off` are high bytes of a 16-bit word.
  for (; i + 1 < end; i += 2) {
    if (((i - off) & 1) === 0) sum += (buf[i] << 8) | buf[i + 1];
    else sum += (buf[i + 1] << 8) | buf[i];
  }
  if (i < end) sum += ((i - off) & 1) === 0 ? buf[i] << 8 : buf[i];
  return sum;
}

/** Checksum of `len` bytes at `off`, with an optional running sum to start from. */
export function checksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return finish(sum16(buf, off, len, initial));
}

/**
 * The addresses' share of a pseudo-header sum, for IPv4 source and
 * destination (u32). The L4 checksum functions take this "address sum" so
 * that one function serves both families: for IPv6 it is the sum of the
 * sixteen 16-bit words of the two addresses (ipv6WordSum), which the data path
 * keeps per address instead of recomputing it per packet (src/ip/ipv6-ids.ts).
 */
export function addrSumV4(src: number, dst: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff);
}

/**
 * Running sum of a pseudo-header from its address sum: IPv4 (RFC 9293 §3.1,
 * RFC 768) and IPv6 (RFC 8200 §8.1) differ only in the addresses; the 32-bit
 * IPv6 upper-layer length folds to the same value as the 16-bit IPv4 one.
 */
export function pseudoHeaderSum(addrSum: number, protocol: number, l4Length: number): number {
  return addrSum + protocol + l4Length;
}

/** Running sum of the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768). */
export function pseudoHeaderSumV4(src: number, dst: number, protocol: number, l4Length: number): number {
  return addrSumV4(src, dst) + protocol + l4Length;
}
