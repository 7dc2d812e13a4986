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
import { parseIpv4 } from '../wire/ipv4-address.js';
import { strtolWhole } from './c-scan.js';
import { slirpConfigVersionMax, SUPPORTED, USERNET_VERSION, type Feature } from './features.js';
import { Getopt } from './getopt.js';
import { usageText, versionText } from './help.js';
import {
  DEFAULT_CIDR,
  defaultInterfaceAddress,
  hostLoopbackWarning,
  isIpv6Literal,
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
