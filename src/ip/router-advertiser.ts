/**
 * Router Advertisements for the guest (RFC 4861 §6.2, RFC 4862, RFC 8106).
 *
 * What the guest learns from them:
 *   - a default router, fe80::2, for 1800 s (libslirp's router lifetime);
 *   - the prefix fd00::/64, on-link and for SLAAC (valid 86400 s, preferred
 *     14400 s, libslirp's values);
 *   - the link MTU (the MTU option, which libslirp leaves out: a guest at
 *     MTU 65520 would otherwise keep IPv6 at its interface MTU anyway, but
 *     one whose interface says more than ours learns ours);
 *   - RDNSS fd00::3 whenever DNS is on (libslirp sends it only when the host
 *     has an IPv6 nameserver; our forwarder answers over IPv6 whatever the
 *     family of the host's resolvers);
 *   - a retransmission timer of 100 ms (RETRANS_TIMER_MS), so that DAD of
 *     the SLAAC address ends sooner;
 *   - O=1 when the stateless DHCPv6 server runs (RFC 8415 §18.2.6: "other
 *     configuration" there), M=0 (no stateful addresses).
 *
 * When: at once when the stack starts (the guest's interface may already be
 * up, as RootlessKit's is), then after 1, 2, 4, 8 and 16 s (RFC 4861
 * §6.2.4 allows a faster start than its 16 s maximum interval; a guest that
 * comes up a moment after us hears one within a second), then every 200 to
 * 600 s at random (libslirp's interval; §6.2.1's defaults); and in answer to
 * every valid Router Solicitation, unicast to the soliciting address when it
 * has one (§6.2.6 allows it), so SLAAC never waits for the next round.
 */
import type { TimerOwner, TimerQueue } from '../timer-queue.js';
import { IpProtocol } from '../wire/ipv4.js';
import { multicastMac6 } from '../wire/ipv6-address.js';
import { emitRouterAdvertisement, newNdpPrefix, NDP_HOP_LIMIT, NO_MAC, routerAdvertisementLength, type RouterAdvertisementRepr } from '../wire/ndp.js';
import type { Ipv6Ids } from './ipv6-ids.js';
import type { Ipv6Output } from './ipv6-output.js';
import type { Ipv6Plan } from './ipv6-plan.js';

export interface RouterAdvertiserOptions {
  plan: Ipv6Plan;
  ids: Ipv6Ids;
  ip: Ipv6Output;
  mtu: number;
  /** Announce fd00::3 (RDNSS). */
  dns: boolean;
  /** The stateless DHCPv6 server runs (the O flag). */
  dhcpv6: boolean;
  timers: TimerQueue<TimerOwner>;
  /** Random delay source in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

export interface RouterAdvertiserStats {
  unsolicited: number;
  solicited: number;
}

const ROUTER_LIFETIME_S = 1800;
const VALID_LIFETIME_S = 86400;
const PREFERRED_LIFETIME_S = 14400;
/** RFC 8106 §5.1: MaxRtrAdvInterval ≤ lifetime ≤ 2 × MaxRtrAdvInterval. */
const RDNSS_LIFETIME_S = 1200;
/**
 * The guest's NDP retransmission timer (RFC 4861 §6.3.4): one host and one
 * router on a virtual link answer in microseconds, and the kernel waits this
 * long after its DAD probe before the SLAAC address becomes usable (1 s by
 * default), so a short one brings IPv6 up sooner.
 */
const RETRANS_TIMER_MS = 100;
const INITIAL_DELAYS_MS = [1000, 2000, 4000, 8000, 16000];
const MIN_INTERVAL_MS = 200_000;
const MAX_INTERVAL_MS = 600_000;

export class RouterAdvertiser implements TimerOwner {
  timerDeadline = Infinity;
  readonly stats: RouterAdvertiserStats = { unsolicited: 0, solicited: 0 };
  private readonly repr: RouterAdvertisementRepr;
  private readonly length: number;
  private round = 0;
  private stopped = false;

  constructor(private readonly o: RouterAdvertiserOptions) {
    const prefix = newNdpPrefix();
    prefix.prefix.set(o.plan.prefix);
    prefix.prefixLength = o.plan.prefixLength;
    prefix.onLink = true;
    prefix.autonomous = true;
    prefix.validLifetime = VALID_LIFETIME_S;
    prefix.preferredLifetime = PREFERRED_LIFETIME_S;
    this.repr = {
      curHopLimit: 64,
      managed: false,
      other: o.dhcpv6,
      routerLifetime: ROUTER_LIFETIME_S,
      reachableTimeMs: 0,
      retransTimerMs: RETRANS_TIMER_MS,
      sourceMac: o.plan.routerMac,
      mtu: o.mtu,
      prefixes: [prefix],
      prefixCount: 1,
      rdnssLifetime: RDNSS_LIFETIME_S,
      rdnss: o.ids.bytes(o.plan.dns),
      rdnssCount: o.dns ? 1 : 0,
      dnsslLifetime: 0,
      dnssl: new Uint8Array(0),
      dnsslLength: 0,
    };
    this.length = routerAdvertisementLength(this.repr);
  }

  /** The first unsolicited RA, now, and the schedule of the next ones. */
  start(nowMs: number): void {
    this.onTimer(nowMs);
  }

  stop(): void {
    this.stopped = true;
    this.o.timers.schedule(this, Infinity);
  }

  onTimer(nowMs: number): void {
    if (this.stopped) return;
    this.toAllNodes();
    this.stats.unsolicited++;
    const delay =
      this.round < INITIAL_DELAYS_MS.length
        ? INITIAL_DELAYS_MS[this.round]!
        : MIN_INTERVAL_MS + Math.floor((this.o.random ?? Math.random)() * (MAX_INTERVAL_MS - MIN_INTERVAL_MS));
    this.round++;
    this.o.timers.schedule(this, nowMs + delay);
  }

  /** Answers a Router Solicitation from `src` (an id, or null for ::) at `mac`. */
  solicited(src: number | null, mac: number): void {
    if (this.stopped) return;
    if (src === null || mac === NO_MAC) this.toAllNodes();
    else this.send(src, mac);
    this.stats.solicited++;
  }

  private toAllNodes(): void {
    const all = this.o.plan.allNodes;
    this.send(all, multicastMac6(this.o.ids.bytes(all), 0));
  }

  private send(dst: number, dstMac: number): void {
    const { ids, ip, plan } = this.o;
    const at = ip.begin(this.length);
    const n = emitRouterAdvertisement(this.repr, ip.buf, at, ids.addrSum(plan.routerLinkLocal, dst));
    ip.send(plan.routerLinkLocal, dst, IpProtocol.ICMPV6, NDP_HOP_LIMIT, dstMac, n);
  }
}
