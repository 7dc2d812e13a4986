/**
 * Drop counters. Every frame the stack refuses is counted under one reason;
 * counting is an array increment on the data path, and names are attached
 * only when someone asks for stats.
 */
export const Drop = {
  ETH_TRUNCATED: 0,
  ETH_UNKNOWN_TYPE: 1,
  INTERNAL_ERROR: 2,
  VNET_TRUNCATED: 3,
  ARP_MALFORMED: 4,
  ARP_IGNORED: 5,
  IPV4_TRUNCATED: 6,
  IPV4_BAD_VERSION: 7,
  IPV4_BAD_HEADER_LEN: 8,
  IPV4_BAD_TOTAL_LEN: 9,
  IPV4_BAD_CHECKSUM: 10,
  IPV4_BAD_SOURCE: 11,
  /** Overlapping or contradicting fragments: the whole datagram is discarded. */
  FRAG_OVERLAP: 12,
  /** A fragment past the largest datagram (65535 bytes of IPv4 total length, of IPv6 payload length). */
  FRAG_TOO_LARGE: 13,
  FRAG_LIMIT: 14,
  FRAG_TIMEOUT: 15,
  ICMP_MALFORMED: 16,
  ICMP_BAD_CHECKSUM: 17,
  ICMP_UNHANDLED: 18,
  UDP_MALFORMED: 19,
  UDP_BAD_CHECKSUM: 20,
  UDP_UNHANDLED: 21,
  TCP_MALFORMED: 22,
  /** IPv6 while IPv6 is off (no -6). */
  IPV6_UNSUPPORTED: 23,
  PROTOCOL_UNHANDLED: 24,
  TX_OVERSIZE: 25,
  TCP_BAD_CHECKSUM: 26,
  TCP_NO_ROUTE: 27,
  TCP_FLOW_LIMIT: 28,
  UDP_NO_ROUTE: 29,
  DNS_DROPPED: 30,
  ICMP_NOT_PERMITTED: 31,
  /** A new UDP mapping could not open its host socket (EMFILE, no addon, ...). */
  UDP_NO_SOCKET: 32,
  IPV6_TRUNCATED: 33,
  /** Payload length past what arrived. */
  IPV6_BAD_LENGTH: 34,
  /** Extension headers that cannot be walked, Hop-by-Hop not first, a Routing header with segments left. */
  IPV6_BAD_EXTENSION: 35,
  /** A multicast source, or the unspecified source outside ICMPv6 or on a fragment. */
  IPV6_BAD_SOURCE: 36,
  /** An IPv6 first fragment without the whole header chain, upper-layer header included (RFC 7112, RFC 8200 §4.5). */
  FRAG_INCOMPLETE_CHAIN: 37,
  ICMPV6_MALFORMED: 38,
  ICMPV6_BAD_CHECKSUM: 39,
  /** ICMPv6 we do not act on: errors from the guest, redirects, unknown types. */
  ICMPV6_UNHANDLED: 40,
  /** NDP messages failing RFC 4861's validity checks (hop limit, code, options, addresses), or with a Fragment header (RFC 6980). */
  NDP_INVALID: 41,
  /** A fragment without data, or a non-final one whose data is not a multiple of 8 bytes. */
  FRAG_BAD_LENGTH: 42,
  /** An exact copy of a fragment already held (the datagram is kept). */
  FRAG_DUPLICATE: 43,
} as const;

export type DropReason = (typeof Drop)[keyof typeof Drop];

const DROP_NAMES: readonly string[] = Object.entries(Drop)
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name.toLowerCase());

export class DropCounters {
  private readonly counts = new Float64Array(DROP_NAMES.length);

  add(reason: DropReason, n = 1): void {
    this.counts[reason] += n;
  }

  get(reason: DropReason): number {
    return this.counts[reason];
  }

  get total(): number {
    let sum = 0;
    for (const c of this.counts) sum += c;
    return sum;
  }

  /** Non-zero counters by name. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    this.counts.forEach((n, i) => {
      if (n > 0) out[DROP_NAMES[i]] = n;
    });
    return out;
  }
}
