/**
 * Helpers for the "real clients" e2e tests (issue 5, part 3): RootlessKit and
 * Podman launch the binary under test exactly as they launch slirp4netns, as
 * an unprivileged user with subordinate ids, the way people run them.
 *
 * What the setup changes on the machine (as root, idempotently):
 * - a system user `usernet-e2e` (useradd) with a subordinate uid and gid
 *   range in /etc/subuid and /etc/subgid (usermod --add-subuids/--add-subgids,
 *   a free range of 65536 ids at or above 100000). Both are left in place for
 *   the next run: test files run in parallel and share them;
 * - /dev/net/tun is made 0666, as every distribution ships it (it is 0600 on
 *   some CI images, which would stop any unprivileged user from opening a
 *   TAP). Also left so: putting it back while another file runs would break it.
 *
 * Everything else lives in a temp dir owned by that user and removed after
 * the tests: XDG_RUNTIME_DIR, state dirs, a private copy of usernet
 * (bin/, dist/, the native addon, lru-cache), and a wrapper that records the
 * command line each client used before exec'ing the binary.
 *
 * Commands run as the user through `runuser -u usernet-e2e -- env -i …`, in a
 * process group of their own, so a cleanup kills what it started by group id.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { NO_RESOLVER_CONF } from './guest-tools.js';

const execFileP = promisify(execFile);

export const TEST_USER = 'usernet-e2e';
const SUBID_COUNT = 65536;
const SETUP_LOCK = '/run/usernet-e2e-user.lock';

export interface RootlessUser {
  name: string;
  uid: number;
  gid: number;
}

function which(cmd: string): string | null {
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (existsSync(join(d, cmd))) return join(d, cmd);
  }
  return null;
}

/** Why the unprivileged-user tests cannot run here, or null when they can. */
export function rootlessUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root (needed to create the test user)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  for (const cmd of ['runuser', 'useradd', 'usermod', 'flock', 'newuidmap', 'newgidmap', 'unshare', 'nsenter', 'ip']) {
    if (which(cmd) === null) return `${cmd} is missing${cmd.startsWith('new') ? ' (apt-get install uidmap)' : ''}`;
  }
  if (!existsSync('/usr/bin/python3')) return '/usr/bin/python3 is missing (the guest programs need a python3 the test user can run)';
  return null;
}

/**
 * Creates the test user and its subordinate ids if missing, and makes
 * /dev/net/tun 0666. Serialised across test files with flock(1).
 */
export async function ensureRootlessUser(): Promise<RootlessUser> {
  const script = String.raw`
set -e
u="$1"; count="$2"
if ! getent passwd "$u" >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
fi
next_free() { # first id >= 100000 after every range in the file
  awk -F: 'BEGIN { m = 100000 } NF >= 3 { e = $2 + $3; if (e > m) m = e } END { print m }' "$1" 2>/dev/null || echo 100000
}
touch /etc/subuid /etc/subgid
if ! grep -q "^$u:" /etc/subuid; then
  s=$(next_free /etc/subuid); usermod --add-subuids "$s-$((s + count - 1))" "$u"
fi
if ! grep -q "^$u:" /etc/subgid; then
  s=$(next_free /etc/subgid); usermod --add-subgids "$s-$((s + count - 1))" "$u"
fi
`;
  await execFileP('flock', ['-w', '30', SETUP_LOCK, 'sh', '-c', script, 'sh', TEST_USER, String(SUBID_COUNT)], { timeout: 40_000 });
  // Distributions ship /dev/net/tun as 0666; some CI images have 0600, which
  // no unprivileged user can open. Left 0666 afterwards (see the file comment).
  if ((statSync('/dev/net/tun').mode & 0o777) !== 0o666) chmodSync('/dev/net/tun', 0o666);
  const id = (flag: string): number => Number(spawnSync('id', [flag, TEST_USER], { encoding: 'utf8' }).stdout.trim());
  return { name: TEST_USER, uid: id('-u'), gid: id('-g') };
}

/** A fresh directory in /tmp owned by the user, mode 0700. */
export function userTempDir(user: RootlessUser, prefix: string): string {
  const dir = mkdtempSync(join('/tmp', prefix));
  chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
  return dir;
}

/** mkdir -p, owned by the user. */
export function userMkdir(user: RootlessUser, path: string, mode = 0o700): string {
  mkdirSync(path, { recursive: true, mode });
  chownSync(path, user.uid, user.gid);
  return path;
}

/** Writes a file owned by the user. */
export function userWriteFile(user: RootlessUser, path: string, data: string | Buffer, mode = 0o644): void {
  writeFileSync(path, data, { mode });
  chmodSync(path, mode);
  chownSync(path, user.uid, user.gid);
}

function chownTree(path: string, user: RootlessUser): void {
  chownSync(path, user.uid, user.gid);
  if (statSync(path).isDirectory()) for (const e of readdirSync(path)) chownTree(join(path, e), user);
}

/**
 * The binary the user will run. For `<repo>/bin/usernet` (anything with a
 * `dist/cli/main.js` beside its bin/) a private copy in `dir`: bin/, dist/
 * (with dist/launcher's texts), package.json (ESM), build/Release/*.node, the
 * launcher build/Release/usernet-launcher and node_modules/lru-cache (the
 * only package dist imports), so the repo's own permissions do not matter.
 * Any other binary (e.g. /usr/bin/slirp4netns) is used where it is.
 */
export function installForUser(bin: string, dir: string, user: RootlessUser): string {
  const root = dirname(dirname(bin));
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) return bin;
  const pkg = join(dir, 'usernet-pkg');
  mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
  mkdirSync(join(pkg, 'node_modules'), { recursive: true });
  cpSync(join(root, 'bin'), join(pkg, 'bin'), { recursive: true });
  cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
  for (const f of readdirSync(join(root, 'build', 'Release'))) {
    if (f.endsWith('.node') || f === 'usernet-launcher') cpSync(join(root, 'build', 'Release', f), join(pkg, 'build', 'Release', f));
  }
  cpSync(join(root, 'node_modules', 'lru-cache'), join(pkg, 'node_modules', 'lru-cache'), { recursive: true });
  chownTree(pkg, user);
  return join(pkg, 'bin', 'usernet');
}

/**
 * A PATH for the user: the directory of this process's node first (bin/usernet
 * runs the first `node` in PATH), then the usual ones (python3 is /usr/bin/python3,
 * not a root-only pyenv shim).
 */
export function userPath(): string {
  return [dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');
}

/**
 * The environment for the user's commands: nothing inherited from the test
 * process (no proxies, no root paths), plus `extra`. USERNET_RESOLV_CONF
 * points usernet at a resolver that is a closed loopback port, so nothing
 * asks the machine's real nameservers (slirp4netns ignores it).
 */
export function userEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const resolv = join(home, 'no-resolver.conf');
  if (!existsSync(resolv)) writeFileSync(resolv, NO_RESOLVER_CONF, { mode: 0o644 });
  return {
    PATH: userPath(),
    HOME: home,
    LANG: 'C.UTF-8',
    XDG_RUNTIME_DIR: home,
    USERNET_RESOLV_CONF: resolv,
    ...extra,
  };
}

export interface ArgvLog {
  /** The wrapper: pass it to the client as the slirp4netns binary. */
  path: string;
  /** Every command line the wrapper was run with, oldest first (argv[1..]). */
  invocations(): string[][];
  /** The invocations that were not the `--help`/`--version` probe. */
  launches(): string[][];
  /** A readable summary for assertion messages. */
  describe(): string;
  /**
   * With `{ snapshot: true }`: for each launch, once its process showed
   * `Seccomp: 2` (within 15 s), the Cap and NoNewPrivs lines of every
   * thread's /proc status and the names in /proc/PID/root, read as the user.
   */
  snapshots(): Array<{ threads: string[]; root: string[] }>;
}

/**
 * A wrapper that appends its arguments (tab-separated, one line per run) to a
 * log, then execs `target` with the same arguments, environment and fds.
 */
export function argvLoggingWrapper(dir: string, target: string, user: RootlessUser, o: { snapshot?: boolean } = {}): ArgvLog {
  const path = join(dir, 'slirp-wrapper');
  const log = join(dir, 'slirp-wrapper.argv');
  const snaps = userMkdir(user, join(dir, 'slirp-wrapper.snapshots'));
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  // $$ is the helper's pid too: the wrapper execs it, and it execs node. The
  // watcher lets go of the client's pipes (ready and exit fds, output) at once.
  const snapshot = o.snapshot
    ? `case "$1" in -h|--help|-v|--version) ;; *) (exec </dev/null >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; i=0; while [ $i -lt 1500 ] && ! grep -q '^Seccomp:[[:space:]]*2' /proc/$$/status 2>/dev/null; do sleep 0.01; i=$((i+1)); done
  ls -A /proc/$$/root > ${q(snaps)}/$$.tmp; for t in /proc/$$/task/*; do grep -E '^(Cap|NoNewPrivs|Seccomp)' $t/status | tr '\\n' ' '; echo; done > ${q(snaps)}/$$.threads; mv ${q(snaps)}/$$.tmp ${q(snaps)}/$$.root) & ;; esac\n`
    : '';
  userWriteFile(user, log, '');
  userWriteFile(user, path, `#!/bin/sh\nprintf '%s\\t' "$@" >> ${q(log)}\necho >> ${q(log)}\n${snapshot}exec ${q(target)} "$@"\n`, 0o755);
  const invocations = (): string[][] =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.replace(/\t$/, '').split('\t'));
  const launches = (): string[][] => invocations().filter((a) => !(a.length === 1 && /^(--help|-h|--version|-v)$/.test(a[0]!)));
  return {
    path,
    invocations,
    launches,
    describe: () => invocations().map((a) => `  ${target} ${a.join(' ')}`).join('\n') || '  (never run)',
    snapshots: () =>
      readdirSync(snaps)
        .filter((f) => f.endsWith('.root'))
        .map((f) => ({
          threads: readFileSync(join(snaps, f.replace(/\.root$/, '.threads')), 'utf8').split('\n').filter((l) => l !== ''),
          root: readFileSync(join(snaps, f), 'utf8').split('\n').filter((l) => l !== ''),
        })),
  };
}

export interface UserProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves (never rejects) with the exit status and all output. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  /** SIGKILL to the whole process group (by its id) unless it already exited; resolves once it has. */
  kill(): Promise<void>;
}

/**
 * Starts `argv` as the user (`runuser -u USER -- env -i ENV… argv`) in a new
 * process group, killed after `timeoutMs` (default 60 s).
 */
export function spawnAsUser(
  user: RootlessUser,
  argv: string[],
  options: { env: Record<string, string>; cwd: string; timeoutMs?: number },
): UserProcess {
  const envArgs = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
  const child = spawn('runuser', ['-u', user.name, '--', 'env', '-i', ...envArgs, ...argv], {
    cwd: options.cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out = (out + d).slice(-200_000)));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-200_000)));
  const killGroup = (): void => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  const timer = setTimeout(killGroup, options.timeoutMs ?? 60_000);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((r) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      r({ code, signal, stdout: out, stderr: err });
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      r({ code: -1, signal: null, stdout: out, stderr: err + String(e) });
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    done,
    async kill() {
      // Kill the group even after the leader exited: what it started may still run.
      killGroup();
      await done;
    },
  };
}

/** Runs `argv` as the user to completion. */
export async function runAsUser(
  user: RootlessUser,
  argv: string[],
  options: { env: Record<string, string>; cwd: string; timeoutMs?: number },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const p = spawnAsUser(user, argv, options);
  const r = await p.done;
  await p.kill();
  return r;
}

/**
 * Why the user cannot make user namespaces or run what the tests need, or
 * null: node (for bin/usernet), python3, and `unshare --user --map-root-user`
 * (blocked e.g. by kernel.unprivileged_userns_clone=0 or an AppArmor policy).
 */
export async function userProbe(user: RootlessUser, dir: string): Promise<string | null> {
  const env = userEnv(dir);
  const checks: Array<[string, string[]]> = [
    ['node', ['node', '-e', '0']],
    ['python3', ['python3', '-c', 'pass']],
    ['an unprivileged user namespace', ['unshare', '--user', '--map-root-user', '--net', 'true']],
  ];
  for (const [what, argv] of checks) {
    const r = await runAsUser(user, argv, { env, cwd: dir, timeoutMs: 15_000 });
    if (r.code !== 0) return `user ${user.name} cannot run ${what} (${argv.join(' ')}): exit ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim()}`;
  }
  return null;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freeLoopbackPort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(() => r(null)));
  return port;
}

/** GET http://host:port/path from the host, retrying failed connections and non-200 answers for up to `retryMs`. */
export async function hostGet(port: number, path: string, retryMs = 10_000, host = '127.0.0.1'): Promise<{ status: number; body: Buffer; attempts: number }> {
  const deadline = Date.now() + retryMs;
  for (let attempts = 1; ; attempts++) {
    try {
      const r = await new Promise<{ status: number; body: Buffer }>((resolveGet, reject) => {
        const req = request({ host, port, path, timeout: 10_000, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end();
      });
      if (r.status === 200) return { ...r, attempts };
      throw new Error(`HTTP ${r.status}`);
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`GET ${host}:${port}${path} failed after ${attempts} attempts: ${String(e)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The last line of `text` that parses as a JSON object, or null. */
export function lastJson<T = Record<string, unknown>>(text: string): T | null {
  const lines = text.trim().split('\n').filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]!) as T;
    } catch {
      /* keep looking */
    }
  }
  return null;
}
