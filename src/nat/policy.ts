/**
 * Where a guest's connection or datagram may go on the host (compat spec §4.1).
 *
 *   net+2 (gateway), 255.255.255.255   → the host's 127.0.0.1, same port,
 *                                        unless host loopback is disabled
 *   127.0.0.0/8, 0.0.0.0/8             → as addressed (the host's loopback),
 *                                        unless host loopback is disabled
 *   net+3 (DNS), port 53               → the DNS forwarder (unless --disable-dns);
 *                                        other ports are unreachable, as in libslirp
 *   the rest of the guest subnet,      → unreachable: nobody lives there, and a
 *   its broadcast, multicast, class E    host socket must never carry such traffic
 *                                        onto the host's own networks
 *   anything else                      → a real host socket to that address
 *
 * Refusals carry the ICMP destination-unreachable code the guest should see:
 * net unreachable for the gateway with loopback disabled (what slirp4netns
 * answers, and what its own test greps for), host unreachable inside the subnet.
 */
import type { AddressPlan } from '../ip/address-plan.js';
import { Icmpv4Unreach } from '../wire/icmpv4.js';

export const Verdict = {
  HOST: 0,
  REFUSE: 1,
  /** Silently dropped (multicast and broadcast destinations of unicast protocols). */
  DROP: 2,
  /** net+3:53: served by the DNS forwarder, not a host socket. */
  DNS: 3,
} as const;

export interface Destination {
  verdict: (typeof Verdict)[keyof typeof Verdict];
  /**
   * With HOST: the address to reach on the host (host order). A number, as
   * the datagram relays send to it per packet; the TCP relay formats it once
   * per connection.
   */
  hostIp: number;
  /** With REFUSE: the ICMP unreachable code. */
  icmpCode: number;
}

const LIMITED_BROADCAST = 0xffff_ffff;
const LOOPBACK = 0x7f00_0001;

export class AddressPolicy {
  constructor(
    private readonly plan: AddressPlan,
    private readonly hostLoopback: boolean,
    private readonly dnsEnabled: boolean,
  ) {}

  /** Decides for a guest destination; fills and returns `out`. */
  resolve(dst: number, port: number, out: Destination): Destination {
    const p = this.plan;
    out.hostIp = 0;
    out.icmpCode = Icmpv4Unreach.NET;
    if (dst === p.gateway || dst === LIMITED_BROADCAST) {
      return this.loopback(LOOPBACK, out);
    }
    const top = dst >>> 24;
    if (top === 127 || top === 0) return this.loopback(dst, out);
    if (dst === p.dns) {
      out.verdict = this.dnsEnabled && port === 53 ? Verdict.DNS : Verdict.REFUSE;
      return out;
    }
    if (top >= 224) {
      out.verdict = Verdict.DROP;
      return out;
    }
    if (((dst & p.netmask) >>> 0) === p.network) {
      out.verdict = dst === p.broadcast || dst === p.network ? Verdict.DROP : Verdict.REFUSE;
      out.icmpCode = Icmpv4Unreach.HOST;
      return out;
    }
    out.verdict = Verdict.HOST;
    out.hostIp = dst;
    return out;
  }

  private loopback(ip: number, out: Destination): Destination {
    if (this.hostLoopback) {
      out.verdict = Verdict.HOST;
      out.hostIp = ip;
    } else {
      out.verdict = Verdict.REFUSE;
      out.icmpCode = Icmpv4Unreach.NET;
    }
    return out;
  }
}
