/**
 * Run mode: `usernet [OPTION]... -- COMMAND [ARG]...`, the
 * pasta-style "just run this with a network" entry point. main.ts hands over
 * here only when argv contains a standalone `--`; without it the slirp4netns
 * grammar (args.ts) is untouched.
 *
 * Mechanism
 * 1. usernet spawns a helper, with stdin/stdout/stderr inherited and two
 *    extra socket fds (3: "go" from usernet, 4: "ready" to usernet):
 *      unshare [--map-root-user [--map-users=S,1,N --map-groups=S,1,N]] --net --mount \
 *        sh -c HELPER_SCRIPT usernet-run COMMAND [ARG]...
 *    Not root: a new user namespace mapping the caller to root, plus the
 *    caller's first /etc/subuid and /etc/subgid ranges at 1… when newuidmap
 *    and newgidmap exist (unshare calls them), else the single-id map. As
 *    root: no user namespace, only network and mount namespaces. No --fork:
 *    the helper execs COMMAND, so the child usernet spawned IS COMMAND (its
 *    pid gets our signals, its wait status is COMMAND's).
 * 2. The helper (already inside the namespaces, maps written) writes one line
 *    on fd 4 and blocks reading fd 3.
 * 3. usernet attaches with TapLink.attach({ netnsPath: /proc/PID/ns/net,
 *    usernsPath: /proc/PID/ns/user (null as root), tapName: 'tap0',
 *    configure }) exactly as `--configure` does (net+100/prefix, default route
 *    via net+2, MTU, lo up), creates the stack, adds every -p forward, and
 *    writes "go" on fd 3.
 * 4. The helper closes fds 3 and 4, bind-mounts a private resolv.conf
 *    (`nameserver net+3`) over /etc/resolv.conf in its own mount namespace
 *    (mount follows a symlinked /etc/resolv.conf to its target; a dangling
 *    symlink whose target directory exists gets a tmpfs on that directory
 *    holding the file; otherwise a warning and the host's file stays
 *    visible), and execs COMMAND.
 * 5. SIGINT, SIGTERM and SIGHUP to usernet are forwarded to COMMAND. When it
 *    ends, usernet closes the stack (and the API socket), removes its temp
 *    dir and exits with COMMAND's status, 128+N if signal N killed it. The
 *    namespaces die with COMMAND (and whatever it left running in them).
 *
 * COMMAND's stderr is usernet's, so usernet writes nothing of its own there
 * unless something fails: not even the attach child's "sent tapfd=N for
 * tap0", which slirp4netns's grammar keeps (--debug brings it back).
 *
 * If usernet fails before "go", the helper reads EOF and exits 125 without
 * running COMMAND. If usernet is SIGKILLed after "go", COMMAND runs on with
 * its TAP gone (the device disappears with the fd).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Socket } from 'node:net';
import { createStack, TapLink, type Stack } from '../index.js';
import { reclaimMemoryWhenIdle, type MemoryReclaimer } from '../memory-reclaim.js';
import { busyPoll, busyPollFromEnv, DEFAULT_BUSY_POLL_US } from '../link/busy-poll.js';
import { parsePolicy } from '../policy/rules.js';
import { policyCommands, policyFile, policyFromEnv } from './policy-cli.js';
import { ApiServer } from '../api/api-server.js';
import { ipv4ToString, parseIpv4 } from '../wire/ipv4-address.js';
import { strtolWhole } from './c-scan.js';
import { DEFAULT_CIDR, defaultInterfaceAddress as interfaceAddress, parseCidr } from './slirp-validate.js';
import { parseIpv6 } from '../wire/ipv6-address.js';
import { cliAddressPlan, cliStackOptions, tapConfigure } from './stack-options.js';

export interface PublishSpec {
  proto: 'tcp' | 'udp';
  hostAddr: string;
  hostPort: number;
  guestPort: number;
}

export interface RunConfig {
  mtu: number;
  cidr: { network: number; prefixLength: number };
  disableHostLoopback: boolean;
  outboundAddr: string | null;
  /** On unless --disable-ipv6 (slirp4netns's -6 is opt-in; run mode has no legacy to keep). */
  enableIpv6: boolean;
  outboundAddr6: string | null;
  disableDns: boolean;
  apiSocket: string | null;
  publish: PublishSpec[];
  /** --pcap FILE (default USERNET_PCAP). */
  pcap: string | null;
  /** --debug (default USERNET_DEBUG=1). */
  debug: boolean;
  /** --policy/--allow/--deny/--default-deny as rule lines (default USERNET_POLICY's file), or null. */
  policy: string[] | null;
  /** USERNET_BUSY_POLL_US (link/busy-poll.ts). */
  busyPollUs: number;
  command: string[];
}

const RUN_USAGE = `Usage: usernet [OPTION]... -- COMMAND [ARG]...
Run COMMAND in new user (when not root), network and mount namespaces whose
tap0 is connected through usernet (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3;
IPv6 fd00::/64 by SLAAC, gateway fe80::2 / fd00::2, DNS fd00::3).

  -m, --mtu=MTU                 MTU of tap0 (default 1500)
      --cidr=CIDR               guest network (default 10.0.2.0/24)
      --disable-host-loopback   forbid the guest to reach the host's loopback via net+2
      --outbound-addr=IPv4|IF   bind host sockets to this address or interface
      --outbound-addr6=IPv6|IF  bind IPv6 host sockets to this address or interface
      --disable-ipv6            IPv4 only
      --disable-dns             no DNS at net+3 (resolv.conf is then left alone)
  -a, --api-socket=PATH         slirp4netns API socket (add_hostfwd, ...)
  -p, --publish=[HOST_ADDR:]HOST_PORT:GUEST_PORT[/tcp|/udp]
                                forward a host port to the guest's IPv4 address
                                (repeatable; HOST_ADDR may be [IPv6])
      --pcap=FILE               record every frame in and out to FILE (pcap)
      --debug                   per-flow events on stderr (default: nothing but errors)
      --allow=RULE, --deny=RULE egress rule: [tcp:|udp:|icmp:]ADDR|CIDR|any|private[:PORT[-PORT]]
                                (first match wins; repeatable, in order)
      --default-deny            deny what no rule allows (default: allow)
      --policy=FILE             egress rules from FILE, one per line (# comments)
  -h, --help                    show this help
`;

type Parsed = { kind: 'run'; config: RunConfig } | { kind: 'exit'; status: number; stdout: string; stderr: string };

/** Parses the arguments of run mode; `argv` contains a standalone `--`. */
export function parseRunArgs(argv: readonly string[]): Parsed {
  const sep = argv.indexOf('--');
  const opts = argv.slice(0, sep);
  const command = argv.slice(sep + 1);
  const fail = (msg: string): Parsed => ({ kind: 'exit', status: 1, stdout: '', stderr: `usernet: ${msg}\n${RUN_USAGE}` });
  const config: RunConfig = {
    mtu: 1500,
    cidr: { ...DEFAULT_CIDR },
    disableHostLoopback: false,
    outboundAddr: null,
    enableIpv6: true,
    outboundAddr6: null,
    disableDns: false,
    apiSocket: null,
    publish: [],
    pcap: process.env.USERNET_PCAP || null,
    debug: process.env.USERNET_DEBUG === '1',
    policy: null,
    busyPollUs: DEFAULT_BUSY_POLL_US,
    command,
  };
  const policyLines: string[] = [];
  let defaultDeny = false;
  const withArg = new Map<string, string>([
    ['-m', 'mtu'], ['--mtu', 'mtu'], ['--cidr', 'cidr'], ['--outbound-addr', 'outbound-addr'],
    ['--outbound-addr6', 'outbound-addr6'],
    ['-a', 'api-socket'], ['--api-socket', 'api-socket'], ['-p', 'publish'], ['--publish', 'publish'],
    ['--pcap', 'pcap'], ['--allow', 'allow'], ['--deny', 'deny'], ['--policy', 'policy'],
  ]);
  for (let i = 0; i < opts.length; i++) {
    const arg = opts[i]!;
    let name: string | undefined;
    let value: string | undefined;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    if (withArg.has(key)) {
      name = withArg.get(key)!;
      if (eq > 0) value = arg.slice(eq + 1);
      else if (i + 1 < opts.length) value = opts[++i]!;
      else return fail(`option ${arg} needs an argument`);
    } else if (/^-[mpa]./.test(arg)) {
      name = withArg.get(arg.slice(0, 2))!;
      value = arg.slice(2);
    } else if (eq > 0) {
      return fail(`unknown option ${key} (or it takes no argument)`);
    }
    switch (name ?? arg) {
      case '-h':
      case '--help':
        return { kind: 'exit', status: 0, stdout: RUN_USAGE, stderr: '' };
      case '--disable-host-loopback':
      case '--no-host-loopback':
        config.disableHostLoopback = true;
        break;
      case '--disable-dns':
        config.disableDns = true;
        break;
      case '--disable-ipv6':
        config.enableIpv6 = false;
        break;
      case '--debug':
        config.debug = true;
        break;
      case 'pcap':
        config.pcap = value!;
        break;
      case 'allow':
      case 'deny':
        policyLines.push(`${name} ${value}`);
        break;
      case '--default-deny':
        defaultDeny = true;
        break;
      case 'policy':
        try {
          policyLines.push(...policyFile(value!, '--policy '));
        } catch (err) {
          return fail((err as Error).message);
        }
        break;
      case 'mtu': {
        const v = strtolWhole(value!);
        if (v === null || v < 68n || v > 65521n) return fail('MTU must be an integer in 68..65521');
        config.mtu = Number(v);
        break;
      }
      case 'cidr': {
        const c = parseCidr(value!);
        if (!c.ok) return fail(c.message.trimEnd());
        config.cidr = c.value;
        break;
      }
      case 'outbound-addr': {
        const addr = parseIpv4(value!) !== undefined ? value! : interfaceAddress(value!, 4);
        if (addr === null) return fail(`outbound-addr has to be an IPv4 address or an interface with one: ${value}`);
        config.outboundAddr = addr;
        break;
      }
      case 'outbound-addr6': {
        const addr = parseIpv6(value!) !== undefined ? value! : interfaceAddress(value!, 6);
        if (addr === null) return fail(`outbound-addr6 has to be an IPv6 address or an interface with one: ${value}`);
        config.outboundAddr6 = addr;
        break;
      }
      case 'api-socket':
        config.apiSocket = value!;
        break;
      case 'publish': {
        const p = parsePublish(value!);
        if (typeof p === 'string') return fail(p);
        config.publish.push(p);
        break;
      }
      default:
        if (arg.startsWith('-')) return fail(`unknown option ${arg}`);
        return fail(`unexpected argument ${arg} before -- (run mode takes no PID or TAP name)`);
    }
  }
  if (command.length === 0) return fail('no COMMAND after --');
  if (defaultDeny) policyLines.unshift('default deny');
  if (policyLines.length > 0) {
    const p = parsePolicy(policyLines);
    if (!p.ok) return fail(`invalid egress policy:\n${p.errors.map((e) => `  ${e.message}`).join('\n')}`);
    config.policy = policyLines;
  } else {
    try {
      config.policy = policyFromEnv(process.env);
    } catch (err) {
      return fail((err as Error).message);
    }
  }
  try {
    config.busyPollUs = busyPollFromEnv(process.env);
  } catch (err) {
    return fail((err as Error).message);
  }
  return { kind: 'run', config };
}

/** `[HOST_ADDR:]HOST_PORT:GUEST_PORT[/tcp|/udp]`, HOST_ADDR IPv4 or [IPv6]. Returns an error message on failure. */
export function parsePublish(spec: string): PublishSpec | string {
  const m = /^(?:(\[[^\]]*\]|[^:[\]]*):)?([^:/]+):([^:/]+)(?:\/(tcp|udp))?$/.exec(spec);
  if (m === null) return `invalid --publish "${spec}": expected [HOST_ADDR:]HOST_PORT:GUEST_PORT[/tcp|/udp]`;
  const port = (s: string): number | null => (/^\d{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535 ? Number(s) : null);
  const hostPort = port(m[2]!);
  const guestPort = port(m[3]!);
  if (hostPort === null || guestPort === null) return `invalid --publish "${spec}": ports must be 1..65535`;
  let hostAddr = m[1] === undefined || m[1] === '' ? '0.0.0.0' : m[1];
  // An IPv6 HOST_ADDR in brackets, as Docker and Podman write it: [::1]:8080:80.
  if (hostAddr.startsWith('[')) {
    const inner = hostAddr.slice(1, -1);
    if (parseIpv6(inner) === undefined) return `invalid --publish "${spec}": [HOST_ADDR] must be an IPv6 address`;
    hostAddr = inner;
  } else if (parseIpv4(hostAddr) === undefined) return `invalid --publish "${spec}": HOST_ADDR must be an IPv4 address or [an IPv6 address]`;
  return { proto: (m[4] as 'tcp' | 'udp' | undefined) ?? 'tcp', hostAddr, hostPort, guestPort };
}

/** First `name:start:count` range for the user (by name or uid) in /etc/subuid or /etc/subgid. */
function subordinateRange(file: string, name: string, id: number): [number, number] | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === name || who === String(id)) && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '') && Number(count) > 0) {
      return [Number(start), Number(count)];
    }
  }
  return null;
}

function which(cmd: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

/** The unshare(1) options for the namespaces (see the file comment). */
export function unshareArgs(): string[] {
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return ['--net', '--mount'];
  const args = ['--map-root-user'];
  if (which('newuidmap') && which('newgidmap')) {
    let name = '';
    try {
      name = userInfo().username;
    } catch {
      /* no passwd entry: match by uid only */
    }
    const gid = process.getgid?.() ?? uid;
    const su = subordinateRange('/etc/subuid', name, uid);
    const sg = subordinateRange('/etc/subgid', name, gid) ?? subordinateRange('/etc/subgid', name, uid);
    if (su !== null && sg !== null) args.push(`--map-users=${su[0]},1,${su[1]}`, `--map-groups=${sg[0]},1,${sg[1]}`);
  }
  return [...args, '--net', '--mount'];
}

/**
 * Where the private resolv.conf goes: '' for a bind mount over
 * /etc/resolv.conf (a file, or a symlink to an existing file: mount follows
 * it), else the target of a dangling symlink whose directory exists (the
 * helper mounts a tmpfs on that directory), or null when neither works.
 */
function resolvTarget(): string | null {
  const path = '/etc/resolv.conf';
  try {
    const st = lstatSync(path);
    if (!st.isSymbolicLink()) return '';
    if (existsSync(path)) return '';
    let target = resolve(dirname(path), readlinkSync(path));
    // Follow further links in the chain as far as they go.
    for (let i = 0; i < 16; i++) {
      try {
        if (!lstatSync(target).isSymbolicLink()) break;
        target = resolve(dirname(target), readlinkSync(target));
      } catch {
        break;
      }
    }
    return existsSync(dirname(target)) ? target : null;
  } catch {
    return null;
  }
}

/** Runs inside the namespaces: $1.. is COMMAND; USERNET_RUN_RESOLV / USERNET_RUN_RESOLV_DIR_TARGET in the env. */
const HELPER_SCRIPT = String.raw`
echo ready >&4 || exit 125
read -r go <&3 || exit 125
[ "$go" = go ] || exit 125
exec 3<&- 4>&-
src="$USERNET_RUN_RESOLV"; tgt="$USERNET_RUN_RESOLV_TARGET"
unset USERNET_RUN_RESOLV USERNET_RUN_RESOLV_TARGET
if [ -n "$src" ]; then
  if [ -z "$tgt" ]; then
    mount -n --bind "$src" /etc/resolv.conf || echo "usernet: warning: could not bind-mount resolv.conf" >&2
  else
    d=$(dirname "$tgt")
    if mount -n -t tmpfs -o mode=0755 usernet-resolv "$d" && cat "$src" > "$tgt"; then :; else
      echo "usernet: warning: could not provide $tgt" >&2
    fi
  fi
fi
exec "$@"
`;

export function runMode(argv: string[]): void {
  const parsed = parseRunArgs(argv);
  if (parsed.kind === 'exit') {
    if (parsed.stderr) process.stderr.write(parsed.stderr);
    if (parsed.stdout) process.stdout.write(parsed.stdout);
    process.exitCode = parsed.status;
    return;
  }
  const config = parsed.config;
  if (!which('unshare')) {
    process.stderr.write('usernet: unshare(1) (util-linux) is needed for run mode\n');
    process.exitCode = 1;
    return;
  }
  const plan = cliAddressPlan(config);
  const tmp = mkdtempSync(join(tmpdir(), 'usernet-run-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (!config.disableDns) {
    const target = resolvTarget();
    if (target === null) {
      process.stderr.write('usernet: warning: /etc/resolv.conf is missing or a dangling symlink; the guest keeps the host resolver config\n');
    } else {
      const file = join(tmp, 'resolv.conf');
      // fd00::3 second: resolvers try them in order, and IPv4 needs no RA first.
      const v6 = config.enableIpv6 && config.mtu >= 1280 ? 'nameserver fd00::3\n' : '';
      writeFileSync(file, `nameserver ${ipv4ToString(plan.dns)}\n${v6}`, { mode: 0o644 });
      env.USERNET_RUN_RESOLV = file;
      env.USERNET_RUN_RESOLV_TARGET = target;
    }
  }

  let stack: Stack | null = null;
  let api: ApiServer | null = null;
  let link: TapLink | null = null;
  let reclaimer: MemoryReclaimer | null = null;
  let finished = false;
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const cleanup = (): void => {
    for (const s of signals) process.removeListener(s, onSignal);
    reclaimer?.stop();
    void api?.close();
    api = null;
    if (stack !== null) stack.close();
    else link?.close();
    stack = null;
    link = null;
    rmSync(tmp, { recursive: true, force: true });
  };

  const child: ChildProcess = spawn('unshare', [...unshareArgs(), 'sh', '-c', HELPER_SCRIPT, 'usernet-run', ...config.command], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe'],
    env,
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    try {
      child.kill(signal);
    } catch {
      /* gone */
    }
  };
  for (const s of signals) process.on(s, onSignal);
  process.on('SIGPIPE', () => {});

  const go = child.stdio[3] as Socket;
  const ready = child.stdio[4] as Socket;
  go.on('error', () => {});
  ready.on('error', () => {});

  child.once('error', (err) => {
    if (finished) return;
    finished = true;
    process.stderr.write(`usernet: cannot run unshare: ${err.message}\n`);
    cleanup();
    process.exitCode = 1;
  });
  child.once('exit', (code, signal) => {
    if (finished) return;
    finished = true;
    go.destroy();
    ready.destroy();
    cleanup();
    process.exitCode = signal !== null ? 128 + (osConstants.signals[signal] ?? 0) : (code ?? 1);
    // Everything is released; this only fires if some handle was left behind.
    setTimeout(() => process.exit(), 2000).unref();
  });

  const abort = (message: string): void => {
    process.stderr.write(`usernet: ${message}\n`);
    // The helper reads EOF on fd 3 and exits 125 without running COMMAND.
    go.destroy();
  };

  let got = '';
  ready.setEncoding('utf8');
  ready.on('data', (d: string) => {
    if (got.includes('\n')) return;
    got += d;
    if (!got.includes('\n') || finished) return;
    const pid = child.pid!;
    try {
      link = TapLink.attach({
        netnsPath: `/proc/${pid}/ns/net`,
        usernsPath: process.getuid?.() === 0 ? null : `/proc/${pid}/ns/user`,
        tapName: 'tap0',
        quiet: !config.debug,
        mtu: config.mtu,
        configure: tapConfigure(plan, config, null),
      });
      const running = createStack(cliStackOptions(link, config));
      stack = running;
      busyPoll(config.busyPollUs);
      const linkStats = link.stats;
      reclaimer = reclaimMemoryWhenIdle(() => linkStats.rxBytes + linkStats.txBytes, { release: () => running.releaseIdleMemory() });
    } catch (err) {
      abort(`cannot connect the namespace: ${(err as Error).message}`);
      return;
    }
    const s = stack;
    const guestAddr = ipv4ToString(plan.guest);
    const start = async (): Promise<void> => {
      for (const p of config.publish) {
        await s.addForward({ proto: p.proto, hostAddr: p.hostAddr, hostPort: p.hostPort, guestAddr, guestPort: p.guestPort }).catch((err: Error) => {
          throw new Error(`cannot publish ${p.hostAddr}:${p.hostPort}:${p.guestPort}/${p.proto}: ${err.message}`);
        });
      }
      if (config.apiSocket !== null) {
        api = new ApiServer({
          path: config.apiSocket,
          defaultGuestAddr: guestAddr,
          forwarder: { add: (f) => s.addForward(f), remove: (f) => s.removeForward(f) },
          extraCommands: policyCommands(s),
          log: (line) => process.stderr.write(`${line}\n`),
        });
        await api.listen();
      }
    };
    start().then(
      () => {
        if (!finished) go.end('go\n');
      },
      (err: Error) => abort(err.message),
    );
  });
  ready.on('end', () => {
    if (!got.includes('\n') && !finished) go.destroy();
  });
}

/** Exported for main.ts: run mode is chosen by a standalone `--` anywhere in argv. */
export function wantsRunMode(argv: readonly string[]): boolean {
  return argv.includes('--');
}
