#!/usr/bin/env node
// Memory per idle TCP connection, usernet and slirp4netns side by side (issue 3's goal: at most
// 12 KB per connection above the idle process). Root required; run `npm run build` first.
//
//   node bench/tcp-rss.js [N]            N connections, default 2000
//
// For each binary: a fresh user+net namespace, the binary attached with `-c`, its RSS
// (VmRSS of the process and any children) once idle; then the guest opens N connections to an
// echo server on the host's 127.0.0.1 (through 10.0.2.2), echoes one line on each, and holds
// them idle; RSS again once it has settled. Everything it starts is removed at the end.
//
// Binaries: USERNET_BENCH_BINS (comma-separated paths), default "<repo>/bin/usernet,
// /usr/bin/slirp4netns", where USERNET_E2E_BIN replaces the first.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const N = Number(process.argv[2] ?? 2000);
const bins = (process.env.USERNET_BENCH_BINS ?? `${process.env.USERNET_E2E_BIN || resolve(here, '../bin/usernet')},/usr/bin/slirp4netns`)
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

if (process.getuid?.() !== 0) {
  console.error('tcp-rss: needs root (user namespaces mapped to root, /dev/net/tun)');
  process.exit(2);
}

// Opens n connections (at most 200 connects pending), echoes one line on each, prints one JSON
// line, then holds them open until stdin closes.
const HOLD_PY = String.raw`
import errno, json, os, resource, selectors, socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 64: resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 64, hard), hard))
sel = selectors.DefaultSelector()
socks, rx = [None] * n, [b''] * n
msg = lambda i: ('idle-%05d\n' % i).encode()
def fail(what):
    print(json.dumps({'error': what}), flush=True); os._exit(1)
nxt = pending = done = 0
t0 = time.monotonic(); last = (t0, 0)
while done < n:
    while pending < 200 and nxt < n:
        s = socket.socket(); s.setblocking(False)
        rc = s.connect_ex((host, port))
        if rc not in (0, errno.EINPROGRESS): fail('connect %d: %s' % (nxt, os.strerror(rc)))
        socks[nxt] = s; sel.register(s, selectors.EVENT_WRITE, nxt); nxt += 1; pending += 1
    for key, ev in sel.select(timeout=1):
        i, s = key.data, key.fileobj
        if ev & selectors.EVENT_WRITE:
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e: fail('connect %d: %s' % (i, os.strerror(e)))
            pending -= 1; s.send(msg(i)); sel.modify(s, selectors.EVENT_READ, i)
        else:
            d = s.recv(4096)
            if not d: fail('EOF on %d' % i)
            rx[i] += d
            if rx[i] == msg(i): sel.unregister(s); done += 1
    now = time.monotonic()
    if done != last[1]: last = (now, done)
    elif now - last[0] > 15: fail('stalled at %d of %d' % (done, n))
print(json.dumps({'open': n, 'seconds': time.monotonic() - t0}), flush=True)
sys.stdin.read()
for s in socks: s.close()
`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(25);
  }
}

/** VmRSS in KB of pid and all its descendants. */
function rssKb(pid) {
  let total = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop();
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]);
      for (const task of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').split(' ').filter(Boolean)) stack.push(Number(c));
      }
    } catch {
      // gone
    }
  }
  return total;
}

/** Samples until the last 2 s vary by under 1% (or 20 s pass); returns the last sample. */
async function settledRss(pid) {
  const samples = [];
  const deadline = Date.now() + 20_000;
  for (;;) {
    samples.push(rssKb(pid));
    const recent = samples.slice(-8);
    if (recent.length === 8 && Math.max(...recent) - Math.min(...recent) <= Math.max(...recent) * 0.01) break;
    if (Date.now() > deadline) break;
    await sleep(250);
  }
  return samples[samples.length - 1];
}

function killAndWait(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.once('exit', r);
    child.kill('SIGKILL');
  });
}

async function measure(bin) {
  const cleanups = [];
  const dir = mkdtempSync(join(tmpdir(), 'usernet-rss-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  try {
    // Echo server on the host's loopback only.
    const sockets = new Set();
    const server = createServer((s) => {
      sockets.add(s);
      s.on('data', (d) => s.write(d));
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    });
    server.maxConnections = N + 100;
    await new Promise((r) => server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, r));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    });
    const port = server.address().port;

    const ns = spawn('unshare', ['--user', '--map-root-user', '--net', 'sleep', '3600'], { stdio: 'ignore' });
    cleanups.push(() => killAndWait(ns));
    const ours = readlinkSync('/proc/self/ns/net');
    await waitFor(() => {
      try {
        return readlinkSync(`/proc/${ns.pid}/ns/net`) !== ours;
      } catch {
        return false;
      }
    }, 5000, 'namespace');

    const ready = join(dir, 'ready');
    const net = spawn('sh', ['-c', `exec "$0" "$@" 9>"${ready}"`, bin, '-c', '-r', '9', String(ns.pid), 'tap0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    net.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    cleanups.push(() => killAndWait(net));
    await waitFor(() => {
      if (net.exitCode !== null) throw new Error(`exited ${net.exitCode}: ${err.trim()}`);
      return existsSync(ready) && readFileSync(ready, 'utf8') === '1';
    }, 15_000, 'ready fd');

    await sleep(1000);
    const idle = await settledRss(net.pid);

    const guest = spawn(
      'nsenter',
      ['-t', String(ns.pid), '-U', '--preserve-credentials', '-n', '--', 'python3', '-c', HOLD_PY, '10.0.2.2', String(port), String(N)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    cleanups.push(() => killAndWait(guest));
    let out = '';
    let gerr = '';
    guest.stdout.on('data', (d) => (out += d));
    guest.stderr.on('data', (d) => (gerr += d));
    await waitFor(() => {
      if (guest.exitCode !== null) throw new Error(`guest exited: ${out}${gerr}`);
      if (net.exitCode !== null) throw new Error(`${basename(bin)} exited ${net.exitCode}: ${err.trim()}`);
      return out.includes('\n');
    }, 120_000, `${N} connections`);
    const opened = JSON.parse(out.split('\n')[0]);
    if (opened.error) throw new Error(`guest: ${opened.error}`);
    if (sockets.size !== N) throw new Error(`host sees ${sockets.size} connections, not ${N}`);
    const loaded = await settledRss(net.pid);
    guest.stdin.end();
    return { idle, loaded, openSeconds: opened.seconds };
  } finally {
    while (cleanups.length > 0) await cleanups.pop()();
  }
}

const rows = [];
for (const bin of bins) {
  process.stderr.write(`tcp-rss: ${bin} with ${N} connections…\n`);
  try {
    rows.push({ bin, ...(await measure(bin)) });
  } catch (e) {
    rows.push({ bin, error: e.message });
  }
}

const fmt = (n) => n.toLocaleString('en-US');
console.log(`\nRSS with ${N} idle TCP connections through 10.0.2.2 (VmRSS incl. children, KB)\n`);
console.log(`${'binary'.padEnd(28)}${'idle'.padStart(10)}${'loaded'.padStart(10)}${'delta'.padStart(10)}${'KB/conn'.padStart(10)}${'open s'.padStart(9)}`);
for (const r of rows) {
  if (r.error) {
    console.log(`${r.bin.padEnd(28)}  failed: ${r.error}`);
    continue;
  }
  const delta = r.loaded - r.idle;
  console.log(
    `${r.bin.padEnd(28)}${fmt(r.idle).padStart(10)}${fmt(r.loaded).padStart(10)}${fmt(delta).padStart(10)}${(delta / N).toFixed(1).padStart(10)}${r.openSeconds.toFixed(1).padStart(9)}`,
  );
}
process.exitCode = rows.some((r) => r.error) ? 1 : 0;
