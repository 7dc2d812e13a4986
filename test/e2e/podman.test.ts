/**
 * Podman launches the binary under test unchanged (issue 5, part 3 "Real
 * clients"; compat spec §5.2): rootless `podman run --network slirp4netns[:opts]`
 * as an unprivileged user whose containers.conf sets
 * `[engine] network_cmd_path = "<bin>"`. Podman probes `--help`, then passes
 * `[--disable-host-loopback] --mtu=65520 [every hardening/IPv6 flag --help
 * mentions] -c -e 3 -r 4 (≤ 4.5; -r 3 -e 4 later) [--api-socket …]
 * --netns-type=path NETNS tap0`.
 *
 * The binary is bin/usernet unless USERNET_E2E_BIN names another one with the
 * same CLI (USERNET_E2E_BIN=/usr/bin/slirp4netns checks the harness). A
 * wrapper records each command line Podman used; assertion messages show it.
 *
 * Nothing is pulled from a registry: the image is imported (`podman import`)
 * from a tarball of this machine's busybox (plus the libraries it links, when
 * it is not the static build). Everything Podman stores lives in a temp dir
 * owned by the test user (vfs storage driver, cgroupfs, file events logger,
 * runc when installed: crun refuses cgroup v1/v2 hybrid hosts), removed
 * afterwards together with Podman's rootless pause process. The whole file
 * is skipped, loudly and with Podman's own error, when Podman cannot run a
 * container here at all (`podman run --network none … true` fails).
 *
 * No traffic leaves the machine: the host servers listen on 127.0.0.1 and ::1
 * only, the container reaches them as 10.0.2.2 and fd00::2, and the port
 * forwards bind 127.0.0.1 and ::1.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { busyboxPath, busyboxRootfsTarball } from '../support/busybox-image.js';
import { httpServer, sha256 } from '../support/guest-tools.js';
import { announceSkip, waitFor } from '../support/netns.js';
import {
  argvLoggingWrapper,
  ensureRootlessUser,
  freeLoopbackPort,
  hostGet,
  installForUser,
  rootlessUnavailable,
  runAsUser,
  userEnv,
  userMkdir,
  userProbe,
  userTempDir,
  userWriteFile,
  type ArgvLog,
  type RootlessUser,
} from '../support/rootless.js';

const BIN = process.env.USERNET_E2E_BIN || resolve(__dirname, '../../bin/usernet');
const IMAGE = 'localhost/usernet-e2e-busybox:latest';
const GATEWAY = '10.0.2.2';
const GUEST_ADDR = '10.0.2.100';

function commandPath(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

interface PodmanSetup {
  user: RootlessUser;
  base: string;
  env: Record<string, string>;
  argv: ArgvLog;
  version: string;
}

let setup: PodmanSetup | null = null;

/** Builds everything the tests need; returns why Podman cannot be tested here, or null. */
async function prepare(): Promise<string | null> {
  const basic =
    rootlessUnavailable() ??
    (commandPath('podman') === null ? 'podman is not installed (apt-get install podman uidmap)' : null) ??
    (busyboxPath() === null ? 'busybox is not installed (apt-get install busybox)' : null) ??
    (existsSync(BIN) ? null : `${BIN} does not exist (npm run build?)`);
  if (basic !== null) return basic;
  const user = await ensureRootlessUser();
  // Short: Podman puts the API socket at $XDG_RUNTIME_DIR/libpod/tmp/<64 hex>.net,
  // and a UNIX socket path must stay under 108 bytes (slirp4netns: "the specified
  // API socket path is too long (>= 108)").
  const base = userTempDir(user, 'upm-');
  try {
    const probe = await userProbe(user, base);
    if (probe !== null) throw new Error(probe);
    const home = userMkdir(user, join(base, 'home'));
    const run = userMkdir(user, join(base, 'r'));
    const bin = installForUser(BIN, base, user);
    const argv = argvLoggingWrapper(base, bin, user, { snapshot: true });
    const runc = commandPath('runc');
    userWriteFile(
      user,
      join(base, 'containers.conf'),
      [
        '[engine]',
        // The binary under test, through the wrapper that records its command lines.
        `network_cmd_path = "${argv.path}"`,
        // No systemd user session and no delegated cgroups for this user.
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        // crun 1.8 refuses hosts with cgroup v1 and v2 mounted side by side ("hybrid mode").
        ...(runc !== null ? ['runtime = "runc"'] : []),
        '',
      ].join('\n'),
    );
    userWriteFile(
      user,
      join(base, 'storage.conf'),
      ['[storage]', 'driver = "vfs"', `runroot = "${join(run, 'storage')}"`, `graphroot = "${join(base, 'storage')}"`, ''].join('\n'),
    );
    const env = userEnv(run, {
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_DATA_HOME: join(home, '.local', 'share'),
      CONTAINERS_CONF: join(base, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(base, 'storage.conf'),
    });
    const version = (await runAsUser(user, ['podman', '--version'], { env, cwd: base, timeoutMs: 15_000 })).stdout.trim();
    setup = { user, base, env, argv, version };

    const tarball = busyboxRootfsTarball(base);
    const imp = await podman(['import', tarball, IMAGE], 60_000);
    if (imp.code !== 0) throw new Error(`podman import failed: ${imp.stderr.trim()}`);
    const probe2 = await podman(['run', '--rm', '--network', 'none', IMAGE, 'true'], 60_000);
    if (probe2.code !== 0) throw new Error(`podman cannot run a container here (unrelated to ${BIN}): podman run --network none ${IMAGE} true: exit ${probe2.code}: ${probe2.stderr.trim()}`);
    return null;
  } catch (e) {
    await teardown();
    return String((e as Error).message ?? e);
  }
}

async function teardown(): Promise<void> {
  if (setup !== null) {
    await podman(['rm', '--all', '--force', '--time', '0'], 30_000).catch(() => {});
    // Rootless Podman leaves a pause process holding its user namespace; it records its PID here.
    const pauseFile = join(setup.env.XDG_RUNTIME_DIR!, 'libpod', 'tmp', 'pause.pid');
    if (existsSync(pauseFile)) {
      const pid = Number(readFileSync(pauseFile, 'utf8').trim());
      const owner = spawnSync('ps', ['-o', 'user=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
      if (pid > 1 && owner === setup.user.name) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    rmSync(setup.base, { recursive: true, force: true });
    setup = null;
  }
}

function podman(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return runAsUser(setup!.user, ['podman', ...args], { env: setup!.env, cwd: setup!.base, timeoutMs });
}

const skipReason = await prepare();
const skip = announceSkip(`e2e Podman (${BIN})`, skipReason);
// (A cast: TypeScript does not see prepare() assign it.)
const PODMAN_VERSION = (setup as PodmanSetup | null)?.version ?? '';

const cleanups: Array<() => Promise<void> | void> = [];
function defer(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}
afterEach(async () => {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      console.warn(`cleanup failed: ${String(e)}`);
    }
  }
});
afterAll(() => teardown());

async function serve<S extends { close(): Promise<void> }>(s: Promise<S>): Promise<S> {
  const server = await s;
  defer(() => server.close());
  return server;
}

/** Runs a podman command and returns it with the command lines the wrapper saw during it, for messages. */
async function podmanReport(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; launches: string[][]; report: string }> {
  const before = setup!.argv.invocations().length;
  const r = await podman(args, timeoutMs);
  const mine = setup!.argv.invocations().slice(before);
  const launches = mine.filter((a) => !(a.length === 1 && /^(--help|-h|--version|-v)$/.test(a[0]!)));
  const report =
    `podman ${args.join(' ')}\nexit ${r.code ?? r.signal}\n--- stdout ---\n${r.stdout.slice(-3000)}\n--- stderr ---\n${r.stderr.slice(-5000)}\n` +
    `--- ${BIN} command lines ---\n${mine.map((a) => `  ${a.join(' ')}`).join('\n') || '  (never run)'}`;
  return { code: r.code, stdout: r.stdout, stderr: r.stderr, launches, report };
}

/** The container side of an outbound fetch: tap0's MTU, then sha256 and size of the page at `url`. */
function fetchScript(url: string): string {
  // Not wget -T: Debian's busybox 1.35 wget segfaults with it; busybox timeout instead.
  return `cat /sys/class/net/tap0/mtu; timeout 20 wget -q -O /tmp/page ${url} && sha256sum /tmp/page && wc -c < /tmp/page`;
}

function checkFetch(lines: string[], body: Buffer, report: string): void {
  expect(lines, report).toHaveLength(3);
  expect(lines[1]!.split(/\s+/)[0], report).toBe(sha256(body));
  expect(Number(lines[2]), report).toBe(body.length);
}

async function outbound(network: string): Promise<{ launches: string[][]; report: string; mtu: number }> {
  const body = Buffer.concat([Buffer.from('<html>usernet podman e2e</html>\n'), randomBytes(1024 * 1024)]);
  const http = await serve(httpServer(body));
  const r = await podmanReport(['run', '--rm', '--network', network, IMAGE, 'sh', '-c', fetchScript(`http://${GATEWAY}:${http.port}/podman`)]);
  expect(r.code, r.report).toBe(0);
  const lines = r.stdout.trim().split('\n');
  checkFetch(lines, body, r.report);
  expect(http.requests).toEqual(['GET /podman']);
  return { launches: r.launches, report: r.report, mtu: Number(lines[0]) };
}

/**
 * `podman run -d -p SPEC` for each spec with busybox httpd in the container,
 * a fetch from the host on each, and the client addresses httpd logged.
 */
async function publish(network: string, hosts: string[] = ['127.0.0.1']): Promise<{ launches: string[][]; report: string; clients: string[] }> {
  const ports: number[] = [];
  for (const h of hosts) ports.push(await freeLoopbackPort(h));
  const token = randomBytes(8).toString('hex');
  const name = `usernet-e2e-web-${token}`;
  defer(async () => {
    await podman(['rm', '--force', '--time', '0', name], 30_000);
  });
  const script = `i=0; while [ $i -lt 2000 ]; do echo "usernet podman page $TOKEN"; i=$((i+1)); done > /www/index.html; exec httpd -f -vv -p 80 -h /www`;
  const specs = hosts.flatMap((h, i) => ['-p', `${h.includes(':') ? `[${h}]` : h}:${ports[i]}:80`]);
  const r = await podmanReport(['run', '-d', '--name', name, '--network', network, ...specs, '-e', `TOKEN=${token}`, IMAGE, 'sh', '-c', script]);
  expect(r.code, r.report).toBe(0);
  for (const [i, h] of hosts.entries()) {
    let got: { status: number; body: Buffer; attempts: number };
    try {
      got = await hostGet(ports[i]!, '/index.html', 10_000, h);
    } catch (e) {
      const logs = await podman(['logs', name], 15_000);
      throw new Error(`${String(e)}\n${r.report}\n--- podman logs ---\n${logs.stdout}${logs.stderr}`);
    }
    expect(got.body.toString()).toBe(`usernet podman page ${token}\n`.repeat(2000));
  }
  const logs = await podman(['logs', name], 15_000);
  // busybox httpd -vv: "[::ffff:10.0.2.2]:53916: url:/index.html"
  const clients = [...`${logs.stdout}${logs.stderr}`.matchAll(/\[(?:::ffff:)?([\d.a-f:]+)\]:\d+: url:/g)].map((m) => m[1]!);
  return { launches: r.launches, report: `${r.report}\n--- podman logs ---\n${logs.stdout}${logs.stderr}`, clients };
}

describe.skipIf(skip)(`Podman ${PODMAN_VERSION} with network_cmd_path=${BIN}`, () => {
  it("Podman's defaults (enable_ipv6=true): --enable-ipv6, --enable-sandbox and --enable-seccomp on the command line, every thread locked down, the container has its fd00::/64 address, outbound IPv4 and IPv6", async () => {
    const body = Buffer.concat([Buffer.from('<html>usernet podman e2e over IPv6</html>\n'), randomBytes(1024 * 1024)]);
    const http4 = await serve(httpServer(body));
    const http6 = await serve(httpServer(body, '::1'));
    const script =
      `grep -i '^fd00' /proc/net/if_inet6 | head -1; ` +
      `${fetchScript(`http://${GATEWAY}:${http4.port}/v4`)}; ${fetchScript(`http://[fd00::2]:${http6.port}/v6`)}`;
    const snapsBefore = setup!.argv.snapshots().length;
    const r = await podmanReport(['run', '--rm', '--network', 'slirp4netns:allow_host_loopback=true', IMAGE, 'sh', '-c', script]);
    expect(r.code, r.report).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines, r.report).toHaveLength(7);
    // /proc/net/if_inet6: address, ifindex, prefix length 0x40, scope 0 (global), flags; tap0.
    expect(lines[0], r.report).toMatch(/^fd00[0-9a-f]{28} [0-9a-f]+ 40 00 [0-9a-f]+ +tap0$/);
    expect(Number(lines[1]), r.report).toBe(65520);
    checkFetch(lines.slice(1, 4), body, r.report);
    checkFetch(lines.slice(4, 7), body, r.report);
    expect(http4.requests).toEqual(['GET /v4']);
    expect(http6.requests).toEqual(['GET /v6']);
    expect(r.launches, r.report).toHaveLength(1);
    const a = r.launches[0]!;
    // Podman's command line (compat spec §5.2): -c, ready and exit fds, --netns-type=path NETNS tap0.
    expect(a, r.report).toContain('--enable-ipv6');
    // Passed because --help advertises them (compat spec §5.2); the container ran under the filter, sandboxed.
    expect(a, r.report).toContain('--enable-seccomp');
    expect(a, r.report).toContain('--enable-sandbox');
    await waitFor(() => setup!.argv.snapshots().length > snapsBefore, 15_000, 'the wrapper\'s look at the helper');
    const { threads, root } = setup!.argv.snapshots().at(-1)!;
    for (const t of threads) {
      expect(t, r.report).toMatch(/CapEff:\s*0000000000000400 /);
      expect(t, r.report).toMatch(/CapBnd:\s*0000000000000400 /);
      expect(t, r.report).toMatch(/NoNewPrivs:\s*1 /);
      expect(t, r.report).toMatch(/Seccomp:\s*2 /);
    }
    expect(root, r.report).toEqual(expect.arrayContaining(['etc', 'run']));
    for (const absent of ['home', 'root', 'var']) expect(root, r.report).not.toContain(absent);
    expect(a, r.report).toContain('-c');
    expect(a, r.report).toContain('--mtu=65520');
    expect(a.slice(-3, -1), r.report).toEqual(['--netns-type=path', a.at(-2)]);
    expect(a.at(-1)).toBe('tap0');
    expect(a).not.toContain('--disable-host-loopback');
  });

  it('outbound TCP to the host through 10.0.2.2 with enable_ipv6=false (IPv4 only, as before)', async () => {
    const { launches, report, mtu } = await outbound('slirp4netns:allow_host_loopback=true,enable_ipv6=false');
    expect(mtu, report).toBe(65520);
    expect(launches, report).toHaveLength(1);
    expect(launches[0], report).not.toContain('--enable-ipv6');
  });

  it('allow_host_loopback=false (the default): --disable-host-loopback, 10.0.2.2 and fd00::2 unreachable, the host servers see nothing', async () => {
    const http = await serve(httpServer(Buffer.from('must not be reached\n')));
    const http6 = await serve(httpServer(Buffer.from('must not be reached\n'), '::1'));
    let connections = 0;
    http.server.on('connection', () => connections++);
    http6.server.on('connection', () => connections++);
    const r = await podmanReport([
      'run',
      '--rm',
      '--network',
      'slirp4netns',
      IMAGE,
      'sh',
      '-c',
      `timeout 5 wget -q -O - http://${GATEWAY}:${http.port}/; echo "wget=$?"; timeout 5 wget -q -O - http://[fd00::2]:${http6.port}/; echo "wget6=$?"`,
    ]);
    expect(r.code, r.report).toBe(0);
    expect(r.stdout, r.report).toMatch(/wget=[1-9]/);
    expect(r.stdout, r.report).toMatch(/wget6=[1-9]/);
    expect(connections).toBe(0);
    expect(r.launches[0], r.report).toContain('--disable-host-loopback');
  });

  it('-p 127.0.0.1:PORT:80 and -p [::1]:PORT:80 with port_handler=slirp4netns (IPv6 on): the host fetches both; the server sees 10.0.2.2', async () => {
    const { launches, report, clients } = await publish('slirp4netns:port_handler=slirp4netns', ['127.0.0.1', '::1']);
    expect(launches[0], report).toContain('--api-socket');
    expect(launches[0], report).toContain('--enable-ipv6');
    expect(clients, report).toEqual([GATEWAY, GATEWAY]);
  });

  it("-p 127.0.0.1:PORT:80 and -p [::1]:PORT:80 with Podman's default port handler (rootlessport): the host fetches both", async () => {
    const { launches, report, clients } = await publish('slirp4netns', ['127.0.0.1', '::1']);
    expect(launches[0], report).not.toContain('--api-socket');
    expect(clients.length, report).toBe(2);
  });
});
