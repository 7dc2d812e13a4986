/**
 * Hand-built guest frames for tests. Deliberately independent of src/wire so
 * that the stack is checked against a second implementation of the formats.
 */
export const GUEST_MAC = Buffer.from([0x02, 0x00, 0x00, 0x00, 0x00, 0x64]);
export const BROADCAST_MAC = Buffer.alloc(6, 0xff);
export const GATEWAY_MAC = Buffer.from([0x52, 0x55, 10, 0, 2, 2]);

export function ip(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

export function ipText(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function macText(b: Uint8Array, off: number): string {
  return Array.from(b.subarray(off, off + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
}

export function inetChecksum(...parts: Uint8Array[]): number {
  let sum = 0;
  const all = Buffer.concat(parts);
  for (let i = 0; i < all.length; i += 2) sum += (all[i] << 8) | (i + 1 < all.length ? all[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ethernet(dst: Buffer, src: Buffer, etherType: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  dst.copy(h, 0);
  src.copy(h, 6);
  h.writeUInt16BE(etherType, 12);
  return Buffer.concat([h, payload]);
}

export function arpRequest(senderIp: string, targetIp: string, senderMac = GUEST_MAC): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6);
  senderMac.copy(a, 8);
  ip(senderIp).copy(a, 14);
  ip(targetIp).copy(a, 24);
  return ethernet(BROADCAST_MAC, senderMac, 0x0806, a);
}

export interface Ipv4Fields {
  src: string;
  dst: string;
  protocol: number;
  ttl?: number;
  ident?: number;
  flagsFrag?: number;
  totalLength?: number;
  badChecksum?: boolean;
}

export function ipv4(f: Ipv4Fields, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(f.totalLength ?? 20 + payload.length, 2);
  h.writeUInt16BE(f.ident ?? 0x1234, 4);
  h.writeUInt16BE(f.flagsFrag ?? 0x4000, 6);
  h[8] = f.ttl ?? 64;
  h[9] = f.protocol;
  ip(f.src).copy(h, 12);
  ip(f.dst).copy(h, 16);
  h.writeUInt16BE(inetChecksum(h) ^ (f.badChecksum ? 0x5555 : 0), 10);
  return Buffer.concat([h, payload]);
}

export function icmpEcho(ident: number, seq: number, data: Buffer, type = 8): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt16BE(ident, 4);
  h.writeUInt16BE(seq, 6);
  h.writeUInt16BE(inetChecksum(h, data), 2);
  return Buffer.concat([h, data]);
}

export function udp(src: string, dst: string, srcPort: number, dstPort: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(srcPort, 0);
  h.writeUInt16BE(dstPort, 2);
  h.writeUInt16BE(8 + data.length, 4);
  const pseudo = Buffer.concat([ip(src), ip(dst), Buffer.from([0, 17]), Buffer.from([(8 + data.length) >> 8, (8 + data.length) & 0xff])]);
  const c = inetChecksum(pseudo, h, data);
  h.writeUInt16BE(c === 0 ? 0xffff : c, 6);
  return Buffer.concat([h, data]);
}

export function pingFrame(dst: string, ident: number, seq: number, data: Buffer, src = '10.0.2.100'): Buffer {
  return ethernet(GATEWAY_MAC, GUEST_MAC, 0x0800, ipv4({ src, dst, protocol: 1 }, icmpEcho(ident, seq, data)));
}

/** A DHCP client message (BOOTREQUEST) as busybox udhcpc builds it. */
export function dhcpMessage(type: number, xid: number, mac = GUEST_MAC, extra: Array<[number, Buffer]> = []): Buffer {
  const m = Buffer.alloc(240);
  m[0] = 1;
  m[1] = 1;
  m[2] = 6;
  m.writeUInt32BE(xid, 4);
  mac.copy(m, 28);
  m.writeUInt32BE(0x63825363, 236);
  const opts: Buffer[] = [Buffer.from([53, 1, type])];
  for (const [code, value] of extra) opts.push(Buffer.concat([Buffer.from([code, value.length]), value]));
  opts.push(Buffer.from([55, 4, 1, 3, 6, 26]), Buffer.from([255]));
  return Buffer.concat([m, ...opts]);
}

export function dhcpFrame(message: Buffer, mac = GUEST_MAC): Buffer {
  return ethernet(BROADCAST_MAC, mac, 0x0800, ipv4({ src: '0.0.0.0', dst: '255.255.255.255', protocol: 17, flagsFrag: 0 }, udp('0.0.0.0', '255.255.255.255', 68, 67, message)));
}

/** Options of a DHCP reply (the UDP payload), by code. */
export function dhcpOptions(msg: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  let i = 240;
  while (i < msg.length && msg[i] !== 255) {
    if (msg[i] === 0) {
      i++;
      continue;
    }
    out.set(msg[i], msg.subarray(i + 2, i + 2 + msg[i + 1]));
    i += 2 + msg[i + 1];
  }
  return out;
}

export interface TcpFields {
  src?: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack?: number;
  /** FIN 1, SYN 2, RST 4, PSH 8, ACK 16 */
  flags: number;
  window?: number;
  /** Raw option bytes (multiple of 4). */
  options?: Buffer;
  data?: Buffer;
}

/** A guest TCP segment in an Ethernet frame, checksums complete. */
export function tcpFrame(f: TcpFields): Buffer {
  const src = f.src ?? '10.0.2.100';
  const options = f.options ?? Buffer.alloc(0);
  const data = f.data ?? Buffer.alloc(0);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(f.srcPort, 0);
  h.writeUInt16BE(f.dstPort, 2);
  h.writeUInt32BE(f.seq >>> 0, 4);
  h.writeUInt32BE((f.ack ?? 0) >>> 0, 8);
  h[12] = ((20 + options.length) / 4) << 4;
  h[13] = f.flags;
  h.writeUInt16BE(f.window ?? 64240, 14);
  const seg = Buffer.concat([h, options, data]);
  const pseudo = Buffer.concat([ip(src), ip(f.dst), Buffer.from([0, 6, seg.length >> 8, seg.length & 0xff])]);
  seg.writeUInt16BE(inetChecksum(pseudo, seg), 16);
  return ethernet(GATEWAY_MAC, GUEST_MAC, 0x0800, ipv4({ src, dst: f.dst, protocol: 6 }, seg));
}

/** MSS 1460, SACK-permitted, timestamps, window scale 7: what Linux puts in a SYN. */
export function linuxSynOptions(tsVal = 1000): Buffer {
  const o = Buffer.alloc(20);
  o.set([2, 4, 0x05, 0xb4, 4, 2, 8, 10], 0);
  o.writeUInt32BE(tsVal, 8);
  o.writeUInt32BE(0, 12);
  o.set([1, 3, 3, 7], 16);
  return o;
}

export interface ParsedTcp {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  data: Buffer;
}

/** Parses a frame the stack sent (no virtio-net header) as IPv4/TCP; checks both checksums. */
export function parseTcpFrame(frame: Buffer): ParsedTcp {
  const ipOff = 14;
  const ihl = (frame[ipOff] & 0xf) * 4;
  const total = frame.readUInt16BE(ipOff + 2);
  if (frame[ipOff + 9] !== 6) throw new Error(`not TCP: protocol ${frame[ipOff + 9]}`);
  if (inetChecksum(frame.subarray(ipOff, ipOff + ihl)) !== 0) throw new Error('bad IPv4 header checksum');
  const seg = frame.subarray(ipOff + ihl, ipOff + total);
  const pseudo = Buffer.concat([frame.subarray(ipOff + 12, ipOff + 20), Buffer.from([0, 6, seg.length >> 8, seg.length & 0xff])]);
  if (inetChecksum(pseudo, seg) !== 0) throw new Error('bad TCP checksum');
  const doff = (seg[12] >> 4) * 4;
  return {
    src: ipText(frame, ipOff + 12),
    dst: ipText(frame, ipOff + 16),
    srcPort: seg.readUInt16BE(0),
    dstPort: seg.readUInt16BE(2),
    seq: seg.readUInt32BE(4),
    ack: seg.readUInt32BE(8),
    flags: seg[13],
    window: seg.readUInt16BE(14),
    data: Buffer.from(seg.subarray(doff)),
  };
}
