/**
 * The guest-visible IPv6 addresses, slirp4netns's fixed plan (its --cidr is
 * IPv4 only):
 *
 *   fd00::/64   the guest's prefix, announced in Router Advertisements (SLAAC)
 *   fd00::2     gateway; the host's ::1 unless host loopback is disabled
 *   fd00::3     DNS
 *   fe80::2     the router's link-local address: RAs come from it, default routes point at it
 *   fe80::3     DNS's link-local address (libslirp answers NDP for it too)
 *
 * All of them answer from the gateway's MAC (52:55:0a:00:02:02 by default):
 * one router on the link, as the guest's neighbour cache sees it.
 */
import { eui64FromMac, parseIpv6 } from '../wire/ipv6-address.js';
import type { Ipv6Ids } from './ipv6-ids.js';

export const IPV6_PREFIX_TEXT = 'fd00::';
export const IPV6_PREFIX_LENGTH = 64;

export interface Ipv6Plan {
  /** The prefix's 16 bytes (fd00::). */
  prefix: Uint8Array;
  prefixLength: number;
  /** Ids (src/ip/ipv6-ids.ts), interned for the stack's lifetime. */
  gateway: number;
  dns: number;
  routerLinkLocal: number;
  dnsLinkLocal: number;
  /** The host's ::1, where the gateway leads. */
  hostLoopback: number;
  /** All-nodes multicast ff02::1, where unsolicited RAs go. */
  allNodes: number;
  /** All_DHCP_Relay_Agents_and_Servers ff02::1:2, where DHCPv6 clients send (RFC 8415 §7.1). */
  dhcpServers: number;
  /** The MAC every one of our IPv6 addresses answers from. */
  routerMac: number;
}

export function ipv6Plan(ids: Ipv6Ids, routerMac: number): Ipv6Plan {
  const id = (text: string): number => ids.intern(parseIpv6(text)!);
  return {
    prefix: parseIpv6(IPV6_PREFIX_TEXT)!,
    prefixLength: IPV6_PREFIX_LENGTH,
    gateway: id('fd00::2'),
    dns: id('fd00::3'),
    routerLinkLocal: id('fe80::2'),
    dnsLinkLocal: id('fe80::3'),
    hostLoopback: id('::1'),
    allNodes: id('ff02::1'),
    dhcpServers: id('ff02::1:2'),
    routerMac,
  };
}

/**
 * The address SLAAC gives a guest with this MAC in our prefix (modified
 * EUI-64, RFC 4862 §5.5.3 with RFC 4291 App. A), which --configure assigns
 * so that the address is the same with or without it.
 */
export function slaacAddress(prefix: Uint8Array, mac: number): Uint8Array {
  const out = new Uint8Array(16);
  out.set(prefix.subarray(0, 8), 0);
  eui64FromMac(mac, out, 0);
  return out;
}
