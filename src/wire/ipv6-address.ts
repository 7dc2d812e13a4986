/**
 * IPv6 addresses as 16-byte arrays: text in and out (at the edges: CLI, API,
 * logs), the checksum word sum, and the address classes the policy needs
 * (RFC 4291 §2.4). The data path never builds text.
 */
import { isInetPton6 } from './inet-pton.js';

/** The text form of RFC 5952 §4: lower case, zeros compressed in the longest run (leftmost on a tie, never a single group), IPv4-mapped as ::ffff:a.b.c.d. */
export function ipv6ToString(buf: Uint8Array, off = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((buf[off + 2 * i] << 8) | buf[off + 2 * i + 1]);
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return `::ffff:${buf[off + 12]}.${buf[off + 13]}.${buf[off + 14]}.${buf[off + 15]}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => words.slice(from, to).map((w) => w.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/**
 * A literal to 16 bytes, or undefined. Accepts what glibc's inet_pton
 * (AF_INET6) accepts: `::`, a trailing dotted quad; no zone (`%eth0`), no brackets.
 */
export function parseIpv6(text: string): Uint8Array | undefined {
  if (!isInetPton6(text)) return undefined;
  const out = new Uint8Array(16);
  let s = text;
  let quad: number[] | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    quad = s.slice(lastColon + 1).split('.').map(Number);
    // Keep the colon so "::1.2.3.4" still splits around "::".
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const hi = groups(head);
  const lo = rest === undefined ? [] : groups(rest);
  const words = [...hi, ...new Array<number>(8 - hi.length - lo.length).fill(0), ...lo];
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i] >>> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  if (quad !== null) out.set(quad, 12);
  return out;
}

/** Sum of the eight 16-bit words (the address's share of a pseudo-header sum, RFC 8200 §8.1). */
export function ipv6WordSum(buf: Uint8Array, off: number): number {
  let sum = 0;
  for (let i = 0; i < 16; i += 2) sum += (buf[off + i] << 8) | buf[off + i + 1];
  return sum;
}

export function isUnspecified6(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < 16; i++) if (b[o + i] !== 0) return false;
  return true;
}

/** ::1 */
export function isLoopback6(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < 15; i++) if (b[o + i] !== 0) return false;
  return b[o + 15] === 1;
}

/** ff00::/8 */
export function isMulticast6(b: Uint8Array, o: number): boolean {
  return b[o] === 0xff;
}

/** fe80::/10 */
export function isLinkLocal6(b: Uint8Array, o: number): boolean {
  return b[o] === 0xfe && (b[o + 1] & 0xc0) === 0x80;
}

/** ::ffff:0:0/96, the IPv4-mapped addresses. */
export function isV4Mapped6(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < 10; i++) if (b[o + i] !== 0) return false;
  return b[o + 10] === 0xff && b[o + 11] === 0xff;
}

/** ::/96 minus :: and ::1: the deprecated IPv4-compatible addresses (RFC 4291 §2.5.5.1), never routed. */
export function isV4Compatible6(b: Uint8Array, o: number): boolean {
  for (let i = 0; i < 12; i++) if (b[o + i] !== 0) return false;
  return !isUnspecified6(b, o) && !isLoopback6(b, o);
}

/** Whether the first `prefixLength` bits of a and b agree. */
export function prefixMatch6(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number, prefixLength: number): boolean {
  const whole = prefixLength >>> 3;
  for (let i = 0; i < whole; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  const rest = prefixLength & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[aOff + whole] & mask) === (b[bOff + whole] & mask);
}

/** The solicited-node multicast address ff02::1:ffXX:XXXX of an address (RFC 4291 §2.7.1). */
export function solicitedNode6(b: Uint8Array, o: number, out: Uint8Array, outOff: number): void {
  out.fill(0, outOff, outOff + 16);
  out[outOff] = 0xff;
  out[outOff + 1] = 0x02;
  out[outOff + 11] = 0x01;
  out[outOff + 12] = 0xff;
  out[outOff + 13] = b[o + 13];
  out[outOff + 14] = b[o + 14];
  out[outOff + 15] = b[o + 15];
}

/** The modified EUI-64 interface identifier of a MAC (RFC 4291 App. A) into out[outOff + 8 .. +16]. */
export function eui64FromMac(mac: number, out: Uint8Array, outOff: number): void {
  const hi = Math.floor(mac / 0x1_0000_0000) >>> 0; // top 16 bits of 48
  const lo = mac >>> 0;
  out[outOff + 8] = ((hi >>> 8) & 0xff) ^ 0x02;
  out[outOff + 9] = hi & 0xff;
  out[outOff + 10] = lo >>> 24;
  out[outOff + 11] = 0xff;
  out[outOff + 12] = 0xfe;
  out[outOff + 13] = (lo >>> 16) & 0xff;
  out[outOff + 14] = (lo >>> 8) & 0xff;
  out[outOff + 15] = lo & 0xff;
}

/** The Ethernet address of an IPv6 multicast group: 33:33 and its last 32 bits (RFC 2464 §7). */
export function multicastMac6(b: Uint8Array, o: number): number {
  return 0x3333 * 0x1_0000_0000 + (((b[o + 12] << 24) | (b[o + 13] << 16) | (b[o + 14] << 8) | b[o + 15]) >>> 0);
}
