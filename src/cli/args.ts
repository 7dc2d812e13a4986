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
 *   1. glibc getopt_long (getopt.ts): short string `ce:r:m:a:6hv`, the 21-entry
 *      long table in slirp4netns's order (the order decides the "possibilities:"
 *      list of an ambiguous prefix), permutation unless POSIXLY_CORRECT, `--`,
 *      and glibc's message texts with argv[0] as given.
 *   2. slirp4netns's checks, in its order (the messages: slirp-validate.ts; its
 *      strtol and sscanf: c-scan.ts):
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
import { addressPlan } from '../ip/address-plan.js';
import { isInetPton6 } from '../wire/inet-pton.js';
import { parseIpv4 } from '../wire/ipv4-address.js';
import { strtolWhole } from './c-scan.js';
import { slirpConfigVersionMax, SUPPORTED, USERNET_VERSION, type Feature } from './features.js';
import { Getopt, type OptionName } from './getopt.js';
import { usageText, versionText } from './help.js';
import {
  DEFAULT_CIDR,
  defaultInterfaceAddress,
  hostLoopbackWarning,
  MAC_ERROR,
  OUTBOUND_ADDR6_ERROR,
  OUTBOUND_ADDR_ERROR,
  parseCidr,
  parseMacAddress,
  WARN_BESS,
  WARN_CREATE_SANDBOX,
  WARN_IPV6,
  WARN_NO_HOST_LOOPBACK,
  WARN_OUTBOUND_ADDR,
  WARN_OUTBOUND_ADDR6,
  WARN_SECCOMP,
  WARN_TOO_MANY,
  type Checked,
} from './slirp-validate.js';

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

interface Use {
  readonly feature: Feature;
  readonly spelling: string;
}

/** slirp4netns's `struct options`, with its sentinels turned into null. */
interface Options {
  configure: boolean;
  exitFd: number | null;
  readyFd: number | null;
  mtu: number;
  cidr: string | null;
  disableHostLoopback: boolean;
  netnsType: string | null;
  userNsPath: string | null;
  apiSocket: string | null;
  enableIpv6: boolean;
  enableSandbox: boolean;
  enableSeccomp: boolean;
  outboundAddr: string | null;
  outboundAddr6: string | null;
  disableDns: boolean;
  macAddress: string | null;
  targetType: string | null;
  /** Every option given, in parse order, for the "not supported yet" check. */
  uses: Use[];
}

function defaultOptions(): Options {
  return {
    configure: false,
    exitFd: null,
    readyFd: null,
    mtu: 1500,
    cidr: null,
    disableHostLoopback: false,
    netnsType: null,
    userNsPath: null,
    apiSocket: null,
    enableIpv6: false,
    enableSandbox: false,
    enableSeccomp: false,
    outboundAddr: null,
    outboundAddr6: null,
    disableDns: false,
    macAddress: null,
    targetType: null,
    uses: [],
  };
}

/** What the positionals name: the target namespace and the TAP, or the bess socket. */
interface Target {
  pid: number | null;
  netnsPath: string | null;
  tapName: string;
  bessSocketPath: string | null;
}

/** The state one parse shares between its steps: the stdout so far and how each kind of failure is printed. */
class Parse {
  stdout = '';

  constructor(
    readonly argv0: string,
    readonly supported: Readonly<Record<Feature, boolean>>,
    readonly deps: ParseDeps,
    readonly exists: (path: string) => boolean,
  ) {}

  /** A parse-time WARNING line, printed only for a feature usernet supports. */
  warn(feature: Feature, text: string): void {
    if (this.supported[feature]) this.stdout += text;
  }

  /** Steps a and b: the message on stderr, the usage on stdout. */
  usageError(message: string): ParseResult {
    return { kind: 'exit', status: 1, stdout: this.stdout + usageText(this.argv0, this.supported), stderr: message };
  }

  /** Step c: the message only. */
  configError(message: string): ParseResult {
    return { kind: 'exit', status: 1, stdout: this.stdout, stderr: message };
  }

  exit0(text: string): ParseResult {
    return { kind: 'exit', status: 0, stdout: this.stdout + text, stderr: '' };
  }
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
  const p = new Parse(argv0, { ...SUPPORTED, ...deps.supported }, deps, deps.exists ?? existsSync);
  const o = defaultOptions();
  const getopt = new Getopt(argv, argv0, env.POSIXLY_CORRECT !== undefined);
  for (let ev = getopt.step(); ev !== null; ev = getopt.step()) {
    if (ev.kind === 'error') return p.usageError(ev.message);
    o.uses.push({ feature: ev.option.feature, spelling: ev.spelling });
    const stop = applyOption(p, o, ev.option.name, ev.optarg);
    if (stop !== null) return stop;
  }

  if (o.macAddress !== null && !o.configure) {
    return p.usageError('--macaddr cannot be specified when --configure or -c is not specified\n');
  }
  const target = o.targetType === 'bess' ? bessTarget(p, o, getopt.operands) : netnsTarget(p, o, getopt.operands);
  if ('kind' in target) return target;

  const unsupported = o.uses.find((u) => !p.supported[u.feature]);
  if (unsupported !== undefined) {
    return p.configError(`${argv0}: ${unsupported.spelling} is not supported yet\n`);
  }
  return configFromOptions(p, o, target);
}

/** Step a: one option as slirp4netns's loop takes it; a ParseResult ends the parse. */
function applyOption(p: Parse, o: Options, name: OptionName, optarg: string): ParseResult | null {
  switch (name) {
    case 'configure':
      o.configure = true;
      break;
    case 'exit-fd':
      o.exitFd = parseFd(optarg);
      if (o.exitFd < 0) return p.usageError('exit-fd must be a non-negative integer\n');
      break;
    case 'ready-fd':
      o.readyFd = parseFd(optarg);
      if (o.readyFd < 0) return p.usageError('ready-fd must be a non-negative integer\n');
      break;
    case 'mtu': {
      const v = strtolWhole(optarg);
      // Assigned to an unsigned int: "-1" wraps to 4294967295 and fails the
      // range check, "4294968796" wraps to 1500 and passes (verified).
      o.mtu = v === null ? 0 : Number(BigInt.asUintN(32, v));
      if (o.mtu === 0 || o.mtu > 65521) return p.usageError('MTU must be a positive integer (< 65522)\n');
      break;
    }
    case 'cidr':
      o.cidr = optarg;
      break;
    case 'no-host-loopback':
      p.warn('disableHostLoopback', WARN_NO_HOST_LOOPBACK);
      o.disableHostLoopback = true;
      break;
    case 'disable-host-loopback':
      o.disableHostLoopback = true;
      break;
    case 'create-sandbox':
      p.warn('enableSandbox', WARN_CREATE_SANDBOX);
      o.enableSandbox = true;
      break;
    case 'enable-sandbox':
      o.enableSandbox = true;
      break;
    case 'enable-seccomp':
      p.warn('enableSeccomp', WARN_SECCOMP);
      o.enableSeccomp = true;
      break;
    case 'netns-type':
      o.netnsType = optarg;
      break;
    case 'userns-path':
      // Checked as it is parsed, so it beats any later bad value.
      if (!p.exists(optarg)) return p.usageError(`userns path doesn't exist: ${optarg}\n`);
      o.userNsPath = optarg;
      break;
    case 'api-socket':
      o.apiSocket = optarg;
      break;
    case 'enable-ipv6':
      o.enableIpv6 = true;
      p.warn('enableIpv6', WARN_IPV6);
      break;
    case 'help':
      return p.exit0(usageText(p.argv0, p.supported));
    case 'version':
      return p.exit0(versionText(USERNET_VERSION, p.deps.nodeVersion ?? process.versions.node, slirpConfigVersionMax(p.supported)));
    case 'outbound-addr':
      p.warn('outboundAddr', WARN_OUTBOUND_ADDR);
      o.outboundAddr = optarg;
      break;
    case 'outbound-addr6':
      p.warn('outboundAddr6', WARN_OUTBOUND_ADDR6);
      o.outboundAddr6 = optarg;
      break;
    case 'disable-dns':
      o.disableDns = true;
      break;
    case 'macaddress':
      o.macAddress = optarg;
      break;
    case 'target-type':
      // The last --target-type wins, and only its value decides whether bess is used.
      o.targetType = optarg;
      o.uses = o.uses.filter((u) => u.feature !== 'targetTypeBess');
      if (optarg === 'bess') o.uses.push({ feature: 'targetTypeBess', spelling: '--target-type=bess' });
      break;
  }
  return null;
}

/** `--exit-fd`/`--ready-fd`: strtol assigned to an int; negative means invalid. */
function parseFd(optarg: string): number {
  const v = strtolWhole(optarg);
  return v === null ? -1 : Number(BigInt.asIntN(32, v));
}

/** Step b for --target-type=bess: one positional, the socket path. */
function bessTarget(p: Parse, o: Options, operands: readonly string[]): Target | ParseResult {
  if (operands.length < 1) return p.usageError('');
  if (operands.length > 1) return p.usageError('too many arguments\n');
  if (o.configure) return p.usageError('--configure conflicts with --target-type=bess\n');
  if (o.netnsType !== null) return p.usageError('--netns-type conflicts with --target-type=bess\n');
  if (o.userNsPath !== null) return p.usageError('--userns-path conflicts with --target-type=bess\n');
  p.warn('targetTypeBess', WARN_BESS);
  return { pid: null, netnsPath: null, tapName: '', bessSocketPath: operands[0] };
}

/** Step b for netns: PID or PATH, then TAPNAME. */
function netnsTarget(p: Parse, o: Options, operands: readonly string[]): Target | ParseResult {
  if (o.targetType !== null && o.targetType !== 'netns') {
    return p.usageError('--target-type must be either "netns" or "bess"\n');
  }
  if (operands.length < 2) return p.usageError('');
  // Not an error in slirp4netns ("for preventing potential compatibility issue").
  if (operands.length > 2) p.stdout += WARN_TOO_MANY;
  const tapName = operands[1];
  if (o.netnsType === null || o.netnsType === 'pid') {
    const v = strtolWhole(operands[0]);
    const pid = v === null ? 0 : Number(BigInt.asIntN(32, v));
    if (pid <= 0) return p.usageError('PID must be a positive integer\n');
    return { pid, netnsPath: `/proc/${pid}/ns/net`, tapName, bessSocketPath: null };
  }
  // perror() after access(F_OK); ENOENT is the only errno `exists` can express.
  if (!p.exists(operands[0])) {
    return p.usageError('existing path expected when --netns-type=path: No such file or directory\n');
  }
  return { pid: null, netnsPath: operands[0], tapName, bessSocketPath: null };
}

/** Step c, slirp4netns_config_from_options(): message only, no usage. */
function configFromOptions(p: Parse, o: Options, target: Target): ParseResult {
  const interfaceAddress = p.deps.interfaceAddress ?? defaultInterfaceAddress;
  const cidr: Checked<{ network: number; prefixLength: number }> =
    o.cidr === null ? { ok: true, value: { ...DEFAULT_CIDR } } : parseCidr(o.cidr);
  if (!cidr.ok) return p.configError(cidr.message);

  let outboundAddr: string | null = null;
  if (o.outboundAddr !== null) {
    outboundAddr = parseIpv4(o.outboundAddr) !== undefined ? o.outboundAddr : interfaceAddress(o.outboundAddr, 4);
    if (outboundAddr === null) return p.configError(OUTBOUND_ADDR_ERROR);
  }
  let outboundAddr6: string | null = null;
  if (o.outboundAddr6 !== null) {
    // An address or an interface name, as documented. slirp4netns looks the
    // name up in --outbound-addr's value instead (a bug: `--outbound-addr6=lo`
    // alone fails there); usernet accepts what slirp4netns accepts and more.
    outboundAddr6 = isInetPton6(o.outboundAddr6) ? o.outboundAddr6 : interfaceAddress(o.outboundAddr6, 6);
    if (outboundAddr6 === null) return p.configError(OUTBOUND_ADDR6_ERROR);
  }

  let macAddress: Uint8Array | null = null;
  if (o.macAddress !== null) {
    const mac = parseMacAddress(o.macAddress);
    if (!mac.ok) return p.configError(mac.message + MAC_ERROR);
    macAddress = mac.value;
  }

  const { network, prefixLength } = cidr.value;
  if (!o.disableHostLoopback) p.stdout += hostLoopbackWarning(addressPlan(network, prefixLength).gateway);

  return {
    kind: 'run',
    config: {
      configure: o.configure,
      exitFd: o.exitFd,
      readyFd: o.readyFd,
      mtu: o.mtu,
      enableIpv6: o.enableIpv6,
      apiSocket: o.apiSocket,
      cidr: cidr.value,
      disableHostLoopback: o.disableHostLoopback,
      netnsType: o.netnsType === null || o.netnsType === 'pid' ? 'pid' : 'path',
      userNsPath: o.userNsPath,
      enableSandbox: o.enableSandbox,
      enableSeccomp: o.enableSeccomp,
      outboundAddr,
      outboundAddr6,
      disableDns: o.disableDns,
      macAddress,
      targetType: o.targetType === 'bess' ? 'bess' : 'netns',
      ...target,
    },
    stdout: p.stdout,
    stderr: '',
  };
}
