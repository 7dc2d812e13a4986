/**
 * bin/usernet against real namespaces, a real TAP and the kernel as the guest
 * (issue 2, "Done when"). Every test makes and removes its own namespaces.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { announceSkip, e2eUnavailable, namedNetns, runCommand, userNetns, waitFor, type UserNetns } from '../support/netns.js';

const BIN = resolve(__dirname, '../../bin/usernet');
const skip = announceSkip('e2e bin/usernet', e2eUnavailable());

interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let dir = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-e2e-'));
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts bin/usernet through sh so that extra fds (ready, exit) can be set up with redirections. */
function usernet(args: string[], options: { redirects?: string; env?: Record<string, string> } = {}): Running {
  const script = `exec "$0" "$@" ${options.redirects ?? ''}`;
  const child = spawn('sh', ['-c', script, BIN, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function guest(): Promise<UserNetns> {
  const ns = await userNetns();
  cleanups.push(() => ns.close());
  return ns;
}

async function waitReady(file: string, run: Running): Promise<void> {
  await waitFor(() => {
    if (run.child.exitCode !== null) throw new Error(`usernet exited ${run.child.exitCode}: ${run.stderr()}`);
    return existsSync(file) && readFileSync(file, 'utf8') === '1';
  }, 15_000, 'ready fd');
}

async function ping(ns: UserNetns, addr: string, extra: string[] = []): Promise<void> {
  const r = await ns.run(['ping', '-c', '1', '-W', '3', ...extra, addr]);
  expect(r.code, `ping ${addr}: ${r.stdout}${r.stderr}`).toBe(0);
}

const offloadModes = [
  { name: 'offloads on', env: {} as Record<string, string> },
  { name: 'offloads off', env: { USERNET_NO_OFFLOAD: '1' } },
];

describe.skipIf(skip)('bin/usernet in real namespaces', () => {
  describe.each(offloadModes)('$name', ({ env }) => {
    it('--configure --mtu=65520 PID tap0: address, MTU, route, ping, neighbour, ready fd', async () => {
      const ns = await guest();
      const ready = join(dir, 'ready');
      const run = usernet(['--configure', '--mtu=65520', '-r', '9', String(ns.pid), 'tap0'], { redirects: `9>"${ready}"`, env });
      await waitReady(ready, run);

      const addr = JSON.parse((await ns.exec(['ip', '-j', 'addr', 'show', 'tap0'])).stdout)[0];
      expect(addr.mtu).toBe(65520);
      expect(addr.addr_info.filter((a: { family: string }) => a.family === 'inet')).toMatchObject([{ local: '10.0.2.100', prefixlen: 24 }]);
      const lo = JSON.parse((await ns.exec(['ip', '-j', 'link', 'show', 'lo'])).stdout)[0];
      expect(lo.flags).toContain('UP');
      const routes = JSON.parse((await ns.exec(['ip', '-j', 'route'])).stdout);
      expect(routes).toContainEqual(expect.objectContaining({ dst: 'default', gateway: '10.0.2.2', dev: 'tap0' }));

      await ping(ns, '10.0.2.2');
      await ping(ns, '10.0.2.3');
      const neigh = (await ns.exec(['ip', 'neigh', 'show', '10.0.2.2'])).stdout;
      expect(neigh).toContain('lladdr 52:55:0a:00:02:02');
      expect(run.stderr()).toMatch(/sent tapfd=\d+ for tap0\nreceived tapfd=\d+/);
      expect(run.stdout()).toContain('Starting slirp\n* MTU:             65520\n* Network:         10.0.2.0\n');
    });

    it('MTU 1500: fragmented 4000-byte pings to 10.0.2.2 are reassembled and answered', async () => {
      const ns = await guest();
      const ready = join(dir, 'ready');
      const run = usernet(['-c', '-r', '9', String(ns.pid), 'tap0'], { redirects: `9>"${ready}"`, env });
      await waitReady(ready, run);
      const mtu = JSON.parse((await ns.exec(['ip', '-j', 'link', 'show', 'tap0'])).stdout)[0].mtu;
      expect(mtu).toBe(1500);
      await ping(ns, '10.0.2.2', ['-s', '4000']);
      await ping(ns, '10.0.2.3', ['-s', '1473']);
    });

    it('without --configure, udhcpc gets 10.0.2.15, router 10.0.2.2, DNS 10.0.2.3 and the MTU', async () => {
      const ns = await guest();
      const ready = join(dir, 'ready');
      const run = usernet(['--mtu', '4000', '-r', '9', String(ns.pid), 'tap0'], { redirects: `9>"${ready}"`, env });
      await waitReady(ready, run);
      const script = join(dir, 'udhcpc.sh');
      const lease = join(dir, 'lease');
      writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && echo "ip=$ip mask=$mask router=$router dns=$dns mtu=$mtu lease=$lease serverid=$serverid" > "${lease}"\nexit 0\n`);
      chmodSync(script, 0o755);
      await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
      await ns.exec(['ip', 'link', 'set', 'tap0', 'up']);
      const r = await ns.run(['udhcpc', '-q', '-f', '-n', '-i', 'tap0', '-s', script, '-t', '5', '-T', '1'], { timeoutMs: 30_000 });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(readFileSync(lease, 'utf8').trim()).toBe(
        'ip=10.0.2.15 mask=24 router=10.0.2.2 dns=10.0.2.3 mtu=4000 lease=86400 serverid=10.0.2.2',
      );
    });

    it('path mode with --userns-path attaches to a TAP made beforehand with ip tuntap add', async () => {
      const ns = await guest();
      await ns.exec(['ip', 'tuntap', 'add', 'name', 'tap0', 'mode', 'tap']);
      const ready = join(dir, 'ready');
      const run = usernet(
        ['-c', '-r', '9', `--userns-path=/proc/${ns.pid}/ns/user`, '--netns-type=path', `/proc/${ns.pid}/ns/net`, 'tap0'],
        { redirects: `9>"${ready}"`, env },
      );
      await waitReady(ready, run);
      await ping(ns, '10.0.2.2');
    });
  });

  it('path mode on an `ip netns add` namespace, without a user namespace', async () => {
    const ns = await namedNetns();
    cleanups.push(() => ns.close());
    const ready = join(dir, 'ready');
    const run = usernet(['--netns-type=path', '-c', '-r', '9', ns.path, 'tap7'], { redirects: `9>"${ready}"` });
    await waitReady(ready, run);
    const r = await ns.exec(['ping', '-c', '1', '-W', '3', '10.0.2.3']);
    expect(r.stdout).toContain('1 received');
  });

  it('a TAP that is already attached gives ioctl(TUNSETIFF): Device or resource busy and exit 1', async () => {
    const ns = await guest();
    const ready = join(dir, 'ready');
    const first = usernet(['-r', '9', String(ns.pid), 'tap0'], { redirects: `9>"${ready}"` });
    await waitReady(ready, first);
    const second = usernet([String(ns.pid), 'tap0']);
    expect((await second.exited).code).toBe(1);
    expect(second.stderr()).toContain('ioctl(TUNSETIFF): Device or resource busy\n');
    expect(second.stderr()).toContain('child failed(1)\n');
  });

  it('a PID that does not exist fails in the child with the path and exit 1', async () => {
    const run = usernet(['4194000', 'tap0']);
    expect((await run.exited).code).toBe(1);
    expect(run.stderr()).toBe('/proc/4194000/ns/net: No such file or directory\nchild failed(1)\n');
  });

  it('-e: data on the exit fd does not stop it; the write end closing does, with status 0', async () => {
    const ns = await guest();
    const fifo = join(dir, 'exit.fifo');
    expect((await runCommand('mkfifo', [fifo])).code).toBe(0);
    const ready = join(dir, 'ready');
    const run = usernet(['-e', '4', '-r', '9', String(ns.pid), 'tap0'], { redirects: `4<"${fifo}" 9>"${ready}"` });
    const writer = await open(fifo, 'w');
    await waitReady(ready, run);
    await writer.write('data is not a hangup\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(run.child.exitCode).toBeNull();
    await writer.close();
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.stderr()).toContain('exitfd event\ndo_slirp is exiting\n');
  });

  it('-e with an fd that is not open exits 0 at once', async () => {
    const ns = await guest();
    const run = usernet(['-e', '7', String(ns.pid), 'tap0'], { redirects: '7<&-' });
    expect(await run.exited).toEqual({ code: 0, signal: null });
  });

  it('SIGTERM ends it by that signal after releasing the TAP', async () => {
    const ns = await guest();
    const ready = join(dir, 'ready');
    const run = usernet(['-r', '9', String(ns.pid), 'tap0'], { redirects: `9>"${ready}"` });
    await waitReady(ready, run);
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: null, signal: 'SIGTERM' });
    // The non-persistent TAP disappears with its last fd.
    await waitFor(async () => (await ns.run(['ip', 'link', 'show', 'tap0'])).code !== 0, 5000, 'tap0 removed');
  });

  it('answers ping while the guest floods it with malformed frames', async () => {
    const ns = await guest();
    const ready = join(dir, 'ready');
    const run = usernet(['-c', '-r', '9', String(ns.pid), 'tap0'], { redirects: `9>"${ready}"` });
    await waitReady(ready, run);
    await ping(ns, '10.0.2.2');
    // Random bytes, then valid Ethernet headers with truncated or lying IPv4/ARP headers.
    const flood = [
      'import os, random, socket, struct',
      'random.seed(7)',
      "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('tap0', 0))",
      "gw = bytes.fromhex('52550a000202'); me = s.getsockname()[4]",
      'n = 0',
      'for i in range(3000):',
      '    kind = i % 4',
      '    if kind == 0: f = os.urandom(random.randint(14, 1514))',
      "    elif kind == 1: f = gw + me + b'\\x08\\x00' + os.urandom(random.randint(0, 60))",
      "    elif kind == 2: f = gw + me + b'\\x08\\x06' + os.urandom(random.randint(0, 40))",
      "    else: f = gw + me + b'\\x08\\x00' + bytes([0x45, 0, 0xff, 0xff]) + os.urandom(16)",
      '    try: s.send(f); n += 1',
      '    except OSError: pass',
      'print(n)',
    ].join('\n');
    const r = await ns.exec(['python3', '-c', flood], { timeoutMs: 30_000 });
    expect(Number(r.stdout.trim())).toBeGreaterThan(2000);
    await ping(ns, '10.0.2.2');
    await ping(ns, '10.0.2.3', ['-s', '3000']);
    expect(run.child.exitCode).toBeNull();
  });

  it('--help exits 0 and advertises --netns-type; a bad flag exits 1 with the slirp4netns message', async () => {
    const help = usernet(['--help']);
    expect((await help.exited).code).toBe(0);
    expect(help.stdout()).toMatch(/--netns-type=TYPE/);
    const bad = usernet(['--mtu=0', '1', 'tap0']);
    expect((await bad.exited).code).toBe(1);
    expect(bad.stderr()).toBe('MTU must be a positive integer (< 65522)\n');
  });
});
