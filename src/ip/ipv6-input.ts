/**
 * IPv6 from the guest (RFC 8200): validated once here, reassembled when
 * fragmented, then dispatched by upper-layer protocol with its addresses as
 * ids (src/ip/ipv6-ids.ts).
 *
 * Validation: version 6, the payload length within what arrived (Ethernet
 * padding after it is ignored), the extension headers walked within the
 * payload (Hop-by-Hop and Destination Options skipped, a Routing header with
 * segments left refused, wire/ipv6.ts walkIpv6). A multicast source is a
 * martian (RFC 4291 §2.7); the unspecified source is allowed only for ICMPv6,
 * where NDP's DAD probes and MLD reports use it (RFC 4862 §5.4.2, RFC 3810
 * §5.2.13) and the ICMPv6 side decides what else it accepts from it.
 *
 * Fragments (RFC 8200 §4.5) go to the reassembler shared with IPv4
 * (ip/reassembly.ts: its limits, timeouts and overlap rules), keyed by
 * source, destination and identification. The datagram it returns is walked
 * again from the start and dispatched as if it had arrived whole, its
 * upper-layer checksum verified. Before the reassembler:
 *  - an atomic fragment (offset 0, M=0) is processed at once as an
 *    unfragmented datagram and never meets fragments being reassembled
 *    under the same identification (RFC 6946 §4);
 *  - a first fragment must hold the whole header chain through the
 *    upper-layer header (RFC 7112 §5, RFC 8200 §4.5): the extension headers,
 *    then 8 bytes of ICMPv6 or UDP, 20 of TCP (the minimum Linux asks,
 *    ipv6_frag_thdr_truncated); otherwise frag_incomplete_chain;
 *  - fragments from the unspecified address are dropped: what may come from
 *    it (DAD, MLD reports) is small and never fragmented.
 * NDP in a datagram that had a Fragment header, atomic included, is ignored
 * as ndp_invalid (RFC 6980 §5).
 *
 * ICMPv6 errors about fragments, through IcmpErrors (so rate-limited), as
 * RFC 8200 §4.5 asks: Parameter Problem code 0 pointing at the Payload Length
 * of a non-final fragment whose length is not a multiple of 8, or at the
 * Fragment Offset of one reaching past 65535 bytes; code 3, pointer 0, for an
 * incomplete header chain; Time Exceeded code 1 when a datagram whose first
 * fragment arrived times out (quoting it). None about a packet to a
 * multicast address, from the unspecified one, or carrying an ICMPv6 error
 * (RFC 4443 §2.4(e)), and none for overlaps (RFC 8200 §4.5).
 *
 * `checksumPartial` is the virtio-net NEEDS_CSUM flag, as for IPv4: the L4
 * checksum holds only the pseudo-header sum and is not verified.
 */
import { Drop, type DropCounters, type DropReason } from '../stats.js';
import { Wire } from '../wire/errors.js';
import { ICMPV6_HEADER_LEN, Icmpv6ParamProblem, Icmpv6TimeExceeded, Icmpv6Type, isIcmpv6Error } from '../wire/icmpv6.js';
import { IpProtocol } from '../wire/ipv4.js';
import { IPV6_DST_OFFSET, IPV6_FRAGMENT_HEADER_LEN, IPV6_HEADER_LEN, IPV6_SRC_OFFSET, Ipv6Ext, Ipv6View, newIpv6Walk, walkIpv6, type Ipv6Walk } from '../wire/ipv6.js';
import { isMulticast6, isUnspecified6 } from '../wire/ipv6-address.js';
import { TCP_HEADER_LEN } from '../wire/tcp.js';
import { UDP_HEADER_LEN } from '../wire/udp.js';
import type { Ipv6Ids } from './ipv6-ids.js';
import type { TcpSegmentInput, UdpDatagramInput } from './ipv4-input.js';
import { FragResult, newFragmentRepr, type Reassembler, type ReassemblyClient } from './reassembly.js';

/** ICMPv6 from the guest (src/ip/icmpv6-input.ts). */
export interface Icmpv6Handler {
  /** `hopLimit` of the datagram: NDP accepts only 255 (RFC 4861 §6.1, §7.1). */
  input(buf: Uint8Array, ipOff: number, l4Off: number, l4Len: number, src: number, dst: number, srcMac: number, hopLimit: number, checksumPartial: boolean, nowMs: number): void;
}

/** Where ICMPv6 errors about fragments go (src/ip/icmp-errors.ts). */
export interface Icmpv6ErrorSink {
  error6(type: number, code: number, param: number, quoted: Uint8Array, quotedOff: number, quotedLen: number, guestIp: number, guestMac: number): void;
}

export interface Ipv6InputStats {
  datagrams: number;
}

/** Drop reason for each code Ipv6View.check() and walkIpv6 return. */
const CHECK_DROP: Record<number, DropReason> = {
  [Wire.TRUNCATED]: Drop.IPV6_TRUNCATED,
  [Wire.BAD_VERSION]: Drop.IPV6_TRUNCATED,
  [Wire.BAD_TOTAL_LEN]: Drop.IPV6_BAD_LENGTH,
  [Wire.BAD_FIELD]: Drop.IPV6_BAD_EXTENSION,
  [Wire.UNSUPPORTED]: Drop.IPV6_BAD_EXTENSION,
};

/** The Payload Length field, where Parameter Problem points for a fragment of a bad length. */
const PAYLOAD_LENGTH_POINTER = 4;

export class Ipv6Input implements ReassemblyClient {
  readonly stats: Ipv6InputStats = { datagrams: 0 };
  private readonly view = new Ipv6View();
  private readonly walk = newIpv6Walk();
  private readonly fragment = newFragmentRepr();
  /** Of the fragment being input, for the datagram it completes. */
  private srcMac = 0;
  private nowMs = 0;

  constructor(
    private readonly ids: Ipv6Ids,
    private readonly drops: DropCounters,
    private readonly icmp: Icmpv6Handler,
    private readonly udp: UdpDatagramInput,
    private readonly tcp: TcpSegmentInput,
    private readonly reassembler: Reassembler,
    private readonly errors: Icmpv6ErrorSink | null,
  ) {}

  /** `udpGsoSize`: non-zero for a UDP GSO super-frame (virtio-net UDP_L4), the size of each datagram. */
  input(buf: Uint8Array, off: number, len: number, srcMac: number, checksumPartial: boolean, udpGsoSize: number, nowMs: number): void {
    const ip = this.view.wrap(buf, off, len);
    const code = ip.check();
    if (code !== Wire.OK) {
      this.drops.add(CHECK_DROP[code] ?? Drop.IPV6_TRUNCATED);
      return;
    }
    if (isMulticast6(buf, ip.srcOff)) {
      this.drops.add(Drop.IPV6_BAD_SOURCE);
      return;
    }
    const end = off + IPV6_HEADER_LEN + ip.payloadLength;
    const w = this.walk;
    const walked = walkIpv6(buf, off, end, w);
    const first = w.fragment && w.fragOffset === 0 && w.moreFragments;
    const atomic = w.fragment && w.fragOffset === 0 && !w.moreFragments;
    if (walked !== Wire.OK) {
      // A first fragment whose extension headers run past its end: RFC 7112 §5.
      if (walked === Wire.TRUNCATED && first) this.incompleteChain(buf, off, end, srcMac, false);
      else this.drops.add(CHECK_DROP[walked] ?? Drop.IPV6_BAD_EXTENSION);
      return;
    }
    if (!w.fragment || atomic) {
      this.dispatch(buf, off, end, srcMac, checksumPartial, udpGsoSize, nowMs, w.fragment);
      return;
    }
    if (isUnspecified6(buf, ip.srcOff)) {
      this.drops.add(Drop.IPV6_BAD_SOURCE);
      return;
    }
    if (first && w.l4Off + upperLayerMinLen(w.proto) > end) {
      this.incompleteChain(buf, off, end, srcMac, carriesIcmpv6Error(buf, end, w));
      return;
    }
    const src = this.ids.id(buf, ip.srcOff);
    const f = this.fragment;
    f.src = src;
    f.dst = this.ids.id(buf, ip.dstOff);
    f.ident = w.fragIdent;
    f.headerLen = w.fragHeaderOff - off;
    f.dataOff = f.headerLen + IPV6_FRAGMENT_HEADER_LEN;
    f.dataLen = end - off - f.dataOff;
    f.fragOffset = w.fragOffset;
    f.moreFragments = w.moreFragments;
    f.nextHeaderFieldOff = w.fragNextHeaderFieldOff - off;
    f.srcMac = srcMac;
    // The walk is reused if this fragment completes its datagram: take what the errors need now.
    const offsetPointer = f.headerLen + 2;
    const icmpError = carriesIcmpv6Error(buf, end, w);
    this.srcMac = srcMac;
    this.nowMs = nowMs;
    switch (this.reassembler.input(buf, off, f, nowMs, this)) {
      case FragResult.BAD_LENGTH:
        this.error(Icmpv6Type.PARAMETER_PROBLEM, Icmpv6ParamProblem.HEADER_FIELD, PAYLOAD_LENGTH_POINTER, buf, off, end, src, srcMac, icmpError);
        return;
      case FragResult.TOO_LARGE:
        this.error(Icmpv6Type.PARAMETER_PROBLEM, Icmpv6ParamProblem.HEADER_FIELD, offsetPointer, buf, off, end, src, srcMac, icmpError);
        return;
      default:
    }
  }

  /** From the reassembler, during input() of the fragment that completed it. */
  reassembled(buf: Uint8Array, off: number, len: number): void {
    const end = off + len;
    const walked = walkIpv6(buf, off, end, this.walk);
    if (walked !== Wire.OK) {
      this.drops.add(CHECK_DROP[walked] ?? Drop.IPV6_BAD_EXTENSION);
      return;
    }
    // Its checksum covers all the fragments: verify it.
    this.dispatch(buf, off, end, this.srcMac, false, 0, this.nowMs, true);
  }

  /** From the reassembler's expire(): RFC 8200 §4.5, Time Exceeded (fragment reassembly time exceeded). */
  timedOut(first: Uint8Array, off: number, len: number, src: number, srcMac: number): void {
    const end = off + len;
    const w = this.walk;
    // It was walked when it arrived; its chain is whole.
    if (walkIpv6(first, off, end, w) !== Wire.OK) return;
    this.error(Icmpv6Type.TIME_EXCEEDED, Icmpv6TimeExceeded.REASSEMBLY, 0, first, off, end, src, srcMac, carriesIcmpv6Error(first, end, w));
  }

  /** A datagram whole (never fragmented, an atomic fragment, or reassembled) as walked into this.walk. */
  private dispatch(buf: Uint8Array, off: number, end: number, srcMac: number, checksumPartial: boolean, udpGsoSize: number, nowMs: number, hadFragmentHeader: boolean): void {
    const w = this.walk;
    const proto = w.proto;
    const srcOff = off + IPV6_SRC_OFFSET;
    if (proto !== IpProtocol.ICMPV6 && isUnspecified6(buf, srcOff)) {
      this.drops.add(Drop.IPV6_BAD_SOURCE);
      return;
    }
    const l4 = w.l4Off;
    if (hadFragmentHeader && proto === IpProtocol.ICMPV6 && l4 < end && isNdp(buf[l4])) {
      this.drops.add(Drop.NDP_INVALID);
      return;
    }
    this.stats.datagrams++;
    const src = this.ids.id(buf, srcOff);
    const dst = this.ids.id(buf, off + IPV6_DST_OFFSET);
    switch (proto) {
      case IpProtocol.ICMPV6:
        this.icmp.input(buf, off, l4, end - l4, src, dst, srcMac, buf[off + 7], checksumPartial, nowMs);
        return;
      case IpProtocol.UDP:
        this.udp.input(buf, off, l4, end - l4, src, dst, srcMac, checksumPartial, udpGsoSize, nowMs);
        return;
      case IpProtocol.TCP:
        this.tcp.input(buf, off, l4, end - l4, src, dst, srcMac, checksumPartial, nowMs);
        return;
      case Ipv6Ext.NONE:
        return;
      default:
        this.drops.add(Drop.PROTOCOL_UNHANDLED);
    }
  }

  /** RFC 7112 §5, RFC 8200 §4.5: drop, Parameter Problem code 3 with pointer 0. */
  private incompleteChain(buf: Uint8Array, off: number, end: number, srcMac: number, icmpError: boolean): void {
    this.drops.add(Drop.FRAG_INCOMPLETE_CHAIN);
    const src = this.ids.id(buf, off + IPV6_SRC_OFFSET);
    this.error(Icmpv6Type.PARAMETER_PROBLEM, Icmpv6ParamProblem.INCOMPLETE_CHAIN, 0, buf, off, end, src, srcMac, icmpError);
  }

  /** An error about the packet at buf[off..end), unless RFC 4443 §2.4(e) forbids it. */
  private error(type: number, code: number, param: number, buf: Uint8Array, off: number, end: number, src: number, srcMac: number, icmpError: boolean): void {
    if (this.errors === null || icmpError || isMulticast6(buf, off + IPV6_DST_OFFSET) || isUnspecified6(buf, off + IPV6_SRC_OFFSET)) return;
    this.errors.error6(type, code, param, buf, off, end - off, src, srcMac);
  }
}

/**
 * Bytes of the upper-layer header a first fragment must hold. RFC 7112 asks
 * for "the upper-layer header" without sizing it; these are Linux's
 * (ipv6_frag_thdr_truncated): what the demultiplexing needs.
 */
function upperLayerMinLen(proto: number): number {
  switch (proto) {
    case IpProtocol.ICMPV6:
      return ICMPV6_HEADER_LEN;
    case IpProtocol.UDP:
      return UDP_HEADER_LEN;
    case IpProtocol.TCP:
      return TCP_HEADER_LEN;
    default:
      return 0;
  }
}

/** Whether the walked packet visibly carries an ICMPv6 error (only a first fragment or a whole datagram shows its upper layer). */
function carriesIcmpv6Error(buf: Uint8Array, end: number, w: Ipv6Walk): boolean {
  return (!w.fragment || w.fragOffset === 0) && w.proto === IpProtocol.ICMPV6 && w.l4Off < end && isIcmpv6Error(buf[w.l4Off]);
}

/** Router and Neighbor Discovery messages, which RFC 6980 §5 keeps out of fragments. */
function isNdp(type: number): boolean {
  return type >= Icmpv6Type.ROUTER_SOLICITATION && type <= Icmpv6Type.REDIRECT;
}
