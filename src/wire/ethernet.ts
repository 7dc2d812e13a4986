/**
 * Ethernet II frames (IEEE 802.3 with an EtherType; no 802.1Q tags, no LLC).
 *
 * MAC addresses are plain numbers: the 48 bits as an integer, exact in a
 * double. That keeps them comparable with `===`, usable as Map keys and free
 * of allocation.
 *
 * The view reads and writes the header in place; the frame's payload starts
 * at `payloadOffset`. A trailing FCS is never present on a TAP.
 */
import { Wire, type WireCode } from './errors.js';

export const ETHERNET_HEADER_LEN = 14;
export const MAC_BROADCAST = 0xffff_ffff_ffff;

export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  IPV6: 0x86dd,
} as const;

export interface EthernetRepr {
  dst: number;
  src: number;
  etherType: number;
}

export class EthernetView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at a frame; no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  check(): WireCode {
    return this.len < ETHERNET_HEADER_LEN ? Wire.TRUNCATED : Wire.OK;
  }

  get dst(): number {
    return readMac(this.buf, this.off);
  }
  set dst(mac: number) {
    writeMac(this.buf, this.off, mac);
  }
  get src(): number {
    return readMac(this.buf, this.off + 6);
  }
  set src(mac: number) {
    writeMac(this.buf, this.off + 6, mac);
  }
  get etherType(): number {
    return (this.buf[this.off + 12] << 8) | this.buf[this.off + 13];
  }
  set etherType(v: number) {
    this.buf[this.off + 12] = v >>> 8;
    this.buf[this.off + 13] = v & 0xff;
  }
  get payloadOffset(): number {
    return this.off + ETHERNET_HEADER_LEN;
  }
  get payloadLength(): number {
    return this.len - ETHERNET_HEADER_LEN;
  }
}

export function parseEthernet(view: EthernetView, repr: EthernetRepr): WireCode {
  const code = view.check();
  if (code !== Wire.OK) return code;
  repr.dst = view.dst;
  repr.src = view.src;
  repr.etherType = view.etherType;
  return Wire.OK;
}

/** Writes the 14-byte header at `off`; returns the bytes written. */
export function emitEthernet(repr: EthernetRepr, buf: Uint8Array, off: number): number {
  writeMac(buf, off, repr.dst);
  writeMac(buf, off + 6, repr.src);
  buf[off + 12] = repr.etherType >>> 8;
  buf[off + 13] = repr.etherType & 0xff;
  return ETHERNET_HEADER_LEN;
}

export function readMac(buf: Uint8Array, off: number): number {
  return (
    ((buf[off] << 8) | buf[off + 1]) * 0x1_0000_0000 +
    (((buf[off + 2] << 24) | (buf[off + 3] << 16) | (buf[off + 4] << 8) | buf[off + 5]) >>> 0)
  );
}

export function writeMac(buf: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / 0x1_0000_0000);
  const lo = mac >>> 0;
  buf[off] = hi >>> 8;
  buf[off + 1] = hi & 0xff;
  buf[off + 2] = lo >>> 24;
  buf[off + 3] = (lo >>> 16) & 0xff;
  buf[off + 4] = (lo >>> 8) & 0xff;
  buf[off + 5] = lo & 0xff;
}

/** Multicast and broadcast addresses have the I/G bit (lowest bit of the first octet) set. */
export function isMulticastMac(mac: number): boolean {
  return (Math.floor(mac / 0x100_0000_0000) & 1) === 1;
}

export function macToString(mac: number): string {
  const b = new Uint8Array(6);
  writeMac(b, 0, mac);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export function macFromBytes(bytes: Uint8Array): number {
  return readMac(bytes, 0);
}

export function macToBytes(mac: number): Uint8Array {
  const b = new Uint8Array(6);
  writeMac(b, 0, mac);
  return b;
}

const EMPTY = new Uint8Array(0);
