/** IPv4 addresses as u32 numbers in host order; strings only at the edges (logs, CLI, API). */

export function ipv4ToString(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/**
 * glibc inet_pton(AF_INET), the one IPv4 text parser: exactly four decimal
 * octets ≤ 255, no leading zeros (which inet_aton would read as octal), no
 * white space. undefined for anything else.
 */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let addr = 0;
  for (const part of parts) {
    if (part.length === 0 || part.length > 3) return undefined;
    for (let i = 0; i < part.length; i++) {
      const ch = part.charCodeAt(i);
      if (ch < 0x30 || ch > 0x39) return undefined;
    }
    if (part.length > 1 && part.charCodeAt(0) === 0x30) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    addr = addr * 256 + octet;
  }
  return addr >>> 0;
}

export function prefixToNetmask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffff_ffff << (32 - prefixLength)) >>> 0;
}

export function readIpv4(buf: Uint8Array, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
}

export function writeIpv4(buf: Uint8Array, off: number, addr: number): void {
  buf[off] = addr >>> 24;
  buf[off + 1] = (addr >>> 16) & 0xff;
  buf[off + 2] = (addr >>> 8) & 0xff;
  buf[off + 3] = addr & 0xff;
}
