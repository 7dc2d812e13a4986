/**
 * IPv6 on loopback for the unit tests of the addon's IPv6 sockets: the
 * addresses they use, and whether the host can run them at all. Everything
 * stays on ::1 (or on addresses that are never ours, which fail locally at
 * bind): nothing leaves the machine.
 */
import { loadNative, nativeAvailable } from '../../src/link/native.js';

/** ::1 */
export const LOOPBACK6 = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
/** ::ffff:127.0.0.1, the v4-mapped loopback an IPV6_V6ONLY socket must never reach. */
export const MAPPED_LOOPBACK = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
/** 2001:db8::1 (documentation prefix): never an address of this host, so bind fails with EADDRNOTAVAIL. */
export const NOT_OURS6 = '2001:db8::1';

/** ::1 as the addon reports addresses: four big-endian words (IPV6_WORDS). */
export const LOOPBACK6_WORDS = [0, 0, 0, 1];

/**
 * Why IPv6 socket tests cannot run here, or null: the addon must be built
 * and a UDP socket must bind to ::1 (not so with ipv6.disable=1 or
 * disable_ipv6 on lo).
 */
export function ipv6LoopbackUnavailable(): string | null {
  if (!nativeAvailable()) return 'the native addon is not built (npm install)';
  const native = loadNative();
  const fd = native.udpOpen6(LOOPBACK6);
  if (fd < 0) return `no IPv6 on ::1 here (a UDP socket cannot bind to it: errno ${-fd})`;
  native.udpClose(fd);
  return null;
}

/** The 16 bytes of an address as text, e.g. "0:0:0:0:0:0:0:1" (uncompressed, for comparisons). */
export function hex6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return groups.join(':');
}
