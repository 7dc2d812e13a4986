/**
 * UDP from the guest. For now the only service is the DHCP server on the
 * gateway (port 67); datagrams for anything else are counted until the UDP
 * relay exists.
 */
import type { AddressPlan } from '../ip/address-plan.js';
import type { Ipv4Output } from '../ip/ipv4-output.js';
import { Drop, type DropCounters } from '../stats.js';
import { Wire } from '../wire/errors.js';
import { IpProtocol } from '../wire/ipv4.js';
import { emitUdpHeader, fillUdpChecksumV4, UDP_HEADER_LEN, UdpView, type UdpRepr } from '../wire/udp.js';
import { MAC_BROADCAST } from '../wire/ethernet.js';

const DHCP_SERVER_PORT = 67;
const DHCP_CLIENT_PORT = 68;
const LIMITED_BROADCAST = 0xffff_ffff;
/** Room for a DHCP reply: the 236-byte fixed part, the cookie and our options. */
const DHCP_REPLY_MAX = 576;

/** What the stack needs from a DHCP server (src/dhcp/server.ts). */
export interface DhcpService {
  /** Handles one message; writes the reply at out[outOff] and returns its length (0: none). */
  handle(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, nowMs: number): number;
}

export class UdpInput {
  private readonly view = new UdpView();
  private readonly header: UdpRepr = { srcPort: DHCP_SERVER_PORT, dstPort: DHCP_CLIENT_PORT, payloadLength: 0 };

  constructor(
    private readonly plan: AddressPlan,
    private readonly ip: Ipv4Output,
    private readonly drops: DropCounters,
    private readonly dhcp: DhcpService | null,
  ) {}

  input(buf: Uint8Array, off: number, len: number, src: number, dst: number, checksumPartial: boolean, nowMs: number): void {
    const udp = this.view.wrap(buf, off, len);
    if (udp.check() !== Wire.OK) {
      this.drops.add(Drop.UDP_MALFORMED);
      return;
    }
    if (!checksumPartial && !udp.verifyChecksumV4(src, dst)) {
      this.drops.add(Drop.UDP_BAD_CHECKSUM);
      return;
    }
    const toGateway = dst === LIMITED_BROADCAST || dst === this.plan.gateway || dst === this.plan.broadcast;
    if (this.dhcp !== null && udp.dstPort === DHCP_SERVER_PORT && toGateway) {
      this.dhcpInput(udp.payloadOffset, udp.payloadLength, buf, nowMs);
      return;
    }
    this.drops.add(Drop.UDP_UNHANDLED);
  }

  private dhcpInput(payloadOff: number, payloadLen: number, buf: Uint8Array, nowMs: number): void {
    const at = this.ip.begin(UDP_HEADER_LEN + DHCP_REPLY_MAX);
    const n = this.dhcp!.handle(buf, payloadOff, payloadLen, this.ip.buf, at + UDP_HEADER_LEN, nowMs);
    if (n === 0) return; // the reservation is simply not committed
    this.header.payloadLength = n;
    emitUdpHeader(this.header, this.ip.buf, at);
    // libslirp always answers to the broadcast address from the gateway (compat spec §4.3).
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
