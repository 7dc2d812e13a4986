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

/** One seeded 32-bit hash of four numbers (each taken as an int32). */
export function hash4(seed: number, a: number, b: number, c: number, d: number): number {
  const h = Math.imul(a ^ seed, 0x85eb_ca6b) ^ Math.imul(b, 0xc2b2_ae35) ^ Math.imul(c, 0x27d4_eb2f) ^ Math.imul(d, 0x1656_67b1);
  return h ^ (h >>> 15);
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
