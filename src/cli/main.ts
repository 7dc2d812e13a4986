/**
 * The slirp4netns-compatible command (slirp4netns 1.2's): parse the
 * arguments, attach to the namespace's TAP through the forked child, print
 * what slirp4netns prints, run the stack, signal readiness, and exit when the
 * exit fd hangs up or a signal arrives. Uses only the public library API plus
 * the CLI's own argument parser.
 */
import { closeSync, statSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { createStack, TapLink, type AddressPlan, type Stack } from '../index.js';
import { loadNative, watchHangup } from '../link/native.js';
import { offloadNames } from '../link/tap.js';
import { ipv4ToString } from '../wire/ipv4-address.js';
import { ApiServer } from '../api/api-server.js';
import { reclaimMemoryWhenIdle, type MemoryReclaimer } from '../memory-reclaim.js';
import { busyPoll, busyPollFromEnv } from '../link/busy-poll.js';
import { policyCommands, policyFromEnv } from './policy-cli.js';
import { parseArgs, type CliConfig } from './args.js';
import { hostLoopbackWarning } from './slirp-validate.js';
import { cliAddressPlan, cliStackOptions, tapConfigure } from './stack-options.js';
import { runMode, wantsRunMode } from './run-mode.js';
import { launcherTapError, type LauncherTap } from './launcher-tap.js';
import { launcherFdError, type LauncherSandbox } from './launcher-sandbox.js';

const NO_SANDBOX: LauncherSandbox = { launched: false, sandboxed: false, api: null, pcap: null };

/**
 * `launcherTap`: the attach native/launcher.c already did for this argv, or
 * null; `sandbox`: what it did for --enable-sandbox.
 */
export function main(argv: string[], argv0: string, launcherTap: LauncherTap | null = null, sandbox: LauncherSandbox = NO_SANDBOX): void {
  // `usernet [OPTION]... -- COMMAND`: run mode (run-mode.ts). Without `--` nothing changes.
  if (wantsRunMode(argv)) {
    runMode(argv);
    return;
  }
  // Sandboxed, the host's paths are gone; the launcher checked the netns
  // and userns paths (access(F_OK), as this parser does) before the sandbox.
  // Only the launcher can make the sandbox: without it the flag is unsupported.
  const parsed = parseArgs(argv, process.env, argv0, {
    exists: sandbox.sandboxed ? () => true : undefined,
    supported: sandbox.launched ? {} : { enableSandbox: false },
  });
  if (parsed.kind === 'exit') {
    writeOut(parsed.stdout, parsed.stderr);
    process.exitCode = parsed.status;
    return;
  }
  // slirp4netns prints the loopback warning after the banner, so hold it back until then.
  const loopbackWarning = hostLoopbackWarning(cliAddressPlan(parsed.config).gateway);
  writeOut(parsed.stdout.replace(loopbackWarning, ''), parsed.stderr);
  run(parsed.config, launcherTap, sandbox);
}

function run(config: CliConfig, launcherTap: LauncherTap | null, sandbox: LauncherSandbox): void {
  const plan = cliAddressPlan(config);

  let stack: Stack | null = null;
  let api: ApiServer | null = null;
  let exiting = false;
  let hangup: { stop(): void } | null = null;
  let reclaimer: MemoryReclaimer | null = null;
  const shutdown = (): void => {
    if (exiting) return;
    exiting = true;
    hangup?.stop();
    reclaimer?.stop();
    // Removes the socket file (slirp4netns does on a clean exit).
    void api?.close();
    stack?.close();
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    shutdown();
    // Die by the same signal, as slirp4netns does (it has no handler), so the
    // parent sees the same wait status; only now with everything released.
    process.kill(process.pid, signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGPIPE', () => {});

  // Watch the exit fd before the TAP or any socket is opened, so that none of
  // them can take the number of an exit fd that was not open (as in slirp4netns 1.2:
  // an fd that is not open means exit at once).
  if (config.exitFd !== null) {
    hangup = watchHangup(config.exitFd, () => {
      process.stderr.write('exitfd event\n');
      process.stderr.write('do_slirp is exiting\n');
      shutdown();
      process.exitCode = 0;
      // Everything is released, so the process ends by itself; this unref'd
      // timer only fires if some handle was left behind.
      setTimeout(() => process.exit(0), 2000).unref();
    });
  }

  // Namespaces, mounts and capabilities are per thread: Node, with its
  // threads already running, cannot sandbox itself (native/sandbox.c).
  if (config.enableSandbox && !sandbox.sandboxed && (launcherTap === null || launcherTap.kind === 'ok')) {
    process.stderr.write(
      'usernet: --enable-sandbox: the launcher makes the sandbox before Node starts, and it leaves this command line to Node ' +
        '(an option value it does not parse itself, such as an interface name for --outbound-addr, or USERNET_NO_OFFLOAD)\n',
    );
    if (launcherTap?.kind === 'ok') closeSync(launcherTap.fd);
    process.exitCode = 1;
    shutdown();
    return;
  }

  let link: TapLink;
  try {
    link = attachLink(config, plan, launcherTap);
  } catch (err) {
    const e = err as Error & { exitStatus?: number; code?: string };
    process.stderr.write(`${e.message}\n`);
    if (e.code !== 'ERR_USERNET_CHILD_FAILED') process.stderr.write('parent failed\n');
    process.exitCode = e.exitStatus ?? 1;
    shutdown();
    return;
  }
  process.stderr.write(`received tapfd=${link.fd}\n`);
  printBanner(config, plan, link);
  if (link.ipv6Errno !== 0) {
    process.stderr.write(`usernet: the guest's IPv6 could not be configured (${getSystemErrorName(-link.ipv6Errno)}); it gets IPv6 from Router Advertisements if it can\n`);
  }

  const pcap = process.env.USERNET_PCAP || null;
  try {
    if (pcap !== null && sandbox.pcap?.kind === 'err') throw launcherFdError(sandbox.pcap.errno, 'open', pcap);
    stack = createStack(
      cliStackOptions(link, {
        ...config,
        pcap,
        pcapFd: sandbox.pcap?.kind === 'fd' ? sandbox.pcap.fd : undefined,
        debug: process.env.USERNET_DEBUG === '1',
        policy: policyFromEnv(process.env),
      }),
    );
    busyPoll(busyPollFromEnv(process.env));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\nparent failed\n`);
    link.close();
    shutdown();
    process.exitCode = 1;
    return;
  }
  const linkStats = link.stats;
  const running = stack;
  reclaimer = reclaimMemoryWhenIdle(() => linkStats.rxBytes + linkStats.txBytes, { release: () => running.releaseIdleMemory() });

  const ready = (): void => {
    // Last, so that nothing before needs a syscall the filter kills on (the
    // attach child's fork and setns are over); first, so that no client ever
    // sees a ready helper without the filter (the last step in slirp4netns 1.2 too).
    if (config.enableSeccomp && !enterSeccomp()) {
      shutdown();
      process.exitCode = 1;
      return;
    }
    if (config.readyFd !== null) signalReady(config.readyFd);
  };
  if (config.apiSocket === null) {
    ready();
    return;
  }
  // Ready only once the API socket listens: clients send add_hostfwd right away (as slirp4netns 1.2 orders it).
  const s = stack;
  const apiPath = config.apiSocket;
  // The launcher bound it (--enable-sandbox): its fd, or why it could not;
  // a path too long for sun_path gets ApiServer's own message.
  if (sandbox.api?.kind === 'err' && sandbox.api.errno !== osConstants.errno.ENAMETOOLONG) {
    process.stderr.write(`${launcherFdError(sandbox.api.errno, 'listen', apiPath).message}\ndo_slirp failed\nparent failed\n`);
    shutdown();
    process.exitCode = 1;
    return;
  }
  api = new ApiServer({
    path: apiPath,
    fd: sandbox.api?.kind === 'fd' ? sandbox.api.fd : undefined,
    defaultGuestAddr: ipv4ToString(plan.guest),
    forwarder: { add: (f) => s.addForward(f), remove: (f) => s.removeForward(f) },
    // usernet's own commands; anything else unknown keeps slirp4netns's error text.
    extraCommands: {
      stats: () => s.stats(),
      list_connections: () => ({ entries: s.connections() }),
      ...policyCommands(s),
    },
    log: (line) => process.stderr.write(`${line}\n`),
  });
  api.listen().then(ready, (err: Error) => {
    process.stderr.write(`${err.message}\ndo_slirp failed\nparent failed\n`);
    shutdown();
    process.exitCode = 1;
  });
}

/** The launcher's TAP (or its failure) when it attached, else TapLink.attach. */
function attachLink(config: CliConfig, plan: AddressPlan, launcherTap: LauncherTap | null): TapLink {
  if (launcherTap !== null) {
    if (launcherTap.kind !== 'ok') throw launcherTapError(launcherTap);
    const link = TapLink.fromFd(launcherTap.fd, { mtu: config.mtu, vnetHdr: launcherTap.vnetHdr });
    link.ipv6Errno = launcherTap.ipv6Errno;
    return link;
  }
  return TapLink.attach({
    netnsPath: config.netnsPath!,
    usernsPath: userNamespaceToJoin(config),
    tapName: config.tapName,
    mtu: config.mtu,
    configure: config.configure ? tapConfigure(plan, config, config.macAddress) : null,
  });
}

/**
 * pid mode joins /proc/PID/ns/user when it is not already ours (joining our
 * own would fail with EINVAL); --userns-path overrides it in either mode.
 */
function userNamespaceToJoin(config: CliConfig): string | null {
  if (config.userNsPath !== null) return config.userNsPath;
  if (config.netnsType !== 'pid' || config.pid === null) return null;
  const theirs = `/proc/${config.pid}/ns/user`;
  try {
    return statSync(theirs).ino === statSync('/proc/self/ns/user').ino ? null : theirs;
  } catch {
    // The process is gone or unreadable; the child reports the netns error.
    return null;
  }
}

/**
 * --enable-seccomp (native/seccomp.c). slirp4netns prints the list on stdout
 * after the banner; when the kernel refuses, it exits 1 without signalling
 * ready, and the client reports the helper's output.
 */
function enterSeccomp(): boolean {
  const native = loadNative();
  const r = native.installSeccomp();
  if (r !== 0) {
    process.stderr.write(
      `usernet: --enable-seccomp: the kernel refused the seccomp filter (${getSystemErrorName(r)}); ` +
        'it needs seccomp filters with SECCOMP_FILTER_FLAG_TSYNC and SECCOMP_RET_KILL_PROCESS (Linux >= 4.14)\n',
    );
    return false;
  }
  process.stdout.write(`seccomp: The following syscalls are blocked: ${native.seccompBlocked().join(' ')}\n`);
  return true;
}

/** One byte '1', then close, as slirp4netns 1.2 does. A bad fd is ignored, as slirp4netns does. */
function signalReady(fd: number): void {
  try {
    writeSync(fd, '1');
  } catch {
    // ignored
  }
  try {
    closeSync(fd);
  } catch {
    // ignored
  }
}

function printBanner(config: CliConfig, plan: AddressPlan, link: TapLink): void {
  const lines = [
    'Starting slirp',
    `* MTU:             ${config.mtu}`,
    `* Network:         ${ipv4ToString(plan.network)}`,
    `* Netmask:         ${ipv4ToString(plan.netmask)}`,
    `* Gateway:         ${ipv4ToString(plan.gateway)}`,
    `* DNS:             ${ipv4ToString(plan.dns)}`,
    `* DHCP begin:      ${ipv4ToString(plan.dhcpStart)}`,
    `* DHCP end:        ${ipv4ToString(plan.dhcpEnd)}`,
    `* Recommended IP:  ${ipv4ToString(plan.guest)}`,
  ];
  if (config.apiSocket !== null) lines.push(`* API Socket:      ${config.apiSocket}`);
  if (config.outboundAddr !== null) lines.push(`* Outbound IPv4:   ${config.outboundAddr}`);
  if (config.outboundAddr6 !== null) lines.push(`* Outbound IPv6:   ${config.outboundAddr6}`);
  if (config.macAddress !== null) {
    lines.push(`* MAC address:     ${Array.from(config.macAddress, (b) => b.toString(16).padStart(2, '0')).join(':')}`);
  }
  // Not in slirp4netns's banner (it has no offloads); no client parses these lines.
  lines.push(`* Offloads:        ${link.vnetHdr ? offloadNames(link.offloads).join(' ') || 'none (virtio-net header only)' : 'none'}`);
  if (!config.disableHostLoopback) lines.push(hostLoopbackWarning(plan.gateway).trimEnd());
  process.stdout.write(`${lines.join('\n')}\n`);
}

function writeOut(stdout: string, stderr: string): void {
  if (stderr) process.stderr.write(stderr);
  if (stdout) process.stdout.write(stdout);
}
