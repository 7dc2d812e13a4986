/**
 * The `--help` and `--version` texts.
 *
 * The help text is slirp4netns 1.2.0's `usage()` byte for byte (check with
 * `slirp4netns --help | cat -A`), minus the lines of options usernet does not
 * support yet. That omission is deliberate: RootlessKit, Podman and
 * dockerd-rootless.sh probe `--help` by substring and then pass whatever it
 * advertises (Podman adds `--enable-sandbox --enable-seccomp --enable-ipv6` on
 * its own), so advertising an option is a promise that it works.
 */
import type { Feature } from './features.js';

/** The slirp4netns release whose command line usernet copies; `--version` names it. */
export const SLIRP4NETNS_COMPAT_VERSION = '1.2.0';

const FLAG_COLUMN = 25;

interface HelpLine {
  readonly feature: Feature;
  readonly text: string;
}

function line(feature: Feature, flag: string, description: string): HelpLine {
  return { feature, text: flag.padEnd(FLAG_COLUMN) + description };
}

// slirp4netns's order. The `--netns-type` and `--userns-path` lines are not
// padded: upstream's format strings have a literal TAB there (" \t " and "\t "),
// copied as is.
const HELP_LINES: readonly HelpLine[] = [
  line('configure', '-c, --configure', 'bring up the interface'),
  line('exitFd', '-e, --exit-fd=FD', 'specify the FD for terminating slirp4netns'),
  line('readyFd', '-r, --ready-fd=FD', 'specify the FD to write to when the network is configured'),
  line('mtu', '-m, --mtu=MTU', 'specify MTU (default=1500, max=65521)'),
  line('enableIpv6', '-6, --enable-ipv6', 'enable IPv6 (experimental)'),
  line('apiSocket', '-a, --api-socket=PATH', 'specify API socket path'),
  line('cidr', '--cidr=CIDR', 'specify network address CIDR (default=10.0.2.0/24)'),
  line('disableHostLoopback', '--disable-host-loopback', 'prohibit connecting to 127.0.0.1:* on the host namespace'),
  { feature: 'netnsType', text: '--netns-type=TYPE \t specify network namespace type ([path|pid], default=pid)' },
  { feature: 'usernsPath', text: '--userns-path=PATH\t specify user namespace path' },
  line(
    'enableSandbox',
    '--enable-sandbox',
    'create a new mount namespace (and drop all caps except CAP_NET_BIND_SERVICE if running as the root)',
  ),
  line('enableSeccomp', '--enable-seccomp', 'enable seccomp to limit syscalls (experimental)'),
  line('outboundAddr', '--outbound-addr=IPv4', 'sets outbound ipv4 address to bound to (experimental)'),
  line('outboundAddr6', '--outbound-addr6=IPv6', 'sets outbound ipv6 address to bound to (experimental)'),
  line('disableDns', '--disable-dns', 'disables 10.0.2.3 (or configured internal ip) to host dns redirect (experimental)'),
  line('macAddress', '--macaddress=MAC', 'specify the MAC address of the TAP (only valid with -c)'),
  // Kept verbatim although `bess` is rejected for now: no client probes for it,
  // and the line's layout is part of what is being copied.
  line('targetType', '--target-type=TYPE', 'specify the target type ([netns|bess], default=netns)'),
  line('help', '-h, --help', 'show this help and exit'),
  line('version', '-v, --version', 'show version and exit'),
];

/** slirp4netns's usage(): printed on stdout for `--help` and after every parse-time error. */
export function usageText(argv0: string, supported: Readonly<Record<Feature, boolean>>): string {
  let out = `Usage: ${argv0} [OPTION]... PID|PATH [TAPNAME]\n`;
  out += 'User-mode networking for unprivileged network namespaces.\n\n';
  for (const l of HELP_LINES) {
    if (supported[l.feature]) out += l.text + '\n';
  }
  return out;
}

/**
 * slirp4netns's `-v` is "runc-compatible and machine-parsable": a first
 * `<name> version <v>` line, then `key: value` lines. `podman info` shows all of
 * it; slirp4netns's own tests grep `SLIRP_CONFIG_VERSION_MAX: N`.
 */
export function versionText(usernetVersion: string, nodeVersion: string, slirpConfigVersionMax: number): string {
  return (
    `usernet version ${usernetVersion}\n` +
    `slirp4netns compatibility: ${SLIRP4NETNS_COMPAT_VERSION}\n` +
    `node: ${nodeVersion}\n` +
    `SLIRP_CONFIG_VERSION_MAX: ${slirpConfigVersionMax}\n`
  );
}
