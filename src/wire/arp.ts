/**
 * ARP for IPv4 over Ethernet (RFC 826). Only that pairing exists on a TAP, so
 * `check()` rejects every other hardware/protocol combination and the Repr
 * carries just the five fields that vary.
 *
 *   0       2       4   5   6       8
 *   +-------+-------+---+---+-------+
 *   | htype | ptype |hln|pln|  op   |
 *   +-------+-------+---+---+-------+----------------+
 *   | sender MAC (6)        | sender IPv4 (4)        |
 *   | target MAC (6)        | target IPv4 (4)        |   28 bytes
 *   +-----------------------+------------------------+
 *
 * Any bytes after the 28 (Ethernet padding up to 60) are ignored.
 */
import { Wire, type WireCode } from './errors.js';
import { readMac, writeMac, EtherType } from './ethernet.js';
import { readIpv4, writeIpv4 } from './ipv4-address.js';

export const ARP_LEN = 28;
export const ARP_HTYPE_ETHERNET = 1;

export const ArpOp = {
  REQUEST: 1,
  REPLY: 2,
} as const;

export interface ArpRepr {
  /** A number, not only `ArpOp`: an unknown operation is a value; the dispatcher drops it. */
  op: number;
  senderMac: number;
  senderIp: number;
  targetMac: number;
  targetIp: number;
}

export function newArpRepr(): ArpRepr {
  return { op: 0, senderMac: 0, senderIp: 0, targetMac: 0, targetIp: 0 };
}

export class ArpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at an ARP packet (the Ethernet payload); no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** OK iff every accessor stays in bounds and the packet is Ethernet/IPv4 ARP. */
  check(): WireCode {
    if (this.len < ARP_LEN) return Wire.TRUNCATED;
    if (
      this.htype !== ARP_HTYPE_ETHERNET ||
      this.ptype !== EtherType.IPV4 ||
      this.hlen !== 6 ||
      this.plen !== 4
    ) {
      return Wire.BAD_FIELD;
    }
    return Wire.OK;
  }

  get htype(): number {
    return (this.buf[this.off] << 8) | this.buf[this.off + 1];
  }
  set htype(v: number) {
    this.buf[this.off] = v >>> 8;
    this.buf[this.off + 1] = v & 0xff;
  }
  get ptype(): number {
    return (this.buf[this.off + 2] << 8) | this.buf[this.off + 3];
  }
  set ptype(v: number) {
    this.buf[this.off + 2] = v >>> 8;
    this.buf[this.off + 3] = v & 0xff;
  }
  get hlen(): number {
    return this.buf[this.off + 4];
  }
  set hlen(v: number) {
    this.buf[this.off + 4] = v;
  }
  get plen(): number {
    return this.buf[this.off + 5];
  }
  set plen(v: number) {
    this.buf[this.off + 5] = v;
  }
  get op(): number {
    return (this.buf[this.off + 6] << 8) | this.buf[this.off + 7];
  }
  set op(v: number) {
    this.buf[this.off + 6] = v >>> 8;
    this.buf[this.off + 7] = v & 0xff;
  }
  get senderMac(): number {
    return readMac(this.buf, this.off + 8);
  }
  set senderMac(mac: number) {
    writeMac(this.buf, this.off + 8, mac);
  }
  get senderIp(): number {
    return readIpv4(this.buf, this.off + 14);
  }
  set senderIp(addr: number) {
    writeIpv4(this.buf, this.off + 14, addr);
  }
  get targetMac(): number {
    return readMac(this.buf, this.off + 18);
  }
  set targetMac(mac: number) {
    writeMac(this.buf, this.off + 18, mac);
  }
  get targetIp(): number {
    return readIpv4(this.buf, this.off + 24);
  }
  set targetIp(addr: number) {
    writeIpv4(this.buf, this.off + 24, addr);
  }
}

export function parseArp(view: ArpView, repr: ArpRepr): WireCode {
  const code = view.check();
  if (code !== Wire.OK) return code;
  repr.op = view.op;
  repr.senderMac = view.senderMac;
  repr.senderIp = view.senderIp;
  repr.targetMac = view.targetMac;
  repr.targetIp = view.targetIp;
  return Wire.OK;
}

/** Writes the 28-byte Ethernet/IPv4 ARP packet at `off`; returns the bytes written. */
export function emitArp(repr: ArpRepr, buf: Uint8Array, off: number): number {
  buf[off] = 0;
  buf[off + 1] = ARP_HTYPE_ETHERNET;
  buf[off + 2] = EtherType.IPV4 >>> 8;
  buf[off + 3] = EtherType.IPV4 & 0xff;
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  buf[off + 6] = repr.op >>> 8;
  buf[off + 7] = repr.op & 0xff;
  writeMac(buf, off + 8, repr.senderMac);
  writeIpv4(buf, off + 14, repr.senderIp);
  writeMac(buf, off + 18, repr.targetMac);
  writeIpv4(buf, off + 24, repr.targetIp);
  return ARP_LEN;
}

const EMPTY = new Uint8Array(0);
