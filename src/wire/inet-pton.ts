/**
 * Address literals exactly as glibc's inet_pton(3) accepts them, because that
 * is what slirp4netns validates `host_addr` and `guest_addr` with.
 *
 * Node's `net.isIPv4`/`isIPv6` are close but not the same: `isIPv6` takes a
 * `%zone` suffix, which inet_pton refuses. The transcription below follows
 * glibc `resolv/inet_pton.c` step by step (leading zeros refused in dotted
 * quads, at most four hex digits per group, one `::` that must stand for at
 * least one group, a dotted quad only as the last 32 bits); dotted quads go
 * through the wire layer's parseIpv4, which is inet_pton(AF_INET).
 */
import { parseIpv4 } from './ipv4-address.js';

/** inet_pton(AF_INET): four decimal octets, each ≤ 255, no leading zeros, nothing else. */
export function isInetPton4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}

/** inet_pton(AF_INET6), including an embedded dotted quad (`::ffff:1.2.3.4`); no `%zone`, no brackets. */
export function isInetPton6(text: string): boolean {
  const end = text.length;
  let i = 0;
  if (end === 0) return false;
  // A leading ':' is only valid as the first half of '::'.
  if (text.charCodeAt(0) === COLON) {
    i = 1;
    if (i === end || text.charCodeAt(i) !== COLON) return false;
  }
  /** Bytes written so far, out of 16. */
  let filled = 0;
  /** Where '::' stands, or -1. */
  let gapAt = -1;
  let groupStart = i;
  let hexDigits = 0;
  let value = 0;
  while (i < end) {
    const ch = text.charCodeAt(i++);
    const digit = hexValue(ch);
    if (digit >= 0) {
      if (hexDigits === 4) return false;
      value = (value << 4) | digit;
      hexDigits++;
      continue;
    }
    if (ch === COLON) {
      groupStart = i;
      if (hexDigits === 0) {
        if (gapAt >= 0) return false;
        gapAt = filled;
        continue;
      }
      if (i === end) return false;
      if (filled + 2 > 16) return false;
      filled += 2;
      hexDigits = 0;
      value = 0;
      continue;
    }
    if (ch === DOT && filled + 4 <= 16 && parseIpv4(text.slice(groupStart, end)) !== undefined) {
      filled += 4;
      hexDigits = 0;
      break;
    }
    return false;
  }
  if (hexDigits > 0) {
    if (filled + 2 > 16) return false;
    filled += 2;
  }
  if (gapAt >= 0) {
    // '::' must expand to at least one zero group.
    if (filled === 16) return false;
    filled = 16;
  }
  return filled === 16;
}

const COLON = 0x3a;
const DOT = 0x2e;

function hexValue(ch: number): number {
  if (ch >= 0x30 && ch <= 0x39) return ch - 0x30;
  if (ch >= 0x61 && ch <= 0x66) return ch - 0x61 + 10;
  if (ch >= 0x41 && ch <= 0x46) return ch - 0x41 + 10;
  return -1;
}
