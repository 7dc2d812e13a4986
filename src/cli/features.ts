/**
 * What usernet's slirp4netns command line can do: the features behind its
 * options, which of them are implemented, and the version numbers `-v`
 * reports. The parser (args.ts), `--help` (help.ts) and the launcher's
 * prebuilt texts (launcher-texts.ts) all read them from here.
 */

export const USERNET_VERSION = '0.1.0';

/**
 * Everything slirp4netns 1.2.0 can be asked to do from its command line. An
 * option whose feature is false is hidden from `--help` and rejected after
 * parsing; turning one on is a one-line change in SUPPORTED (plus the code that
 * implements it).
 */
export type Feature =
  | 'configure' // -c
  | 'exitFd' // -e
  | 'readyFd' // -r
  | 'mtu' // -m
  | 'enableIpv6' // -6
  | 'apiSocket' // -a
  | 'cidr'
  | 'disableHostLoopback' // and the deprecated --no-host-loopback
  | 'netnsType'
  | 'usernsPath'
  | 'enableSandbox' // and the deprecated --create-sandbox
  | 'enableSeccomp'
  | 'outboundAddr'
  | 'outboundAddr6'
  | 'disableDns'
  | 'macAddress'
  | 'targetType' // --target-type=netns
  | 'targetTypeBess' // --target-type=bess
  | 'help'
  | 'version';

export const SUPPORTED: Readonly<Record<Feature, boolean>> = Object.freeze({
  configure: true,
  exitFd: true,
  readyFd: true,
  mtu: true,
  enableIpv6: true,
  apiSocket: true,
  cidr: true,
  disableHostLoopback: true,
  netnsType: true,
  usernsPath: true,
  enableSandbox: true,
  enableSeccomp: true,
  outboundAddr: true,
  outboundAddr6: true,
  disableDns: true,
  macAddress: true,
  targetType: true,
  targetTypeBess: false,
  help: true,
  version: true,
});

/**
 * `SLIRP_CONFIG_VERSION_MAX` for `-v`. slirp4netns's own test suite skips
 * test-slirp4netns-outbound-addr.sh below 2 and test-slirp4netns-disable-dns.sh
 * below 3, so this must not claim a level whose features are missing. It rises
 * by itself when those features are switched on in SUPPORTED. (Real 1.2.0 with
 * libslirp 4.7.0 says 4; level 4 adds nothing visible on the command line.)
 */
export function slirpConfigVersionMax(supported: Readonly<Record<Feature, boolean>>): number {
  if (!supported.outboundAddr || !supported.outboundAddr6) return 1;
  return supported.disableDns ? 3 : 2;
}
