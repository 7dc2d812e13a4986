/**
 * The launcher attaches the TAP before Node starts (native/launcher.c, "The
 * TAP, before Node starts"). Every case runs the same command line twice:
 * through bin/usernet (the launcher) and as `node dist/bundle/usernet.js`
 * (the Node path, which attaches itself as before), and expects the same
 * stderr, stdout, exit status and device: addresses, MTU, MAC, routes, IPv6.
 *
 * A `node` wrapper first in PATH records USERNET_LAUNCHER_TAP as the launcher
 * handed it over, so each case also proves which side attached.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LAUNCHER_TAP_ENV } from '../../src/cli/launcher-tap.js';
import { announceSkip, e2eUnavailable, namedNetns, runCommand, userNetns, waitFor, type UserNetns } from '../support/netns.js';

const ROOT = resolve(__dirname, '../..');
const BIN = join(ROOT, 'bin', 'usernet');
const BUNDLE = join(ROOT, 'dist', 'bundle', 'usernet.js');
const LAUNCHER = join(ROOT, 'build', 'Release', 'usernet-launcher');
const skip = announceSkip(
  'launcher TAP attach',
  e2eUnavailable() ?? (!existsSync(LAUNCHER) ? `${LAUNCHER} is not built (npm install)` : !existsSync(BUNDLE) ? 'npm run build first' : null),
);

type Path = 'launcher' | 'node';

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** With every tapfd=N as tapfd=N: the numbers differ between the paths. */
  stderr: string;
  /** USERNET_LAUNCHER_TAP as Node received it ('' on the Node path, or when the launcher left it to Node). */
  handedOver: string;
}

let dir = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-ltap-'));
  writeFileSync(
    join(dir, 'node'),
    `#!/bin/sh\nprintf '%s' "$USERNET_LAUNCHER_TAP" > "${dir}/handed-over"\nexec "${process.execPath}" "$@"\n`,
  );
  chmodSync(join(dir, 'node'), 0o755);
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  exited: Promise<Outcome>;
  kill(signal: NodeJS.Signals): void;
  running(): boolean;
}

/** Starts `path` with argv (through sh, for the redirections), its ready fd 9 on `ready` when given. */
function start(path: Path, argv: string[], o: { ready?: string; env?: Record<string, string> } = {}): Started {
  rmSync(join(dir, 'handed-over'), { force: true });
  const redirects = o.ready === undefined ? '' : `9>"${o.ready}"`;
  const cmd = path === 'launcher' ? [BIN] : [process.execPath, '--max-semi-space-size=2', BUNDLE];
  const child = spawn('sh', ['-c', `exec "$@" ${redirects}`, 'sh', ...cmd, ...argv], {
    // USERNET_LAUNCHER: Node as the launcher starts it (with --enable-sandbox in its texts).
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, USERNET_ARGV0: BIN, ...(path === 'node' ? { USERNET_LAUNCHER: '1' } : {}), ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<Outcome>((r) =>
    child.once('exit', (code, signal) => {
      const f = join(dir, 'handed-over');
      const handedOver = existsSync(f) ? readFileSync(f, 'utf8') : '';
      r({ code, signal, stdout: out, stderr: err.replace(/tapfd=\d+/g, 'tapfd=N'), handedOver });
    }),
  );
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  cleanups.push(async () => {
    if (running()) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { exited, kill: (s) => child.kill(s), running };
}

/** Runs argv to its end (a failure) on `path`. */
async function runToEnd(path: Path, argv: string[], env?: Record<string, string>): Promise<Outcome> {
  return start(path, argv, { env }).exited;
}

async function guest(): Promise<UserNetns> {
  const ns = await userNetns();
  cleanups.push(() => ns.close());
  return ns;
}

type Exec = (cmd: string[]) => Promise<{ stdout: string }>;

function eui64(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  const w = (hi: number, lo: number): string => ((hi << 8) | lo).toString(16);
  return `fd00::${w(b[0] ^ 2, b[1])}:${w(b[2], 0xff)}:${w(0xfe, b[3])}:${w(b[4], b[5])}`;
}

/** What --configure (or its absence) left on the device, without what differs by chance (a random MAC). */
async function tapState(exec: Exec, tap: string, macGiven: boolean): Promise<unknown> {
  const link = JSON.parse((await exec(['ip', '-j', 'addr', 'show', 'dev', tap])).stdout)[0];
  const lo = JSON.parse((await exec(['ip', '-j', 'link', 'show', 'lo'])).stdout)[0];
  const routes = JSON.parse((await exec(['ip', '-j', 'route', 'show'])).stdout);
  const routes6 = JSON.parse((await exec(['ip', '-j', '-6', 'route', 'show', 'default'])).stdout);
  type Addr = { family: string; local: string; prefixlen: number; scope: string; nodad?: boolean };
  const addrs: Addr[] = link.addr_info;
  return {
    up: link.flags.includes('UP'),
    loUp: lo.flags.includes('UP'),
    mtu: link.mtu,
    mac: macGiven ? link.address : 'random',
    inet: addrs.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    inet6: addrs
      .filter((a) => a.family === 'inet6' && a.scope === 'global')
      .map((a) => `${a.local === eui64(link.address) ? 'fd00::EUI-64' : a.local}/${a.prefixlen}${a.nodad ? ' nodad' : ''}`),
    routes: routes.map((r: Record<string, unknown>) => ({ dst: r.dst, gateway: r.gateway, dev: r.dev, protocol: r.protocol })),
    // proto ra routes come from the stack's Router Advertisements, whenever they arrive.
    routes6: routes6
      .filter((r: Record<string, unknown>) => r.protocol !== 'ra')
      .map((r: Record<string, unknown>) => ({ gateway: r.gateway, dev: r.dev, protocol: r.protocol, metric: r.metric })),
  };
}

/** Runs argv on `path` until ready, reads the device, ends it with SIGTERM. */
async function runAndInspect(
  path: Path,
  argv: string[],
  exec: Exec,
  tap: string,
  macGiven: boolean,
): Promise<{ outcome: Outcome; state: unknown }> {
  const ready = join(dir, `ready-${path}`);
  const run = start(path, ['-r', '9', ...argv], { ready });
  await waitFor(() => {
    if (!run.running()) throw new Error(`${path} exited early`);
    return existsSync(ready) && readFileSync(ready, 'utf8') === '1';
  }, 15_000, `${path} ready`);
  const state = await tapState(exec, tap, macGiven);
  run.kill('SIGTERM');
  const outcome = await run.exited;
  // The non-persistent TAP goes with its last fd; the next run creates it anew.
  await waitFor(async () => (await exec(['ip', '-o', 'link', 'show'])).stdout.indexOf(` ${tap}:`) < 0, 5000, `${tap} removed`);
  return { outcome, state };
}

function nsExec(ns: UserNetns): Exec {
  return (cmd) => ns.exec(cmd);
}

describe('launcher.c and the TypeScript CLI agree', () => {
  const launcherC = readFileSync(join(ROOT, 'native', 'launcher.c'), 'utf8');

  it('on the variable that carries the TAP', () => {
    expect(launcherC).toContain(`#define TAP_ENV "${LAUNCHER_TAP_ENV}"`);
  });

  it("on slirp4netns's long options, in its order (abbreviations resolve by it)", () => {
    const getoptTs = readFileSync(join(ROOT, 'src', 'cli', 'getopt.ts'), 'utf8');
    const table = launcherC.slice(launcherC.indexOf('ATTACH_OPTIONS[] = {'), launcherC.indexOf('{NULL, 0, NULL, 0}'));
    const inC = [...table.matchAll(/\{"([a-z0-9-]+)", (no|required)_argument/g)].map((m) => `${m[1]} ${m[2] === 'required'}`);
    const inTs = [...getoptTs.matchAll(/\{ name: '([a-z0-9-]+)', hasArg: (true|false)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(inC).toHaveLength(21);
    expect(inC).toEqual(inTs);
  });
});

describe.skipIf(skip)('the launcher attaches the TAP before Node, with the Node path’s results', () => {
  const attachCases: Array<{ name: string; argv: (pid: number) => string[]; macGiven?: boolean }> = [
    { name: 'pid mode without -c', argv: (pid) => [String(pid), 'tap0'] },
    { name: 'pid mode, -c', argv: (pid) => ['-c', String(pid), 'tap0'] },
    {
      name: '-c --mtu --cidr --macaddress',
      argv: (pid) => ['-c', '--mtu=9000', '--cidr=10.8.0.0/16', '--macaddress=02:11:22:33:44:55', String(pid), 'tap0'],
      macGiven: true,
    },
    { name: '-c -6', argv: (pid) => ['-c', '-6', String(pid), 'tap0'] },
    // Podman's command line: the filter comes later, from Node, before the ready fd.
    { name: "Podman's: --disable-host-loopback --mtu=65520 --enable-seccomp --enable-ipv6 -c", argv: (pid) => ['--disable-host-loopback', '--mtu=65520', '--enable-seccomp', '--enable-ipv6', '-c', String(pid), 'tap0'] },
    {
      name: 'path mode with --userns-path, -c',
      argv: (pid) => ['-c', `--userns-path=/proc/${pid}/ns/user`, '--netns-type=path', `/proc/${pid}/ns/net`, 'tap0'],
    },
  ];

  it.each(attachCases)('$name', async ({ argv, macGiven }) => {
    const ns = await guest();
    const viaLauncher = await runAndInspect('launcher', argv(ns.pid), nsExec(ns), 'tap0', macGiven ?? false);
    const viaNode = await runAndInspect('node', argv(ns.pid), nsExec(ns), 'tap0', macGiven ?? false);
    expect(viaLauncher.outcome.handedOver).toMatch(/^ok:\d+:1:0$/);
    expect(viaNode.outcome.handedOver).toBe('');
    expect(viaLauncher.state).toEqual(viaNode.state);
    expect({ ...viaLauncher.outcome, handedOver: '' }).toEqual(viaNode.outcome);
    expect(viaLauncher.outcome.stderr).toMatch(/^sent tapfd=N for tap0\nreceived tapfd=N\n/);
  });

  it('-c -6 configures IPv6 in the launcher: fd00::EUI-64/64 without DAD, default via fe80::2 metric 1023', async () => {
    const ns = await guest();
    const { state } = await runAndInspect('launcher', ['-c', '-6', String(ns.pid), 'tap0'], nsExec(ns), 'tap0', false);
    expect(state).toMatchObject({
      inet6: ['fd00::EUI-64/64 nodad'],
      routes6: [{ gateway: 'fe80::2', dev: 'tap0', protocol: 'static', metric: 1023 }],
    });
  });

  it('path mode on an `ip netns add` namespace, without a user namespace', async () => {
    const ns = await namedNetns();
    cleanups.push(() => ns.close());
    const argv = ['--netns-type=path', '-c', ns.path, 'tap7'];
    const viaLauncher = await runAndInspect('launcher', argv, ns.exec, 'tap7', false);
    const viaNode = await runAndInspect('node', argv, ns.exec, 'tap7', false);
    expect(viaLauncher.outcome.handedOver).toMatch(/^ok:/);
    expect(viaLauncher.state).toEqual(viaNode.state);
    expect({ ...viaLauncher.outcome, handedOver: '' }).toEqual(viaNode.outcome);
  });

  describe('child failures give the Node path’s stderr and exit status', () => {
    it('a PID that does not exist', async () => {
      const argv = ['4194000', 'tap0'];
      const viaLauncher = await runToEnd('launcher', argv);
      expect(viaLauncher).toEqual({
        code: 1,
        signal: null,
        stdout: '',
        stderr: '/proc/4194000/ns/net: No such file or directory\nchild failed(1)\n',
        handedOver: 'child:1:child failed(1)',
      });
      expect(await runToEnd('node', argv)).toEqual({ ...viaLauncher, handedOver: '' });
    });

    it('literal --outbound-addr and --outbound-addr6 (the launcher attaches; Node checks them as before)', async () => {
      const argv = ['--outbound-addr=127.0.0.1', '--outbound-addr6=::1', '--netns-type=path', join(dir, 'missing-netns'), 'tap0'];
      writeFileSync(join(dir, 'missing-netns'), '');
      const viaLauncher = await runToEnd('launcher', argv);
      expect(viaLauncher.handedOver).toBe('child:1:child failed(1)');
      expect(viaLauncher.stdout).toBe('WARNING: Support for --outbound-addr is experimental\nWARNING: Support for --outbound-addr6 is experimental\n');
      expect(await runToEnd('node', argv)).toEqual({ ...viaLauncher, handedOver: '' });
    });

    it('a netns path that is not a network namespace', async () => {
      const file = join(dir, 'not-a-netns');
      writeFileSync(file, '');
      const argv = ['--netns-type=path', file, 'tap0'];
      const viaLauncher = await runToEnd('launcher', argv);
      expect(viaLauncher).toMatchObject({ code: 1, stderr: 'setns(CLONE_NEWNET): Invalid argument\nchild failed(1)\n' });
      expect(viaLauncher.handedOver).toBe('child:1:child failed(1)');
      expect(await runToEnd('node', argv)).toEqual({ ...viaLauncher, handedOver: '' });
    });

    it('a TAP name in use by a device that is not a TAP, with -6 (its WARNING still on stdout)', async () => {
      const ns = await guest();
      await ns.exec(['ip', 'link', 'add', 'tap0', 'type', 'veth', 'peer', 'name', 'peer0']);
      const argv = ['-c', '-6', String(ns.pid), 'tap0'];
      const viaLauncher = await runToEnd('launcher', argv);
      expect(viaLauncher).toMatchObject({ code: 1, stdout: 'WARNING: Support for IPv6 is experimental\n' });
      expect(viaLauncher.stderr).toMatch(/^ioctl\(TUNSETIFF\): .*\nchild failed\(1\)\n$/);
      expect(viaLauncher.handedOver).toBe('child:1:child failed(1)');
      expect(await runToEnd('node', argv)).toEqual({ ...viaLauncher, handedOver: '' });
    });
  });

  // Anything the launcher is not sure about is Node's, as before.
  it.each<{ name: string; argv: string[]; env?: Record<string, string> }>([
    { name: 'USERNET_NO_OFFLOAD=1', argv: ['4194000', 'tap0'], env: { USERNET_NO_OFFLOAD: '1' } },
    { name: '--outbound-addr with an interface name', argv: ['--outbound-addr=lo', '4194000', 'tap0'] },
    { name: '--outbound-addr6 with an interface name', argv: ['--outbound-addr6=lo', '4194000', 'tap0'] },
    { name: 'an exit fd that is not open', argv: ['-e', '42', '4194000', 'tap0'] },
    { name: 'a PID with a leading zero', argv: ['04194000', 'tap0'] },
    { name: '--macaddress without -c', argv: ['--macaddress=02:00:00:00:00:01', '4194000', 'tap0'] },
    { name: 'an unknown option', argv: ['--bogus', '4194000', 'tap0'] },
    { name: 'POSIXLY_CORRECT', argv: ['4194000', 'tap0'], env: { POSIXLY_CORRECT: '1' } },
  ])('leaves it to Node: $name', async ({ argv, env }) => {
    const viaLauncher = await runToEnd('launcher', argv, env);
    expect(viaLauncher.handedOver).toBe('');
    expect(viaLauncher).toEqual(await runToEnd('node', argv, env));
  });

  /**
   * slirp4netns's test-slirp4netns-dhcp.sh: the helper in the background
   * without -c, and about 25 ms later the test brings the TAP up itself and
   * asks for a lease. With Node attaching, tap0 did not exist yet.
   */
  it('test-slirp4netns-dhcp.sh: tap0 can be brought up 25 ms after the start; udhcpc gets 10.0.2.15', async () => {
    const script = join(dir, 'dhcp.sh');
    const enter = 'nsenter -t "$pid" -U --preserve-credentials -n --';
    writeFileSync(
      script,
      [
        'set -e',
        'pid=$1',
        'shift',
        '"$@" "$pid" tap0 &',
        'helper=$!',
        "trap 'kill $helper' EXIT",
        'sleep 0.025',
        `${enter} ip link set lo up`,
        `${enter} ip link set tap0 up`,
        `${enter} udhcpc -q -n -t 5 -T 1 -i tap0 -s /bin/true 2>&1`,
        '',
      ].join('\n'),
    );
    const launcher = await runCommand('sh', [script, String((await guest()).pid), BIN], 30_000);
    expect(launcher.code, launcher.stdout + launcher.stderr).toBe(0);
    expect(launcher.stdout).toContain('lease of 10.0.2.15 obtained');
    // The Node path is too late for it.
    const node = await runCommand('sh', [script, String((await guest()).pid), process.execPath, BUNDLE], 30_000);
    expect(node.code).not.toBe(0);
    expect(node.stderr).toMatch(/Cannot find device "tap0"|does not exist/);
  });
});
