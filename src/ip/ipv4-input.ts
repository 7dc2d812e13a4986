/**
 * IPv4 from the guest: validated once here, then dispatched by protocol.
 *
 * Validation follows RFC 1122 §3.2.1: version 4, a header length of at least
 * 20 bytes inside what arrived, a total length between the header length and
 * what arrived (Ethernet padding after it is ignored), and a correct header
 * checksum (always verified: no offload covers the IPv4 header). A datagram
 * from a broadcast or multicast source is a martian and dropped.
 *
 * `checksumPartial` is the virtio-net NEEDS_CSUM flag: the guest's kernel left
 * the L4 checksum to "hardware", so the field holds only the pseudo-header
 * sum and must not be verified (docs/architecture.md, Measured techniques).
 */
import { Drop, type DropCounters, type DropReason } from '../stats.js';
import { Wire } from '../wire/errors.js';
import { IpProtocol, Ipv4View } from '../wire/ipv4.js';
import type { IcmpResponder } from './icmp-responder.js';
import { newFragmentRepr, type Reassembler, type ReassemblyClient } from './reassembly.js';

/** Drop reason for each code Ipv4View.check() returns. */
const CHECK_DROP: Record<number, DropReason> = {
  [Wire.TRUNCATED]: Drop.IPV4_TRUNCATED,
  [Wire.BAD_VERSION]: Drop.IPV4_BAD_VERSION,
  [Wire.BAD_HEADER_LEN]: Drop.IPV4_BAD_HEADER_LEN,
  [Wire.BAD_TOTAL_LEN]: Drop.IPV4_BAD_TOTAL_LEN,
};

/** Receives TCP segments (src/nat/tcp-nat.ts); declared here so imports keep pointing down. */
export interface TcpSegmentInput {
  input(buf: Uint8Array, ipOff: number, l4Off: number, l4Len: number, src: number, dst: number, srcMac: number, checksumPartial: boolean, nowMs: number): void;
}

/**
 * Receives UDP datagrams, both families (src/udp/udp-input.ts); declared here
 * for the same reason. `gsoSize` is non-zero for a UDP GSO super-frame.
 */
export interface UdpDatagramInput {
  input(buf: Uint8Array, ipOff: number, off: number, len: number, src: number, dst: number, srcMac: number, checksumPartial: boolean, gsoSize: number, nowMs: number): void;
}

export interface Ipv4InputStats {
  datagrams: number;
}

export class Ipv4Input implements ReassemblyClient {
  readonly stats: Ipv4InputStats = { datagrams: 0 };
  private readonly view = new Ipv4View();
  private readonly fragment = newFragmentRepr();
  private srcMac = 0;
  private nowMs = 0;
  private udpGsoSize = 0;

  constructor(
    private readonly drops: DropCounters,
    private readonly reassembler: Reassembler,
    private readonly icmp: IcmpResponder,
    private readonly udp: UdpDatagramInput,
    private readonly tcp: TcpSegmentInput | null,
  ) {}

  /** `udpGsoSize`: non-zero for a UDP GSO super-frame (virtio-net UDP_L4), the size of each datagram. */
  input(buf: Uint8Array, off: number, len: number, srcMac: number, checksumPartial: boolean, udpGsoSize: number, nowMs: number): void {
    const ip = this.view.wrap(buf, off, len);
    const code = ip.check();
    if (code !== Wire.OK) {
      this.drops.add(CHECK_DROP[code] ?? Drop.IPV4_TRUNCATED);
      return;
    }
    if (!ip.verifyChecksum()) {
      this.drops.add(Drop.IPV4_BAD_CHECKSUM);
      return;
    }
    const src = ip.src;
    if (src >>> 28 >= 0xe) {
      this.drops.add(Drop.IPV4_BAD_SOURCE);
      return;
    }
    this.stats.datagrams++;
    this.srcMac = srcMac;
    this.nowMs = nowMs;
    this.udpGsoSize = udpGsoSize;
    if (ip.moreFragments || ip.fragOffset !== 0) {
      const f = this.fragment;
      f.src = src;
      f.dst = ip.dst;
      f.protocol = ip.protocol;
      f.ident = ip.ident;
      f.headerLen = f.dataOff = ip.headerLen;
      f.dataLen = ip.payloadLength;
      f.fragOffset = ip.fragOffset;
      f.moreFragments = ip.moreFragments;
      f.srcMac = srcMac;
      this.reassembler.input(buf, off, f, nowMs, this);
      return;
    }
    this.dispatch(buf, off, ip.totalLength, checksumPartial);
  }

  /** From the reassembler, during input() of the last fragment. */
  reassembled(buf: Uint8Array, off: number, len: number): void {
    // A reassembled datagram's L4 checksum covers all fragments; verify it.
    this.udpGsoSize = 0;
    this.dispatch(buf, off, len, false);
  }

  private dispatch(buf: Uint8Array, off: number, len: number, checksumPartial: boolean): void {
    const ip = this.view.wrap(buf, off, len);
    const l4 = off + ip.headerLen;
    const l4Len = ip.totalLength - ip.headerLen;
    switch (ip.protocol) {
      case IpProtocol.ICMP:
        this.icmp.input(buf, off, l4, l4Len, ip.src, ip.dst, this.srcMac, checksumPartial, this.nowMs);
        return;
      case IpProtocol.UDP:
        this.udp.input(buf, off, l4, l4Len, ip.src, ip.dst, this.srcMac, checksumPartial, this.udpGsoSize, this.nowMs);
        return;
      case IpProtocol.TCP:
        if (this.tcp === null) this.drops.add(Drop.PROTOCOL_UNHANDLED);
        else this.tcp.input(buf, off, l4, l4Len, ip.src, ip.dst, this.srcMac, checksumPartial, this.nowMs);
        return;
      default:
        this.drops.add(Drop.PROTOCOL_UNHANDLED);
    }
  }
}
