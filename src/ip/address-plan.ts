/**
 * The guest-visible addresses, all derived from the network (`--cidr`) the
 * same way libslirp and slirp4netns 1.2 do:
 *
 *   net+2    gateway ("vhost"), and the host's 127.0.0.1 unless loopback is disabled
 *   net+3    DNS
 *   net+15   first DHCP address (16 leases, up to net+30)
 *   net+100  the address --configure gives the guest, default port-forward target
 *
 * Virtual MACs are 52:55 followed by the four IPv4 bytes (52:55:0a:00:02:02).
 */
import { UsernetError } from '../errors.js';
import { prefixToNetmask } from '../wire/ipv4-address.js';

export interface AddressPlan {
  network: number;
  prefixLength: number;
  netmask: number;
  broadcast: number;
  gateway: number;
  dns: number;
  dhcpStart: number;
  /** Last DHCP address: the banner's "DHCP end". */
  dhcpEnd: number;
  guest: number;
  gatewayMac: number;
  dnsMac: number;
}

export const DEFAULT_NETWORK = 0x0a000200; // 10.0.2.0
export const DEFAULT_PREFIX_LENGTH = 24;
export const MIN_PREFIX_LENGTH = 1;
/** net+100 must fit in the subnet, hence /25 at most (slirp4netns says so too). */
export const MAX_PREFIX_LENGTH = 25;

export function addressPlan(network = DEFAULT_NETWORK, prefixLength = DEFAULT_PREFIX_LENGTH): AddressPlan {
  if (!Number.isInteger(prefixLength) || prefixLength < MIN_PREFIX_LENGTH || prefixLength > MAX_PREFIX_LENGTH) {
    throw new UsernetError(
      'ERR_USERNET_INVALID_OPTION',
      `prefix length needs to be ${MIN_PREFIX_LENGTH}-${MAX_PREFIX_LENGTH}, got ${prefixLength}`,
    );
  }
  const netmask = prefixToNetmask(prefixLength);
  if ((network & ~netmask) !== 0) throw new UsernetError('ERR_USERNET_INVALID_OPTION', 'network address has host bits set');
  const net = network >>> 0;
  return {
    network: net,
    prefixLength,
    netmask,
    broadcast: (net | ~netmask) >>> 0,
    gateway: (net + 2) >>> 0,
    dns: (net + 3) >>> 0,
    dhcpStart: (net + 15) >>> 0,
    dhcpEnd: (net + 30) >>> 0,
    guest: (net + 100) >>> 0,
    gatewayMac: virtualMac(net + 2),
    dnsMac: virtualMac(net + 3),
  };
}

/** 52:55:a:b:c:d for IPv4 address a.b.c.d. */
export function virtualMac(addr: number): number {
  return 0x5255 * 0x1_0000_0000 + (addr >>> 0);
}
