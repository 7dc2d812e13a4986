/**
 * UDP datagrams towards the guest (relayed replies, DNS answers): header and
 * payload built in one IPv4 datagram, fragmented by Ipv4Output when it is
 * larger than the MTU. Checksums are computed here: datagrams are small next
 * to TCP bulk data, and a fragmented datagram cannot use NEEDS_CSUM.
 */
import type { Ipv4Output } from '../ip/ipv4-output.js';
import { IpProtocol } from '../wire/ipv4.js';
import { emitUdpHeader, fillUdpChecksumV4, UDP_HEADER_LEN, type UdpRepr } from '../wire/udp.js';

/** The largest UDP payload an IPv4 datagram can carry. */
export const MAX_UDP_PAYLOAD = 65535 - 20 - UDP_HEADER_LEN;

export class UdpOutput {
  private readonly header: UdpRepr = { srcPort: 0, dstPort: 0, payloadLength: 0 };
  datagrams = 0;

  constructor(private readonly ip: Ipv4Output) {}

  send(srcIp: number, srcPort: number, dstIp: number, dstPort: number, dstMac: number, payload: Uint8Array, off: number, len: number): void {
    const at = this.ip.begin(UDP_HEADER_LEN + len);
    const buf = this.ip.buf;
    buf.set(payload.subarray(off, off + len), at + UDP_HEADER_LEN);
    const h = this.header;
    h.srcPort = srcPort;
    h.dstPort = dstPort;
    h.payloadLength = len;
    emitUdpHeader(h, buf, at);
    fillUdpChecksumV4(buf, at, srcIp, dstIp);
    const r = this.ip.repr;
    r.src = srcIp;
    r.dst = dstIp;
    r.protocol = IpProtocol.UDP;
    r.ttl = 64;
    r.tos = 0;
    r.dontFragment = false;
    this.ip.finish(dstMac, UDP_HEADER_LEN + len);
    this.datagrams++;
  }
}
