/**
 * Result codes of the wire layer. Parsers return one of these instead of
 * throwing: a malformed frame is an everyday event on a network, and a throw
 * costs thousands of times a returned number (docs/architecture.md, Errors).
 */
export const Wire = {
  OK: 0,
  /** Fewer bytes arrived than the header needs. */
  TRUNCATED: 1,
  /** Version field is not the one this parser handles. */
  BAD_VERSION: 2,
  /** A header-length field is too small or points past what arrived. */
  BAD_HEADER_LEN: 3,
  /** A total-length field is smaller than the header or larger than what arrived. */
  BAD_TOTAL_LEN: 4,
  BAD_CHECKSUM: 5,
  BAD_OPTIONS: 6,
  /** A field holds a value the protocol forbids (ARP hlen, TCP flags, ...). */
  BAD_FIELD: 7,
  /** Well-formed, but not something this stack handles. */
  UNSUPPORTED: 8,
} as const;

export type WireCode = (typeof Wire)[keyof typeof Wire];
