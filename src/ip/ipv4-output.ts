/**
 * IPv4 datagrams towards the guest. The caller reserves room for an L4
 * payload, writes it, and `finish` adds the IPv4 header. A datagram larger
 * than the link MTU is built in a scratch buffer and sent as fragments
 * (RFC 791 §3.2, fragment payloads in multiples of 8 bytes); everything else
 * is built directly in the output arena.
 */
import type { FrameOutput } from '../ethernet/frame-output.js';
import type { DropCounters } from '../stats.js';
import { Drop } from '../stats.js';
import { EtherType } from '../wire/ethernet.js';
import { emitIpv4, IPV4_HEADER_LEN, newIpv4Repr, type Ipv4Repr } from '../wire/ipv4.js';
import type { AddressPlan } from './address-plan.js';

const MAX_DATAGRAM = 65535;

export class Ipv4Output {
  /** Where the caller writes the L4 payload: `buf` at the offset begin() returned. */
  buf: Uint8Array;
  private readonly scratch = new Uint8Array(MAX_DATAGRAM);
  private inScratch = false;
  /** Offset of the IP header in the arena for a datagram that fits one frame. */
  private ipOff = 0;
  private nextIdent = 1;
  readonly repr: Ipv4Repr = newIpv4Repr();

  constructor(
    private readonly frames: FrameOutput,
    private readonly plan: AddressPlan,
    private readonly mtu: number,
    private readonly drops: DropCounters,
  ) {
    this.buf = frames.buf;
    this.repr.ttl = 64;
  }

  /** Reserves room for `maxPayloadLen` L4 bytes; returns their offset in `this.buf`. */
  begin(maxPayloadLen: number): number {
    if (IPV4_HEADER_LEN + maxPayloadLen <= this.mtu) {
      this.inScratch = false;
      this.buf = this.frames.buf;
      this.ipOff = this.frames.begin(IPV4_HEADER_LEN + maxPayloadLen);
      return this.ipOff + IPV4_HEADER_LEN;
    }
    this.inScratch = true;
    this.buf = this.scratch;
    return IPV4_HEADER_LEN;
  }

  /**
   * Sends the payload written after begin() with the header fields set in
   * `this.repr` (src, dst, protocol, ttl, tos; ident is assigned here).
   */
  finish(dstMac: number, payloadLen: number): void {
    const r = this.repr;
    r.payloadLength = payloadLen;
    r.ident = this.nextIdent;
    this.nextIdent = (this.nextIdent + 1) & 0xffff;
    r.moreFragments = false;
    r.fragOffset = 0;
    const srcMac = r.src === this.plan.dns ? this.plan.dnsMac : this.plan.gatewayMac;
    if (!this.inScratch) {
      emitIpv4(r, this.frames.buf, this.ipOff);
      this.frames.finish(dstMac, srcMac, EtherType.IPV4, IPV4_HEADER_LEN + payloadLen);
      return;
    }
    if (IPV4_HEADER_LEN + payloadLen > MAX_DATAGRAM) {
      this.drops.add(Drop.TX_OVERSIZE);
      return;
    }
    this.fragment(dstMac, srcMac, payloadLen);
  }

  private fragment(dstMac: number, srcMac: number, payloadLen: number): void {
    const r = this.repr;
    r.dontFragment = false;
    const chunk = ((this.mtu - IPV4_HEADER_LEN) >>> 3) << 3;
    for (let done = 0; done < payloadLen; done += chunk) {
      const n = Math.min(chunk, payloadLen - done);
      r.fragOffset = done;
      r.moreFragments = done + n < payloadLen;
      r.payloadLength = n;
      const at = this.frames.begin(IPV4_HEADER_LEN + n);
      emitIpv4(r, this.frames.buf, at);
      this.frames.buf.set(this.scratch.subarray(IPV4_HEADER_LEN + done, IPV4_HEADER_LEN + done + n), at + IPV4_HEADER_LEN);
      this.frames.finish(dstMac, srcMac, EtherType.IPV4, IPV4_HEADER_LEN + n);
    }
  }
}
