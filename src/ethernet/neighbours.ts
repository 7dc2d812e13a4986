/**
 * The guest side's address → MAC table, learned from ARP and DHCP (as
 * libslirp does) and, for IPv6, from NDP. Addresses are
 * numbers of either family (IPv6 ones are ids the table holds while it keeps
 * them, src/ip/ipv6-ids.ts). Bounded: past `capacity` the entry learned or
 * refreshed longest ago is forgotten (a Map iterates in insertion order, and
 * a refresh re-inserts).
 */

/** How the table keeps an IPv6 id alive (src/ip/ipv6-ids.ts); declared here so that ethernet/ need not import ip/. */
export interface Ipv6IdRefs {
  acquire(id: number): void;
  release(id: number): void;
}

export class NeighbourTable {
  private readonly entries = new Map<number, number>();

  /** Called when an address is learned or its MAC changes (connections waiting on ARP/NDP go on). */
  onLearn: ((ip: number, mac: number) => void) | null = null;

  constructor(
    private readonly capacity = 256,
    private readonly ids: Ipv6IdRefs | null = null,
  ) {}

  learn(ip: number, mac: number): void {
    const known = this.entries.get(ip);
    if (known === mac) return;
    if (known === undefined) {
      if (this.entries.size >= this.capacity) this.forget(this.entries.keys().next().value as number);
      if (ip < 0) this.ids!.acquire(ip);
    } else this.entries.delete(ip);
    this.entries.set(ip, mac);
    this.onLearn?.(ip, mac);
  }

  lookup(ip: number): number | undefined {
    return this.entries.get(ip);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Forgets every entry (stack shutdown), releasing the IPv6 ids. */
  clear(): void {
    for (const ip of [...this.entries.keys()]) this.forget(ip);
  }

  toJSON(): Array<{ ip: number; mac: number }> {
    return Array.from(this.entries, ([ip, mac]) => ({ ip, mac }));
  }

  private forget(ip: number): void {
    this.entries.delete(ip);
    if (ip < 0) this.ids!.release(ip);
  }
}
