/**
 * UDP from the guest, either family, validated and dispatched: DHCP to the
 * gateway's port 67, DHCPv6 to port 547 of ff02::1:2 or the router's
 * link-local address, DNS to net+3, fd00::3 or fe80::3 port 53 (unless
 * disabled), everything else to the UDP NAT. Over IPv6 the checksum is
 * mandatory (RFC 8200 §8.1).
 * The services sit behind small interfaces so that imports keep pointing
 * down (udp/ knows nothing of nat/ or dns/).
 */
import type { AddressPlan } from '../ip/address-plan.js';
import type { Ipv4Output } from '../ip/ipv4-output.js';
import type { UdpDatagramInput } from '../ip/ipv4-input.js';
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import type { Ipv6Output } from '../ip/ipv6-output.js';
import type { Ipv6Plan } from '../ip/ipv6-plan.js';
import { Drop, type DropCounters } from '../stats.js';
import { Wire } from '../wire/errors.js';
import { IpProtocol } from '../wire/ipv4.js';
import { emitUdpHeader, fillUdpChecksum, fillUdpChecksumV4, UDP_HEADER_LEN, UdpView, type UdpRepr } from '../wire/udp.js';
import { MAC_BROADCAST } from '../wire/ethernet.js';
import type { UdpOutput } from './udp-output.js';

const DHCP_SERVER_PORT = 67;
const DHCP_CLIENT_PORT = 68;
const DNS_PORT = 53;
const DHCPV6_CLIENT_PORT = 546;
const DHCPV6_SERVER_PORT = 547;
const LIMITED_BROADCAST = 0xffff_ffff;
/** Room for a DHCP reply: the 236-byte fixed part, the cookie and our options. */
const DHCP_REPLY_MAX = 576;

/** What the stack needs from a DHCP server (src/dhcp/server.ts). */
export interface DhcpService {
  /** Handles one message; writes the reply at out[outOff] and returns its length (0: none). */
  handle(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, nowMs: number): number;
}

/** What the stack needs from the DNS forwarder (src/dns/forwarder.ts). */
export interface DnsService {
  query(message: Uint8Array, transport: 'udp' | 'tcp'): Promise<Uint8Array | null>;
}

/** The UDP relay (src/nat/udp-nat.ts). */
export interface UdpRelay {
  input(payload: Uint8Array, off: number, len: number, src: number, srcPort: number, dst: number, dstPort: number, srcMac: number, ipOff: number, ipLen: number, nowMs: number): void;
}

/** The IPv6 side of UDP input (absent: IPv6 off). */
export interface UdpInputV6 {
  plan: Ipv6Plan;
  ip: Ipv6Output;
  /** Stateless DHCPv6 (src/dhcp/dhcpv6-server.ts), or null. */
  dhcp: DhcpService | null;
}

export interface UdpInputStats {
  dnsQueries: number;
  dnsReplies: number;
  gsoSuperFrames: number;
}

export class UdpInput implements UdpDatagramInput {
  readonly stats: UdpInputStats = { dnsQueries: 0, dnsReplies: 0, gsoSuperFrames: 0 };
  private readonly view = new UdpView();
  private readonly header: UdpRepr = { srcPort: DHCP_SERVER_PORT, dstPort: DHCP_CLIENT_PORT, payloadLength: 0 };
  private readonly header6: UdpRepr = { srcPort: DHCPV6_SERVER_PORT, dstPort: DHCPV6_CLIENT_PORT, payloadLength: 0 };

  constructor(
    private readonly plan: AddressPlan,
    private readonly ip: Ipv4Output,
    private readonly output: UdpOutput,
    private readonly drops: DropCounters,
    private readonly dhcp: DhcpService | null,
    private readonly dns: DnsService | null,
    private readonly relay: UdpRelay | null,
    /** Sends what an asynchronous answer (DNS) queued: flush and re-arm. */
    private readonly kick: () => void,
    private readonly ids: Ipv6Ids,
    private readonly v6: UdpInputV6 | null,
  ) {}

  input(buf: Uint8Array, ipOff: number, off: number, len: number, src: number, dst: number, srcMac: number, checksumPartial: boolean, gsoSize: number, nowMs: number): void {
    const udp = this.view.wrap(buf, off, len);
    if (udp.check() !== Wire.OK) {
      this.drops.add(Drop.UDP_MALFORMED);
      return;
    }
    if (!checksumPartial && !(src >= 0 ? udp.verifyChecksumV4(src, dst) : udp.verifyChecksum6(this.ids.addrSum(src, dst)))) {
      this.drops.add(Drop.UDP_BAD_CHECKSUM);
      return;
    }
    const dstPort = udp.dstPort;
    const p = this.plan;
    if (src >= 0 && this.dhcp !== null && dstPort === DHCP_SERVER_PORT && (dst === LIMITED_BROADCAST || dst === p.gateway || dst === p.broadcast)) {
      this.dhcpInput(udp.payloadOffset, udp.payloadLength, buf, nowMs);
      return;
    }
    const v6 = this.v6;
    if (src < 0 && v6 !== null && v6.dhcp !== null && dstPort === DHCPV6_SERVER_PORT && (dst === v6.plan.dhcpServers || dst === v6.plan.routerLinkLocal)) {
      this.dhcp6Input(buf, udp.payloadOffset, udp.payloadLength, src, udp.srcPort, srcMac, nowMs);
      return;
    }
    if (this.dns !== null && dstPort === DNS_PORT && (dst === p.dns || (v6 !== null && (dst === v6.plan.dns || dst === v6.plan.dnsLinkLocal)))) {
      this.dnsInput(buf, udp.payloadOffset, udp.payloadLength, src, udp.srcPort, dst, srcMac);
      return;
    }
    if (this.relay === null || src === 0) {
      this.drops.add(Drop.UDP_UNHANDLED);
      return;
    }
    const payloadOff = udp.payloadOffset;
    const payloadLen = udp.payloadLength;
    const ipLen = off + len - ipOff;
    if (gsoSize === 0 || payloadLen <= gsoSize) {
      this.relay.input(buf, payloadOff, payloadLen, src, udp.srcPort, dst, dstPort, srcMac, ipOff, ipLen, nowMs);
      return;
    }
    // USO: the guest's kernel handed us several datagrams in one frame, each
    // gso_size bytes but the last; the host gets them as separate datagrams.
    this.stats.gsoSuperFrames++;
    const srcPort = udp.srcPort;
    for (let at = 0; at < payloadLen; at += gsoSize) {
      const n = Math.min(gsoSize, payloadLen - at);
      this.relay.input(buf, payloadOff + at, n, src, srcPort, dst, dstPort, srcMac, ipOff, ipLen, nowMs);
    }
  }

  private dnsInput(buf: Uint8Array, off: number, len: number, src: number, srcPort: number, dst: number, srcMac: number): void {
    this.stats.dnsQueries++;
    // The answer comes from the address asked, later: IPv6 ids must live until then.
    if (src < 0) {
      this.ids.acquire(src);
      this.ids.acquire(dst);
    }
    const done = (): void => {
      if (src >= 0) return;
      this.ids.release(src);
      this.ids.release(dst);
    };
    // The forwarder copies the query before its first await; the reply comes later.
    this.dns!.query(buf.subarray(off, off + len), 'udp').then(
      (reply) => {
        if (reply === null) this.drops.add(Drop.DNS_DROPPED);
        else {
          this.stats.dnsReplies++;
          this.output.send(dst, DNS_PORT, src, srcPort, srcMac, reply, 0, reply.length);
        }
        done();
        this.kick();
      },
      () => {
        this.drops.add(Drop.DNS_DROPPED);
        done();
      },
    );
  }

  /** DHCPv6 (stateless): the reply goes from the router's link-local address to the client (RFC 8415 §18.3). */
  private dhcp6Input(buf: Uint8Array, off: number, len: number, src: number, srcPort: number, srcMac: number, nowMs: number): void {
    const v6 = this.v6!;
    const ip = v6.ip;
    const at = ip.begin(UDP_HEADER_LEN + DHCP_REPLY_MAX);
    const n = v6.dhcp!.handle(buf, off, len, ip.buf, at + UDP_HEADER_LEN, nowMs);
    if (n === 0) return;
    const h = this.header6;
    h.srcPort = DHCPV6_SERVER_PORT;
    h.dstPort = srcPort === 0 ? DHCPV6_CLIENT_PORT : srcPort;
    h.payloadLength = n;
    emitUdpHeader(h, ip.buf, at);
    fillUdpChecksum(ip.buf, at, this.ids.addrSum(v6.plan.routerLinkLocal, src));
    ip.send(v6.plan.routerLinkLocal, src, IpProtocol.UDP, 255, srcMac, UDP_HEADER_LEN + n);
  }

  private dhcpInput(payloadOff: number, payloadLen: number, buf: Uint8Array, nowMs: number): void {
    const at = this.ip.begin(UDP_HEADER_LEN + DHCP_REPLY_MAX);
    const n = this.dhcp!.handle(buf, payloadOff, payloadLen, this.ip.buf, at + UDP_HEADER_LEN, nowMs);
    if (n === 0) return; // the reservation is simply not committed
    this.header.payloadLength = n;
    emitUdpHeader(this.header, this.ip.buf, at);
    // libslirp always answers to the broadcast address from the gateway.
    fillUdpChecksumV4(this.ip.buf, at, this.plan.gateway, LIMITED_BROADCAST);
    const r = this.ip.repr;
    r.src = this.plan.gateway;
    r.dst = LIMITED_BROADCAST;
    r.protocol = IpProtocol.UDP;
    r.ttl = 255;
    r.tos = 0x10;
    r.dontFragment = false;
    this.ip.finish(MAC_BROADCAST, UDP_HEADER_LEN + n);
  }
}
