/**
 * Builds the frames of TCP segments towards the guest: IPv4 + TCP headers in
 * the output arena, the payload copied in behind them from the flow's send
 * buffer, or, when the guest's kernel completes the checksum (so no byte of
 * the payload needs reading here) and the payload lies in one run of memory
 * (SendBuffer.viewOf), sent from there as the frame's second slice.
 *
 * With a virtio-net link that took TUN_F_CSUM, the TCP checksum is left to
 * the guest's kernel: the field holds the pseudo-header sum and the header
 * says NEEDS_CSUM (csum_start = L4 header, csum_offset = 16), exactly as
 * Linux hands CHECKSUM_PARTIAL packets to a device. With TSO4 accepted too, a
 * segment longer than the MSS goes out as one GSO super-frame (gso_type TCPV4,
 * gso_size = MSS); the guest's kernel takes it like a GRO aggregate
 * (docs/architecture.md, Measured techniques). Without offloads the checksum is
 * computed here and segments never exceed the MSS.
 *
 * IPv6 connections (the guest address is a negative id, src/ip/ipv6-ids.ts)
 * get a 40-byte IPv6 header instead, and GSO type TCPV6 when the link took
 * TSO6; a super-frame's whole IPv6 datagram stays within 65535 bytes, so it
 * fits the output arena's frame slot like an IPv4 one.
 */
import type { AddressPlan } from '../ip/address-plan.js';
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import type { FrameOutput } from '../ethernet/frame-output.js';
import type { PayloadView, SendBufferReader, TcpEndpointConfig } from '../tcp/contract.js';
import { ETHERNET_HEADER_LEN, EtherType } from '../wire/ethernet.js';
import { emitIpv4, IPV4_HEADER_LEN, IpProtocol, newIpv4Repr } from '../wire/ipv4.js';
import { IPV6_HEADER_LEN } from '../wire/ipv6.js';
import { writeIpv6Header } from '../ip/ipv6-output.js';
import { clearTcpOptions, emitTcpHeader, fillTcpChecksum, fillTcpPseudoChecksum, TCP_CHECKSUM_OFFSET, TcpFlag, tcpOptionsLength, TCP_HEADER_LEN, TCP_MAX_HEADER_LEN, type TcpRepr } from '../wire/tcp.js';
import { GsoType, newVirtioNetRepr, VnetFlag } from '../wire/virtio-net.js';

export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
/** Payloads from this size on go out from where they are instead of a copy (below, the copy is cheaper than the bookkeeping). */
export const ZERO_COPY_MIN_BYTES = 1024;
const NO_BYTES = new Uint8Array(0);

export interface TcpOutputStats {
  segments: number;
  superFrames: number;
  payloadBytes: number;
  resets: number;
  /** Payload bytes sent from the send buffer's memory rather than copied into the frame. */
  zeroCopyBytes: number;
}

export class TcpOutput {
  readonly stats: TcpOutputStats = { segments: 0, superFrames: 0, payloadBytes: 0, resets: 0, zeroCopyBytes: 0 };
  /** Checksum offload: the guest's kernel completes our partial checksums. */
  readonly partialChecksums: boolean;
  /** Segmentation offload: segments may be longer than the MSS (IPv4, IPv6). */
  readonly gso: boolean;
  readonly gso6: boolean;
  private readonly ip = newIpv4Repr();
  private readonly vnet = newVirtioNetRepr();
  /** viewOf's answer; holds the last payload's ArrayBuffer (a read slab) until the next one or releaseIdleMemory. */
  private readonly view: PayloadView = { bytes: NO_BYTES, off: 0 };
  private ident = 1;
  /** Address fields only: reset() builds a segment for a connection that does not exist. */
  private readonly resetConfig = { localIp: 0, localPort: 0, guestIp: 0, guestPort: 0 } as TcpEndpointConfig;

  constructor(
    private readonly frames: FrameOutput,
    private readonly plan: AddressPlan,
    offloads: number,
    private readonly ids: Ipv6Ids,
    /** The MAC our IPv6 addresses answer from. */
    private readonly routerMac6: number,
  ) {
    this.partialChecksums = frames.vnetHdr && (offloads & TUN_F_CSUM) !== 0;
    this.gso = this.partialChecksums && (offloads & TUN_F_TSO4) !== 0;
    this.gso6 = this.partialChecksums && (offloads & TUN_F_TSO6) !== 0;
    this.ip.protocol = IpProtocol.TCP;
    this.ip.ttl = 64;
    this.ip.dontFragment = true;
  }

  /** Idle: forgets the last payload's read slab (viewOf's answer keeps it reachable). */
  releaseIdleMemory(): void {
    this.view.bytes = NO_BYTES;
    this.view.off = 0;
  }

  /** Largest payload one segment may carry with this link, for an MSS of `mss`, over IPv4 or IPv6. */
  maxSegmentPayload(mss: number, v6 = false): number {
    if (!(v6 ? this.gso6 : this.gso)) return mss;
    const room = 65535 - (v6 ? IPV6_HEADER_LEN : IPV4_HEADER_LEN) - TCP_MAX_HEADER_LEN;
    return Math.max(mss, room - (room % mss));
  }

  segment(
    guestMac: number,
    cfg: TcpEndpointConfig,
    repr: TcpRepr,
    data: SendBufferReader | null,
    dataOffset: number,
    payloadLen: number,
    gsoSize: number,
  ): void {
    repr.srcPort = cfg.localPort;
    repr.dstPort = cfg.guestPort;
    const tcpHeaderLen = TCP_HEADER_LEN + tcpOptionsLength(repr);
    const tcpLen = tcpHeaderLen + payloadLen;
    const v6 = cfg.guestIp < 0;
    const ipLen = v6 ? IPV6_HEADER_LEN : IPV4_HEADER_LEN;
    const zeroCopy = payloadLen >= ZERO_COPY_MIN_BYTES && this.partialChecksums && data !== null && data.viewOf(dataOffset, payloadLen, this.view);
    const ipOff = this.frames.begin(ipLen + (zeroCopy ? tcpHeaderLen : tcpLen));
    const buf = this.frames.buf;
    let srcMac: number;
    if (v6) {
      writeIpv6Header(this.ids, buf, ipOff, cfg.localIp, cfg.guestIp, IpProtocol.TCP, 64, 0, tcpLen);
      srcMac = this.routerMac6;
    } else {
      const ip = this.ip;
      ip.src = cfg.localIp;
      ip.dst = cfg.guestIp;
      ip.payloadLength = tcpLen;
      ip.ident = this.ident;
      this.ident = (this.ident + 1) & 0xffff;
      emitIpv4(ip, buf, ipOff);
      srcMac = cfg.localIp === this.plan.dns ? this.plan.dnsMac : this.plan.gatewayMac;
    }
    const tcpOff = ipOff + ipLen;
    emitTcpHeader(repr, buf, tcpOff);
    if (zeroCopy) this.stats.zeroCopyBytes += payloadLen;
    else if (payloadLen > 0 && data !== null) data.copyOut(dataOffset, payloadLen, buf, tcpOff + tcpHeaderLen);
    this.stats.segments++;
    this.stats.payloadBytes += payloadLen;
    const etherType = v6 ? EtherType.IPV6 : EtherType.IPV4;
    const addrSum = this.ids.addrSum(cfg.localIp, cfg.guestIp);
    if (!this.partialChecksums) {
      fillTcpChecksum(buf, tcpOff, tcpLen, addrSum);
      this.frames.finish(guestMac, srcMac, etherType, ipLen + tcpLen);
      return;
    }
    fillTcpPseudoChecksum(buf, tcpOff, tcpLen, addrSum);
    const v = this.vnet;
    v.flags = VnetFlag.NEEDS_CSUM;
    v.csumStart = ETHERNET_HEADER_LEN + ipLen;
    v.csumOffset = TCP_CHECKSUM_OFFSET;
    if ((v6 ? this.gso6 : this.gso) && payloadLen > gsoSize) {
      v.gsoType = v6 ? GsoType.TCPV6 : GsoType.TCPV4;
      v.gsoSize = gsoSize;
      v.hdrLen = ETHERNET_HEADER_LEN + ipLen + tcpHeaderLen;
      this.stats.superFrames++;
    } else {
      v.gsoType = GsoType.NONE;
      v.gsoSize = 0;
      v.hdrLen = 0;
    }
    if (zeroCopy) {
      const view = this.view;
      this.frames.finishWithTail(guestMac, srcMac, etherType, ipLen + tcpHeaderLen, v, view.bytes, view.off, payloadLen);
    } else {
      this.frames.finish(guestMac, srcMac, etherType, ipLen + tcpLen, v);
    }
  }


  /**
   * A reset for a segment that matches no connection, or refused by the host
   * (RFC 9293 §3.10.7.1): <SEQ=SEG.ACK><CTL=RST> if it carried an ACK, else
   * <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
   */
  reset(guestMac: number, localIp: number, localPort: number, guestIp: number, guestPort: number, seg: TcpRepr, segLen: number, scratch: TcpRepr): void {
    scratch.srcPort = localPort;
    scratch.dstPort = guestPort;
    scratch.window = 0;
    scratch.urgent = 0;
    clearTcpOptions(scratch);
    if ((seg.flags & TcpFlag.ACK) !== 0) {
      scratch.seq = seg.ack;
      scratch.ack = 0;
      scratch.flags = TcpFlag.RST;
    } else {
      scratch.seq = 0;
      scratch.ack = (seg.seq + segLen) >>> 0;
      scratch.flags = TcpFlag.RST | TcpFlag.ACK;
    }
    const cfg = this.resetConfig;
    cfg.localIp = localIp;
    cfg.localPort = localPort;
    cfg.guestIp = guestIp;
    cfg.guestPort = guestPort;
    this.segment(guestMac, cfg, scratch, null, 0, 0, 0);
    this.stats.resets++;
  }
}
