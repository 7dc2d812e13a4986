/**
 * Tables keyed by four 32-bit numbers (an IPv6 address's words; a
 * fragment's source, destination, protocol and identification): too wide
 * for one JS number, so hashed into one for a Map key, entries with the same
 * hash chained through their `next`. Used by ip/ipv6-ids.ts and
 * ip/reassembly.ts.
 *
 * The hash is seeded per table because the guest chooses the keys: one
 * crafting collisions cannot predict them, and lengthens only chains of its
 * own entries.
 */

export interface Chained<T> {
  readonly hash: number;
  next: T | null;
}

/**
 * One seeded 32-bit hash of four numbers (each taken as an int32): each word
 * folded in with a multiply-rotate step and the whole finished with
 * MurmurHash3's fmix32, so that keys differing only in later words collide
 * in a way that depends on the seed too (a seed mixed into the first word
 * alone would cancel out between keys sharing it: an IPv6 prefix).
 */
export function hash4(seed: number, a: number, b: number, c: number, d: number): number {
  let h = seed;
  h = mix(h, a);
  h = mix(h, b);
  h = mix(h, c);
  h = mix(h, d);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85eb_ca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2_ae35);
  return h ^ (h >>> 16);
}

/** MurmurHash3's per-block step. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e_2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b87_3593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe654_6b64) | 0;
}

/** Puts `entry` at the head of its chain. */
export function chainIn<T extends Chained<T>>(map: Map<number, T>, entry: T): void {
  entry.next = map.get(entry.hash) ?? null;
  map.set(entry.hash, entry);
}

/** Takes `entry` out of its chain; it must be in it. */
export function chainOut<T extends Chained<T>>(map: Map<number, T>, entry: T): void {
  const head = map.get(entry.hash)!;
  if (head === entry) {
    if (entry.next === null) map.delete(entry.hash);
    else map.set(entry.hash, entry.next);
    return;
  }
  let p = head;
  while (p.next !== entry) p = p.next!;
  p.next = entry.next;
}
