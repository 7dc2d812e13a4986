/**
 * slirp4netns 1.2.0's checks that go beyond getopt, with its exact messages
 * (tests compare them byte for byte): parse_cidr(), the MAC and outbound
 * address checks of slirp4netns_config_from_options(), and the WARNING lines
 * it prints on stdout while parsing.
 */
import { networkInterfaces } from 'node:os';
import { DEFAULT_NETWORK, DEFAULT_PREFIX_LENGTH, MAX_PREFIX_LENGTH, MIN_PREFIX_LENGTH } from '../ip/address-plan.js';
import { isInetPton6 } from '../wire/inet-pton.js';
import { ipv4ToString, parseIpv4, prefixToNetmask } from '../wire/ipv4-address.js';
import { scanHexInt } from './c-scan.js';

const CIDR_RE = /^(([0-9]{1,3}\.){3}[0-9]{1,3})\/([0-9]{1,2})$/;

export const DEFAULT_CIDR = { network: DEFAULT_NETWORK, prefixLength: DEFAULT_PREFIX_LENGTH } as const;

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

/** slirp4netns parse_cidr(): its regex, inet_pton, then range and host-bit checks, with its messages. */
export function parseCidr(cidr: string): Checked<{ network: number; prefixLength: number }> {
  const m = CIDR_RE.exec(cidr);
  if (m === null) return { ok: false, message: `invalid CIDR: ${cidr}\n` };
  const network = parseIpv4(m[1]);
  if (network === undefined) return { ok: false, message: `invalid network address: ${m[1]}\n` };
  const prefixLength = Number(m[3]);
  if (prefixLength < MIN_PREFIX_LENGTH || prefixLength > MAX_PREFIX_LENGTH) {
    return { ok: false, message: `prefix length needs to be ${MIN_PREFIX_LENGTH}-${MAX_PREFIX_LENGTH}\n` };
  }
  if (((network & prefixToNetmask(prefixLength)) >>> 0) !== network) {
    return { ok: false, message: 'CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24\n' };
  }
  return { ok: true, value: { network, prefixLength } };
}

/**
 * slirp4netns_macaddr_hexstring_to_data(): up to six `%x` fields separated by
 * ':'. Lenient like the original: missing trailing bytes stay 0, each field may
 * carry whitespace, a sign or `0x`, and only a seventh field is an error.
 */
export function parseMacAddress(mac: string): Checked<Uint8Array> {
  const bytes = new Uint8Array(6);
  let n = 0;
  let pos = 0; // -1 plays strchr's NULL
  for (; pos !== -1 && n < 6; pos = mac.indexOf(':', pos), n++) {
    if (pos !== 0) pos++;
    const v = scanHexInt(mac, pos);
    if (v === null || v < 0 || v > 255) {
      return { ok: false, message: `"${mac}" is an invalid MAC address.\n` };
    }
    bytes[n] = v;
  }
  if (pos !== -1) return { ok: false, message: `"${mac}" is an invalid MAC address.  Is it too long?\n` };
  return { ok: true, value: bytes };
}

// Both lack a trailing newline in slirp4netns; "iterface" is its typo.
export const OUTBOUND_ADDR_ERROR = 'outbound-addr has to be valid ipv4 address or interface name.';
export const OUTBOUND_ADDR6_ERROR = 'outbound-addr has to be valid ipv4 address or iterface name.';
export const MAC_ERROR = "macaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':').";

/** First address of `family` on interface `name`, or null (run mode uses it too). */
export function defaultInterfaceAddress(name: string, family: 4 | 6): string | null {
  const want = family === 4 ? 'IPv4' : 'IPv6';
  const found = networkInterfaces()[name]?.find((a) => a.family === want);
  return found === undefined ? null : found.address;
}

// ---------------------------------------------------------------------------
// Parse-time stdout WARNINGs (printed only for options whose feature is supported)

export const WARN_IPV6 = 'WARNING: Support for IPv6 is experimental\n';
export const WARN_SECCOMP = 'WARNING: Support for seccomp is experimental\n';
export const WARN_OUTBOUND_ADDR = 'WARNING: Support for --outbound-addr is experimental\n';
export const WARN_OUTBOUND_ADDR6 = 'WARNING: Support for --outbound-addr6 is experimental\n';
export const WARN_BESS = 'WARNING: BESS mode is experimental\n';
export const WARN_TOO_MANY = 'WARNING: too many arguments\n';
export const WARN_NO_HOST_LOOPBACK =
  'WARNING: --no-host-loopback is deprecated and will be removed in future releases, ' +
  'please use --disable-host-loopback instead.\n';
export const WARN_CREATE_SANDBOX =
  'WARNING: --create-sandbox is deprecated and will be removed in future releases, ' +
  'please use --enable-sandbox instead.\n';

/** Printed by slirp4netns's parent() after the banner, unless --disable-host-loopback. */
export function hostLoopbackWarning(vhost: number): string {
  return (
    `WARNING: 127.0.0.1:* on the host is accessible as ${ipv4ToString(vhost)} ` +
    '(set --disable-host-loopback to prohibit connecting to 127.0.0.1:*)\n'
  );
}
