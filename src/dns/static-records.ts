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
import { UsernetError } from '../errors.js';
import { dnsNameKey, encodeDnsName } from '../wire/dns.js';
import { parseIpv4, writeIpv4 } from '../wire/ipv4-address.js';
import { parseIpv6 } from '../wire/ipv6-address.js';

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
        const v4 = typeof addr === 'string' ? parseIpv4(addr) : undefined;
        if (v4 !== undefined) entry.a.push(ipv4Bytes(v4));
        else if (typeof addr === 'string' && parseIpv6(addr) !== undefined) entry.aaaa.push(parseIpv6(addr)!);
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

function ipv4Bytes(addr: number): Uint8Array {
  const bytes = new Uint8Array(4);
  writeIpv4(bytes, 0, addr);
  return bytes;
}

