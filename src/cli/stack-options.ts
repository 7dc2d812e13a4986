/**
 * The stack options both faces of the command build the same way: the
 * slirp4netns grammar (main.ts) and run mode (run-mode.ts).
 */
import type { Link, StackOptions } from '../index.js';
import { ipv4ToString } from '../wire/ipv4-address.js';

export interface CliNetworkSettings {
  cidr: { network: number; prefixLength: number };
  mtu: number;
  disableHostLoopback: boolean;
  outboundAddr: string | null;
  disableDns: boolean;
  /** Capture file, or null. */
  pcap: string | null;
  debug: boolean;
}

export function cliStackOptions(link: Link, s: CliNetworkSettings): StackOptions {
  return {
    link,
    network: `${ipv4ToString(s.cidr.network)}/${s.cidr.prefixLength}`,
    mtu: s.mtu,
    disableHostLoopback: s.disableHostLoopback,
    outboundAddress: s.outboundAddr ?? undefined,
    log: (message) => process.stderr.write(`${message}\n`),
    debug: s.debug,
    pcap: s.pcap === null ? undefined : { path: s.pcap },
    // The resolv.conf to forward to; tests and embedders point it elsewhere.
    dns: s.disableDns ? false : { resolvConfPath: process.env.USERNET_RESOLV_CONF || undefined },
  };
}
