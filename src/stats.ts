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
  IPV4_OPTIONS_UNSUPPORTED: 12,
  FRAG_OVERLAP: 13,
  FRAG_TOO_LARGE: 14,
  FRAG_LIMIT: 15,
  FRAG_TIMEOUT: 16,
  ICMP_MALFORMED: 17,
  ICMP_BAD_CHECKSUM: 18,
  ICMP_UNHANDLED: 19,
  UDP_MALFORMED: 20,
  UDP_BAD_CHECKSUM: 21,
  UDP_UNHANDLED: 22,
  TCP_MALFORMED: 23,
  IPV6_UNSUPPORTED: 24,
  PROTOCOL_UNHANDLED: 25,
  DHCP_MALFORMED: 26,
  TX_OVERSIZE: 27,
  TCP_BAD_CHECKSUM: 28,
  TCP_NO_ROUTE: 29,
  TCP_FLOW_LIMIT: 30,
  UDP_NO_ROUTE: 31,
  DNS_DROPPED: 32,
  ICMP_NOT_PERMITTED: 33,
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
