/**
 * IPv6 from the guest (RFC 8200): validated once here, then dispatched by
 * upper-layer protocol with its addresses as ids (src/ip/ipv6-ids.ts).
 *
 * Validation: version 6, the payload length within what arrived (Ethernet
 * padding after it is ignored), the extension headers walked within the
 * payload (Hop-by-Hop and Destination Options skipped, a Routing header with
 * segments left refused, wire/ipv6.ts walkIpv6). A multicast source is a
 * martian (RFC 4291 §2.7); the unspecified source is allowed only for ICMPv6,
 * where NDP's DAD probes and MLD reports use it (RFC 4862 §5.4.2, RFC 3810
 * §5.2.13) and the ICMPv6 side decides what else it accepts from it.
 *
 * Fragments (RFC 8200 §4.5) are counted and dropped: a guest fragments only
 * what it sends larger than the path MTU, and our MTU is the link's, which
 * is what its TCP and its PMTU cache use; UDP larger than the MTU is the
 * remaining case (fragmented DNS over EDNS0 is the classic one, and the
 * guest's resolver retries over TCP). Counted as `ipv6_fragment`.
 *
 * `checksumPartial` is the virtio-net NEEDS_CSUM flag, as for IPv4: the L4
 * checksum holds only the pseudo-header sum and is not verified.
 */
import { Drop, type DropCounters, type DropReason } from '../stats.js';
import { Wire } from '../wire/errors.js';
import { IpProtocol } from '../wire/ipv4.js';
import { Ipv6Ext, Ipv6View, newIpv6Walk, walkIpv6 } from '../wire/ipv6.js';
import { isMulticast6, isUnspecified6 } from '../wire/ipv6-address.js';
import type { Ipv6Ids } from './ipv6-ids.js';
import type { TcpSegmentInput } from './ipv4-input.js';
import type { UdpInput } from '../udp/udp-input.js';

/** ICMPv6 from the guest (src/ip/icmpv6-input.ts). */
export interface Icmpv6Handler {
  /** `hopLimit` of the datagram: NDP accepts only 255 (RFC 4861 §6.1, §7.1). */
  input(buf: Uint8Array, ipOff: number, l4Off: number, l4Len: number, src: number, dst: number, srcMac: number, hopLimit: number, checksumPartial: boolean, nowMs: number): void;
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

export class Ipv6Input {
  readonly stats: Ipv6InputStats = { datagrams: 0 };
  private readonly view = new Ipv6View();
  private readonly walk = newIpv6Walk();

  constructor(
    private readonly ids: Ipv6Ids,
    private readonly drops: DropCounters,
    private readonly icmp: Icmpv6Handler,
    private readonly udp: UdpInput,
    private readonly tcp: TcpSegmentInput,
  ) {}

  /** `udpGsoSize`: non-zero for a UDP GSO super-frame (virtio-net UDP_L4), the size of each datagram. */
  input(buf: Uint8Array, off: number, len: number, srcMac: number, checksumPartial: boolean, udpGsoSize: number, nowMs: number): void {
    const ip = this.view.wrap(buf, off, len);
    const code = ip.check();
    if (code !== Wire.OK) {
      this.drops.add(CHECK_DROP[code] ?? Drop.IPV6_TRUNCATED);
      return;
    }
    const srcOff = ip.srcOff;
    if (isMulticast6(buf, srcOff)) {
      this.drops.add(Drop.IPV6_BAD_SOURCE);
      return;
    }
    const end = off + 40 + ip.payloadLength;
    const w = this.walk;
    const walked = walkIpv6(buf, off, end, w);
    if (walked !== Wire.OK) {
      this.drops.add(CHECK_DROP[walked] ?? Drop.IPV6_BAD_EXTENSION);
      return;
    }
    if (w.fragment) {
      this.drops.add(Drop.IPV6_FRAGMENT);
      return;
    }
    const proto = w.proto;
    if (proto !== IpProtocol.ICMPV6 && isUnspecified6(buf, srcOff)) {
      this.drops.add(Drop.IPV6_BAD_SOURCE);
      return;
    }
    this.stats.datagrams++;
    const src = this.ids.id(buf, srcOff);
    const dst = this.ids.id(buf, ip.dstOff);
    const l4 = w.l4Off;
    switch (proto) {
      case IpProtocol.ICMPV6:
        this.icmp.input(buf, off, l4, end - l4, src, dst, srcMac, ip.hopLimit, checksumPartial, nowMs);
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
}
