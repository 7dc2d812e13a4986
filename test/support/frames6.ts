/**
 * Hand-built IPv6 guest frames for tests, independent of src/wire (a second
 * implementation of the formats, as frames.ts is for IPv4). Addresses are
 * parsed here with a small expander of Node's own validation.
 */
import { isIPv6 } from 'node:net';
import { ethernet, GATEWAY_MAC, GUEST_MAC, inetChecksum } from './frames.js';

export const GUEST6 = 'fd00::ff:fe00:64';
export const GUEST6_LL = 'fe80::ff:fe00:64';
/** The link-layer address of ff02::1 (RFC 2464 §7). */
export const ALL_NODES_MAC = Buffer.from([0x33, 0x33, 0, 0, 0, 1]);

export function ip6(text: string): Buffer {
  if (!isIPv6(text)) throw new Error(`not IPv6: ${text}`);
  const [head, tail] = text.split('::') as [string, string | undefined];
  const words = (s: string | undefined): number[] => (s === undefined || s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const hi = words(head);
  const lo = words(tail);
  const all = tail === undefined ? hi : [...hi, ...new Array<number>(8 - hi.length - lo.length).fill(0), ...lo];
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(w, 2 * i));
  return b;
}

/** Compressed text of 16 bytes (as Node prints them: good enough for comparisons in tests). */
export function ip6Text(b: Uint8Array, off = 0): string {
  const words: string[] = [];
  for (let i = 0; i < 8; i++) words.push(((b[off + 2 * i] << 8) | b[off + 2 * i + 1]).toString(16));
  return new URL(`http://[${words.join(':')}]/`).hostname.slice(1, -1);
}

/** The multicast MAC of an IPv6 multicast address (33:33 + its last 32 bits). */
export function multicastMac(addr: Buffer): Buffer {
  return Buffer.from([0x33, 0x33, addr[12], addr[13], addr[14], addr[15]]);
}

/** The checksum of an upper-layer message over the IPv6 pseudo-header (RFC 8200 §8.1). */
export function checksum6(src: string, dst: string, nextHeader: number, body: Buffer): number {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return inetChecksum(ip6(src), ip6(dst), len, Buffer.from([0, 0, 0, nextHeader]), body);
}

export interface Ipv6Fields {
  src: string;
  dst: string;
  nextHeader: number;
  hopLimit?: number;
  /** Overrides the payload length field. */
  payloadLength?: number;
}

export function ipv6(f: Ipv6Fields, payload: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(f.payloadLength ?? payload.length, 4);
  h[6] = f.nextHeader;
  h[7] = f.hopLimit ?? 64;
  ip6(f.src).copy(h, 8);
  ip6(f.dst).copy(h, 24);
  return Buffer.concat([h, payload]);
}

/** An ICMPv6 message with its checksum: type, code, the 4 bytes after the checksum, the rest. */
export function icmp6(src: string, dst: string, type: number, code: number, body: Uint8Array): Buffer {
  const m = Buffer.concat([Buffer.from([type, code, 0, 0]), body]);
  m.writeUInt16BE(checksum6(src, dst, 58, m), 2);
  return m;
}

/** A guest frame carrying ICMPv6 (hop limit 255, as NDP needs). */
export function icmp6Frame(src: string, dst: string, type: number, code: number, body: Uint8Array, dstMac: Buffer = GATEWAY_MAC, hopLimit = 255): Buffer {
  return ethernet(dstMac, GUEST_MAC, 0x86dd, ipv6({ src, dst, nextHeader: 58, hopLimit }, icmp6(src, dst, type, code, body)));
}

/** A link-layer address option (1 = source, 2 = target). */
export function llaOption(type: 1 | 2, mac: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([type, 1]), mac]);
}

/** Neighbour Solicitation body (after type/code/checksum): reserved, target, options. */
export function nsBody(target: string, options: Uint8Array = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.alloc(4), ip6(target), options]);
}

export function echo6Body(ident: number, seq: number, data: Uint8Array): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(ident, 0);
  h.writeUInt16BE(seq, 2);
  return Buffer.concat([h, data]);
}

export function udp6(src: string, dst: string, srcPort: number, dstPort: number, data: Uint8Array): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(srcPort, 0);
  h.writeUInt16BE(dstPort, 2);
  h.writeUInt16BE(8 + data.length, 4);
  const c = checksum6(src, dst, 17, Buffer.concat([h, data]));
  h.writeUInt16BE(c === 0 ? 0xffff : c, 6);
  return Buffer.concat([h, data]);
}

export function udp6Frame(src: string, dst: string, srcPort: number, dstPort: number, data: Uint8Array, dstMac: Buffer = GATEWAY_MAC): Buffer {
  return ethernet(dstMac, GUEST_MAC, 0x86dd, ipv6({ src, dst, nextHeader: 17 }, udp6(src, dst, srcPort, dstPort, data)));
}

export interface Tcp6Fields {
  src?: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  options?: Buffer;
  data?: Buffer;
}

export function tcp6Frame(f: Tcp6Fields): Buffer {
  const src = f.src ?? GUEST6;
  const options = f.options ?? Buffer.alloc(0);
  const data = f.data ?? Buffer.alloc(0);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(f.srcPort, 0);
  h.writeUInt16BE(f.dstPort, 2);
  h.writeUInt32BE(f.seq >>> 0, 4);
  h.writeUInt32BE((f.ack ?? 0) >>> 0, 8);
  h[12] = ((20 + options.length) / 4) << 4;
  h[13] = f.flags;
  h.writeUInt16BE(f.window ?? 64800, 14);
  const seg = Buffer.concat([h, options, data]);
  seg.writeUInt16BE(checksum6(src, f.dst, 6, seg), 16);
  return ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, ipv6({ src, dst: f.dst, nextHeader: 6 }, seg));
}

export interface Parsed6 {
  dstMac: Buffer;
  srcMac: Buffer;
  src: string;
  dst: string;
  nextHeader: number;
  hopLimit: number;
  /** The upper-layer bytes (no extension headers expected). */
  body: Buffer;
}

/** Parses a frame the stack sent (no virtio-net header) as IPv6, checking the upper-layer checksum of ICMPv6, UDP and TCP. */
export function parse6(frame: Buffer): Parsed6 {
  if (frame.readUInt16BE(12) !== 0x86dd) throw new Error(`not IPv6: ethertype ${frame.readUInt16BE(12).toString(16)}`);
  const ip = frame.subarray(14);
  if (ip[0] >> 4 !== 6) throw new Error('version is not 6');
  const len = ip.readUInt16BE(4);
  const body = Buffer.from(ip.subarray(40, 40 + len));
  const src = ip6Text(ip, 8);
  const dst = ip6Text(ip, 24);
  const nextHeader = ip[6];
  if (nextHeader === 58 || nextHeader === 17 || nextHeader === 6) {
    if (checksum6(src, dst, nextHeader, body) !== 0) throw new Error(`bad checksum (next header ${nextHeader})`);
  }
  return { dstMac: Buffer.from(frame.subarray(0, 6)), srcMac: Buffer.from(frame.subarray(6, 12)), src, dst, nextHeader, hopLimit: ip[7], body };
}

/** NDP options of an RA/NA/NS body starting at `at`, as [type, bytes including type and length]. */
export function ndpOptions(body: Buffer, at: number): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  while (at + 2 <= body.length) {
    const len = body[at + 1] * 8;
    if (len === 0) throw new Error('option of length 0');
    out.push([body[at], body.subarray(at, at + len)]);
    at += len;
  }
  return out;
}

export interface Fragments6Options {
  /** Data bytes per fragment (a multiple of 8 except in the last). */
  chunk: number;
  ident: number;
  /**
   * An extension header kept in every fragment before the Fragment header
   * (a Destination Options header, say): its first byte is set to 44 and the
   * fixed header's Next Header to `unfragmentableType`.
   */
  unfragmentable?: Buffer;
  unfragmentableType?: number;
}

/**
 * The fragments (IPv6 datagrams, no Ethernet) of an upper-layer message
 * `nextHeader`/`payload` from `src` to `dst`, built as RFC 8200 §4.5 says:
 * the unfragmentable part repeated, a Fragment header, the data in order.
 */
export function fragments6(src: string, dst: string, nextHeader: number, payload: Buffer, o: Fragments6Options): Buffer[] {
  const unfrag = o.unfragmentable === undefined ? Buffer.alloc(0) : Buffer.from(o.unfragmentable);
  if (unfrag.length > 0) unfrag[0] = 44;
  const out: Buffer[] = [];
  for (let at = 0; at < payload.length; at += o.chunk) {
    const data = payload.subarray(at, at + o.chunk);
    const more = at + o.chunk < payload.length;
    const frag = Buffer.alloc(8);
    frag[0] = nextHeader;
    frag.writeUInt16BE(at | (more ? 1 : 0), 2);
    frag.writeUInt32BE(o.ident >>> 0, 4);
    out.push(ipv6({ src, dst, nextHeader: unfrag.length > 0 ? (o.unfragmentableType ?? 60) : 44 }, Buffer.concat([unfrag, frag, data])));
  }
  return out;
}

/** `fragments6` as guest frames. */
export function fragment6Frames(src: string, dst: string, nextHeader: number, payload: Buffer, o: Fragments6Options): Buffer[] {
  return fragments6(src, dst, nextHeader, payload, o).map((d) => ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, d));
}
