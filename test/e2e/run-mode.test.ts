/**
 * Run mode, `bin/usernet [OPTION]... -- COMMAND` (issue 7, part 1), against
 * real namespaces: as root and as an unprivileged user with subordinate ids.
 * Every test starts its own usernet (which makes and removes its own
 * namespaces) and its own host servers, and stops them afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { nameserverLine, startServer, zoneHandler } from '../dns/test-server.js';
import { NO_RESOLVER_CONF } from '../support/guest-tools.js';
import { announceSkip, e2eUnavailable, waitFor } from '../support/netns.js';
import {
  ensureRootlessUser,
  freeLoopbackPort,
  installForUser,
  rootlessUnavailable,
  runAsUser,
  userEnv,
  userProbe,
  userTempDir,
  type RootlessUser,
} from '../support/rootless.js';

const BIN = resolve(__dirname, '../../bin/usernet');
const skip = announceSkip('e2e usernet run mode', e2eUnavailable());
const skipRootless = announceSkip('e2e usernet run mode (unprivileged user)', e2eUnavailable() ?? rootlessUnavailable());

/** Fetches with wget, else busybox wget. */
const WGET = (url: string): string => `if command -v wget >/dev/null; then wget -qO- ${url}; else busybox wget -qO- ${url}; fi`;
const PAGE = 'hello from the host through usernet run mode\n';

interface Run {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

let dir = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-run-e2e-'));
  writeFileSync(join(dir, 'no-resolver.conf'), NO_RESOLVER_CONF);
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  rmSync(dir, { recursive: true, force: true });
});

function usernet(args: string[], timeoutMs = 30_000, env: Record<string, string> = {}): Run {
  const child = spawn(BIN, args, {
    env: { ...process.env, USERNET_RESOLV_CONF: join(dir, 'no-resolver.conf'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((r) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      r({ code, signal, stdout: out, stderr: err });
    }),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await done;
  });
  return { child, stdout: () => out, stderr: () => err, done };
}

/** An HTTP server on the host's 127.0.0.1 answering PAGE; closed after the test. */
async function hostServer(): Promise<number> {
  const server: Server = createServer((_req, res) => res.end(PAGE));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

function httpGet(url: string): Promise<string> {
  return new Promise((res, rej) => {
    const req = get(url, (r) => {
      let body = '';
      r.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => res(body)).on('error', rej);
    });
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
    req.on('error', rej);
  });
}

describe.skipIf(skip)('usernet -- COMMAND as root', () => {
  it('tap0 has 10.0.2.100 and COMMAND fetches a page from the host through 10.0.2.2', async () => {
    const port = await hostServer();
    const r = await usernet(['--', 'sh', '-c', `ip -br a; ${WGET(`http://10.0.2.2:${port}/`)}`]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tap0\s+UNKNOWN\s+10\.0\.2\.100\/24/m);
    expect(r.stdout).toContain(PAGE);
  });

  it('--default-deny --allow tcp:NAME:PORT: COMMAND reaches that name (resolved by the test’s resolver through 10.0.2.3) and nothing else', async () => {
    const port = await hostServer();
    const other = await hostServer();
    const resolver = await startServer(zoneHandler({ 'svc.test': { A: ['10.0.2.2'], ttl: 60 }, 'other.test': { A: ['10.0.2.2'], ttl: 60 } }), { address: '127.0.0.1' });
    cleanups.push(() => resolver.close());
    writeFileSync(join(dir, 'resolv.conf'), nameserverLine(resolver));
    const script = String.raw`
import json, socket, urllib.request
res = {}
o = urllib.request.build_opener(urllib.request.ProxyHandler({}))
res['svc'] = o.open('http://svc.test:%d/' % ${port}, timeout=5).read().decode()
try:
    socket.getaddrinfo('other.test', 80, socket.AF_INET); res['other'] = 'resolved'
except socket.gaierror as e: res['other'] = 'gaierror'
s = socket.socket(); s.settimeout(5)
try:
    s.connect(('10.0.2.2', ${other})); res['direct'] = 'connected'
except OSError as e: res['direct'] = e.strerror
print(json.dumps(res))
`;
    const r = await usernet(['--default-deny', `--allow=tcp:svc.test:${port}`, '--', 'python3', '-c', script], 30_000, {
      USERNET_RESOLV_CONF: join(dir, 'resolv.conf'),
    }).done;
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ svc: PAGE, other: 'gaierror', direct: 'No route to host' });
  });

  it('--mtu and the default route are as --configure sets them', async () => {
    const r = await usernet(['--mtu=4000', '--', 'sh', '-c', 'ip -o link show tap0; ip r; ip -br l show lo']).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/tap0: .* mtu 4000 /);
    expect(r.stdout).toMatch(/^default via 10\.0\.2\.2 dev tap0/m);
    expect(r.stdout).toMatch(/^lo\s+UNKNOWN/m);
  });

  it("prints nothing of its own on stderr: COMMAND's output is all there is; --debug adds the TAP hand-over line", async () => {
    const r = await usernet(['--', 'sh', '-c', 'echo to-stderr >&2']).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('to-stderr\n');
    const debug = await usernet(['--debug', '--', 'true']).done;
    expect(debug.code, debug.stderr).toBe(0);
    expect(debug.stderr).toMatch(/^sent tapfd=\d+ for tap0\n/);
  });

  it('propagates the exit status, and 128+N for a command killed by signal N', async () => {
    expect((await usernet(['--', 'sh', '-c', 'exit 7']).done).code).toBe(7);
    expect((await usernet(['--', 'sh', '-c', 'kill -TERM $$']).done).code).toBe(143);
  });

  it('forwards SIGTERM to COMMAND and exits 143', async () => {
    const run = usernet(['--', 'sh', '-c', 'echo started; exec sleep 30']);
    await waitFor(() => run.stdout().includes('started'), 15_000, 'command started');
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code, r.stderr).toBe(143);
  });

  it('a COMMAND that cannot be run gives 127 and no stray namespace user', async () => {
    const r = await usernet(['--', '/nonexistent/usernet-no-such-command']).done;
    expect(r.code).toBe(127);
  });

  it('-p 127.0.0.1:PORT:8080 publishes a server running inside to the host', async () => {
    const port = await freeLoopbackPort();
    const py = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const run = usernet(['-p', `127.0.0.1:${port}:8080`, '--', 'sh', '-c', `cd "${dir}" && echo published > index.html && exec ${py} -m http.server 8080`]);
    let body = '';
    await waitFor(async () => {
      if (run.child.exitCode !== null) throw new Error(`usernet exited ${run.child.exitCode}: ${run.stderr()}`);
      body = await httpGet(`http://127.0.0.1:${port}/index.html`).catch(() => '');
      return body !== '';
    }, 20_000, 'published port serves');
    expect(body).toBe('published\n');
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code).not.toBeNull();
    // The forward is gone with usernet.
    await expect(httpGet(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });

  it('COMMAND sees nameserver 10.0.2.3; the host /etc/resolv.conf is unchanged', async () => {
    const before = readFileSync('/etc/resolv.conf');
    const r = await usernet(['--', 'cat', '/etc/resolv.conf']).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('nameserver 10.0.2.3\nnameserver fd00::3\n');
    expect(readFileSync('/etc/resolv.conf').equals(before)).toBe(true);
    const v4only = await usernet(['--disable-ipv6', '--', 'cat', '/etc/resolv.conf']).done;
    expect(v4only.stdout).toBe('nameserver 10.0.2.3\n');
  });

  it('IPv6 by default: tap0 has its fd00::/64 address and a default route via fe80::2 as COMMAND starts; -p [::1]:PORT reaches it', async () => {
    const r = await usernet(['--', 'sh', '-c', 'ip -6 -o addr show dev tap0 scope global; ip -6 route show default; ping -6 -c 1 -W 2 fd00::2 >/dev/null && echo ping6-ok']).done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/inet6 fd00::[0-9a-f:]+\/64 scope global/);
    expect(r.stdout).not.toMatch(/tentative/);
    expect(r.stdout).toMatch(/^default via fe80::2 dev tap0/m);
    expect(r.stdout).toContain('ping6-ok');
    const off = await usernet(['--disable-ipv6', '--', 'sh', '-c', 'ip -6 -o addr show dev tap0 scope global; echo done']).done;
    expect(off.stdout).toBe('done\n');

    const port = await freeLoopbackPort('::1');
    const py = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const run = usernet(['-p', `[::1]:${port}:8080`, '--', 'sh', '-c', `cd "${dir}" && echo published6 > index.html && exec ${py} -m http.server 8080`]);
    let body = '';
    await waitFor(async () => {
      if (run.child.exitCode !== null) throw new Error(`usernet exited ${run.child.exitCode}: ${run.stderr()}`);
      body = await httpGet(`http://[::1]:${port}/index.html`).catch(() => '');
      return body !== '';
    }, 20_000, 'published [::1] port serves');
    expect(body).toBe('published6\n');
    run.child.kill('SIGTERM');
    await run.done;
  });

  it('rejects a bad --publish and a missing COMMAND without running anything', async () => {
    const bad = await usernet(['-p', '80', '--', 'true']).done;
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid --publish');
    const none = await usernet(['--']).done;
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no COMMAND');
  });
});

describe.skipIf(skipRootless)('usernet -- COMMAND as an unprivileged user', () => {
  let user: RootlessUser;
  let home = '';
  let bin = '';
  let probe: string | null = null;

  beforeAll(async () => {
    user = await ensureRootlessUser();
    home = userTempDir(user, 'usernet-run-rootless-');
    bin = installForUser(BIN, home, user);
    probe = await userProbe(user, home);
    if (probe !== null) console.warn(`\n*** SKIPPED: usernet run mode as ${user.name}: ${probe} ***\n`);
  });

  afterAll(() => {
    if (home !== '') rmSync(home, { recursive: true, force: true });
  });

  it('fetches a page from the host, with root and the subordinate ids mapped', async (ctx) => {
    if (probe !== null) ctx.skip();
    const port = await hostServer();
    const r = await runAsUser(
      user,
      [bin, '--', 'sh', '-c', `ip -br a; cat /proc/self/uid_map; id -u; ${WGET(`http://10.0.2.2:${port}/`)}; cat /etc/resolv.conf`],
      { env: userEnv(home), cwd: home, timeoutMs: 30_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tap0\s+UNKNOWN\s+10\.0\.2\.100\/24/m);
    expect(r.stdout).toMatch(new RegExp(`^\\s*0\\s+${user.uid}\\s+1$`, 'm'));
    expect(r.stdout).toMatch(/^\s*1\s+\d+\s+65536$/m);
    expect(r.stdout).toMatch(/^0$/m);
    expect(r.stdout).toContain(PAGE);
    expect(r.stdout).toContain('nameserver 10.0.2.3\n');
  });

  it('propagates the exit status, with nothing on stderr', async (ctx) => {
    if (probe !== null) ctx.skip();
    const r = await runAsUser(user, [bin, '--', 'sh', '-c', 'exit 7'], { env: userEnv(home), cwd: home, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(7);
    // Nothing of usernet's own on stderr.
    expect(r.stderr).toBe('');
  });
});
