/**
 * The stack options both faces of the command build the same way: the
 * slirp4netns grammar (main.ts) and run mode (run-mode.ts).
 */
import { addressPlan, type AddressPlan, type Link, type StackOptions } from '../index.js';
import type { TapConfigure } from '../link/tap.js';
import type { NativeConfigure6 } from '../link/native.js';
import { ipv4ToString } from '../wire/ipv4-address.js';
import { parseIpv6 } from '../wire/ipv6-address.js';
import { IPV6_PREFIX_LENGTH, IPV6_PREFIX_TEXT } from '../ip/ipv6-plan.js';

export interface CliNetworkSettings {
  cidr: { network: number; prefixLength: number };
  mtu: number;
  disableHostLoopback: boolean;
  outboundAddr: string | null;
  /** -6 / run mode's default. */
  enableIpv6: boolean;
  outboundAddr6: string | null;
  disableDns: boolean;
  /** Capture file, or null; with the fd the launcher opened it on, when it did. */
  pcap: string | null;
  pcapFd?: number;
  debug: boolean;
  /** Egress policy lines (policy-cli.ts), or null. */
  policy?: string[] | null;
}

/** The guest-visible addresses of `--cidr` (validated by the parser, so this does not throw). */
export function cliAddressPlan(s: Pick<CliNetworkSettings, 'cidr'>): AddressPlan {
  return addressPlan(s.cidr.network, s.cidr.prefixLength);
}

/** What --configure (run mode: always) sets on the guest's TAP. */
export function tapConfigure(plan: AddressPlan, s: Pick<CliNetworkSettings, 'mtu' | 'enableIpv6'>, mac: Uint8Array | null): TapConfigure {
  return { mtu: s.mtu, mac, addr: plan.guest, netmask: plan.netmask, gateway: plan.gateway, ipv6: s.enableIpv6 ? configureIpv6() : null };
}

export function cliStackOptions(link: Link, s: CliNetworkSettings): StackOptions {
  return {
    link,
    network: `${ipv4ToString(s.cidr.network)}/${s.cidr.prefixLength}`,
    mtu: s.mtu,
    disableHostLoopback: s.disableHostLoopback,
    outboundAddress: s.outboundAddr ?? undefined,
    ipv6: s.enableIpv6,
    outboundAddress6: s.outboundAddr6 ?? undefined,
    log: (message) => process.stderr.write(`${message}\n`),
    debug: s.debug,
    pcap: s.pcap === null ? undefined : { path: s.pcap, fd: s.pcapFd },
    policy: s.policy ?? undefined,
    // The resolv.conf to forward to; tests and embedders point it elsewhere.
    dns: s.disableDns ? false : { resolvConfPath: process.env.USERNET_RESOLV_CONF || undefined },
  };
}

/**
 * What --configure gives the guest over IPv6, besides IPv4: the address SLAAC
 * would give it (fd00::/64 with an all-zero interface identifier, which the
 * attach child fills with the modified EUI-64 of the TAP's MAC, known only
 * there when the kernel chose it) without DAD, and a static default route via
 * fe80::2. Static so that IPv6 works when the ready fd fires, and survives
 * forwarding=1, which makes the kernel drop RA-learned routes.
 */
export function configureIpv6(): NativeConfigure6 {
  return { addr: parseIpv6(IPV6_PREFIX_TEXT)!, prefixLength: IPV6_PREFIX_LENGTH, gateway: parseIpv6('fe80::2')! };
}
