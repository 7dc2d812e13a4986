#!/usr/bin/env node
// `npm run bench`: usernet against slirp4netns (and pasta when installed), side by side in one
// run, alternating binaries (A B A B) with N repetitions, a fresh user+net namespace per run.
// Issue 6 part 1. Root required; nothing listens anywhere but 127.0.0.1 or inside the namespaces
// this script creates, so no traffic leaves the machine.
//
//   node bench/run.js [--reps N] [--seconds S] [--quick] [--bins a,b,c] [--only metric,…]
//
// Metrics (per binary, medians over the repetitions):
//   tcp_g2h_{1500,65520}      iperf3 guest → host through 10.0.2.2 (iperf3 -s on 127.0.0.1), Gbit/s
//   tcp_h2g_{1500,65520}      the same with -R (host → guest), Gbit/s
//   fwd_h2g_{1500,65520}      host → guest through a port forward (API add_hostfwd
//                             127.0.0.1:P → 10.0.2.100:5201, iperf3 -s in the guest), Gbit/s
//   rr_rate, rr_p50, rr_p99   1-byte TCP request/response on one connection (python3 in the guest,
//                             echo server on the host's 127.0.0.1): round trips/s, latency µs
//   conn_rate                 guest opens, uses (1 byte each way) and closes connections, per s
//   udp_rr_rate               1-byte UDP request/response through 10.0.2.2, per s
//   rss_idle_mb, rss_conn_kb  RSS once idle (MB) and per connection with 2,000 idle connections (KB)
//   ready_ms                  process start → ready fd (-r) says 1 (pasta: → its pid file)
//   help_ms                   spawn → exit of `BIN --help`, median of 20 (Podman runs it before
//                             every container)
//
// Every rate is measured after a warm-up, the same for every binary: iperf3 -O 1 leaves out the
// first second (slow start), and the request/response, connection and UDP loops run 2 s before
// they count. That is steady state, what a long-running network helper delivers: usernet's JIT
// needs a few thousand round trips before its hot paths are optimized (at 0.5 s its user CPU per
// round trip was twice the steady value); start-up cost is ready_ms.
//
// pasta is started as `pasta --runas 0:0 --config-net -f --pid FILE … NSPID` (attached to the
// namespace we created); its guest reaches the host's loopback through the gateway address it
// copies from the host, and its port forward is `-t 127.0.0.1/P:5201`.
//
// Results: a table on stdout, raw samples + medians as bench/results/<timestamp>.json and a bar
// chart of the usernet/slirp4netns ratios as bench/results/<timestamp>.svg.
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');

// ---------------------------------------------------------------------------------------------
// Options
function parseArgs(argv) {
  const o = { reps: 3, seconds: 4, quick: false, bins: null, only: null, conns: 2000, short: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
      return argv[++i];
    };
    if (a.startsWith('--reps')) o.reps = Number(val());
    else if (a.startsWith('--seconds')) o.seconds = Number(val());
    else if (a === '--quick') o.quick = true;
    else if (a.startsWith('--bins')) o.bins = val().split(',').filter(Boolean);
    else if (a.startsWith('--only')) o.only = new Set(val().split(',').filter(Boolean));
    else if (a.startsWith('--conns')) o.conns = Number(val());
    else if (a === '-h' || a === '--help') {
      console.log('usage: node bench/run.js [--reps N=3] [--seconds S=4] [--quick] [--bins usernet,slirp4netns,pasta] [--only tput1500,tput65520,rr,rss,help] [--conns 2000]');
      process.exit(0);
    } else {
      console.error(`bench: unknown option ${a}`);
      process.exit(2);
    }
  }
  if (o.quick) {
    o.reps = 1;
    o.seconds = Math.min(o.seconds, 2);
    o.short = 1;
  }
  if (!(o.reps >= 1) || !(o.seconds > 0)) {
    console.error('bench: --reps and --seconds must be positive');
    process.exit(2);
  }
  return o;
}
const opts = parseArgs(process.argv.slice(2));

if (process.getuid?.() !== 0) {
  console.error('bench: needs root (user namespaces mapped to root, /dev/net/tun)');
  process.exit(2);
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v "${cmd}"`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}
for (const tool of ['iperf3', 'unshare', 'nsenter', 'python3']) {
  if (!which(tool)) {
    console.error(`bench: ${tool} is missing`);
    process.exit(2);
  }
}

/** The binaries: name → { kind, path } (path null: missing, reported). */
const ALL_BINS = {
  usernet: { kind: 'slirp', path: process.env.USERNET_E2E_BIN || join(repo, 'bin/usernet') },
  slirp4netns: { kind: 'slirp', path: which('slirp4netns') },
  pasta: { kind: 'pasta', path: which('pasta') },
};
const binNames = opts.bins ?? Object.keys(ALL_BINS);
const missing = binNames.filter((b) => !ALL_BINS[b]?.path);
const bins = binNames.filter((b) => ALL_BINS[b]?.path);
for (const b of missing) console.error(`bench: ${b} is not installed: not measured`);

// ---------------------------------------------------------------------------------------------
// Cleanup: every process started is registered, killed in reverse order on exit or SIGINT.
const live = new Set();
let tmpRoot = mkdtempSync(join(tmpdir(), 'usernet-bench-'));

function track(child) {
  live.add(child);
  child.on('exit', () => live.delete(child));
  child.on('error', () => live.delete(child));
  return child;
}
function killAndWait(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const t = setTimeout(r, 3000);
    child.once('exit', () => {
      clearTimeout(t);
      r();
    });
    try {
      child.kill('SIGKILL');
    } catch {
      r();
    }
  });
}
function killAllSync() {
  for (const c of [...live].reverse()) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  live.clear();
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
  tmpRoot = null;
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}, cleaning up`);
    killAllSync();
    process.exit(130);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(10);
  }
}

/** Runs a command to completion; resolves { code, stdout, stderr }. Killed after timeoutMs. */
function run(cmd, args, timeoutMs, input) {
  return new Promise((res) => {
    const c = track(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (e) => {
      clearTimeout(t);
      res({ code: -1, stdout, stderr: String(e) });
    });
    c.on('close', (code) => {
      clearTimeout(t);
      res({ code, stdout, stderr });
    });
    c.stdin.on('error', () => {});
    c.stdin.end(input ?? '');
  });
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

/** Whether something listens on 127.0.0.1:port (ss, so iperf3 -s -1 keeps its one session). */
async function listening(port) {
  const r = await run('ss', ['-Hltn', `sport = :${port}`], 5000);
  return r.stdout.includes(`127.0.0.1:${port}`);
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

/** Samples until the last 1.5 s vary by under 1% (or 10 s pass); returns the last sample. */
async function settledRss(pid) {
  const samples = [];
  const deadline = Date.now() + 10_000;
  for (;;) {
    samples.push(rssKb(pid));
    const recent = samples.slice(-6);
    if (recent.length === 6 && Math.max(...recent) - Math.min(...recent) <= Math.max(...recent) * 0.01) break;
    if (Date.now() > deadline) break;
    await sleep(250);
  }
  return samples[samples.length - 1];
}

// ---------------------------------------------------------------------------------------------
// A session: a fresh namespace with one binary attached.
class Session {
  constructor(name, mtu, hostfwdPort) {
    this.name = name;
    this.bin = ALL_BINS[name];
    this.mtu = mtu;
    this.hostfwdPort = hostfwdPort; // pasta needs it at start; others get it through the API
    this.cleanups = [];
    this.dir = mkdtempSync(join(tmpRoot, `${name}-`));
    this.err = '';
  }

  async start() {
    const ns = track(spawn('unshare', ['--user', '--map-root-user', '--net', 'sleep', '3600'], { stdio: 'ignore' }));
    this.cleanups.push(() => killAndWait(ns));
    const ours = readlinkSync('/proc/self/ns/net');
    await waitFor(() => {
      try {
        return readlinkSync(`/proc/${ns.pid}/ns/net`) !== ours;
      } catch {
        return false;
      }
    }, 5000, 'namespace');
    this.nspid = ns.pid;

    const ready = join(this.dir, 'ready');
    let args;
    let cmd;
    if (this.bin.kind === 'pasta') {
      const fwd = this.hostfwdPort ? ['-t', `127.0.0.1/${this.hostfwdPort}:5201`] : ['-t', 'none'];
      cmd = this.bin.path;
      args = ['--runas', '0:0', '--config-net', '-f', '--pid', ready, '-q', ...fwd, '-u', 'none', '-T', 'none', '-U', 'none', '--mtu', String(this.mtu), String(ns.pid)];
    } else {
      this.api = join(this.dir, 'api.sock');
      cmd = 'sh';
      args = ['-c', `exec "$0" "$@" 9>"${ready}"`, this.bin.path, '-c', '-r', '9', '--mtu', String(this.mtu), '--api-socket', this.api, String(ns.pid), 'tap0'];
    }
    const t0 = process.hrtime.bigint();
    const net = track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    this.net = net;
    net.stderr.on('data', (d) => (this.err = (this.err + d).slice(-4000)));
    this.cleanups.push(() => killAndWait(net));
    const isReady =
      this.bin.kind === 'pasta'
        ? () => existsSync(ready) && readFileSync(ready, 'utf8').trim().length > 0
        : () => existsSync(ready) && readFileSync(ready, 'utf8') === '1';
    await waitFor(() => {
      if (net.exitCode !== null) throw new Error(`${this.name} exited ${net.exitCode}: ${this.err.trim()}`);
      return isReady();
    }, 15_000, `${this.name} ready`);
    this.readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
    // Where the guest reaches the host's loopback.
    if (this.bin.kind === 'pasta') {
      const r = await this.guest('ip', ['-4', 'route', 'show', 'default'], 5000);
      const m = /via (\S+)/.exec(r.stdout);
      if (!m) throw new Error(`pasta: no default route in the guest: ${r.stdout}${r.stderr}`);
      this.hostAddr = m[1];
    } else {
      this.hostAddr = '10.0.2.2';
    }
  }

  alive() {
    if (this.net.exitCode !== null || this.net.signalCode !== null) throw new Error(`${this.name} died: ${this.err.trim().slice(-300)}`);
  }

  guest(cmd, args, timeoutMs, input) {
    return run('nsenter', ['-t', String(this.nspid), '-U', '--preserve-credentials', '-n', '--', cmd, ...args], timeoutMs, input);
  }

  spawnGuest(cmd, args) {
    const c = track(spawn('nsenter', ['-t', String(this.nspid), '-U', '--preserve-credentials', '-n', '--', cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }));
    this.cleanups.push(() => killAndWait(c));
    return c;
  }

  /** One API request (slirp4netns protocol); resolves the parsed reply. */
  apiCall(req) {
    return new Promise((res, rej) => {
      const s = connect(this.api);
      let buf = '';
      const t = setTimeout(() => {
        s.destroy();
        rej(new Error('API timeout'));
      }, 5000);
      s.on('connect', () => s.write(JSON.stringify(req)));
      s.on('data', (d) => (buf += d));
      s.on('error', (e) => {
        clearTimeout(t);
        rej(e);
      });
      s.on('end', () => {
        clearTimeout(t);
        try {
          res(JSON.parse(buf));
        } catch {
          rej(new Error(`API reply: ${buf}`));
        }
      });
    });
  }

  async close() {
    while (this.cleanups.length > 0) await this.cleanups.pop()();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

function iperfGbps(stdout) {
  const j = JSON.parse(stdout);
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error('iperf3: no result');
  return bps / 1e9;
}

/** guest → host (or host → guest with reverse) through the host-loopback address. */
async function iperfLoopback(s, reverse) {
  const port = await freePort();
  const srv = track(spawn('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port), '-1'], { stdio: 'ignore' }));
  try {
    await waitFor(() => listening(port), 5000, 'iperf3 -s');
    const r = await s.guest('iperf3', ['-c', s.hostAddr, '-p', String(port), '-t', String(opts.seconds), '-O', '1', '--connect-timeout', '3000', '-J', ...(reverse ? ['-R'] : [])], (opts.seconds + 20) * 1000);
    await killAndWait(srv);
    s.alive();
    return iperfGbps(r.stdout);
  } finally {
    await killAndWait(srv);
  }
}

/** host → guest through a port forward 127.0.0.1:P → 10.0.2.100:5201. */
async function iperfHostfwd(s) {
  const srv = s.spawnGuest('iperf3', ['-s', '-p', '5201', '-1']);
  srv.stdout.on('data', () => {});
  srv.stderr.on('data', () => {});
  const port = s.hostfwdPort;
  if (s.bin.kind !== 'pasta') {
    const reply = await s.apiCall({ execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: port, guest_port: 5201 } });
    if (reply.error) throw new Error(`add_hostfwd: ${JSON.stringify(reply.error)}`);
  }
  // iperf3 -s in the guest must be listening before the client connects; probing through the
  // forward would consume its single (-1) session, so check from inside the namespace.
  await waitFor(async () => (await s.guest('ss', ['-Hltn', 'sport = :5201'], 3000)).stdout.includes(':5201'), 5000, 'guest iperf3 -s');
  const r = await run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(opts.seconds), '-O', '1', '--connect-timeout', '3000', '-J'], (opts.seconds + 20) * 1000);
  s.alive();
  return iperfGbps(r.stdout);
}

const RR_PY = String.raw`
import json, socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
warm = time.perf_counter() + 2
while time.perf_counter() < warm:
    s.sendall(b'x'); s.recv(1)
lat = []; clk = time.perf_counter; t0 = clk(); end = t0 + secs
while True:
    a = clk()
    if a >= end: break
    s.sendall(b'x')
    if not s.recv(1): raise SystemExit('EOF')
    lat.append(clk() - a)
el = clk() - t0
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e6
print(json.dumps({'n': len(lat), 'rate': len(lat) / el, 'p50': pct(0.50), 'p99': pct(0.99)}))
`;

const CONN_PY = String.raw`
import json, socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def once():
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b'x')
    if not s.recv(1): raise SystemExit('EOF')
    s.close()
warm = time.perf_counter() + 2
while time.perf_counter() < warm: once()
n = 0; t0 = time.perf_counter(); end = t0 + secs
while time.perf_counter() < end:
    once(); n += 1
print(json.dumps({'n': n, 'rate': n / (time.perf_counter() - t0)}))
`;

const UDP_PY = String.raw`
import json, socket, sys, time
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port)); s.settimeout(0.2)
warm = time.perf_counter() + 2
while time.perf_counter() < warm:
    s.send(b'x')
    try: s.recv(16)
    except socket.timeout: pass
n = lost = 0; t0 = time.perf_counter(); end = t0 + secs
while time.perf_counter() < end:
    s.send(b'x')
    try:
        s.recv(16); n += 1
    except socket.timeout:
        lost += 1
print(json.dumps({'n': n, 'lost': lost, 'rate': n / (time.perf_counter() - t0)}))
`;

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

/** A TCP echo server on 127.0.0.1; returns { port, sockets, close }. */
async function tcpEcho(maxConns) {
  const sockets = new Set();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    sock.on('data', (d) => sock.write(d));
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  server.maxConnections = maxConns;
  await new Promise((r) => server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, r));
  return {
    port: server.address().port,
    sockets,
    close: () => {
      for (const sk of sockets) sk.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

async function udpEcho() {
  const sock = createSocket('udp4');
  sock.on('message', (m, rinfo) => sock.send(m, rinfo.port, rinfo.address));
  sock.on('error', () => {});
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, close: () => new Promise((r) => sock.close(() => r())) };
}

async function pyJson(s, code, args, timeoutMs) {
  const r = await s.guest('python3', ['-c', code, ...args.map(String)], timeoutMs);
  s.alive();
  const line = r.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`guest python: ${(r.stdout + r.stderr).trim().slice(-300)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Groups: one fresh session each; returns { metric: value } (errors recorded per metric).

const GROUPS = {
  tput1500: { mtu: 1500, fwd: true, metrics: ['tcp_g2h_1500', 'tcp_h2g_1500', 'fwd_h2g_1500'] },
  tput65520: { mtu: 65520, fwd: true, metrics: ['tcp_g2h_65520', 'tcp_h2g_65520', 'fwd_h2g_65520'] },
  rr: { mtu: 1500, fwd: false, metrics: ['rr_rate', 'rr_p50', 'rr_p99', 'conn_rate', 'udp_rr_rate'] },
  rss: { mtu: 1500, fwd: false, metrics: ['rss_idle_mb', 'rss_conn_kb'] },
  help: { metrics: ['help_ms'] },
};

function helpMs(bin) {
  const ms = Array.from({ length: 20 }, () => {
    const t0 = process.hrtime.bigint();
    spawnSync(bin, ['--help'], { stdio: 'ignore', timeout: 10_000 });
    return Number(process.hrtime.bigint() - t0) / 1e6;
  });
  return median(ms);
}

async function runGroup(group, name) {
  const g = GROUPS[group];
  if (group === 'help') return { out: { help_ms: helpMs(ALL_BINS[name].path) }, errs: {} };
  const out = {};
  const errs = {};
  const attempt = async (metrics, fn) => {
    try {
      Object.assign(out, await fn());
    } catch (e) {
      for (const m of metrics) errs[m] = e.message.slice(0, 300);
    }
  };
  const s = new Session(name, g.mtu, g.fwd ? await freePort() : null);
  try {
    try {
      await s.start();
      out.ready_ms = s.readyMs;
    } catch (e) {
      for (const m of [...g.metrics, 'ready_ms']) errs[m] = e.message.slice(0, 300);
      return { out, errs };
    }
    if (group.startsWith('tput')) {
      const [g2h, h2g, fwd] = g.metrics;
      await attempt([g2h], async () => ({ [g2h]: await iperfLoopback(s, false) }));
      await attempt([h2g], async () => ({ [h2g]: await iperfLoopback(s, true) }));
      await attempt([fwd], async () => ({ [fwd]: await iperfHostfwd(s) }));
    } else if (group === 'rr') {
      const echo = await tcpEcho(1000);
      const uecho = await udpEcho();
      try {
        const t = opts.short;
        await attempt(['rr_rate', 'rr_p50', 'rr_p99'], async () => {
          const r = await pyJson(s, RR_PY, [s.hostAddr, echo.port, t], (t + 20) * 1000);
          return { rr_rate: r.rate, rr_p50: r.p50, rr_p99: r.p99 };
        });
        await attempt(['conn_rate'], async () => ({ conn_rate: (await pyJson(s, CONN_PY, [s.hostAddr, echo.port, t], (t + 20) * 1000)).rate }));
        await attempt(['udp_rr_rate'], async () => {
          const r = await pyJson(s, UDP_PY, [s.hostAddr, uecho.port, t], (t + 20) * 1000);
          return { udp_rr_rate: r.rate, udp_lost: r.lost };
        });
      } finally {
        await echo.close();
        await uecho.close();
      }
    } else if (group === 'rss') {
      await attempt(['rss_idle_mb', 'rss_conn_kb'], async () => {
        await sleep(500);
        const idle = await settledRss(s.net.pid);
        const echo = await tcpEcho(opts.conns + 100);
        try {
          const guest = s.spawnGuest('python3', ['-c', HOLD_PY, s.hostAddr, String(echo.port), String(opts.conns)]);
          let gout = '';
          let gerr = '';
          guest.stdout.on('data', (d) => (gout += d));
          guest.stderr.on('data', (d) => (gerr += d));
          await waitFor(() => {
            if (guest.exitCode !== null) throw new Error(`guest exited: ${gout}${gerr}`);
            s.alive();
            return gout.includes('\n');
          }, 120_000, `${opts.conns} connections`);
          const opened = JSON.parse(gout.split('\n')[0]);
          if (opened.error) throw new Error(`guest: ${opened.error}`);
          if (echo.sockets.size !== opts.conns) throw new Error(`host sees ${echo.sockets.size} connections, not ${opts.conns}`);
          const loaded = await settledRss(s.net.pid);
          guest.stdin.end();
          return { rss_idle_mb: idle / 1024, rss_conn_kb: (loaded - idle) / opts.conns, rss_idle_kb: idle, rss_loaded_kb: loaded, rss_open_s: opened.seconds };
        } finally {
          await echo.close();
        }
      });
    }
    return { out, errs };
  } finally {
    await s.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Metric descriptions and targets (issue 6).

const METRICS = [
  { key: 'tcp_g2h_1500', label: 'TCP guest→host MTU 1500', unit: 'Gbit/s', better: 'higher', target: { ratio: 5 } },
  { key: 'tcp_h2g_1500', label: 'TCP host→guest MTU 1500', unit: 'Gbit/s', better: 'higher', target: { ratio: 5 } },
  { key: 'fwd_h2g_1500', label: 'hostfwd host→guest MTU 1500', unit: 'Gbit/s', better: 'higher', target: { ratio: 5 } },
  { key: 'tcp_g2h_65520', label: 'TCP guest→host MTU 65520', unit: 'Gbit/s', better: 'higher', target: { ratio: 2 } },
  { key: 'tcp_h2g_65520', label: 'TCP host→guest MTU 65520', unit: 'Gbit/s', better: 'higher', target: { ratio: 2 } },
  { key: 'fwd_h2g_65520', label: 'hostfwd host→guest MTU 65520', unit: 'Gbit/s', better: 'higher', target: { ratio: 2 } },
  { key: 'rr_rate', label: 'TCP 1-byte req/resp', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'rr_p50', label: 'TCP req/resp latency p50', unit: 'µs', better: 'lower', target: null },
  { key: 'rr_p99', label: 'TCP req/resp latency p99', unit: 'µs', better: 'lower', target: null },
  { key: 'conn_rate', label: 'TCP connection rate', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'udp_rr_rate', label: 'UDP 1-byte req/resp', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'rss_idle_mb', label: 'RSS idle', unit: 'MB', better: 'lower', target: { max: 60 } },
  { key: 'rss_conn_kb', label: `RSS per idle conn (${opts.conns})`, unit: 'KB', better: 'lower', target: { max: 12 } },
  { key: 'ready_ms', label: 'start → ready fd', unit: 'ms', better: 'lower', target: { max: 300 } },
  { key: 'help_ms', label: '--help (spawn → exit)', unit: 'ms', better: 'lower', target: null },
];

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function fmt(v, unit) {
  if (v === null || v === undefined) return '—';
  if (unit === 'Gbit/s') return v.toFixed(2);
  if (unit === 'MB' || unit === 'KB') return v.toFixed(1);
  if (unit === 'ms') return v < 10 ? v.toFixed(1) : v.toFixed(0);
  if (v >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(1);
}

// ---------------------------------------------------------------------------------------------
// Chart: hand-written SVG, one bar per metric with a ratio, log scale, target marks.

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function svgChart(rows, title) {
  const items = rows.filter((r) => r.ratio !== null);
  const rowH = 26;
  const left = 250;
  const width = 900;
  const plotW = width - left - 120;
  const top = 60;
  const height = top + items.length * rowH + 50;
  const shown = items.map((r) => (r.better === 'lower' ? 1 / r.ratio : r.ratio));
  const lo = Math.min(0.1, ...shown.map((v) => v / 1.5));
  const hi = Math.max(20, ...shown.map((v) => v * 1.2), ...items.map((r) => (r.targetRatio ?? 0) * 1.2));
  const x = (v) => left + (Math.log(Math.max(lo, Math.min(hi, v)) / lo) / Math.log(hi / lo)) * plotW;
  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  parts.push(`<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">usernet ÷ slirp4netns, oriented so that &gt; 1 means usernet is better (lower-is-better metrics inverted); log scale; | = target</text>`);
  for (const t of [0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100].filter((t) => t >= lo && t <= hi)) {
    const xx = x(t).toFixed(1);
    parts.push(`<line x1="${xx}" y1="${top - 5}" x2="${xx}" y2="${top + items.length * rowH}" stroke="${t === 1 ? '#000' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
    parts.push(`<text x="${xx}" y="${top + items.length * rowH + 16}" text-anchor="middle" fill="#555">${t}×</text>`);
  }
  items.forEach((r, i) => {
    const y = top + i * rowH;
    const v = r.better === 'lower' ? 1 / r.ratio : r.ratio;
    const x0 = x(1);
    const x1 = x(v);
    const color = r.status === 'met' ? '#2a9d4b' : r.status === 'missed' ? '#d1495b' : '#5b7db1';
    parts.push(`<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(r.label)}</text>`);
    parts.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 4}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${rowH - 8}" fill="${color}"/>`);
    parts.push(`<text x="${(Math.max(x0, x1) + 6).toFixed(1)}" y="${y + 16}">${v.toFixed(2)}×${r.status ? ` (${r.status})` : ''}</text>`);
    if (r.targetRatio) {
      const tv = r.better === 'lower' ? 1 / r.targetRatio : r.targetRatio;
      const tx = x(tv).toFixed(1);
      parts.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 1}" stroke="#000" stroke-width="2"/>`);
    }
  });
  parts.push(`<text x="10" y="${height - 10}" fill="#555">green: issue 6 target met, red: missed, blue: no ratio target (absolute targets are judged on usernet alone)</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const started = Date.now();
  const groups = Object.keys(GROUPS).filter((g) => !opts.only || opts.only.has(g));
  const samples = {}; // bin → metric → [values]
  const errors = {}; // bin → metric → [messages]
  const extra = {}; // bin → [ per-run raw ]
  for (const b of bins) {
    samples[b] = {};
    errors[b] = {};
    extra[b] = [];
  }
  console.error(`bench: ${bins.join(', ')}; ${opts.reps} rep(s), iperf3 ${opts.seconds} s, short tests ${opts.short} s, ${opts.conns} idle connections`);
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const group of groups) {
      for (const b of bins) {
        const t0 = Date.now();
        const { out, errs } = await runGroup(group, b);
        extra[b].push({ rep, group, ...out, errors: errs });
        for (const [k, v] of Object.entries(out)) (samples[b][k] ??= []).push(v);
        for (const [k, v] of Object.entries(errs)) (errors[b][k] ??= []).push(v);
        const short = GROUPS[group].metrics
          .map((m) => `${m}=${m in out ? fmt(out[m], METRICS.find((x) => x.key === m)?.unit) : 'FAIL'}`)
          .join(' ');
        console.error(`  rep ${rep + 1}/${opts.reps} ${group.padEnd(9)} ${b.padEnd(11)} ${short}${'ready_ms' in out ? ` ready=${fmt(out.ready_ms, 'ms')}ms` : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        for (const [k, v] of Object.entries(errs)) console.error(`    ${k}: ${v}`);
      }
    }
  }

  const medians = {};
  for (const b of bins) {
    medians[b] = {};
    for (const m of METRICS) medians[b][m.key] = median(samples[b][m.key] ?? []);
  }
  const hasBase = bins.includes('usernet') && bins.includes('slirp4netns');
  const rows = [];
  for (const m of METRICS) {
    if (!groups.some((g) => GROUPS[g].metrics.includes(m.key)) && m.key !== 'ready_ms') continue;
    const u = medians.usernet?.[m.key] ?? null;
    const sl = medians.slirp4netns?.[m.key] ?? null;
    const ratio = hasBase && u !== null && sl !== null && sl !== 0 ? u / sl : null;
    let status = null;
    let targetText = '';
    let targetRatio = null;
    if (m.target?.ratio) {
      targetRatio = m.target.ratio;
      targetText = `≥${m.target.ratio}×`;
      if (ratio !== null) status = ratio >= m.target.ratio ? 'met' : 'missed';
    } else if (m.target?.max !== undefined) {
      targetText = `≤${m.target.max} ${m.unit}`;
      if (u !== null) status = u <= m.target.max ? 'met' : 'missed';
    }
    rows.push({ ...m, medians: Object.fromEntries(bins.map((b) => [b, medians[b][m.key]])), ratio, status, targetText, targetRatio });
  }

  // Table
  const w0 = 31;
  const wb = 13;
  const lines = [];
  lines.push(`usernet benchmark: medians of ${opts.reps} run(s) per binary, alternating, fresh namespace per run; iperf3 ${opts.seconds} s, req/resp, connection and UDP tests ${opts.short} s`);
  lines.push('');
  let head = 'metric'.padEnd(w0) + 'unit'.padEnd(8) + 'better'.padEnd(8);
  for (const b of bins) head += b.padStart(wb);
  head += 'usernet/slirp'.padStart(15) + '  target'.padEnd(16) + 'status';
  lines.push(head);
  lines.push('-'.repeat(head.length));
  for (const r of rows) {
    let line = r.label.padEnd(w0) + r.unit.padEnd(8) + r.better.padEnd(8);
    for (const b of bins) {
      const v = r.medians[b];
      const failed = v === null && (errors[b][r.key]?.length ?? 0) > 0;
      line += (failed ? 'FAIL' : fmt(v, r.unit)).padStart(wb);
    }
    line += (r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`).padStart(15);
    line += `  ${r.targetText}`.padEnd(16);
    line += r.status ?? '';
    lines.push(line);
  }
  lines.push('');
  lines.push('Ratios are usernet ÷ slirp4netns. For latency (µs), RSS and ready time lower is better, so a ratio below 1 is the good side;');
  lines.push('the RSS and ready targets are absolute limits on usernet\'s own median.');
  for (const b of missing) lines.push(`${b}: not installed, not measured.`);
  for (const b of bins) {
    for (const [k, v] of Object.entries(errors[b])) lines.push(`${b} ${k}: ${v.length} failed run(s), e.g. ${v[0]}`);
  }
  const elapsed = (Date.now() - started) / 1000;
  lines.push(`Run time ${elapsed.toFixed(0)} s.`);
  console.log(`\n${lines.join('\n')}`);

  // Files
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = join(here, 'results');
  mkdirSync(outDir, { recursive: true });
  const jsonPath = join(outDir, `${stamp}.json`);
  const svgPath = join(outDir, `${stamp}.svg`);
  const versions = {};
  for (const b of bins) {
    const r = spawnSync(ALL_BINS[b].path, ['--version'], { encoding: 'utf8', timeout: 5000 });
    versions[b] = ((r.stdout || '') + (r.stderr || '')).trim().split('\n')[0] ?? null;
  }
  writeFileSync(
    jsonPath,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        options: opts.only ? { ...opts, only: [...opts.only] } : opts,
        host: { cpus: (await import('node:os')).cpus().length, kernel: (await import('node:os')).release(), node: process.version },
        binaries: Object.fromEntries(bins.map((b) => [b, { path: ALL_BINS[b].path, version: versions[b] }])),
        notMeasured: missing,
        samples,
        errors,
        runs: extra,
        medians,
        rows: rows.map(({ key, label, unit, better, medians: md, ratio, status, targetText }) => ({ key, label, unit, better, medians: md, ratio, status, target: targetText })),
        seconds: elapsed,
      },
      null,
      2,
    ) + '\n',
  );
  writeFileSync(svgPath, svgChart(rows, `usernet vs slirp4netns, ${new Date().toISOString().slice(0, 16)} (${opts.reps} rep(s))`));
  console.log(`\nwrote ${basename(dirname(jsonPath))}/${basename(jsonPath)} and ${basename(svgPath)} in ${outDir}`);
  const anyFail = bins.some((b) => Object.keys(errors[b]).length > 0);
  process.exitCode = anyFail ? 1 : 0;
}

try {
  await main();
} finally {
  killAllSync();
}
