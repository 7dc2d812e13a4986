/**
 * slirp4netns 1.2.0's command line, reproduced as a pure function.
 *
 * Theory of operation
 * -------------------
 * RootlessKit, Podman and the shell scripts that start rootless Docker spawn
 * `slirp4netns` with a fixed vocabulary (README.md, "Use with RootlessKit /
 * Podman"),
 * grep its `--help`, and show its stdout/stderr to users when it fails. So a
 * drop-in replacement copies three things exactly:
 *
 *   1. glibc getopt_long: short string `ce:r:m:a:6hv`, the 21-entry long table in
 *      slirp4netns's order (the order decides the "possibilities:" list of an
 *      ambiguous prefix), permutation unless POSIXLY_CORRECT, `--`, and glibc's
 *      message texts with argv[0] as given.
 *   2. slirp4netns's checks, in its order:
 *        a. values, as each option is parsed (fds, MTU, --userns-path existence);
 *        b. after the loop: --macaddress needs -c, --target-type, the positionals
 *           (PID or existing PATH, then TAPNAME);
 *        c. slirp4netns_config_from_options(): CIDR, outbound addresses, MAC.
 *      a and b print the message on stderr and the usage on stdout; c prints only
 *      the message. All exit 1.
 *   3. the stdout WARNING lines, in the order printf would have produced them.
 *
 * usernet-only step: between b and c, the first option (in parse order) whose
 * feature is not in SUPPORTED is rejected with `<argv0>: <option> is not
 * supported yet`. Doing it there means every slirp4netns parse error still wins
 * with its exact text, while nothing needing I/O we have not written (interface
 * lookup for --outbound-addr) runs for a flag we are about to refuse. Unsupported
 * options stay in the getopt table so abbreviation and ambiguity behave exactly
 * as in slirp4netns, and they are left out of `--help` because clients enable
 * whatever `--help` advertises.
 *
 * No I/O: the result says what to print where and the exit status; src/cli/main.ts
 * prints it. The only outside facts, whether a path exists and an interface's
 * address, come in through `ParseDeps`.
 *
 * Not copied: slirp4netns's stdout is block-buffered and inherited across its
 * fork, so when piped its parse-time WARNING lines come out twice;
 * here they are returned once.
 */
import { existsSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { addressPlan } from '../ip/address-plan.js';
import { ipv4ToString, parseIpv4 } from '../wire/ipv4-address.js';
import { usageText, versionText } from './help.js';

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

export interface CliConfig {
  configure: boolean;
  exitFd: number | null;
  readyFd: number | null;
  /** Default 1500; 1…65521 (libslirp rejects < 68 later, as slirp4netns does). */
  mtu: number;
  enableIpv6: boolean;
  apiSocket: string | null;
  /** Default 10.0.2.0/24; `network` is a u32 with no host bits, prefix 1…25. */
  cidr: { network: number; prefixLength: number };
  disableHostLoopback: boolean;
  /** 'pid' only for `--netns-type=pid` or no --netns-type; any other value means path. */
  netnsType: 'pid' | 'path';
  /**
   * Only what `--userns-path` said (it was checked to exist). null in pid mode
   * means "/proc/PID/ns/user"; null in path mode means "join no user namespace".
   */
  userNsPath: string | null;
  enableSandbox: boolean;
  enableSeccomp: boolean;
  /** The IPv4 address host sockets bind to, already resolved if an interface name was given. */
  outboundAddr: string | null;
  /** The IPv6 address, as given or resolved. */
  outboundAddr6: string | null;
  disableDns: boolean;
  /** 6 bytes, zero-filled after the bytes given (`2:bb` is 02:bb:00:00:00:00). Only with `-c`. */
  macAddress: Uint8Array | null;
  targetType: 'netns' | 'bess';
  /** pid mode: the target process; `netnsPath` is then `/proc/${pid}/ns/net`. */
  pid: number | null;
  /** pid mode: derived from pid; path mode: the given (existing) path; bess: null. */
  netnsPath: string | null;
  /** Second positional, untruncated (the kernel's ifr_name keeps 15 bytes). '' in bess mode. */
  tapName: string;
  /** bess mode only: the single positional, the SOCK_SEQPACKET path to listen on. */
  bessSocketPath: string | null;
}

export type ParseResult =
  /** `stdout` holds the WARNING lines slirp4netns prints before it starts, in its order. */
  | { kind: 'run'; config: CliConfig; stdout: string; stderr: string }
  /** help, version and every usage/validation error. */
  | { kind: 'exit'; status: number; stdout: string; stderr: string };

export interface ParseDeps {
  /** access(path, F_OK) == 0. Default fs.existsSync. */
  exists?: (path: string) => boolean;
  /** First address of `family` on interface `name` (getifaddrs order), or null. Default os.networkInterfaces(). */
  interfaceAddress?: (name: string, family: 4 | 6) => string | null;
  /** Default process.versions.node. */
  nodeVersion?: string;
  /** Overrides of SUPPORTED, for tests (e.g. everything on, to compare with the real binary). */
  supported?: Partial<Record<Feature, boolean>>;
}

// ---------------------------------------------------------------------------
// getopt_long

/** slirp4netns's getopt_long short-option string. */
const SHORT_OPTIONS = 'ce:r:m:a:6hv';

type OptionName =
  | 'configure'
  | 'exit-fd'
  | 'ready-fd'
  | 'mtu'
  | 'cidr'
  | 'disable-host-loopback'
  | 'no-host-loopback'
  | 'netns-type'
  | 'userns-path'
  | 'api-socket'
  | 'enable-ipv6'
  | 'enable-sandbox'
  | 'create-sandbox'
  | 'enable-seccomp'
  | 'help'
  | 'version'
  | 'outbound-addr'
  | 'outbound-addr6'
  | 'disable-dns'
  | 'macaddress'
  | 'target-type';

interface LongOption {
  readonly name: OptionName;
  readonly hasArg: boolean;
  readonly feature: Feature;
}

// slirp4netns 1.2.0's `longopts[]`, in its order (verified: `--=x` lists them all).
// The order is observable: it is the order of an ambiguous prefix's possibilities.
const LONG_OPTIONS: readonly LongOption[] = [
  { name: 'configure', hasArg: false, feature: 'configure' },
  { name: 'exit-fd', hasArg: true, feature: 'exitFd' },
  { name: 'ready-fd', hasArg: true, feature: 'readyFd' },
  { name: 'mtu', hasArg: true, feature: 'mtu' },
  { name: 'cidr', hasArg: true, feature: 'cidr' },
  { name: 'disable-host-loopback', hasArg: false, feature: 'disableHostLoopback' },
  { name: 'no-host-loopback', hasArg: false, feature: 'disableHostLoopback' },
  { name: 'netns-type', hasArg: true, feature: 'netnsType' },
  { name: 'userns-path', hasArg: true, feature: 'usernsPath' },
  { name: 'api-socket', hasArg: true, feature: 'apiSocket' },
  { name: 'enable-ipv6', hasArg: false, feature: 'enableIpv6' },
  { name: 'enable-sandbox', hasArg: false, feature: 'enableSandbox' },
  { name: 'create-sandbox', hasArg: false, feature: 'enableSandbox' },
  { name: 'enable-seccomp', hasArg: false, feature: 'enableSeccomp' },
  { name: 'help', hasArg: false, feature: 'help' },
  { name: 'version', hasArg: false, feature: 'version' },
  { name: 'outbound-addr', hasArg: true, feature: 'outboundAddr' },
  { name: 'outbound-addr6', hasArg: true, feature: 'outboundAddr6' },
  { name: 'disable-dns', hasArg: false, feature: 'disableDns' },
  { name: 'macaddress', hasArg: true, feature: 'macAddress' },
  { name: 'target-type', hasArg: true, feature: 'targetType' },
];

/** The long option each short option is the same `val` as. */
const SHORT_TO_LONG: Readonly<Record<string, OptionName>> = {
  c: 'configure',
  e: 'exit-fd',
  r: 'ready-fd',
  m: 'mtu',
  a: 'api-socket',
  '6': 'enable-ipv6',
  h: 'help',
  v: 'version',
};

type GetoptEvent =
  | { kind: 'option'; option: LongOption; optarg: string; spelling: string }
  | { kind: 'error'; message: string };

/**
 * glibc 2.36 `_getopt_internal_r` + `process_long_option`, with opterr = 1 and
 * no `+`/`-`/`:` prefix in the short string. Permutation is modelled by
 * collecting non-options into `operands` as they are skipped; glibc's exchange()
 * keeps their relative order, so the result is the same argv tail.
 *
 * Simplification: every error ends slirp4netns's loop (`default: goto error`),
 * so state after an error is never used. Short options are taken per code point
 * where glibc takes bytes; this only changes the message for a non-ASCII
 * invalid option character.
 */
class Getopt {
  readonly operands: string[] = [];
  private next = 0;
  private cluster: string | null = null;
  private clusterPos = 0;

  constructor(
    private readonly args: readonly string[],
    private readonly argv0: string,
    private readonly requireOrder: boolean,
  ) {}

  /** The next option, an error, or null at the end of the options. */
  step(): GetoptEvent | null {
    if (this.cluster === null) {
      const args = this.args;
      for (;;) {
        if (this.next >= args.length) return null;
        const arg = args[this.next];
        if (arg === '--') {
          this.operands.push(...args.slice(this.next + 1));
          this.next = args.length;
          return null;
        }
        // NONOPTION_P: "-" alone is an operand too.
        if (arg[0] !== '-' || arg.length === 1) {
          if (this.requireOrder) {
            this.operands.push(...args.slice(this.next));
            this.next = args.length;
            return null;
          }
          this.operands.push(arg);
          this.next++;
          continue;
        }
        break;
      }
      const arg = args[this.next++];
      if (arg[1] === '-') return this.longOption(arg.slice(2));
      this.cluster = arg;
      this.clusterPos = 1;
    }
    return this.shortOption(this.cluster);
  }

  private shortOption(cluster: string): GetoptEvent {
    const c = String.fromCodePoint(cluster.codePointAt(this.clusterPos)!);
    this.clusterPos += c.length;
    const lastInCluster = this.clusterPos >= cluster.length;
    if (lastInCluster) this.cluster = null;

    const at = SHORT_OPTIONS.indexOf(c);
    if (at < 0 || c === ':') {
      return { kind: 'error', message: `${this.argv0}: invalid option -- '${c}'\n` };
    }
    const option = longOption(SHORT_TO_LONG[c]);
    const spelling = `-${c}`;
    if (SHORT_OPTIONS[at + 1] !== ':') return { kind: 'option', option, optarg: '', spelling };

    // Required argument: the rest of this element (`-m1500`, `-cr3`), else the next element.
    if (!lastInCluster) {
      const optarg = cluster.slice(this.clusterPos);
      this.cluster = null;
      return { kind: 'option', option, optarg, spelling };
    }
    if (this.next >= this.args.length) {
      return { kind: 'error', message: `${this.argv0}: option requires an argument -- '${c}'\n` };
    }
    return { kind: 'option', option, optarg: this.args[this.next++], spelling };
  }

  private longOption(body: string): GetoptEvent {
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);

    // An exact match wins over prefixes (`--outbound-addr` vs `--outbound-addr6`).
    let option = LONG_OPTIONS.find((o) => o.name === name);
    if (option === undefined) {
      // glibc only calls two prefix matches ambiguous when their has_arg, flag or
      // val differ; every entry here has its own val, so any two are ambiguous.
      // An empty name (`--=x`) is a prefix of every option.
      const candidates = LONG_OPTIONS.filter((o) => o.name.startsWith(name));
      if (candidates.length === 0) {
        return { kind: 'error', message: `${this.argv0}: unrecognized option '--${body}'\n` };
      }
      if (candidates.length > 1) {
        const possibilities = candidates.map((o) => ` '--${o.name}'`).join('');
        return {
          kind: 'error',
          message: `${this.argv0}: option '--${body}' is ambiguous; possibilities:${possibilities}\n`,
        };
      }
      option = candidates[0];
    }

    const spelling = `--${option.name}`;
    if (eq >= 0) {
      if (!option.hasArg) {
        return { kind: 'error', message: `${this.argv0}: option '--${option.name}' doesn't allow an argument\n` };
      }
      return { kind: 'option', option, optarg: body.slice(eq + 1), spelling };
    }
    if (!option.hasArg) return { kind: 'option', option, optarg: '', spelling };
    if (this.next >= this.args.length) {
      return { kind: 'error', message: `${this.argv0}: option '--${option.name}' requires an argument\n` };
    }
    return { kind: 'option', option, optarg: this.args[this.next++], spelling };
  }
}

function longOption(name: OptionName): LongOption {
  return LONG_OPTIONS.find((o) => o.name === name)!;
}

// ---------------------------------------------------------------------------
// C library number and address parsing, as slirp4netns calls it

const LONG_MIN = -(1n << 63n);
const LONG_MAX = (1n << 63n) - 1n;
const ULONG_MAX = (1n << 64n) - 1n;

/** isspace() in the C locale. */
function isCSpace(ch: number): boolean {
  return ch === 0x20 || (ch >= 0x09 && ch <= 0x0d);
}

function isDigit(ch: number): boolean {
  return ch >= 0x30 && ch <= 0x39;
}

function isHexDigit(ch: number): boolean {
  return isDigit(ch) || (ch >= 0x41 && ch <= 0x46) || (ch >= 0x61 && ch <= 0x66);
}

/**
 * `v = strtol(s, &end, 10); if (errno || *end != '\0') fail;` on a 64-bit long.
 * Leading whitespace and a sign are accepted. With no digits at all, strtol
 * sets end = s, so the empty string passes as 0 (`--exit-fd=` means fd 0 in
 * slirp4netns too, verified) while " " or "+" fail.
 */
export function strtolWhole(s: string): bigint | null {
  let i = 0;
  while (i < s.length && isCSpace(s.charCodeAt(i))) i++;
  let negative = false;
  if (s[i] === '+' || s[i] === '-') {
    negative = s[i] === '-';
    i++;
  }
  const digitsStart = i;
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  if (i === digitsStart) return s.length === 0 ? 0n : null;
  if (i !== s.length) return null;
  let v = BigInt(s.slice(digitsStart, i));
  if (negative) v = -v;
  if (v < LONG_MIN || v > LONG_MAX) return null; // ERANGE
  return v;
}

/**
 * `sscanf(s + off, "%x", &int_var)` as glibc does it: skip whitespace, optional
 * sign, optional `0x` after a 0, hex digits, strtoul (wrapping a negation,
 * saturating on overflow), stored through `unsigned int *` and read back as int.
 * null when no number was converted.
 */
function scanHexInt(s: string, off: number): number | null {
  let i = off;
  while (i < s.length && isCSpace(s.charCodeAt(i))) i++;
  let negative = false;
  if (s[i] === '+' || s[i] === '-') {
    negative = s[i] === '-';
    i++;
  }
  let sawZero = false;
  if (s[i] === '0') {
    sawZero = true;
    i++;
    if (s[i] === 'x' || s[i] === 'X') i++;
  }
  const digitsStart = i;
  while (i < s.length && isHexDigit(s.charCodeAt(i))) i++;
  if (!sawZero && i === digitsStart) return null;
  let v = i === digitsStart ? 0n : BigInt('0x' + s.slice(digitsStart, i));
  if (v > ULONG_MAX) v = ULONG_MAX;
  else if (negative) v = -v & ULONG_MAX;
  return Number(BigInt.asIntN(32, v));
}

/** glibc inet_pton(AF_INET6). Node's isIPv6 also takes a `%zone`, which inet_pton refuses. */
function isIpv6Literal(s: string): boolean {
  return !s.includes('%') && isIPv6(s);
}

// ---------------------------------------------------------------------------
// slirp4netns's post-parse validation (slirp4netns_config_from_options)

const NETWORK_PREFIX_MIN = 1;
// The recommended guest address is network + 100, so /26 and longer do not fit.
const NETWORK_PREFIX_MAX = 25;
const CIDR_RE = /^(([0-9]{1,3}\.){3}[0-9]{1,3})\/([0-9]{1,2})$/;

export const DEFAULT_CIDR = { network: 0x0a000200, prefixLength: 24 } as const;

type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

/** slirp4netns parse_cidr(): its regex, inet_pton, then range and host-bit checks, with its messages. */
export function parseCidr(cidr: string): Checked<{ network: number; prefixLength: number }> {
  const m = CIDR_RE.exec(cidr);
  if (m === null) return { ok: false, message: `invalid CIDR: ${cidr}\n` };
  const network = parseIpv4(m[1]);
  if (network === undefined) return { ok: false, message: `invalid network address: ${m[1]}\n` };
  const prefixLength = Number(m[3]);
  if (prefixLength < NETWORK_PREFIX_MIN || prefixLength > NETWORK_PREFIX_MAX) {
    return { ok: false, message: `prefix length needs to be ${NETWORK_PREFIX_MIN}-${NETWORK_PREFIX_MAX}\n` };
  }
  const netmask = (~0 << (32 - prefixLength)) >>> 0;
  if (((network & netmask) >>> 0) !== network) {
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
const OUTBOUND_ADDR_ERROR = 'outbound-addr has to be valid ipv4 address or interface name.';
const OUTBOUND_ADDR6_ERROR = 'outbound-addr has to be valid ipv4 address or iterface name.';
const MAC_ERROR = "macaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':').";

/** First address of `family` on interface `name`, or null (run mode uses it too). */
export function defaultInterfaceAddress(name: string, family: 4 | 6): string | null {
  const want = family === 4 ? 'IPv4' : 'IPv6';
  const found = networkInterfaces()[name]?.find((a) => a.family === want);
  return found === undefined ? null : found.address;
}

// ---------------------------------------------------------------------------
// Parse-time stdout WARNINGs (printed only for options whose feature is supported)

const WARN_IPV6 = 'WARNING: Support for IPv6 is experimental\n';
const WARN_SECCOMP = 'WARNING: Support for seccomp is experimental\n';
const WARN_OUTBOUND_ADDR = 'WARNING: Support for --outbound-addr is experimental\n';
const WARN_OUTBOUND_ADDR6 = 'WARNING: Support for --outbound-addr6 is experimental\n';
const WARN_BESS = 'WARNING: BESS mode is experimental\n';
const WARN_TOO_MANY = 'WARNING: too many arguments\n';
const WARN_NO_HOST_LOOPBACK =
  'WARNING: --no-host-loopback is deprecated and will be removed in future releases, ' +
  'please use --disable-host-loopback instead.\n';
const WARN_CREATE_SANDBOX =
  'WARNING: --create-sandbox is deprecated and will be removed in future releases, ' +
  'please use --enable-sandbox instead.\n';

/** Printed by slirp4netns's parent() after the banner, unless --disable-host-loopback. */
export function hostLoopbackWarning(vhost: number): string {
  return (
    `WARNING: 127.0.0.1:* on the host is accessible as ${ipv4ToString(vhost)} ` +
    '(set --disable-host-loopback to prohibit connecting to 127.0.0.1:*)\n'
  );
}

// ---------------------------------------------------------------------------

interface Use {
  readonly feature: Feature;
  readonly spelling: string;
}

/**
 * Parses `argv` (the arguments after the program name) the way slirp4netns 1.2.0
 * does. `argv0` is what messages and the usage line call the program.
 */
export function parseArgs(
  argv: readonly string[],
  env: Record<string, string | undefined>,
  argv0: string,
  deps: ParseDeps = {},
): ParseResult {
  const supported: Readonly<Record<Feature, boolean>> = { ...SUPPORTED, ...deps.supported };
  const exists = deps.exists ?? existsSync;
  const interfaceAddress = deps.interfaceAddress ?? defaultInterfaceAddress;

  let stdout = '';
  const warn = (feature: Feature, text: string): void => {
    if (supported[feature]) stdout += text;
  };
  const usageError = (message: string): ParseResult => ({
    kind: 'exit',
    status: 1,
    stdout: stdout + usageText(argv0, supported),
    stderr: message,
  });
  const configError = (message: string): ParseResult => ({ kind: 'exit', status: 1, stdout, stderr: message });

  // slirp4netns's `struct options`, with its sentinels turned into null.
  let configure = false;
  let exitFd: number | null = null;
  let readyFd: number | null = null;
  let mtu = 1500;
  let cidr: string | null = null;
  let disableHostLoopback = false;
  let netnsType: string | null = null;
  let userNsPath: string | null = null;
  let apiSocket: string | null = null;
  let enableIpv6 = false;
  let enableSandbox = false;
  let enableSeccomp = false;
  let outboundAddr: string | null = null;
  let outboundAddr6: string | null = null;
  let disableDns = false;
  let macAddress: string | null = null;
  let targetType: string | null = null;
  let uses: Use[] = [];

  const getopt = new Getopt(argv, argv0, env.POSIXLY_CORRECT !== undefined);
  for (let ev = getopt.step(); ev !== null; ev = getopt.step()) {
    if (ev.kind === 'error') return usageError(ev.message);
    const { option, optarg } = ev;
    uses.push({ feature: option.feature, spelling: ev.spelling });
    switch (option.name) {
      case 'configure':
        configure = true;
        break;
      case 'exit-fd': {
        const v = strtolWhole(optarg);
        // Assigned to an int, then checked.
        const fd = v === null ? -1 : Number(BigInt.asIntN(32, v));
        if (fd < 0) return usageError('exit-fd must be a non-negative integer\n');
        exitFd = fd;
        break;
      }
      case 'ready-fd': {
        const v = strtolWhole(optarg);
        const fd = v === null ? -1 : Number(BigInt.asIntN(32, v));
        if (fd < 0) return usageError('ready-fd must be a non-negative integer\n');
        readyFd = fd;
        break;
      }
      case 'mtu': {
        const v = strtolWhole(optarg);
        // Assigned to an unsigned int: "-1" wraps to 4294967295 and fails the
        // range check, "4294968796" wraps to 1500 and passes (verified).
        const value = v === null ? 0 : Number(BigInt.asUintN(32, v));
        if (value === 0 || value > 65521) return usageError('MTU must be a positive integer (< 65522)\n');
        mtu = value;
        break;
      }
      case 'cidr':
        cidr = optarg;
        break;
      case 'no-host-loopback':
        warn('disableHostLoopback', WARN_NO_HOST_LOOPBACK);
        disableHostLoopback = true;
        break;
      case 'disable-host-loopback':
        disableHostLoopback = true;
        break;
      case 'create-sandbox':
        warn('enableSandbox', WARN_CREATE_SANDBOX);
        enableSandbox = true;
        break;
      case 'enable-sandbox':
        enableSandbox = true;
        break;
      case 'enable-seccomp':
        warn('enableSeccomp', WARN_SECCOMP);
        enableSeccomp = true;
        break;
      case 'netns-type':
        netnsType = optarg;
        break;
      case 'userns-path':
        // Checked as it is parsed, so it beats any later bad value.
        if (!exists(optarg)) return usageError(`userns path doesn't exist: ${optarg}\n`);
        userNsPath = optarg;
        break;
      case 'api-socket':
        apiSocket = optarg;
        break;
      case 'enable-ipv6':
        enableIpv6 = true;
        warn('enableIpv6', WARN_IPV6);
        break;
      case 'help':
        return { kind: 'exit', status: 0, stdout: stdout + usageText(argv0, supported), stderr: '' };
      case 'version': {
        const node = deps.nodeVersion ?? process.versions.node;
        const text = versionText(USERNET_VERSION, node, slirpConfigVersionMax(supported));
        return { kind: 'exit', status: 0, stdout: stdout + text, stderr: '' };
      }
      case 'outbound-addr':
        warn('outboundAddr', WARN_OUTBOUND_ADDR);
        outboundAddr = optarg;
        break;
      case 'outbound-addr6':
        warn('outboundAddr6', WARN_OUTBOUND_ADDR6);
        outboundAddr6 = optarg;
        break;
      case 'disable-dns':
        disableDns = true;
        break;
      case 'macaddress':
        macAddress = optarg;
        break;
      case 'target-type':
        // The last --target-type wins, and only its value decides whether bess is used.
        targetType = optarg;
        uses = uses.filter((u) => u.feature !== 'targetTypeBess');
        if (optarg === 'bess') uses.push({ feature: 'targetTypeBess', spelling: '--target-type=bess' });
        break;
    }
  }
  const operands = getopt.operands;

  if (macAddress !== null && !configure) {
    return usageError('--macaddr cannot be specified when --configure or -c is not specified\n');
  }

  let pid: number | null = null;
  let netnsPath: string | null = null;
  let tapName = '';
  let bessSocketPath: string | null = null;
  const bess = targetType === 'bess';
  if (bess) {
    if (operands.length < 1) return usageError('');
    if (operands.length > 1) return usageError('too many arguments\n');
    if (configure) return usageError('--configure conflicts with --target-type=bess\n');
    if (netnsType !== null) return usageError('--netns-type conflicts with --target-type=bess\n');
    if (userNsPath !== null) return usageError('--userns-path conflicts with --target-type=bess\n');
    warn('targetTypeBess', WARN_BESS);
    bessSocketPath = operands[0];
  } else {
    if (targetType !== null && targetType !== 'netns') {
      return usageError('--target-type must be either "netns" or "bess"\n');
    }
    if (operands.length < 2) return usageError('');
    // Not an error in slirp4netns ("for preventing potential compatibility issue").
    if (operands.length > 2) stdout += WARN_TOO_MANY;
    if (netnsType === null || netnsType === 'pid') {
      const v = strtolWhole(operands[0]);
      const p = v === null ? 0 : Number(BigInt.asIntN(32, v));
      if (p <= 0) return usageError('PID must be a positive integer\n');
      pid = p;
      netnsPath = `/proc/${p}/ns/net`;
    } else {
      netnsPath = operands[0];
      // perror() after access(F_OK); ENOENT is the only errno `exists` can express.
      if (!exists(netnsPath)) {
        return usageError('existing path expected when --netns-type=path: No such file or directory\n');
      }
    }
    tapName = operands[1];
  }

  const unsupported = uses.find((u) => !supported[u.feature]);
  if (unsupported !== undefined) {
    return configError(`${argv0}: ${unsupported.spelling} is not supported yet\n`);
  }

  // slirp4netns_config_from_options(): message only, no usage.
  const parsedCidr: Checked<{ network: number; prefixLength: number }> =
    cidr === null ? { ok: true, value: { ...DEFAULT_CIDR } } : parseCidr(cidr);
  if (!parsedCidr.ok) return configError(parsedCidr.message);

  let resolvedOutbound: string | null = null;
  if (outboundAddr !== null) {
    resolvedOutbound = parseIpv4(outboundAddr) !== undefined ? outboundAddr : interfaceAddress(outboundAddr, 4);
    if (resolvedOutbound === null) return configError(OUTBOUND_ADDR_ERROR);
  }
  let resolvedOutbound6: string | null = null;
  if (outboundAddr6 !== null) {
    // An address or an interface name, as documented. slirp4netns looks the
    // name up in --outbound-addr's value instead (a bug: `--outbound-addr6=lo`
    // alone fails there); usernet accepts what slirp4netns accepts and more.
    resolvedOutbound6 = isIpv6Literal(outboundAddr6) ? outboundAddr6 : interfaceAddress(outboundAddr6, 6);
    if (resolvedOutbound6 === null) return configError(OUTBOUND_ADDR6_ERROR);
  }

  let mac: Uint8Array | null = null;
  if (macAddress !== null) {
    const parsedMac = parseMacAddress(macAddress);
    if (!parsedMac.ok) return configError(parsedMac.message + MAC_ERROR);
    mac = parsedMac.value;
  }

  const { network, prefixLength } = parsedCidr.value;
  if (!disableHostLoopback) stdout += hostLoopbackWarning(addressPlan(network, prefixLength).gateway);

  return {
    kind: 'run',
    config: {
      configure,
      exitFd,
      readyFd,
      mtu,
      enableIpv6,
      apiSocket,
      cidr: parsedCidr.value,
      disableHostLoopback,
      netnsType: netnsType === null || netnsType === 'pid' ? 'pid' : 'path',
      userNsPath,
      enableSandbox,
      enableSeccomp,
      outboundAddr: resolvedOutbound,
      outboundAddr6: resolvedOutbound6,
      disableDns,
      macAddress: mac,
      targetType: bess ? 'bess' : 'netns',
      pid,
      netnsPath,
      tapName,
      bessSocketPath,
    },
    stdout,
    stderr: '',
  };
}
