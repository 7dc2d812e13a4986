/**
 * Names the forwarder answers itself (the library's `staticRecords` option):
 * name → IPv4 and IPv6 literals, class IN, matched case-insensitively
 * (RFC 4343). Exact names only: no wildcards, no search suffixes (the guest's
 * resolver appends those before asking).
 *
 * The answer for a static name never goes upstream, whatever the type: A and
 * AAAA get the literals of that family, ANY gets both, every other type gets
 * NODATA (NOERROR, empty answer). That is how a name that "exists" behaves,
 * and forwarding other types could leak a real record of the same name from
 * the host's DNS.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { UsernetError } from '../errors.js';
import { dnsNameKey, encodeDnsName } from '../wire/dns.js';

export interface StaticEntry {
  /** 4-byte RDATA of each A record, in the order given. */
  a: Uint8Array[];
  /** 16-byte RDATA of each AAAA record. */
  aaaa: Uint8Array[];
}

export class StaticRecords {
  private readonly byKey = new Map<string, StaticEntry>();

  /** Throws UsernetError ERR_USERNET_INVALID_OPTION for a bad name or literal. */
  constructor(records: Record<string, readonly string[]> = {}) {
    for (const [name, addrs] of Object.entries(records)) {
      const wire = encodeDnsName(name);
      const key = wire === null ? null : dnsNameKey(wire, 0, wire.length, 0);
      if (key === null) throw invalid(`staticRecords: ${JSON.stringify(name)} is not a DNS name`);
      if (!Array.isArray(addrs)) throw invalid(`staticRecords[${JSON.stringify(name)}] must be an array`);
      const entry = this.byKey.get(key) ?? { a: [], aaaa: [] };
      for (const addr of addrs) {
        if (typeof addr === 'string' && isIPv4(addr)) entry.a.push(parseIpv4(addr));
        else if (typeof addr === 'string' && isIPv6(addr) && !addr.includes('%')) entry.aaaa.push(parseIpv6(addr));
        else throw invalid(`staticRecords[${JSON.stringify(name)}]: ${JSON.stringify(addr)} is not an IP literal`);
      }
      this.byKey.set(key, entry);
    }
  }

  get size(): number {
    return this.byKey.size;
  }

  /** By `dnsNameKey`. */
  lookup(key: string): StaticEntry | undefined {
    return this.byKey.get(key);
  }
}

function invalid(message: string): UsernetError {
  return new UsernetError('ERR_USERNET_INVALID_OPTION', message);
}

/** Dotted quad (already validated by isIPv4) to 4 bytes. */
export function parseIpv4(s: string): Uint8Array {
  return Uint8Array.from(s.split('.'), Number);
}

/** An IPv6 literal (validated by isIPv6, no scope) to 16 bytes; handles `::` and a trailing dotted quad. */
export function parseIpv6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  let text = s;
  let tail: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    tail = parseIpv4(text.slice(lastColon + 1));
    // Keep the colon so "::1.2.3.4" still splits around "::".
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const hi = groups(head);
  const lo = rest === undefined ? [] : groups(rest);
  const words = [...hi, ...new Array<number>(8 - hi.length - lo.length).fill(0), ...lo];
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i] >>> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  if (tail !== null) out.set(tail, 12);
  return out;
}
