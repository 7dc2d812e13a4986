/**
 * Builds the frames of TCP segments towards the guest: IPv4 + TCP headers in
 * the output arena, the payload copied in behind them from the flow's send
 * buffer.
 *
 * With a virtio-net link that took TUN_F_CSUM, the TCP checksum is left to
 * the guest's kernel: the field holds the pseudo-header sum and the header
 * says NEEDS_CSUM (csum_start = L4 header, csum_offset = 16), exactly as
 * Linux hands CHECKSUM_PARTIAL packets to a device. With TSO4 accepted too, a
 * segment longer than the MSS goes out as one GSO super-frame (gso_type TCPV4,
 * gso_size = MSS); the guest's kernel takes it like a GRO aggregate
 * (reference/perf-techniques.md §1.4). Without offloads the checksum is
 * computed here and segments never exceed the MSS.
 */
import type { AddressPlan } from '../ip/address-plan.js';
import type { FrameOutput } from '../ethernet/frame-output.js';
import type { SendBufferReader, TcpEndpointConfig } from '../tcp/contract.js';
import { ETHERNET_HEADER_LEN, EtherType } from '../wire/ethernet.js';
import { emitIpv4, IPV4_HEADER_LEN, IpProtocol, newIpv4Repr } from '../wire/ipv4.js';
import { emitTcpHeader, fillTcpChecksumV4, fillTcpPseudoChecksumV4, TCP_CHECKSUM_OFFSET, TcpFlag, tcpOptionsLength, TCP_HEADER_LEN, type TcpRepr } from '../wire/tcp.js';
import { GsoType, newVirtioNetRepr, VnetFlag } from '../wire/virtio-net.js';

export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;

export interface TcpOutputStats {
  segments: number;
  superFrames: number;
  payloadBytes: number;
  resets: number;
}

export class TcpOutput {
  readonly stats: TcpOutputStats = { segments: 0, superFrames: 0, payloadBytes: 0, resets: 0 };
  /** Checksum offload: the guest's kernel completes our partial checksums. */
  readonly partialChecksums: boolean;
  /** Segmentation offload: segments may be longer than the MSS. */
  readonly gso: boolean;
  private readonly ip = newIpv4Repr();
  private readonly vnet = newVirtioNetRepr();
  private ident = 1;
  /** Address fields only: reset() builds a segment for a connection that does not exist. */
  private readonly resetConfig = { localIp: 0, localPort: 0, guestIp: 0, guestPort: 0 } as TcpEndpointConfig;

  constructor(
    private readonly frames: FrameOutput,
    private readonly plan: AddressPlan,
    offloads: number,
  ) {
    this.partialChecksums = frames.vnetHdr && (offloads & TUN_F_CSUM) !== 0;
    this.gso = this.partialChecksums && (offloads & TUN_F_TSO4) !== 0;
    this.ip.protocol = IpProtocol.TCP;
    this.ip.ttl = 64;
    this.ip.dontFragment = true;
  }

  /** Largest payload one segment may carry with this link, for an MSS of `mss`. */
  maxSegmentPayload(mss: number): number {
    if (!this.gso) return mss;
    const room = 65535 - IPV4_HEADER_LEN - 60;
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
    const ipOff = this.frames.begin(IPV4_HEADER_LEN + tcpLen);
    const buf = this.frames.buf;
    const ip = this.ip;
    ip.src = cfg.localIp;
    ip.dst = cfg.guestIp;
    ip.payloadLength = tcpLen;
    ip.ident = this.ident;
    this.ident = (this.ident + 1) & 0xffff;
    emitIpv4(ip, buf, ipOff);
    const tcpOff = ipOff + IPV4_HEADER_LEN;
    emitTcpHeader(repr, buf, tcpOff);
    if (payloadLen > 0 && data !== null) data.copyOut(dataOffset, payloadLen, buf, tcpOff + tcpHeaderLen);
    const srcMac = cfg.localIp === this.plan.dns ? this.plan.dnsMac : this.plan.gatewayMac;
    this.stats.segments++;
    this.stats.payloadBytes += payloadLen;
    if (!this.partialChecksums) {
      fillTcpChecksumV4(buf, tcpOff, tcpLen, cfg.localIp, cfg.guestIp);
      this.frames.finish(guestMac, srcMac, EtherType.IPV4, IPV4_HEADER_LEN + tcpLen);
      return;
    }
    fillTcpPseudoChecksumV4(buf, tcpOff, tcpLen, cfg.localIp, cfg.guestIp);
    const v = this.vnet;
    v.flags = VnetFlag.NEEDS_CSUM;
    v.csumStart = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
    v.csumOffset = TCP_CHECKSUM_OFFSET;
    if (this.gso && payloadLen > gsoSize) {
      v.gsoType = GsoType.TCPV4;
      v.gsoSize = gsoSize;
      v.hdrLen = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + tcpHeaderLen;
      this.stats.superFrames++;
    } else {
      v.gsoType = GsoType.NONE;
      v.gsoSize = 0;
      v.hdrLen = 0;
    }
    this.frames.finish(guestMac, srcMac, EtherType.IPV4, IPV4_HEADER_LEN + tcpLen, v);
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
    scratch.mss = 0;
    scratch.windowScale = -1;
    scratch.sackPermitted = false;
    scratch.hasTimestamps = false;
    scratch.sackCount = 0;
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
