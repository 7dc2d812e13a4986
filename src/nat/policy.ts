/**
 * Where a guest's connection or datagram may go on the host (slirp4netns 1.2's rules, with the differences below).
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
 *
 * IPv6 destinations (negative ids, src/ip/ipv6-ids.ts), the same roles:
 *
 *   fd00::2, fe80::2                   → the host's ::1, same port, unless host
 *                                        loopback is disabled (then refused,
 *                                        administratively prohibited)
 *   fd00::3, fe80::3, port 53          → the DNS forwarder (other ports: port unreachable)
 *   ::1, ::, IPv4-mapped and           → dropped: never valid on a wire (RFC 4291
 *   IPv4-compatible, multicast           §2.5.2–2.5.5, RFC 4038 §4.2), and the
 *                                        mapped ones would reach the host's IPv4
 *                                        loopback behind every check above
 *   the rest of fd00::/64, fe80::/10   → unreachable (address unreachable): nobody lives there
 *   anything else                      → a real host socket to that address
 *
 * IPv6 refusals are expressed with the IPv4 codes too (IcmpErrors maps them
 * to ICMPv6: NET → no route, HOST → address unreachable, PORT → port
 * unreachable, ADMIN_PROHIBITED → administratively prohibited).
 *
 * Then the egress policy (src/policy/, when one is set): every destination
 * that would reach a host socket, the host-loopback mapping included, is
 * checked against it by the address the guest named, with the protocol and
 * port; a denial is a refusal with administratively prohibited (ICMP type 3
 * code 13, ICMPv6 type 1 code 1), so the guest's connect fails at once.
 * usernet's own services (DNS at net+3 and fd00::3, and everything the
 * stack answers itself) never get here, and are not subject to it.
 */
import type { AddressPlan } from '../ip/address-plan.js';
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import type { Ipv6Plan } from '../ip/ipv6-plan.js';
import { Icmpv4Unreach } from '../wire/icmpv4.js';
import { newPolicyDecision, type EgressPolicy, type Ipv6Bytes } from '../policy/egress-policy.js';
import { Proto } from '../policy/rules.js';
import { ipv4ToString } from '../wire/ipv4-address.js';
import { isLinkLocal6, isLoopback6, isMulticast6, isUnspecified6, isV4Compatible6, isV4Mapped6, prefixMatch6 } from '../wire/ipv6-address.js';

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
   * With HOST: the address to reach on the host (host order, or an IPv6 id).
   * A number, as the datagram relays send to it per packet; the TCP relay
   * formats it once per connection.
   */
  hostIp: number;
  /** With REFUSE: the ICMP unreachable code. */
  icmpCode: number;
}

const LIMITED_BROADCAST = 0xffff_ffff;
const LOOPBACK = 0x7f00_0001;

/** What the policy needs to decide for IPv6 destinations. */
export interface Ipv6Context {
  ids: Ipv6Ids;
  plan: Ipv6Plan;
}

/** For IPv4-only stacks: the egress check never asks it for IPv6 bytes. */
const NO_IDS: Ipv6Bytes = {
  bytes(): Uint8Array {
    throw new Error('AddressPolicy: an IPv6 id without IPv6');
  },
};

export class AddressPolicy {
  /** The egress policy, or null; replaced whole (Stack.setPolicy), never changed in place. */
  egress: EgressPolicy | null = null;
  /** --debug: one line per denial. */
  debugLog: ((message: string) => void) | undefined = undefined;
  private readonly decision = newPolicyDecision();

  constructor(
    private readonly plan: AddressPlan,
    private readonly hostLoopback: boolean,
    private readonly dnsEnabled: boolean,
    private readonly v6: Ipv6Context | null = null,
  ) {}

  /**
   * Decides for a new guest flow to `dst` (IPv4 u32 or IPv6 id) and `port`
   * over `proto`; fills and returns `out`.
   */
  resolve(dst: number, port: number, out: Destination, proto: Proto, nowMs: number): Destination {
    this.route(dst, port, out);
    const egress = this.egress;
    if (out.verdict !== Verdict.HOST || egress === null) return out;
    if (!egress.check(proto, dst, port, nowMs, this.v6?.ids ?? NO_IDS, this.decision).allowed) {
      out.verdict = Verdict.REFUSE;
      out.hostIp = 0;
      out.icmpCode = Icmpv4Unreach.ADMIN_PROHIBITED;
      if (this.debugLog !== undefined) this.logDenial(egress, proto, dst, port);
    }
    return out;
  }

  private logDenial(egress: EgressPolicy, proto: Proto, dst: number, port: number): void {
    const rule = this.decision.rule;
    const text = rule < 0 ? `default ${egress.defaultAction}` : egress.rules()[rule + 1];
    const addr = dst < 0 ? `[${this.v6!.ids.format(dst)}]` : ipv4ToString(dst);
    const name = proto === Proto.TCP ? 'tcp' : proto === Proto.UDP ? 'udp' : 'icmp';
    this.debugLog!(`egress policy: ${name} to ${addr}${proto === Proto.ICMP ? '' : `:${port}`} denied by "${text}"`);
  }

  /** Where `dst` goes, before the egress policy. */
  private route(dst: number, port: number, out: Destination): Destination {
    if (dst < 0) return this.resolve6(dst, port, out);
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

  private resolve6(dst: number, port: number, out: Destination): Destination {
    out.hostIp = 0;
    out.icmpCode = Icmpv4Unreach.HOST;
    const v6 = this.v6;
    if (v6 === null) {
      out.verdict = Verdict.DROP;
      return out;
    }
    const p = v6.plan;
    if (dst === p.gateway || dst === p.routerLinkLocal) {
      if (this.hostLoopback) {
        out.verdict = Verdict.HOST;
        out.hostIp = p.hostLoopback;
      } else {
        out.verdict = Verdict.REFUSE;
        out.icmpCode = Icmpv4Unreach.ADMIN_PROHIBITED;
      }
      return out;
    }
    if (dst === p.dns || dst === p.dnsLinkLocal) {
      out.verdict = this.dnsEnabled && port === 53 ? Verdict.DNS : Verdict.REFUSE;
      out.icmpCode = this.dnsEnabled ? Icmpv4Unreach.PORT : Icmpv4Unreach.HOST;
      return out;
    }
    const b = v6.ids.bytes(dst);
    if (isMulticast6(b, 0) || isUnspecified6(b, 0) || isLoopback6(b, 0) || isV4Mapped6(b, 0) || isV4Compatible6(b, 0)) {
      out.verdict = Verdict.DROP;
      return out;
    }
    if (isLinkLocal6(b, 0) || prefixMatch6(b, 0, p.prefix, 0, p.prefixLength)) {
      out.verdict = Verdict.REFUSE;
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
