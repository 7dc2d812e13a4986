/**
 * UDP datagrams towards the guest (relayed replies, DNS answers), either
 * family by the destination address (IPv6 ids are negative,
 * src/ip/ipv6-ids.ts): header and payload built in one datagram, fragmented
 * by the IP output when it is larger than the MTU. Checksums are computed
 * here: datagrams are small next to TCP bulk data, and a fragmented datagram
 * cannot use NEEDS_CSUM.
 */
import type { Ipv4Output } from '../ip/ipv4-output.js';
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import type { Ipv6Output } from '../ip/ipv6-output.js';
import { IpProtocol } from '../wire/ipv4.js';
import { emitUdpHeader, fillUdpChecksum, UDP_HEADER_LEN, type UdpRepr } from '../wire/udp.js';

/** The largest UDP payload an IPv4 datagram can carry. */
export const MAX_UDP_PAYLOAD = 65535 - 20 - UDP_HEADER_LEN;
/** The largest over IPv6 (the UDP length field bounds it; RFC 8200 §8.1, no jumbograms). */
export const MAX_UDP6_PAYLOAD = 65535 - UDP_HEADER_LEN;

export class UdpOutput {
  private readonly header: UdpRepr = { srcPort: 0, dstPort: 0, payloadLength: 0 };
  datagrams = 0;

  constructor(
    private readonly ip: Ipv4Output,
    private readonly ids: Ipv6Ids,
    private readonly ip6: Ipv6Output | null,
  ) {}

  send(srcIp: number, srcPort: number, dstIp: number, dstPort: number, dstMac: number, payload: Uint8Array, off: number, len: number): void {
    const ip = dstIp >= 0 ? this.ip : this.ip6;
    if (ip === null) return;
    const at = ip.begin(UDP_HEADER_LEN + len);
    const buf = ip.buf;
    buf.set(payload.subarray(off, off + len), at + UDP_HEADER_LEN);
    const h = this.header;
    h.srcPort = srcPort;
    h.dstPort = dstPort;
    h.payloadLength = len;
    emitUdpHeader(h, buf, at);
    fillUdpChecksum(buf, at, this.ids.addrSum(srcIp, dstIp));
    const r = ip.repr;
    r.src = srcIp;
    r.dst = dstIp;
    r.protocol = IpProtocol.UDP;
    r.ttl = 64;
    r.tos = 0;
    r.dontFragment = false;
    ip.finish(dstMac, UDP_HEADER_LEN + len);
    this.datagrams++;
  }
}
