/**
 * IPv6 addresses as numbers, so that the NAT layer handles both families
 * with the same code.
 *
 * Theory of operation
 * -------------------
 * Everywhere above the IP layer an address is a number (no strings and no
 * byte arrays on the data path): an IPv4 address is its u32 (≥ 0), an IPv6 address is a
 * negative id naming an entry of this table, which holds the 16 bytes and
 * their 16-bit word sum (the address's share of every pseudo-header
 * checksum). `addr < 0` is the family test. Flow keys stay numeric and
 * disjoint across families (`addr * 0x1_0000 + port` is negative exactly for
 * IPv6), and the TCP and UDP relays, the policy's verdicts, ICMP errors and
 * neighbour tables pass IPv6 addresses around exactly as they pass IPv4 ones.
 *
 * Lifetime: the IP input interns the source and destination of every IPv6
 * datagram (`id`); a new entry starts unreferenced and is remembered as
 * transient. Whatever keeps an address beyond the current call (a flow, a
 * UDP mapping, a neighbour entry) `acquire`s it and `release`s it when done.
 * The stack calls `sweep()` after every input batch, timer run and host
 * event, which frees the transient entries nothing acquired. So an id seen
 * during a call is valid until the stack's next sweep, and the table holds
 * the addresses of live state plus at most one batch's worth more: it is
 * bounded by the flow, mapping and neighbour limits.
 *
 * Lookup hashes the four 32-bit words with a per-table random seed into a
 * Map key; entries that collide are chained (ip/hash-chains.ts). A guest
 * that crafts colliding addresses lengthens only chains of its own addresses.
 */
import { randomInt } from 'node:crypto';
import { ipv4ToString } from '../wire/ipv4-address.js';
import { ipv6ToString, ipv6WordSum } from '../wire/ipv6-address.js';
import { chainIn, chainOut, hash4 } from './hash-chains.js';

interface Entry {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly wordSum: number;
  readonly hash: number;
  refs: number;
  /** In the transient list (refs was 0 when last looked at). */
  transient: boolean;
  /** Next entry with the same hash. */
  next: Entry | null;
}

export class Ipv6Ids {
  private readonly byHash = new Map<number, Entry>();
  /** Index = −id − 1; freed slots are reused (`free`). */
  private readonly entries: (Entry | null)[] = [];
  private readonly free: number[] = [];
  private readonly transient: Entry[] = [];
  private readonly seed = randomInt(0, 0x7fff_ffff);

  /** Entries alive (referenced or transient). */
  get size(): number {
    return this.entries.length - this.free.length;
  }

  /** The id of the 16 bytes at buf[off]; a new entry is transient until acquired. */
  id(buf: Uint8Array, off: number): number {
    const w0 = word(buf, off);
    const w1 = word(buf, off + 4);
    const w2 = word(buf, off + 8);
    const w3 = word(buf, off + 12);
    const h = hash4(this.seed, w0, w1, w2, w3);
    const head = this.byHash.get(h);
    for (let e: Entry | null | undefined = head; e !== undefined && e !== null; e = e.next) {
      const b = e.bytes;
      if (word(b, 0) === w0 && word(b, 4) === w1 && word(b, 8) === w2 && word(b, 12) === w3) return e.id;
    }
    const bytes = buf.slice(off, off + 16);
    const slot = this.free.length > 0 ? this.free.pop()! : this.entries.length;
    const entry: Entry = { id: -slot - 1, bytes, wordSum: ipv6WordSum(bytes, 0), hash: h, refs: 0, transient: true, next: null };
    this.entries[slot] = entry;
    chainIn(this.byHash, entry);
    this.transient.push(entry);
    return entry.id;
  }

  /** An id that stays until released (the stack's own addresses). */
  intern(bytes: Uint8Array): number {
    const id = this.id(bytes, 0);
    this.acquire(id);
    return id;
  }

  acquire(id: number): void {
    this.entry(id).refs++;
  }

  release(id: number): void {
    const e = this.entry(id);
    if (--e.refs > 0) return;
    if (e.refs < 0) throw new Error(`ipv6 id ${id} released more often than acquired`);
    if (!e.transient) {
      e.transient = true;
      this.transient.push(e);
    }
  }

  /** Frees the entries nothing holds. */
  sweep(): void {
    const list = this.transient;
    if (list.length === 0) return;
    for (const e of list) {
      e.transient = false;
      if (e.refs === 0) this.remove(e);
    }
    list.length = 0;
  }

  /** The 16 bytes of `id`, at offset 0; do not modify. */
  bytes(id: number): Uint8Array {
    return this.entry(id).bytes;
  }

  wordSum(id: number): number {
    return this.entry(id).wordSum;
  }

  /**
   * The pseudo-header address sum of `src` and `dst`, either family (both of
   * one family: a datagram never mixes them).
   */
  addrSum(src: number, dst: number): number {
    return src >= 0 ? (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) : this.entry(src).wordSum + this.entry(dst).wordSum;
  }

  /** Writes the 16 bytes of `id` at buf[off]. */
  write(id: number, buf: Uint8Array, off: number): void {
    const b = this.entry(id).bytes;
    for (let i = 0; i < 16; i++) buf[off + i] = b[i];
  }

  /** Text of an address of either family (logs, stats, the API). */
  format(addr: number): string {
    return addr >= 0 ? ipv4ToString(addr) : ipv6ToString(this.entry(addr).bytes);
  }

  /** `addr:port`, with brackets for IPv6 (RFC 5952 §6). */
  formatWithPort(addr: number, port: number): string {
    return addr >= 0 ? `${ipv4ToString(addr)}:${port}` : `[${ipv6ToString(this.entry(addr).bytes)}]:${port}`;
  }

  private entry(id: number): Entry {
    const e = this.entries[-id - 1];
    if (e === null || e === undefined) throw new Error(`unknown ipv6 id ${id}`);
    return e;
  }

  private remove(e: Entry): void {
    chainOut(this.byHash, e);
    const slot = -e.id - 1;
    this.entries[slot] = null;
    this.free.push(slot);
  }
}

function word(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}
