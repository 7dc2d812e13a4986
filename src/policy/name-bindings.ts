/**
 * Which addresses the DNS forwarder handed the guest for which names, so
 * that a name rule (`allow tcp:registry.example:443`) can match a flow,
 * which only carries an address.
 *
 * Theory of operation
 * -------------------
 * The forwarder calls `record(names, addresses, ttlSeconds, nowMs)` for each
 * answer it gives the guest: `names` is the CNAME chain as the answer
 * walked it, the queried (owner) name first and every alias after it, and
 * `addresses` the A and AAAA data at its end (IPv4 as u32 numbers in host
 * order, IPv6 as 16-byte arrays, copied). Every name of the chain is bound
 * to every address: a rule naming the queried name, or one naming the
 * CDN's name it aliases to, both match. `ttlSeconds` should be the TTL the
 * guest was given (the smallest along the chain).
 *
 * A binding (one name, one address) lives for max(TTL, floor) seconds,
 * capped: the floor (default 60 s) lets a client that reconnects a little
 * after a short TTL ran out (TTL 0 and 5 are common behind CDNs, and
 * resolver libraries keep answers a while) still get through; the cap
 * (default one day) keeps an absurd TTL from pinning an entry. Recording a
 * binding again extends it (it never shortens one the guest may still be
 * using) and makes it the newest.
 *
 * Bounded: at most `maxEntries` bindings (default 4096). Past the bound,
 * expired bindings are dropped first (a full scan, only when the earliest
 * expiry may have passed), then the oldest-recorded ones. Lookups never
 * change the table, so the order is by recording, not by use.
 *
 * Time is passed in (`nowMs`, milliseconds on the stack's monotonic clock),
 * as everywhere in the protocol core (docs/architecture.md, Time): a
 * binding holds while nowMs < its expiry.
 *
 * Lookup is by address, without building strings: IPv4 addresses key a Map
 * directly; IPv6 ones hash their four words with a per-table random seed
 * into a Map key, colliding entries chained (ip/hash-chains.ts; the guest
 * can choose the addresses its own DNS names resolve to). An address entry
 * holds its bindings (few: the names that led to it), and `boundTo` asks
 * whether one of them is live and matches a name pattern.
 */
import { randomInt } from 'node:crypto';
import { chainIn, chainOut, hash4 } from '../ip/hash-chains.js';
import { ipv4ToString } from '../wire/ipv4-address.js';
import { ipv6ToString } from '../wire/ipv6-address.js';

export interface NameBindingsOptions {
  /** Most bindings (name, address) held; default 4096. */
  maxEntries?: number;
  /** Shortest lifetime of a binding, seconds; default 60. */
  ttlFloorSeconds?: number;
  /** Longest lifetime of a binding, seconds; default 86400. */
  ttlCapSeconds?: number;
}

/** An IPv4 address (u32, host order) or an IPv6 address (16 bytes). */
export type BoundAddress = number | Uint8Array;

/**
 * What a name rule matches: exactly one name, or every name strictly below
 * a suffix. Lower case, no trailing dot; `dotSuffix` starts with ".".
 */
export interface NamePattern {
  readonly exact: string | null;
  readonly dotSuffix: string | null;
}

export function exactName(name: string): NamePattern {
  return { exact: normalizeName(name), dotSuffix: null };
}

export function suffixPattern(suffix: string): NamePattern {
  return { exact: null, dotSuffix: `.${normalizeName(suffix)}` };
}

/** `name` must be normalized (normalizeName). */
export function nameMatches(p: NamePattern, name: string): boolean {
  if (p.exact !== null) return name === p.exact;
  const s = p.dotSuffix!;
  return name.length > s.length && name.endsWith(s);
}

/** Lower case, without one trailing dot. */
export function normalizeName(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  return n.toLowerCase();
}

interface Binding {
  /** Key in `order`. */
  readonly key: string;
  readonly name: string;
  readonly entry: AddressEntry;
  expiresAtMs: number;
}

/** One address and the names bound to it; opaque outside this file. */
export interface AddressEntry {
  /** The IPv4 address, or -1 for IPv6. */
  readonly v4: number;
  readonly v6: Uint8Array | null;
  readonly hash: number;
  next: AddressEntry | null;
  readonly bindings: Binding[];
}

export class NameBindings {
  readonly maxEntries: number;
  readonly ttlFloorSeconds: number;
  readonly ttlCapSeconds: number;
  private readonly v4 = new Map<number, AddressEntry>();
  private readonly v6 = new Map<number, AddressEntry>();
  /** Every binding, oldest recorded first. */
  private readonly order = new Map<string, Binding>();
  /** No binding expires before this (a lower bound; exact after a prune). */
  private earliestExpiryMs = Infinity;
  private readonly seed = randomInt(0, 0x7fff_ffff);

  constructor(opts: NameBindingsOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 4096;
    this.ttlFloorSeconds = opts.ttlFloorSeconds ?? 60;
    this.ttlCapSeconds = opts.ttlCapSeconds ?? 86_400;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError(`maxEntries must be a positive integer, not ${this.maxEntries}`);
    if (!(this.ttlFloorSeconds >= 0)) throw new RangeError(`ttlFloorSeconds must be >= 0, not ${this.ttlFloorSeconds}`);
    if (!(this.ttlCapSeconds >= this.ttlFloorSeconds)) throw new RangeError(`ttlCapSeconds must be >= ttlFloorSeconds, not ${this.ttlCapSeconds}`);
  }

  /** Bindings held (expired ones included until they are pruned or evicted). */
  get size(): number {
    return this.order.size;
  }

  /**
   * Binds every name of `names` (the owner name first, then the CNAME
   * aliases; one name alone is fine) to every address, for the clamped TTL.
   */
  record(names: string | readonly string[], addresses: readonly BoundAddress[], ttlSeconds: number, nowMs: number): void {
    const list = typeof names === 'string' ? [names] : names;
    const ttl = Math.min(this.ttlCapSeconds, Math.max(this.ttlFloorSeconds, ttlSeconds >= 0 ? ttlSeconds : 0));
    const expiresAtMs = nowMs + ttl * 1000;
    for (const raw of list) {
      const name = normalizeName(raw);
      if (name === '') continue;
      for (const a of addresses) this.bind(name, a, expiresAtMs);
    }
    if (this.order.size > this.maxEntries) this.shrink(nowMs);
  }

  /** Drops every expired binding. Optional: the table also does this itself when full. */
  prune(nowMs: number): void {
    if (nowMs < this.earliestExpiryMs) return;
    let earliest = Infinity;
    for (const b of this.order.values()) {
      if (b.expiresAtMs <= nowMs) this.remove(b);
      else if (b.expiresAtMs < earliest) earliest = b.expiresAtMs;
    }
    this.earliestExpiryMs = earliest;
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.order.clear();
    this.earliestExpiryMs = Infinity;
  }

  /** The entry of an IPv4 address (u32), or null when no name was bound to it. */
  find4(addr: number): AddressEntry | null {
    return this.v4.get(addr) ?? null;
  }

  /** The entry of the IPv6 address at buf[off..off+16], or null. */
  find6(buf: Uint8Array, off: number): AddressEntry | null {
    const w0 = word(buf, off);
    const w1 = word(buf, off + 4);
    const w2 = word(buf, off + 8);
    const w3 = word(buf, off + 12);
    for (let e = this.v6.get(hash4(this.seed, w0, w1, w2, w3)) ?? null; e !== null; e = e.next) {
      const b = e.v6!;
      if (word(b, 0) === w0 && word(b, 4) === w1 && word(b, 8) === w2 && word(b, 12) === w3) return e;
    }
    return null;
  }

  /** Whether a name matching `p` is bound to the entry's address at `nowMs`. No allocation. */
  boundTo(entry: AddressEntry, p: NamePattern, nowMs: number): boolean {
    const list = entry.bindings;
    for (let i = 0; i < list.length; i++) {
      const b = list[i];
      if (nowMs < b.expiresAtMs && nameMatches(p, b.name)) return true;
    }
    return false;
  }

  /** The live names bound to an address (IPv4 u32 or 16 bytes), for logs and tests. */
  namesOf(addr: BoundAddress, nowMs: number): string[] {
    const e = typeof addr === 'number' ? this.find4(addr) : this.find6(addr, 0);
    if (e === null) return [];
    return e.bindings.filter((b) => nowMs < b.expiresAtMs).map((b) => b.name);
  }

  private bind(name: string, a: BoundAddress, expiresAtMs: number): void {
    let entry: AddressEntry;
    let addrKey: string;
    if (typeof a === 'number') {
      const v4 = a >>> 0;
      if (v4 !== a) throw new RangeError(`an IPv4 address is a u32, not ${a}`);
      addrKey = ipv4ToString(v4);
      entry = this.v4.get(v4) ?? this.add4(v4);
    } else {
      if (a.length !== 16) throw new RangeError(`an IPv6 address is 16 bytes, not ${a.length}`);
      addrKey = ipv6ToString(a);
      entry = this.find6(a, 0) ?? this.add6(a);
    }
    const key = `${addrKey} ${name}`;
    const old = this.order.get(key);
    if (old !== undefined) {
      if (expiresAtMs > old.expiresAtMs) old.expiresAtMs = expiresAtMs;
      this.order.delete(key);
      this.order.set(key, old);
      return;
    }
    const b: Binding = { key, name, entry, expiresAtMs };
    entry.bindings.push(b);
    this.order.set(key, b);
    if (expiresAtMs < this.earliestExpiryMs) this.earliestExpiryMs = expiresAtMs;
  }

  private add4(v4: number): AddressEntry {
    const e: AddressEntry = { v4, v6: null, hash: v4, next: null, bindings: [] };
    this.v4.set(v4, e);
    return e;
  }

  private add6(bytes: Uint8Array): AddressEntry {
    const v6 = bytes.slice(0, 16);
    const hash = hash4(this.seed, word(v6, 0), word(v6, 4), word(v6, 8), word(v6, 12));
    const e: AddressEntry = { v4: -1, v6, hash, next: null, bindings: [] };
    chainIn(this.v6, e);
    return e;
  }

  private shrink(nowMs: number): void {
    this.prune(nowMs);
    for (const b of this.order.values()) {
      if (this.order.size <= this.maxEntries) break;
      this.remove(b);
    }
  }

  private remove(b: Binding): void {
    this.order.delete(b.key);
    const list = b.entry.bindings;
    list.splice(list.indexOf(b), 1);
    if (list.length > 0) return;
    const e = b.entry;
    if (e.v6 === null) this.v4.delete(e.v4);
    else chainOut(this.v6, e);
  }
}

function word(b: Uint8Array, o: number): number {
  return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3];
}
