/**
 * IPv6 datagrams towards the guest, shaped like Ipv4Output so that callers
 * serving both families (UDP, ICMP errors) pick one by the destination's
 * family and write the same fields: reserve room for the upper-layer
 * payload, write it, set `repr`, `finish`.
 *
 * A datagram larger than the link MTU is fragmented (RFC 8200 §4.5): we are
 * its source as far as the guest can tell (the NAT terminates the host's
 * datagram), and a source may fragment. Fragments carry payloads in
 * multiples of 8 bytes, a Fragment header each, and one identification per
 * datagram. TCP never gets here oversize (its MSS follows the MTU); relayed
 * UDP and DNS answers can.
 */
import type { FrameOutput } from '../ethernet/frame-output.js';
import { Drop, type DropCounters } from '../stats.js';
import { EtherType } from '../wire/ethernet.js';
import { emitIpv6Fragment, IPV6_DST_OFFSET, IPV6_FRAGMENT_HEADER_LEN, IPV6_HEADER_LEN, IPV6_SRC_OFFSET, Ipv6Ext } from '../wire/ipv6.js';
import type { Ipv6Ids } from './ipv6-ids.js';

/** The largest upper-layer payload of one IPv6 datagram (the 16-bit Payload Length, no jumbograms). */
export const IPV6_MAX_PAYLOAD = 65535;

/** The header fields a caller sets, named as in Ipv4Repr so callers serve both families alike. */
export interface Ipv6OutRepr {
  /** Ids (Ipv6Ids). */
  src: number;
  dst: number;
  /** Next Header of the upper layer. */
  protocol: number;
  /** Hop limit. */
  ttl: number;
  /** Traffic class. */
  tos: number;
  /** Ignored: IPv6 has no DF bit (kept for the shared shape). */
  dontFragment: boolean;
}

export class Ipv6Output {
  buf: Uint8Array;
  readonly repr: Ipv6OutRepr = { src: 0, dst: 0, protocol: 0, ttl: 64, tos: 0, dontFragment: false };
  private readonly scratch = new Uint8Array(IPV6_HEADER_LEN + IPV6_MAX_PAYLOAD);
  private inScratch = false;
  private ipOff = 0;
  private nextIdent = 1;

  constructor(
    private readonly frames: FrameOutput,
    private readonly ids: Ipv6Ids,
    private readonly routerMac: number,
    private readonly mtu: number,
    private readonly drops: DropCounters,
  ) {
    this.buf = frames.buf;
  }

  /** Reserves room for `maxPayloadLen` upper-layer bytes; returns their offset in `this.buf`. */
  begin(maxPayloadLen: number): number {
    if (IPV6_HEADER_LEN + maxPayloadLen <= this.mtu) {
      this.inScratch = false;
      this.buf = this.frames.buf;
      this.ipOff = this.frames.begin(IPV6_HEADER_LEN + maxPayloadLen);
      return this.ipOff + IPV6_HEADER_LEN;
    }
    this.inScratch = true;
    this.buf = this.scratch;
    return IPV6_HEADER_LEN;
  }

  /**
   * finish() with the header fields given rather than set in `repr`: from
   * `src` to `dst` (ids), upper-layer `protocol`, `hopLimit`, traffic class 0.
   */
  send(src: number, dst: number, protocol: number, hopLimit: number, dstMac: number, payloadLen: number): void {
    const r = this.repr;
    r.src = src;
    r.dst = dst;
    r.protocol = protocol;
    r.ttl = hopLimit;
    r.tos = 0;
    this.finish(dstMac, payloadLen);
  }

  /** Sends the payload written after begin() with the fields in `this.repr`. */
  finish(dstMac: number, payloadLen: number): void {
    if (!this.inScratch) {
      this.header(this.frames.buf, this.ipOff, this.repr.protocol, payloadLen);
      this.frames.finish(dstMac, this.routerMac, EtherType.IPV6, IPV6_HEADER_LEN + payloadLen);
      return;
    }
    if (payloadLen > IPV6_MAX_PAYLOAD) {
      this.drops.add(Drop.TX_OVERSIZE);
      return;
    }
    this.fragment(dstMac, payloadLen);
  }

  private header(buf: Uint8Array, off: number, nextHeader: number, payloadLen: number): void {
    const r = this.repr;
    writeIpv6Header(this.ids, buf, off, r.src, r.dst, nextHeader, r.ttl, r.tos, payloadLen);
  }

  private fragment(dstMac: number, payloadLen: number): void {
    const ident = this.nextIdent;
    this.nextIdent = (this.nextIdent + 1) >>> 0 || 1;
    const chunk = ((this.mtu - IPV6_HEADER_LEN - IPV6_FRAGMENT_HEADER_LEN) >>> 3) << 3;
    const l4 = this.repr.protocol;
    for (let done = 0; done < payloadLen; done += chunk) {
      const n = Math.min(chunk, payloadLen - done);
      const at = this.frames.begin(IPV6_HEADER_LEN + IPV6_FRAGMENT_HEADER_LEN + n);
      const b = this.frames.buf;
      this.header(b, at, Ipv6Ext.FRAGMENT, IPV6_FRAGMENT_HEADER_LEN + n);
      emitIpv6Fragment(l4, done, done + n < payloadLen, ident, b, at + IPV6_HEADER_LEN);
      b.set(this.scratch.subarray(IPV6_HEADER_LEN + done, IPV6_HEADER_LEN + done + n), at + IPV6_HEADER_LEN + IPV6_FRAGMENT_HEADER_LEN);
      this.frames.finish(dstMac, this.routerMac, EtherType.IPV6, IPV6_HEADER_LEN + IPV6_FRAGMENT_HEADER_LEN + n);
    }
  }
}

/**
 * The fixed header (RFC 8200 §3) at `off`, addresses given as ids; no flow
 * label (we originate no flows that need one). Shared with the TCP output,
 * which builds its headers in place.
 */
export function writeIpv6Header(ids: Ipv6Ids, buf: Uint8Array, off: number, src: number, dst: number, nextHeader: number, hopLimit: number, trafficClass: number, payloadLen: number): void {
  buf[off] = 0x60 | (trafficClass >>> 4);
  buf[off + 1] = (trafficClass & 0xf) << 4;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = payloadLen >>> 8;
  buf[off + 5] = payloadLen & 0xff;
  buf[off + 6] = nextHeader;
  buf[off + 7] = hopLimit;
  ids.write(src, buf, off + IPV6_SRC_OFFSET);
  ids.write(dst, buf, off + IPV6_DST_OFFSET);
}
