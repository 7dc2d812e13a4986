/**
 * ICMP errors towards the guest: what it would get from a router when the
 * host side refuses or cannot reach a destination (as slirp4netns 1.2 answers), for
 * either family.
 *
 * IPv4 (RFC 792): the error quotes the offending datagram's IP header and the
 * first bytes of its payload (RFC 1812 §4.3.2.3 allows up to 576 bytes in
 * all) and comes from the gateway, the router of the guest's network.
 *
 * IPv6 (RFC 4443 §2.4, §3.1): the error quotes as much of the offending
 * packet as keeps it within the minimum MTU (1280 bytes) and comes from the
 * router's address in the scope of the guest's source: fe80::2 for a
 * link-local source, fd00::2 otherwise. Callers speak the IPv4 codes (the
 * policy and the relays decide once for both families); they are mapped here.
 *
 * Rate limiting (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8): a token bucket shared
 * by both families, generous enough that a guest trying many unreachable
 * destinations at once still hears about each at once (the point of an ICMP
 * error is that it does not wait for a timeout), tight enough that a guest
 * cannot turn us into an error generator at link speed.
 */
import type { AddressPlan } from './address-plan.js';
import type { Ipv4Output } from './ipv4-output.js';
import type { Ipv6Ids } from './ipv6-ids.js';
import type { Ipv6Output } from './ipv6-output.js';
import type { Ipv6Plan } from './ipv6-plan.js';
import { emitIcmpv4Error, ICMPV4_ERROR_MAX_QUOTED, ICMPV4_HEADER_LEN, Icmpv4Type, Icmpv4Unreach } from '../wire/icmpv4.js';
import { emitIcmpv6Error, ICMPV6_ERROR_MAX_QUOTED, ICMPV6_HEADER_LEN, Icmpv6Type, Icmpv6Unreach } from '../wire/icmpv6.js';
import { IpProtocol } from '../wire/ipv4.js';
import { isLinkLocal6 } from '../wire/ipv6-address.js';

export interface IcmpErrorStats {
  unreachableSent: number;
  /** ICMPv6 errors sent (destination unreachable, packet too big). */
  icmpv6ErrorsSent: number;
  /** Errors not sent because the rate limit was reached. */
  rateLimited: number;
}

/** The IPv6 side: where the errors' addresses come from and how they go out. */
export interface IcmpErrorsV6 {
  ids: Ipv6Ids;
  plan: Ipv6Plan;
  ip: Ipv6Output;
}

/** Tokens per second and the bucket's depth. */
const RATE_PER_S = 1000;
const BURST = 200;

export class IcmpErrors {
  readonly stats: IcmpErrorStats = { unreachableSent: 0, icmpv6ErrorsSent: 0, rateLimited: 0 };
  private tokens = BURST;
  private refilledAtMs = -Infinity;

  constructor(
    private readonly plan: AddressPlan,
    private readonly ip: Ipv4Output,
    private readonly v6: IcmpErrorsV6 | null,
    private readonly now: () => number,
  ) {}

  /**
   * Destination unreachable with the (IPv4) `code` about the datagram in
   * `quoted` (from its IP header on), sent to `guestIp` at `guestMac`;
   * either family, by `guestIp`.
   */
  unreachable(code: number, quoted: Uint8Array, quotedOff: number, quotedLen: number, guestIp: number, guestMac: number): void {
    if (!this.take()) return;
    if (guestIp < 0) {
      this.send6(Icmpv6Type.DEST_UNREACHABLE, unreachCode6(code), 0, quoted, quotedOff, quotedLen, guestIp, guestMac);
      return;
    }
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

  /** An ICMPv6 error of any type (`param`: the MTU of Packet Too Big, the pointer of Parameter Problem). */
  error6(type: number, code: number, param: number, quoted: Uint8Array, quotedOff: number, quotedLen: number, guestIp: number, guestMac: number): void {
    if (this.take()) this.send6(type, code, param, quoted, quotedOff, quotedLen, guestIp, guestMac);
  }

  private send6(type: number, code: number, param: number, quoted: Uint8Array, quotedOff: number, quotedLen: number, guestIp: number, guestMac: number): void {
    const v6 = this.v6;
    if (v6 === null) return;
    const src = isLinkLocal6(v6.ids.bytes(guestIp), 0) ? v6.plan.routerLinkLocal : v6.plan.gateway;
    const n = Math.min(quotedLen, ICMPV6_ERROR_MAX_QUOTED);
    const at = v6.ip.begin(ICMPV6_HEADER_LEN + n);
    const len = emitIcmpv6Error(type, code, param, quoted, quotedOff, n, v6.ip.buf, at, v6.ids.addrSum(src, guestIp));
    v6.ip.send(src, guestIp, IpProtocol.ICMPV6, 64, guestMac, len);
    this.stats.icmpv6ErrorsSent++;
  }

  private take(): boolean {
    const now = this.now();
    if (now > this.refilledAtMs) {
      this.tokens = Math.min(BURST, this.tokens + ((now - this.refilledAtMs) * RATE_PER_S) / 1000);
      this.refilledAtMs = now;
    }
    if (this.tokens < 1) {
      this.stats.rateLimited++;
      return false;
    }
    this.tokens--;
    return true;
  }
}

/** The ICMPv6 Destination Unreachable code (RFC 4443 §3.1) for an IPv4 one (RFC 792, RFC 1812). */
function unreachCode6(code4: number): number {
  switch (code4) {
    case Icmpv4Unreach.HOST:
      return Icmpv6Unreach.ADDRESS;
    case Icmpv4Unreach.PORT:
      return Icmpv6Unreach.PORT;
    case Icmpv4Unreach.ADMIN_PROHIBITED:
    case Icmpv4Unreach.NET_PROHIBITED:
    case Icmpv4Unreach.HOST_PROHIBITED:
      return Icmpv6Unreach.ADMIN_PROHIBITED;
    default:
      return Icmpv6Unreach.NO_ROUTE;
  }
}
