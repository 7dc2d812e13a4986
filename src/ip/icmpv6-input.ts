/**
 * ICMPv6 from the guest (RFC 4443, RFC 4861): the router's side of Neighbor
 * Discovery, Router Solicitations, and echo for our own addresses.
 *
 *   NS for fe80::2, fd00::2, fe80::3, fd00::3   → NA (Router, Solicited, Override),
 *                                                 TLLA = the router MAC
 *   NS from :: (DAD) for one of those           → NA to ff02::1, not Solicited
 *                                                 (RFC 4861 §7.2.4): the guest must
 *                                                 not take our address
 *   NS for anything else (the guest's own DAD,  → nothing: a router answers only for
 *   other hosts)                                  itself
 *   RS                                          → RA at once (router-advertiser.ts)
 *   NA, and NS/RS with a source link-layer      → the guest's address → MAC is learnt
 *   option
 *   echo request to one of our addresses        → echo reply (hop limit 255, as ICMPv4)
 *   MLD reports and queries                     → ignored (counted, not dropped: the
 *                                                 guest's kernel sends them for every
 *                                                 group it joins; we forward no multicast)
 *   everything else (errors, redirects, RAs)    → dropped, counted as icmpv6_unhandled
 *
 * NDP messages are validated as RFC 4861 §6.1 and §7.1 ask (hop limit 255,
 * code 0, lengths, options, address rules; wire/ndp.ts): failures count as
 * ndp_invalid. The checksum is verified for everything unless the link
 * vouched for it (NEEDS_CSUM).
 *
 * Echo requests to other destinations go to the relay (src/nat/icmp-nat.ts,
 * ping sockets) when one is given.
 */
import type { NeighbourTable } from '../ethernet/neighbours.js';
import { Drop, type DropCounters } from '../stats.js';
import { Wire } from '../wire/errors.js';
import { emitIcmpv6Echo, ICMPV6_HEADER_LEN, Icmpv6Type, Icmpv6View } from '../wire/icmpv6.js';
import { IpProtocol } from '../wire/ipv4.js';
import { IPV6_DST_OFFSET, IPV6_SRC_OFFSET } from '../wire/ipv6.js';
import { multicastMac6, solicitedNode6 } from '../wire/ipv6-address.js';
import {
  emitNeighborAdvertisement,
  emitNeighborSolicitation,
  NaFlag,
  NDP_HOP_LIMIT,
  NDP_LLA_OPTION_LEN,
  NDP_NA_LEN,
  NDP_NS_LEN,
  NdpIp,
  NdpView,
  ndpIpClasses,
  newNeighborAdvertisementRepr,
  newNeighborSolicitationRepr,
  newRouterSolicitationRepr,
  NO_MAC,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  parseRouterSolicitation,
} from '../wire/ndp.js';
import type { Ipv6Ids } from './ipv6-ids.js';
import type { Icmpv6Handler } from './ipv6-input.js';
import type { Ipv6Output } from './ipv6-output.js';
import type { Ipv6Plan } from './ipv6-plan.js';
import type { RouterAdvertiser } from './router-advertiser.js';

/** Relays echo requests to other destinations (src/nat/icmp-nat.ts). */
export interface EchoRelay6 {
  echo6(buf: Uint8Array, ipOff: number, ipLen: number, off: number, len: number, src: number, dst: number, ident: number, srcMac: number, nowMs: number): void;
}

export interface Icmpv6InputOptions {
  plan: Ipv6Plan;
  ids: Ipv6Ids;
  ip: Ipv6Output;
  drops: DropCounters;
  neighbours: NeighbourTable;
  advertiser: RouterAdvertiser;
  relay?: EchoRelay6 | null;
}

export interface Icmpv6Stats {
  echoRequests: number;
  echoReplies: number;
  neighbourSolicitations: number;
  neighbourAdvertisementsSent: number;
  routerSolicitations: number;
  /** Solicitations we sent to find a guest address (port forwards). */
  solicitationsSent: number;
  mldIgnored: number;
}

export class Icmpv6Input implements Icmpv6Handler {
  readonly stats: Icmpv6Stats = {
    echoRequests: 0,
    echoReplies: 0,
    neighbourSolicitations: 0,
    neighbourAdvertisementsSent: 0,
    routerSolicitations: 0,
    solicitationsSent: 0,
    mldIgnored: 0,
  };
  private readonly view = new Icmpv6View();
  private readonly ndp = new NdpView();
  private readonly rs = newRouterSolicitationRepr();
  private readonly ns = newNeighborSolicitationRepr();
  private readonly na = newNeighborAdvertisementRepr();
  private readonly scratch = new Uint8Array(16);

  constructor(private readonly o: Icmpv6InputOptions) {}

  input(buf: Uint8Array, ipOff: number, l4Off: number, l4Len: number, src: number, dst: number, srcMac: number, hopLimit: number, checksumPartial: boolean, nowMs: number): void {
    const o = this.o;
    const icmp = this.view.wrap(buf, l4Off, l4Len);
    if (icmp.check() !== Wire.OK) {
      o.drops.add(Drop.ICMPV6_MALFORMED);
      return;
    }
    if (!checksumPartial && !icmp.verifyChecksum(o.ids.addrSum(src, dst))) {
      o.drops.add(Drop.ICMPV6_BAD_CHECKSUM);
      return;
    }
    switch (icmp.type) {
      case Icmpv6Type.ECHO_REQUEST:
        this.echo(buf, ipOff, l4Off, l4Len, src, dst, srcMac, icmp.code, nowMs);
        return;
      case Icmpv6Type.NEIGHBOR_SOLICITATION:
        this.neighbourSolicitation(buf, ipOff, l4Off, l4Len, src, srcMac, hopLimit);
        return;
      case Icmpv6Type.NEIGHBOR_ADVERTISEMENT:
        this.neighbourAdvertisement(buf, ipOff, l4Off, l4Len, srcMac, hopLimit);
        return;
      case Icmpv6Type.ROUTER_SOLICITATION:
        this.routerSolicitation(buf, ipOff, l4Off, l4Len, src, srcMac, hopLimit);
        return;
      case Icmpv6Type.MLD_QUERY:
      case Icmpv6Type.MLD_REPORT:
      case Icmpv6Type.MLD_DONE:
      case Icmpv6Type.MLDV2_REPORT:
        this.stats.mldIgnored++;
        return;
      default:
        o.drops.add(Drop.ICMPV6_UNHANDLED);
    }
  }

  /** Asks the guest who has `ip` (an id): an NS to its solicited-node group (RFC 4861 §7.2.2). */
  solicit(ip: number): void {
    const { ids, plan, ip: out } = this.o;
    const target = ids.bytes(ip);
    solicitedNode6(target, 0, this.scratch, 0);
    const group = ids.id(this.scratch, 0);
    const at = out.begin(NDP_NS_LEN + NDP_LLA_OPTION_LEN);
    const n = emitNeighborSolicitation(target, 0, plan.routerMac, out.buf, at, ids.addrSum(plan.routerLinkLocal, group));
    out.send(plan.routerLinkLocal, group, IpProtocol.ICMPV6, NDP_HOP_LIMIT, multicastMac6(this.scratch, 0), n);
    this.stats.solicitationsSent++;
  }

  private ours(id: number): boolean {
    const p = this.o.plan;
    return id === p.gateway || id === p.dns || id === p.routerLinkLocal || id === p.dnsLinkLocal;
  }

  private echo(buf: Uint8Array, ipOff: number, off: number, len: number, src: number, dst: number, srcMac: number, code: number, nowMs: number): void {
    const o = this.o;
    const icmp = this.view;
    if (code !== 0) {
      o.drops.add(Drop.ICMPV6_UNHANDLED);
      return;
    }
    if (!this.ours(dst)) {
      if (o.relay === undefined || o.relay === null) o.drops.add(Drop.ICMPV6_UNHANDLED);
      else o.relay.echo6(buf, ipOff, off + len - ipOff, off, len, src, dst, icmp.ident, srcMac, nowMs);
      return;
    }
    this.stats.echoRequests++;
    const at = o.ip.begin(len);
    emitIcmpv6Echo(Icmpv6Type.ECHO_REPLY, icmp.ident, icmp.seq, buf, off + ICMPV6_HEADER_LEN, len - ICMPV6_HEADER_LEN, o.ip.buf, at, o.ids.addrSum(dst, src));
    o.ip.send(dst, src, IpProtocol.ICMPV6, 255, srcMac, len);
    this.stats.echoReplies++;
  }

  private neighbourSolicitation(buf: Uint8Array, ipOff: number, off: number, len: number, src: number, srcMac: number, hopLimit: number): void {
    const o = this.o;
    const ns = this.ns;
    const classes = ndpIpClasses(buf, ipOff + IPV6_SRC_OFFSET, ipOff + IPV6_DST_OFFSET);
    if (parseNeighborSolicitation(this.ndp.wrap(buf, off, len), hopLimit, classes, ns) !== Wire.OK) {
      o.drops.add(Drop.NDP_INVALID);
      return;
    }
    this.stats.neighbourSolicitations++;
    const dad = (classes & NdpIp.SRC_UNSPECIFIED) !== 0;
    if (!dad && ns.sourceMac !== NO_MAC) o.neighbours.learn(src, ns.sourceMac);
    const target = o.ids.id(ns.target, 0);
    if (!this.ours(target)) return;
    // RFC 4861 §7.2.4: to the soliciting address, Solicited; for DAD, to all nodes, not Solicited.
    const dst = dad ? o.plan.allNodes : src;
    const dstMac = dad ? multicastMac6(o.ids.bytes(o.plan.allNodes), 0) : ns.sourceMac !== NO_MAC ? ns.sourceMac : srcMac;
    const flags = NaFlag.ROUTER | NaFlag.OVERRIDE | (dad ? 0 : NaFlag.SOLICITED);
    const at = o.ip.begin(NDP_NA_LEN + NDP_LLA_OPTION_LEN);
    const n = emitNeighborAdvertisement(flags, ns.target, 0, o.plan.routerMac, o.ip.buf, at, o.ids.addrSum(target, dst));
    o.ip.send(target, dst, IpProtocol.ICMPV6, NDP_HOP_LIMIT, dstMac, n);
    this.stats.neighbourAdvertisementsSent++;
  }

  private neighbourAdvertisement(buf: Uint8Array, ipOff: number, off: number, len: number, srcMac: number, hopLimit: number): void {
    const o = this.o;
    const na = this.na;
    const classes = ndpIpClasses(buf, ipOff + IPV6_SRC_OFFSET, ipOff + IPV6_DST_OFFSET);
    if (parseNeighborAdvertisement(this.ndp.wrap(buf, off, len), hopLimit, classes, na) !== Wire.OK) {
      o.drops.add(Drop.NDP_INVALID);
      return;
    }
    const target = o.ids.id(na.target, 0);
    if (this.ours(target)) return; // a guest claiming our address changes nothing here
    o.neighbours.learn(target, na.targetMac !== NO_MAC ? na.targetMac : srcMac);
  }

  private routerSolicitation(buf: Uint8Array, ipOff: number, off: number, len: number, src: number, srcMac: number, hopLimit: number): void {
    const o = this.o;
    const rs = this.rs;
    const classes = ndpIpClasses(buf, ipOff + IPV6_SRC_OFFSET, ipOff + IPV6_DST_OFFSET);
    if (parseRouterSolicitation(this.ndp.wrap(buf, off, len), hopLimit, classes, rs) !== Wire.OK) {
      o.drops.add(Drop.NDP_INVALID);
      return;
    }
    this.stats.routerSolicitations++;
    const unspecified = (classes & NdpIp.SRC_UNSPECIFIED) !== 0;
    if (!unspecified && rs.sourceMac !== NO_MAC) o.neighbours.learn(src, rs.sourceMac);
    o.advertiser.solicited(unspecified ? null : src, unspecified ? NO_MAC : rs.sourceMac !== NO_MAC ? rs.sourceMac : srcMac);
  }
}

