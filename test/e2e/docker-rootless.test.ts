/**
 * Rootless Docker with usernet as its slirp4netns: Debian's docker.io
 * `dockerd-rootless.sh`, run as an unprivileged user with subordinate ids,
 * once per RootlessKit port driver (DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER
 * = builtin, the default, and slirp4netns).
 *
 * dockerd-rootless.sh looks for `slirp4netns` on PATH (it checks that
 * `slirp4netns --help` mentions --netns-type) and then runs RootlessKit with
 * --net=slirp4netns, --mtu=65520 and --slirp4netns-sandbox/seccomp=auto.
 * The test puts a directory first on PATH whose `slirp4netns` is the
 * argv-logging wrapper of test/support/rootless.ts around the binary under
 * test (bin/usernet, or USERNET_E2E_BIN: USERNET_E2E_BIN=/usr/bin/slirp4netns
 * checks the harness against the real thing). Everything else is left as
 * dockerd-rootless.sh has it, with one exception: it always passes
 * --disable-host-loopback, and the container must reach a host server on
 * 127.0.0.1 through 10.0.2.2, so DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS adds
 * --disable-host-loopback=false (the later flag wins).
 *
 * Which Docker: the files of the docker.io package (`dpkg -L docker.io`):
 * its dockerd-rootless.sh (/usr/share/docker.io/contrib/ on Debian 12), and
 * the directories of its dockerd and docker put on PATH before any other,
 * so that a docker or dockerd elsewhere (e.g. /usr/local/bin) is never used;
 * the docker CLI is run by its full path. The file is skipped, loudly, when
 * docker.io, rootlesskit, iptables or busybox is missing, when not root, or
 * without /dev/net/tun.
 *
 * Each daemon keeps everything in a temp dir owned by the test user (HOME,
 * XDG_RUNTIME_DIR, --data-root, the vfs storage driver), removed afterwards
 * with the daemon and every process in its user namespace, also when a check
 * fails. Nothing is pulled from a registry: the image is `docker import`ed
 * from a busybox tarball. No traffic leaves the machine: the host servers
 * listen on 127.0.0.1, the published ports bind 127.0.0.1, and usernet's DNS
 * forwarder points at a closed loopback port.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { busyboxPath, busyboxRootfsTarball } from '../support/busybox-image.js';
import { httpServer, sha256 } from '../support/guest-tools.js';
import { announceSkip, waitFor } from '../support/netns.js';
import { perTest } from '../support/per-test.js';
import { apiRequest } from '../support/proc-status.js';
import {
  argvLoggingWrapper,
  ensureRootlessUser,
  freeLoopbackPort,
  hostGet,
  installForUser,
  rootlessUnavailable,
  runAsUser,
  spawnAsUser,
  userEnv,
  userMkdir,
  userPath,
  userProbe,
  userTempDir,
  type RootlessUser,
} from '../support/rootless.js';

const BIN = process.env.USERNET_E2E_BIN || resolve(__dirname, '../../bin/usernet');
const IMAGE = 'usernet-e2e-busybox:latest';
/** bin/usernet (a package directory with dist/), not another binary given as USERNET_E2E_BIN. */
const USERNET_UNDER_TEST = existsSync(join(dirname(dirname(BIN)), 'dist', 'cli', 'main.js'));
const GATEWAY = '10.0.2.2';

/** The files of the docker.io package, or null when it is not installed. */
function dockerIoFiles(): string[] | null {
  const r = spawnSync('dpkg', ['-L', 'docker.io'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').filter((f) => f !== '') : null;
}
const DOCKER_IO = dockerIoFiles();
const packaged = (path: RegExp): string | null => DOCKER_IO?.find((f) => path.test(f) && existsSync(f)) ?? null;
const DOCKERD_ROOTLESS = packaged(/\/dockerd-rootless\.sh$/);
const DOCKERD = packaged(/\/s?bin\/dockerd$/);
const DOCKER = packaged(/\/s?bin\/docker$/);

function commandMissing(cmd: string, pkg: string): string | null {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { env: { PATH: userPath() } }).status === 0 ? null : `${cmd} is not installed (apt-get install ${pkg})`;
}

const skip = announceSkip(
  `e2e rootless Docker (${BIN})`,
  rootlessUnavailable() ??
    (DOCKER_IO === null ? 'docker.io is not installed (apt-get install docker.io)' : null) ??
    (DOCKERD_ROOTLESS === null || DOCKERD === null || DOCKER === null
      ? `docker.io ships no dockerd-rootless.sh, dockerd or docker here (dpkg -L docker.io: ${DOCKERD_ROOTLESS}, ${DOCKERD}, ${DOCKER})`
      : null) ??
    commandMissing('rootlesskit', 'rootlesskit') ??
    commandMissing('iptables', 'iptables') ??
    (busyboxPath() === null ? 'busybox is not installed (apt-get install busybox)' : null) ??
    (existsSync(BIN) ? null : `${BIN} does not exist (npm run build?)`),
);

/** Why the test user cannot run rootless containers at all (no user namespaces, ...), or null. */
async function userProblem(): Promise<string | null> {
  const user = await ensureRootlessUser();
  const dir = userTempDir(user, 'udk-probe-');
  try {
    return await userProbe(user, dir);
  } finally {
    spawnSync('rm', ['-rf', dir]);
  }
}
const setupProblem = skip ? null : await userProblem();
if (setupProblem !== null) announceSkip(`e2e rootless Docker (${BIN})`, setupProblem);

const { defer } = perTest('usernet-docker-e2e-');

type Result = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

interface Daemon {
  user: RootlessUser;
  base: string;
  /** The installed binary under test (what the wrapper execs). */
  bin: string;
  env: Record<string, string>;
  docker(args: string[], timeoutMs?: number): Promise<Result>;
  /** For assertion messages: dockerd-rootless.sh's output and the command lines the wrapper saw. */
  report(): string;
  launches(): string[][];
  invocations(): string[][];
}

/** The pids of the processes for which `match` holds (`userns`: the /proc/PID/ns/user link text). */
function pids(match: (stat: { pgrp: number; userns: string }) => boolean): number[] {
  const found: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      // /proc/PID/stat: "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (match({ pgrp, userns: readlinkSync(`/proc/${p}/ns/user`) })) found.push(Number(p));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return found;
}

/**
 * Starts dockerd-rootless.sh as the test user with `portDriver`, waits for
 * the daemon's API and imports the image. Cleanup (deferred): SIGTERM to
 * RootlessKit (dockerd then stops containerd and its containers), SIGKILL to
 * whatever is left in RootlessKit's user namespace (containerd runs in a
 * session of its own, out of reach of the process group), the temp dir.
 */
async function startDaemon(portDriver: 'builtin' | 'slirp4netns'): Promise<Daemon> {
  const user = await ensureRootlessUser();
  // Short: the sockets under XDG_RUNTIME_DIR must fit in sun_path (108 bytes).
  const base = userTempDir(user, 'udk-');
  let userns: string | null = null;
  let daemon: ReturnType<typeof spawnAsUser> | null = null;
  defer(async () => {
    if (daemon !== null) {
      const group = daemon.child.pid!;
      try {
        process.kill(-group, 'SIGTERM');
      } catch {
        /* gone */
      }
      await waitFor(() => pids((stat) => stat.pgrp === group).length === 0, 15_000, 'dockerd-rootless.sh to stop').catch(() => {});
    }
    if (userns !== null) {
      for (let i = 0; i < 50 && pids((stat) => stat.userns === userns).length > 0; i++) {
        for (const pid of pids((stat) => stat.userns === userns)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await daemon?.kill();
    spawnSync('rm', ['-rf', '--one-file-system', base]);
  });
  const home = userMkdir(user, join(base, 'home'));
  const run = userMkdir(user, join(base, 'r'));
  const pathDir = userMkdir(user, join(base, 'path'), 0o755);
  const bin = installForUser(BIN, base, user);
  const argv = argvLoggingWrapper(base, bin, user);
  symlinkSync(argv.path, join(pathDir, 'slirp4netns'));
  const env = userEnv(run, {
    HOME: home,
    PATH: [pathDir, dirname(DOCKERD!), dirname(DOCKER!), userPath()].join(':'),
    DOCKER_HOST: `unix://${join(run, 'docker.sock')}`,
    // RootlessKit's state dir (with the API socket) goes to $TMPDIR.
    TMPDIR: userMkdir(user, join(base, 'tmp')),
    DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER: portDriver,
    DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS: '--disable-host-loopback=false',
  });
  daemon = spawnAsUser(user, [DOCKERD_ROOTLESS!, `--data-root=${join(base, 'data')}`, '--storage-driver=vfs'], {
    env,
    cwd: base,
    timeoutMs: 100_000,
  });
  const d = daemon;
  const report = (): string =>
    `--- dockerd-rootless.sh (exit ${d.child.exitCode ?? d.child.signalCode}) output, last lines ---\n${d.stderr().split('\n').slice(-40).join('\n')}\n` +
    `--- ${bin} command lines ---\n${argv.describe()}`;
  const docker = (args: string[], timeoutMs = 30_000): Promise<Result> => runAsUser(user, [DOCKER!, ...args], { env, cwd: base, timeoutMs });
  let version: Result | null = null;
  try {
    await waitFor(async () => {
      if (d.child.exitCode !== null || d.child.signalCode !== null) throw new Error('dockerd-rootless.sh exited');
      version = await docker(['version', '--format', '{{.Server.Version}}'], 10_000);
      return version.code === 0;
    }, 40_000, 'the daemon API');
  } catch (e) {
    throw new Error(`${String(e)}\n--- docker version ---\n${JSON.stringify(version)}\n${report()}`);
  }
  // The helper's first argument after the options: RootlessKit's child, in the namespaces.
  const childPid = argv.launches()[0]?.at(-2);
  if (childPid !== undefined && /^\d+$/.test(childPid)) {
    const ns = readlinkSync(`/proc/${childPid}/ns/user`);
    // Never the test's own namespace: the cleanup kills everything in it.
    if (ns !== readlinkSync('/proc/self/ns/user')) userns = ns;
  }
  const tarball = busyboxRootfsTarball(userMkdir(user, join(base, 'image')));
  const imp = await docker(['import', tarball, IMAGE], 60_000);
  if (imp.code !== 0) throw new Error(`docker import failed: ${imp.stderr}\n${report()}`);
  return { user, base, bin, env, docker, report, launches: argv.launches, invocations: argv.invocations };
}

/** The command lines of the running processes of `uid` that end with `tail`. */
function commandLinesOf(uid: number, tail: string): string[] {
  const found: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (!new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(readFileSync(`/proc/${p}/status`, 'utf8'))) continue;
      const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (cmdline.endsWith(tail)) found.push(cmdline);
    } catch {
      /* gone */
    }
  }
  return found;
}

describe.skipIf(skip || setupProblem !== null)(`rootless Docker (${DOCKERD_ROOTLESS}) with ${BIN} as slirp4netns`, () => {
  it.each(['builtin', 'slirp4netns'] as const)(
    'DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=%s: the daemon runs rootless over the binary, a container reaches the host through 10.0.2.2, a published port reaches the container',
    async (portDriver) => {
      const d = await startDaemon(portDriver);

      // The daemon, over its rootless socket.
      const info = await d.docker(['info', '--format', '{{json .SecurityOptions}}']);
      expect(info.code, `${info.stderr}\n${d.report()}`).toBe(0);
      expect(JSON.parse(info.stdout) as string[], d.report()).toContain('name=rootless');

      // The helper: the binary under test, with what dockerd-rootless.sh and RootlessKit passed.
      const probes = d.invocations().filter((a) => a.length === 1 && a[0] === '--help');
      expect(probes.length, `dockerd-rootless.sh and RootlessKit ask --help first\n${d.report()}`).toBeGreaterThan(0);
      const launches = d.launches();
      expect(launches, d.report()).toHaveLength(1);
      const a = launches[0]!;
      expect(a.slice(0, 4), d.report()).toEqual(['--mtu', '65520', '-r', '3']);
      // --slirp4netns-sandbox=auto and --slirp4netns-seccomp=auto: on, because --help advertises them.
      expect(a, d.report()).toContain('--enable-sandbox');
      expect(a, d.report()).toContain('--enable-seccomp');
      expect(a, d.report()).not.toContain('--disable-host-loopback');
      expect(a.at(-1), d.report()).toBe('tap0');
      // The process running that command line: usernet (its --enable-sandbox root holds the
      // package at /usernet, so Node runs /usernet/dist/...), not the real slirp4netns.
      const helper = commandLinesOf(d.user.uid, ` ${a.join(' ')}`);
      expect(helper, `the running helper\n${d.report()}`).toHaveLength(1);
      if (USERNET_UNDER_TEST) {
        expect(helper[0], d.report()).toMatch(/\/usernet\//);
        expect(helper[0], d.report()).not.toMatch(/^\S*slirp4netns /);
      } else {
        expect(helper[0], d.report()).toContain(BIN);
      }

      // Container → host: a server on the host's 127.0.0.1, reached as 10.0.2.2.
      const body = Buffer.concat([Buffer.from('<html>usernet docker e2e</html>\n'), randomBytes(1024 * 1024)]);
      const http = await httpServer(body);
      defer(() => http.close());
      const out = await d.docker(
        ['run', '--rm', IMAGE, 'sh', '-c', `timeout 20 wget -q -O /tmp/page http://${GATEWAY}:${http.port}/docker && sha256sum /tmp/page && wc -c < /tmp/page`],
        60_000,
      );
      const outReport = `docker run: exit ${out.code}\n${out.stdout}${out.stderr}\n${d.report()}`;
      expect(out.code, outReport).toBe(0);
      const lines = out.stdout.trim().split('\n');
      expect(lines[0]!.split(/\s+/)[0], outReport).toBe(sha256(body));
      expect(Number(lines[1]), outReport).toBe(body.length);
      expect(http.requests).toEqual(['GET /docker']);

      // Host → a published port: busybox httpd in the container on port 80.
      const port = await freeLoopbackPort();
      const token = randomBytes(8).toString('hex');
      const name = `usernet-e2e-web-${token}`;
      const script = `i=0; while [ $i -lt 2000 ]; do echo "usernet docker page $TOKEN"; i=$((i+1)); done > /www/index.html; exec httpd -f -p 80 -h /www`;
      const web = await d.docker(['run', '-d', '--name', name, '-p', `127.0.0.1:${port}:80`, '-e', `TOKEN=${token}`, IMAGE, 'sh', '-c', script], 60_000);
      expect(web.code, `docker run -d: ${web.stderr}\n${d.report()}`).toBe(0);
      defer(async () => {
        await d.docker(['rm', '--force', name]);
      });
      let got: { status: number; body: Buffer };
      try {
        got = await hostGet(port, '/index.html', 15_000);
      } catch (e) {
        const logs = await d.docker(['logs', name]);
        throw new Error(`${String(e)}\n--- docker logs ---\n${logs.stdout}${logs.stderr}\n${d.report()}`);
      }
      expect(got.body.toString()).toBe(`usernet docker page ${token}\n`.repeat(2000));

      if (portDriver === 'slirp4netns') {
        // RootlessKit asked the helper for the forward over its API socket; the page came through it.
        const api = a[a.indexOf('--api-socket') + 1];
        expect(a, d.report()).toContain('--api-socket');
        const reply = await apiRequest(api!, { execute: 'list_hostfwd' });
        // slirp4netns 1.2's reply: {"entries":[…]}, no "return" wrapper.
        const list = JSON.parse(reply) as { entries?: Array<{ host_addr: string; host_port: number }> };
        expect(list.entries, `list_hostfwd: ${reply}\n${d.report()}`).toContainEqual(expect.objectContaining({ host_addr: '127.0.0.1', host_port: port }));
      } else {
        // The builtin driver relays published ports itself, through RootlessKit's child: no API socket.
        expect(a, d.report()).not.toContain('--api-socket');
      }
    },
    120_000,
  );
});
