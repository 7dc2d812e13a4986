/**
 * `bin/usernet --enable-sandbox` in real namespaces, as root and as an
 * unprivileged user: what slirp4netns's test-slirp4netns-sandbox.sh,
 * -sandbox-no-unmount.sh and -seccomp.sh check, and more.
 *
 * - When the ready fd says "1", every thread has CAP_NET_BIND_SERVICE and
 *   nothing else in its effective, permitted and bounding sets, no ambient
 *   capability and no_new_privs; the process's root holds /etc and /run but
 *   not /home, /root or /var, every mount in it is read-only, and none of them
 *   propagates back to the host.
 * - The helper keeps working in there: TCP to the host, DNS through the test's
 *   resolver (and a resolv.conf rewritten while it runs is read again), a port
 *   forward added through the API socket, and the pcap file.
 * - A sandbox step that fails is one line on stderr and exit 1, never a helper
 *   running without it; so is a command line the launcher cannot sandbox.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nameserverLine, startServer, TempResolvConf, zoneHandler } from '../dns/test-server.js';
import { DNS_PY, guestPython, HTTP_GET_PY, httpServer, NO_RESOLVER_CONF, sha256, startCliGuest, USERNET_BIN } from '../support/guest-tools.js';
import { perTest } from '../support/per-test.js';
import { announceSkip, e2eUnavailable, userNetns, waitFor } from '../support/netns.js';
import { apiRequest, runWithInjectedError, STRACE, threadStatus } from '../support/proc-status.js';
import { ensureRootlessUser, freeLoopbackPort, installForUser, rootlessUnavailable, spawnAsUser, userEnv, userTempDir, type RootlessUser } from '../support/rootless.js';

const BUILT = existsSync(new URL('../../dist/bundle/usernet.js', import.meta.url));
const LAUNCHER = existsSync(new URL('../../build/Release/usernet-launcher', import.meta.url));
const skip = announceSkip(
  'e2e --enable-sandbox',
  e2eUnavailable() ?? (BUILT && LAUNCHER ? null : `${USERNET_BIN} needs dist/ and build/Release/usernet-launcher (npm install)`),
);
const skipRootless = skip || announceSkip('e2e --enable-sandbox as an unprivileged user', rootlessUnavailable());

/** CAP_NET_BIND_SERVICE (10) alone. */
const BIND_SERVICE = '0000000000000400';
const NONE = '0000000000000000';

const t = perTest('usernet-sandbox-e2e-');
const { defer } = t;

/**
 * The locked-down state every thread and the root must be in. `runEntries`:
 * what /run may hold (the directory of a resolv.conf under /run, from the
 * host's /etc/resolv.conf or the test's own).
 */
function expectSandboxed(pid: number, o: { seccomp: boolean; extraRoot?: string[]; runEntries?: string[] }): void {
  const threads = threadStatus(pid);
  expect(threads.length).toBeGreaterThan(1);
  for (const t of threads) {
    expect(t, t.name).toMatchObject({ capEff: BIND_SERVICE, capPrm: BIND_SERVICE, capBnd: BIND_SERVICE, capAmb: NONE, nnp: '1', seccomp: o.seccomp ? '2' : '0' });
  }
  const root = readdirSync(`/proc/${pid}/root`).sort();
  expect(root).toEqual(expect.arrayContaining(['etc', 'run', 'usr', 'usernet']));
  for (const absent of ['home', 'root', 'var', 'proc', 'dev', 'sys']) expect(root).not.toContain(absent);
  // Nothing but what exec and Node need (the library directories as the host has them).
  const allowed = new Set(['etc', 'run', 'usr', 'usernet', 'node', 'lib', 'lib32', 'lib64', 'libx32', ...(o.extraRoot ?? [])]);
  for (const name of root) expect(allowed, `unexpected /${name} in the sandbox`).toContain(name);
  expect(existsSync(`/proc/${pid}/root/usernet/dist/bundle/usernet.js`)).toBe(true);
  // No host UNIX socket under /run (D-Bus, /run/user/UID, container engines): only a resolv.conf's directory.
  const hostResolv = realpathSync('/etc/resolv.conf');
  const allowedRun = [...(o.runEntries ?? []), ...(hostResolv.startsWith('/run/') ? [hostResolv.split('/')[2]!] : [])];
  for (const name of readdirSync(`/proc/${pid}/root/run`)) expect(allowedRun, `unexpected /run/${name} in the sandbox`).toContain(name);
  // Every mount read-only and private: no propagation to or from the host.
  const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n');
  for (const line of mounts) {
    const fields = line.split(' ');
    expect(fields[5]!.split(','), line).toContain('ro');
    expect(fields.slice(6, fields.indexOf('-')), line).toEqual([]);
  }
  expect(mounts.find((l) => l.split(' ')[4] === '/')).toMatch(/ - tmpfs /);
}

/** A one-shot TCP server in the guest on 8080: replies "from guest " + what it read. */
const GUEST_SERVER_PY = String.raw`
import socket
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(('0.0.0.0', 8080)); srv.listen(1)
print('{"listening": true}', flush=True)
srv.settimeout(30); c, _ = srv.accept(); c.sendall(b'from guest ' + c.recv(100)); c.close()
`;

function hostRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(text));
    let got = '';
    c.setEncoding('utf8').on('data', (d: string) => (got += d)).on('end', () => resolve(got)).on('error', reject);
  });
}

/** Frames in a pcap file (after its 24-byte header), checking each record's length. */
function pcapFrames(path: string): number {
  const b = readFileSync(path);
  expect(b.readUInt32LE(0)).toBe(0xa1b2c3d4);
  let n = 0;
  for (let off = 24; off < b.length; n++) {
    const incl = b.readUInt32LE(off + 8);
    off += 16 + incl;
    expect(off).toBeLessThanOrEqual(b.length);
  }
  return n;
}

describe.skipIf(skip)('bin/usernet --enable-sandbox as root', () => {
  it('every thread holds CAP_NET_BIND_SERVICE alone, the root only etc/run/usr/the package; TCP, DNS (re-read), an API forward and pcap work', async () => {
    const body = Buffer.from('sandboxed '.repeat(10_000));
    const http = await httpServer(body);
    defer(() => http.close());
    const first = await startServer(zoneHandler({ 'first.sandbox.test': { A: ['192.0.2.71'], ttl: 60 } }), { address: '127.0.0.1' });
    defer(() => first.close());
    // Any name: each attempt below asks a new one, so no negative answer cached from the first resolver is met.
    const second = await startServer((q) => ({ answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 60, data: '192.0.2.72' }] }), { address: '127.0.0.1' });
    defer(() => second.close());
    // In /tmp: outside /etc and /run, so the sandbox binds the file itself.
    const conf = new TempResolvConf(nameserverLine(first));
    defer(() => conf.remove());
    const api = join(t.dir(), 'api.sock');
    const pcap = join(t.dir(), 'capture.pcap');
    const g = await startCliGuest({
      defer,
      dir: t.dir(),
      args: ['--enable-sandbox', '--enable-seccomp', '-a', api],
      env: { USERNET_RESOLV_CONF: conf.path, USERNET_PCAP: pcap },
    });
    const pid = g.child.pid!;
    expectSandboxed(pid, { seccomp: true, extraRoot: [conf.path.split('/')[1]!] });
    // The bound resolv.conf is the host's file, read-only.
    expect(readFileSync(`/proc/${pid}/root${conf.path}`, 'utf8')).toBe(nameserverLine(first));

    const get = await g.py<{ status: number; sha: string }>(HTTP_GET_PY, { url: `http://10.0.2.2:${http.port}/`, timeout: 10 });
    expect(get).toMatchObject({ status: 200, sha: sha256(body) });

    type Dns = { results: Array<{ rcode: string; answers?: Array<{ data: string }>; error?: string }> };
    const ask = (name: string): Promise<Dns> => g.py<Dns>(DNS_PY, { server: '10.0.2.3', timeout: 3, queries: [{ name, type: 'A', transport: 'udp' }] });
    expect((await ask('first.sandbox.test')).results[0]).toMatchObject({ rcode: 'NOERROR', answers: [{ data: '192.0.2.71' }] });
    // Rewritten in place: the forwarder, inside the sandbox, sees the new resolver.
    conf.overwrite(nameserverLine(second));
    let attempt = 0;
    await waitFor(async () => (await ask(`second-${++attempt}.sandbox.test`)).results[0]!.answers?.[0]?.data === '192.0.2.72', 15_000, 'the rewritten resolv.conf to be used');

    const server = guestPython(g.ns.pid, GUEST_SERVER_PY, {}, 40_000);
    defer(() => server.proc.kill());
    await waitFor(() => server.proc.stdout().includes('listening'), 10_000, 'the guest server');
    const port = await freeLoopbackPort();
    expect(await apiRequest(api, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: port, guest_port: 8080 } })).toBe(
      '{"return":{"id":1}}',
    );
    expect(await hostRequest(port, 'host')).toBe('from guest host');

    // Threads started since (the libuv pool for the resolv.conf reads, ...) are in the same state.
    expectSandboxed(pid, { seccomp: true, extraRoot: [conf.path.split('/')[1]!] });
    expect(g.child.exitCode).toBeNull();
    const exited = new Promise((r) => g.child.once('exit', r));
    g.child.kill('SIGTERM');
    await exited;
    expect(pcapFrames(pcap)).toBeGreaterThan(10);
    // Inside the sandbox the socket file cannot be reached to be removed (slirp4netns leaves it too).
    expect(statSync(api).isSocket()).toBe(true);
  });

  it('without --enable-seccomp: the same sandbox, no filter; the ready fd comes after it', async () => {
    const g = await startCliGuest({ defer, dir: t.dir(), args: ['--enable-sandbox', '-6'] });
    expectSandboxed(g.child.pid!, { seccomp: false, extraRoot: [t.dir().split('/')[1]!] });
  });

  it('a resolv.conf under /run: its directory alone is there, and a file renamed over it is read', async () => {
    const runDir = `/run/usernet-sandbox-e2e-${process.pid}-resolv`;
    mkdirSync(runDir, { recursive: true });
    defer(() => rmSync(runDir, { recursive: true, force: true }));
    const first = await startServer(zoneHandler({ 'first.run.test': { A: ['192.0.2.81'], ttl: 60 } }), { address: '127.0.0.1' });
    defer(() => first.close());
    const second = await startServer((q) => ({ answers: [{ type: 'A', name: q.questions![0]!.name, ttl: 60, data: '192.0.2.82' }] }), { address: '127.0.0.1' });
    defer(() => second.close());
    const conf = join(runDir, 'resolv.conf');
    writeFileSync(conf, nameserverLine(first));
    const g = await startCliGuest({ defer, dir: t.dir(), args: ['--enable-sandbox'], env: { USERNET_RESOLV_CONF: conf } });
    expectSandboxed(g.child.pid!, { seccomp: false, runEntries: [runDir.split('/')[2]!] });
    type Dns = { results: Array<{ answers?: Array<{ data: string }> }> };
    const ask = (name: string): Promise<Dns> => g.py<Dns>(DNS_PY, { server: '10.0.2.3', timeout: 3, queries: [{ name, type: 'A', transport: 'udp' }] });
    expect((await ask('first.run.test')).results[0]!.answers?.[0]?.data).toBe('192.0.2.81');
    // As systemd-resolved and NetworkManager do: a new file, renamed over the old one.
    writeFileSync(`${conf}.new`, nameserverLine(second));
    renameSync(`${conf}.new`, conf);
    let attempt = 0;
    await waitFor(async () => (await ask(`renamed-${++attempt}.run.test`)).results[0]!.answers?.[0]?.data === '192.0.2.82', 15_000, 'the renamed resolv.conf to be used');
  });

  it('mounts never propagate back: a shared mount outside stays, and the outside sees no new mount (slirp4netns sandbox-no-unmount)', async () => {
    // Path mode, in a mount namespace of the test's own whose "/" is shared,
    // with a tmpfs on a shared mount point under /run.
    const script = String.raw`
set -eu
mount --make-rshared /
mkdir -p "$RUNDIR"
mount -t tmpfs -o size=64k usernet-shared "$RUNDIR"
touch "$DIR/netns"
unshare --net="$DIR/netns" true
before=$(awk '{print $5}' /proc/self/mountinfo | sort)
"$BIN" --enable-sandbox --netns-type=path -c -r 9 "$DIR/netns" tap0 9>"$DIR/ready" >"$DIR/out" 2>&1 &
pid=$!
i=0; while [ "$(cat "$DIR/ready")" != 1 ]; do i=$((i+1)); [ $i -lt 300 ] || { echo "no ready byte"; cat "$DIR/out"; exit 1; }; sleep 0.05; done
ls /proc/$pid/root | tr '\n' ' ' > "$DIR/root"
during=$(awk '{print $5}' /proc/self/mountinfo | sort)
mountpoint -q "$RUNDIR"
kill $pid; wait $pid || true
after=$(awk '{print $5}' /proc/self/mountinfo | sort)
mountpoint -q "$RUNDIR"
[ "$before" = "$during" ] || { echo "changed while running:"; diff <(echo "$before") <(echo "$during") || true; exit 1; }
[ "$before" = "$after" ] || { echo "changed after exit"; exit 1; }
umount "$DIR/netns"
umount "$RUNDIR"; rmdir "$RUNDIR"
echo OK
`;
    writeFileSync(join(t.dir(), 'resolv.conf'), NO_RESOLVER_CONF);
    const r = spawnSync('unshare', ['-m', 'bash', '-c', script], {
      encoding: 'utf8',
      env: { ...process.env, DIR: t.dir(), BIN: USERNET_BIN, RUNDIR: `/run/usernet-sandbox-e2e-${process.pid}`, USERNET_RESOLV_CONF: join(t.dir(), 'resolv.conf') },
      timeout: 30_000,
    });
    expect(r.stdout.trim().split('\n').at(-1), `${r.stdout}\n${r.stderr}`).toBe('OK');
    expect(r.stderr).toBe('');
    const root = readFileSync(join(t.dir(), 'root'), 'utf8').trim().split(' ');
    expect(root).toEqual(expect.arrayContaining(['etc', 'run']));
    for (const absent of ['home', 'root', 'var']) expect(root).not.toContain(absent);
  });

  it.skipIf(STRACE === null)('a sandbox step the kernel refuses (pivot_root, injected by strace) is one line on stderr, exit 1, no ready byte', async () => {
    const ns = await userNetns();
    defer(() => ns.close());
    const ready = join(t.dir(), 'ready');
    const { code, stdout: out, stderr: err } = await runWithInjectedError('pivot_root', 'EPERM', ready, USERNET_BIN, [
      '--enable-sandbox', '-c', '-r', '9', String(ns.pid), 'tap0',
    ]);
    expect(code, err).toBe(1);
    expect(readFileSync(ready, 'utf8')).toBe('');
    expect(err.split('\n').filter((l) => l.includes('--enable-sandbox'))).toEqual([`${USERNET_BIN}: --enable-sandbox: pivot_root: Operation not permitted`]);
    expect(out).toBe('');
  });

  it('a command line the launcher leaves to Node is refused, and Node without the launcher neither offers nor takes the flag: exit 1, one line, no ready byte', async () => {
    const ns = await userNetns();
    defer(() => ns.close());
    const bundle = join(dirname(dirname(USERNET_BIN)), 'dist', 'bundle', 'usernet.js');
    const cases: Array<[string, string[]]> = [
      // An interface name for --outbound-addr needs a lookup whose messages Node owns.
      [USERNET_BIN, ['--enable-sandbox', '--outbound-addr=lo', '-c', '-r', '9', String(ns.pid), 'tap0']],
      [process.execPath, [bundle, '--enable-sandbox', '-c', '-r', '9', String(ns.pid), 'tap0']],
    ];
    for (const [file, args] of cases) {
      const launched = file === USERNET_BIN;
      const ready = join(t.dir(), 'ready');
      writeFileSync(ready, '');
      const r = spawnSync('sh', ['-c', `exec "$0" "$@" 9>"${ready}"`, file, ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(readFileSync(ready, 'utf8')).toBe('');
      // Without the launcher, the flag is simply not supported (and --help leaves it out).
      expect(r.stderr).toMatch(
        launched ? /^usernet: --enable-sandbox: the launcher makes the sandbox before Node starts, and it leaves this command line to Node/m : /: --enable-sandbox is not supported yet$/m,
      );
      // Refused before any attach: no TAP was made.
      expect((await ns.run(['ip', 'link', 'show', 'tap0'])).code).not.toBe(0);
    }
    expect(spawnSync(process.execPath, [bundle, '--help'], { encoding: 'utf8' }).stdout).not.toContain('--enable-sandbox');
    expect(spawnSync(USERNET_BIN, ['--help'], { encoding: 'utf8' }).stdout).toContain('--enable-sandbox');
  });
});

describe.skipIf(skipRootless)('bin/usernet --enable-sandbox as an unprivileged user', () => {
  /**
   * The user's own `unshare -rn` target, and the helper started as the user
   * with `args(targetPid)` (+ -c -r 9 -a API), checked once ready.
   */
  async function sandboxedAsUser(args: (targetPid: number) => string[]): Promise<void> {
    const user: RootlessUser = await ensureRootlessUser();
    const home = userTempDir(user, 'usernet-sandbox-user-');
    defer(() => rmSync(home, { recursive: true, force: true }));
    const bin = installForUser(USERNET_BIN, home, user);
    const env = userEnv(home);

    const target = spawnAsUser(user, ['unshare', '-rn', 'sh', '-c', 'echo $$; exec sleep 3600'], { env, cwd: home, timeoutMs: 120_000 });
    defer(() => target.kill());
    await waitFor(() => /^\d+\n/.test(target.stdout()), 10_000, 'the target namespace');
    const targetPid = Number(target.stdout().trim());
    // Its user namespace is not ours, and the helper runs as the user, not root.
    expect(readlinkSync(`/proc/${targetPid}/ns/user`)).not.toBe(readlinkSync('/proc/self/ns/user'));

    const api = join(home, 'api.sock');
    const ready = join(home, 'ready');
    const helper = spawnAsUser(
      user,
      ['sh', '-c', `echo $$ > "${home}/pid"; exec "$0" "$@" 9>"${ready}"`, bin, '-c', '-r', '9', '-a', api, ...args(targetPid)],
      { env, cwd: home, timeoutMs: 120_000 },
    );
    defer(() => helper.kill());
    await waitFor(() => {
      if (helper.child.exitCode !== null) throw new Error(`helper exited ${helper.child.exitCode}: ${helper.stderr()}`);
      return existsSync(ready) && readFileSync(ready, 'utf8') === '1';
    }, 20_000, 'the ready byte');
    const pid = Number(readFileSync(join(home, 'pid'), 'utf8'));
    expect(threadStatus(pid)[0]!.name).toBe('node');
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${user.uid}\\s`, 'm'));
    // In the target's user namespace now (joined for the capabilities the sandbox needs).
    expect(readlinkSync(`/proc/${pid}/ns/user`)).toBe(readlinkSync(`/proc/${targetPid}/ns/user`));
    expectSandboxed(pid, { seccomp: true, extraRoot: [home.split('/')[1]!] });
    // The user who owns the helper can still look at it (slirp4netns's test does, as that user).
    const ls = spawnSync('runuser', ['-u', user.name, '--', 'ls', `/proc/${pid}/root`], { encoding: 'utf8' });
    expect(ls.stdout.split('\n')).toContain('etc');

    const body = Buffer.from('rootless sandbox '.repeat(5000));
    const http = await httpServer(body);
    defer(() => http.close());
    const get = await guestPython(targetPid, HTTP_GET_PY, { url: `http://10.0.2.2:${http.port}/`, timeout: 10 }).result<{ status: number; sha: string }>();
    expect(get).toMatchObject({ status: 200, sha: sha256(body) });
    expect(await apiRequest(api, { execute: 'list_hostfwd' })).toBe('{"entries":[]}');
    expect(helper.child.exitCode).toBeNull();
  }

  it('pid mode: joins the target user namespace; every thread CAP_NET_BIND_SERVICE only, the same root; TCP and the API work', async () => {
    await sandboxedAsUser((pid) => ['--enable-sandbox', '--enable-seccomp', String(pid), 'tap0']);
  });

  it('path mode with --userns-path (slirp4netns ignores it there, its #317; the --detach-netns command line)', async () => {
    await sandboxedAsUser((pid) => ['--enable-sandbox', '--enable-seccomp', `--userns-path=/proc/${pid}/ns/user`, '--netns-type=path', `/proc/${pid}/ns/net`, 'tap0']);
  });
});
