/**
 * The guest side's IPv4 → MAC table, learned from ARP and DHCP (as libslirp
 * does, compat spec §4.4). Bounded: past `capacity` the entry learned or
 * refreshed longest ago is forgotten (a Map iterates in insertion order, and
 * a refresh re-inserts).
 */
export class NeighbourTable {
  private readonly entries = new Map<number, number>();

  /** Called when an address is learned or its MAC changes (connections waiting on ARP go on). */
  onLearn: ((ip: number, mac: number) => void) | null = null;

  constructor(private readonly capacity = 256) {}

  learn(ip: number, mac: number): void {
    if (this.entries.get(ip) === mac) return;
    this.entries.delete(ip);
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value as number;
      this.entries.delete(oldest);
    }
    this.entries.set(ip, mac);
    this.onLearn?.(ip, mac);
  }

  lookup(ip: number): number | undefined {
    return this.entries.get(ip);
  }

  get size(): number {
    return this.entries.size;
  }

  toJSON(): Array<{ ip: number; mac: number }> {
    return Array.from(this.entries, ([ip, mac]) => ({ ip, mac }));
  }
}
