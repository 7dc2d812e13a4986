/**
 * ICMP errors towards the guest: what it would get from a router when the
 * host side refuses or cannot reach a destination (compat spec §4.6).
 * The error quotes the offending datagram's IP header and the first bytes of
 * its payload (RFC 792; RFC 1812 §4.3.2.3 allows up to 576 bytes in all) and
 * comes from the gateway, the router of the guest's network.
 */
import type { AddressPlan } from './address-plan.js';
import type { Ipv4Output } from './ipv4-output.js';
import { emitIcmpv4Error, ICMPV4_ERROR_MAX_QUOTED, ICMPV4_HEADER_LEN, Icmpv4Type } from '../wire/icmpv4.js';
import { IpProtocol } from '../wire/ipv4.js';

export interface IcmpErrorStats {
  unreachableSent: number;
}

export class IcmpErrors {
  readonly stats: IcmpErrorStats = { unreachableSent: 0 };

  constructor(
    private readonly plan: AddressPlan,
    private readonly ip: Ipv4Output,
  ) {}

  /**
   * Destination unreachable with `code` about the datagram in `quoted`
   * (from its IP header on), sent to `guestIp` at `guestMac`.
   */
  unreachable(code: number, quoted: Uint8Array, quotedOff: number, quotedLen: number, guestIp: number, guestMac: number): void {
    const n = Math.min(quotedLen, ICMPV4_ERROR_MAX_QUOTED);
    const at = this.ip.begin(ICMPV4_HEADER_LEN + n);
    const len = emitIcmpv4Error(Icmpv4Type.DEST_UNREACHABLE, code, 0, quoted, quotedOff, n, this.ip.buf, at);
    const r = this.ip.repr;
    r.src = this.plan.gateway;
    r.dst = guestIp;
    r.protocol = IpProtocol.ICMP;
    r.ttl = 64;
    r.tos = 0;
    r.dontFragment = false;
    this.ip.finish(guestMac, len);
    this.stats.unreachableSent++;
  }
}
