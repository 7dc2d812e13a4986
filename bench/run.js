#!/usr/bin/env node
// `npm run bench`: usernet against slirp4netns (and pasta when installed), side by side in one
// run, alternating binaries with N repetitions, a fresh user+net namespace per run. Each
// repetition starts one binary further along the list (A B C, B C A, C A B, …), so no binary
// always runs first or right after the same neighbour: whatever one run may leave behind
// (background work after its teardown, caches, the VM's state) falls on each in turn.
// Root required; nothing listens anywhere but 127.0.0.1, ::1 or inside the
// namespaces this script creates, so no traffic leaves the machine.
//
//   node bench/run.js [--reps N] [--seconds S] [--quick] [--bins a,b,c] [--only group,…] [--plan]
//
// --plan prints the order the runs would go in (repetition, group, binaries) and exits.
//
// Binaries: usernet, slirp4netns, pasta (when installed) and `kernel`: no helper at all, the same
// clients and servers on the host's own loopback (127.0.0.1 / ::1, MTU 65536), the ceiling for
// every row measured in the same run (n/a where there is no helper: hostfwd, RSS, start-up); and
// `veth`: the kernel's TCP between the host (198.51.100.1) and a namespace (.2) over a veth pair
// with the row's MTU, for the IPv4 bulk rows only (what MTU 1500 costs a guest's TCP, which the
// loopback's 65536 cannot show). It adds a link and an address on the host for each run,
// removed with the run.
//
// Metrics (per binary, medians over the repetitions):
//   tcp_g2h_{1500,65520}      iperf3 guest → host through 10.0.2.2 (iperf3 -s on 127.0.0.1), Gbit/s
//   tcp_h2g_{1500,65520}      the same with -R (host → guest), Gbit/s
//   tcp6_g2h_{1500,65520}     IPv6: iperf3 guest → host through [fd00::2] (iperf3 -s on ::1), in a
//   tcp6_h2g_{1500,65520}     session of its own started with -6 (pasta: its IPv6 gateway), Gbit/s;
//                             the table shows, per binary, IPv6 ÷ IPv4 of the same direction and MTU
//   fwd_h2g_{1500,65520}      host → guest through a port forward (API add_hostfwd
//                             127.0.0.1:P → 10.0.2.100:5201, iperf3 -s in the guest), Gbit/s
//   rr_rate, rr_p50, rr_p99   1-byte TCP request/response on one connection (python3 in the guest,
//                             echo server on the host's 127.0.0.1): round trips/s, latency µs
//   conn_rate                 guest opens, uses (1 byte each way) and closes connections, per s
//   udp_rr_rate               1-byte UDP request/response through 10.0.2.2, per s
//   rr_cpu_{user,sys}_us      the helper's own CPU (process tree, all threads, /proc) per measured
//                             TCP round trip (after the warm-up)
//   *_65520                   the request/response, connection and UDP rows again at MTU 65520 (group rr65520)
//   rss_idle_mb, rss_conn_kb  RSS once idle (MB) and per connection with 2,000 idle connections (KB)
//   rss_after_bulk_mb         RSS 15 s after 1 GiB each way (iperf3 -n 1G through the host loopback), MB
//   ready_ms                  process start → ready fd (-r) says 1 (pasta: → its pid file), polled
//                             every 10 ms; bench/ready-latency.py measures it alone, min/median of N
//                             from the ready pipe, and compares builds round-robin
//   tap_ms                    spawn → tap0 exists in the namespace, median of 20 (bench/tap-latency.py)
//   help_ms                   spawn → exit of `BIN --help`, median of 20 (Podman runs it before
//                             every container)
//   ready6_ms                 the same in the IPv6 runs (started with -6; SLAAC waits not included)
//
// In the JSON only: <metric>_stalled_s for every throughput sample (seconds in which the
// connection moved under 1 % of its best second: a stall; the table lists them below), and
// ipv6_wait_ms (ready → the guest has a usable global IPv6 address and a default route).
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
// IPv6 (groups tput6_1500, tput6_65520; --only tput6 selects both, --only tput both IPv4 ones):
//   usernet      `-c -6`: it configures the guest itself, fd00::<EUI-64>/64 nodad plus
//                `default via fe80::2` (and answers Router Solicitations too), so the address is
//                usable as soon as the ready fd says 1. Host loopback: [fd00::2]:P → [::1]:P.
//   slirp4netns  `-c -6`: -c configures IPv4 only; the guest kernel gets fd00::<EUI-64>/64 and
//                `default via fe80::2` by SLAAC from libslirp's Router Advertisements, which
//                takes a few seconds (router solicitation delay, then DAD of the link-local and of
//                the global address). We wait for a global, non-tentative address and a default
//                route before measuring (the wait is recorded as ipv6_wait_ms in the JSON). Adding
//                them by hand works too (`ip -6 addr add fd00::100/64 dev tap0 nodad; ip -6 route
//                add default via fe80::2 dev tap0`), but SLAAC is what its users get.
//                Host loopback: [fd00::2]:P → [::1]:P.
//   pasta        no flag: IPv6 is on whenever the host has an IPv6 address and default route, and
//                --config-net copies them (nodad) into the namespace, the gateway included. As for
//                IPv4, TCP to the IPv6 gateway address is mapped to the host's loopback ([::1]),
//                so the guest dials the `via` of its `ip -6 route show default`. Without an IPv6
//                default route on the host, pasta has no IPv6: its rows say n/a, with the reason.
//   iperf3 -s is bound to ::1 only: a connection that was not relayed to the host's loopback
//   fails instead of measuring something else.
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
  const o = { reps: 3, seconds: 4, quick: false, bins: null, only: null, conns: 2000, short: 2, plan: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
      return argv[++i];
    };
    if (a.startsWith('--reps')) o.reps = Number(val());
    else if (a.startsWith('--seconds')) o.seconds = Number(val());
    else if (a === '--quick') o.quick = true;
    else if (a === '--plan') o.plan = true;
    else if (a.startsWith('--bins')) o.bins = val().split(',').filter(Boolean);
    else if (a.startsWith('--only')) o.only = new Set(val().split(',').filter(Boolean));
    else if (a.startsWith('--conns')) o.conns = Number(val());
    else if (a === '-h' || a === '--help') {
      console.log('usage: node bench/run.js [--reps N=3] [--seconds S=4] [--quick] [--bins usernet,slirp4netns,pasta] [--only tput1500,tput6_1500,tput65520,tput6_65520,rr,rr65520,rss,help,tap|tput|tput6] [--conns 2000] [--plan]');
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

if (process.getuid?.() !== 0 && !opts.plan) {
  console.error('bench: needs root (user namespaces mapped to root, /dev/net/tun)');
  process.exit(2);
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v "${cmd}"`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}
for (const tool of ['iperf3', 'unshare', 'nsenter', 'python3']) {
  if (!opts.plan && !which(tool)) {
    console.error(`bench: ${tool} is missing`);
    process.exit(2);
  }
}

/** The binaries: name → { kind, path } (path null: missing, reported). */
const ALL_BINS = {
  usernet: { kind: 'slirp', path: process.env.USERNET_E2E_BIN || join(repo, 'bin/usernet') },
  // usernet without adaptive busy polling (USERNET_BUSY_POLL_US=0): what the polling buys, and costs, in the same run.
  'usernet-nobusy': { kind: 'slirp', path: process.env.USERNET_E2E_BIN || join(repo, 'bin/usernet'), env: { USERNET_BUSY_POLL_US: '0' } },
  slirp4netns: { kind: 'slirp', path: which('slirp4netns') },
  pasta: { kind: 'pasta', path: which('pasta') },
  // No helper: the same clients and servers on the host's own loopback (MTU 65536), the
  // ceiling every relay is measured against in the same run.
  kernel: { kind: 'kernel', path: '127.0.0.1' },
  // No helper either: the kernel's own TCP between the host and a namespace over a veth pair
  // with the session's MTU (198.51.100.1 ↔ .2), bulk rows only. The loopback's MTU is 65536, so
  // `kernel` cannot say what MTU 1500 itself costs a guest's TCP; this does.
  veth: { kind: 'veth', path: 'veth' },
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

function freePort(host = '127.0.0.1') {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, host, () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

/** Whether something listens on host:port (ss, so iperf3 -s -1 keeps its one session). */
async function listening(port, host = '127.0.0.1') {
  const r = await run('ss', ['-Hltn', `sport = :${port}`], 5000);
  return r.stdout.includes(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
}

/** A binary cannot do what a metric needs in this setup: shown as n/a with the reason, not FAIL. */
class NotAvailable extends Error {}

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

/** User and system CPU seconds of a process tree (every thread), from /proc. */
function cpuSeconds(pid) {
  const tick = 100; // USER_HZ
  let user = 0;
  let sys = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop();
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      user += Number(f[11]) / tick;
      sys += Number(f[12]) / tick;
      for (const task of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').split(' ').filter(Boolean)) stack.push(Number(c));
      }
    } catch {
      // gone
    }
  }
  return { user, sys };
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
/** The veth bin's addresses (TEST-NET-2: used nowhere on the machine's own network). */
const VETH_HOST = '198.51.100.1';
const VETH_GUEST = '198.51.100.2';
let vethCount = 0;
class Session {
  constructor(name, mtu, hostfwdPort, ipv6 = false) {
    this.name = name;
    this.bin = ALL_BINS[name];
    this.mtu = mtu;
    this.ipv6 = ipv6; // slirp kind: started with -6, and hostAddr6 is set once the guest has IPv6
    this.hostfwdPort = hostfwdPort; // pasta needs it at start; others get it through the API
    this.cleanups = [];
    this.dir = mkdtempSync(join(tmpRoot, `${name}-`));
    this.err = '';
  }

  async start() {
    if (this.bin.kind === 'kernel') {
      this.net = { pid: process.pid, exitCode: null, signalCode: null };
      this.readyMs = null;
      this.hostAddr = '127.0.0.1';
      this.hostAddr6 = '::1';
      return;
    }
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
    if (this.bin.kind === 'veth') {
      await this.startVeth(ns);
      return;
    }

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
      const v6 = this.ipv6 ? ['-6'] : [];
      args = ['-c', `exec "$0" "$@" 9>"${ready}"`, this.bin.path, '-c', ...v6, '-r', '9', '--mtu', String(this.mtu), '--api-socket', this.api, String(ns.pid), 'tap0'];
    }
    const t0 = process.hrtime.bigint();
    const net = track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...(this.bin.env ?? {}) } }));
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
    if (this.ipv6) await this.waitIpv6();
  }

  /** The veth bin: a pair between the host and the namespace, the session's MTU on both ends. */
  async startVeth(ns) {
    const host = `ubv${process.pid % 100000}${++vethCount}`;
    const peer = `${host}g`;
    const ip = async (args, inNs = false) => {
      const r = await run(inNs ? 'nsenter' : 'ip', inNs ? ['-t', String(this.nspid), '-n', 'ip', ...args] : args, 5000);
      if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
    };
    await ip(['link', 'add', host, 'mtu', String(this.mtu), 'type', 'veth', 'peer', 'name', peer, 'mtu', String(this.mtu)]);
    this.cleanups.push(() => run('ip', ['link', 'del', host], 5000));
    await ip(['link', 'set', peer, 'netns', String(this.nspid)]);
    await ip(['addr', 'add', `${VETH_HOST}/24`, 'dev', host]);
    await ip(['link', 'set', host, 'up']);
    await ip(['addr', 'add', `${VETH_GUEST}/24`, 'dev', peer], true);
    await ip(['link', 'set', peer, 'up'], true);
    await ip(['link', 'set', 'lo', 'up'], true);
    this.net = ns;
    this.readyMs = null;
    this.hostAddr = VETH_HOST;
    this.bindAddr = VETH_HOST;
  }

  /**
   * Waits until the guest can talk IPv6 to the host's loopback: a global address that is not
   * tentative (DAD done) and a default route. Sets hostAddr6 and ipv6WaitMs (from ready).
   */
  async waitIpv6() {
    const t0 = process.hrtime.bigint();
    const dev = this.bin.kind === 'pasta' ? null : 'tap0';
    let last = '';
    const usable = async () => {
      this.alive();
      const a = await this.guest('ip', ['-6', '-o', 'addr', 'show', ...(dev ? ['dev', dev] : []), 'scope', 'global', '-tentative'], 5000);
      const r = await this.guest('ip', ['-6', 'route', 'show', 'default'], 5000);
      last = `${a.stdout}${a.stderr}${r.stdout}${r.stderr}`.trim();
      const via = /via (\S+)/.exec(r.stdout);
      if (!/inet6 /.test(a.stdout) || !via) return false;
      this.hostAddr6 = this.bin.kind === 'pasta' ? via[1] : 'fd00::2';
      return true;
    };
    // pasta copies the host's configuration (nodad) before it writes its pid file: if IPv6 is not
    // there within a moment, it will not come. SLAAC (slirp4netns) takes seconds.
    const deadline = Date.now() + (this.bin.kind === 'pasta' ? 2000 : 20_000);
    while (!(await usable())) {
      if (Date.now() > deadline) {
        const seen = last.replace(/\s+/g, ' ').slice(0, 200);
        if (this.bin.kind === 'pasta') throw new NotAvailable(`pasta gave the guest no IPv6 global address and default route (the host has none to copy?)${seen ? `: ${seen}` : ''}`);
        throw new Error(`timed out: ${this.name}: guest IPv6 (global address, DAD done, default route); last seen: ${seen || 'nothing'}`);
      }
      await sleep(100);
    }
    this.ipv6WaitMs = Number(process.hrtime.bigint() - t0) / 1e6;
  }

  alive() {
    if (this.net.exitCode !== null || this.net.signalCode !== null) throw new Error(`${this.name} died: ${this.err.trim().slice(-300)}`);
  }

  guest(cmd, args, timeoutMs, input) {
    if (this.bin.kind === 'kernel') return run(cmd, args, timeoutMs, input);
    return run('nsenter', ['-t', String(this.nspid), '-U', '--preserve-credentials', '-n', '--', cmd, ...args], timeoutMs, input);
  }

  spawnGuest(cmd, args) {
    const argv = this.bin.kind === 'kernel' ? [cmd, args] : ['nsenter', ['-t', String(this.nspid), '-U', '--preserve-credentials', '-n', '--', cmd, ...args]];
    const c = track(spawn(argv[0], argv[1], { stdio: ['pipe', 'pipe', 'pipe'] }));
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

/**
 * { gbps, stalled }: stalled counts the measured (not omitted) intervals of iperf3's report, one
 * per second, that moved under 1 % of the best one's bytes (the omitted warm-up second included):
 * a connection that went quiet.
 */
function iperfGbps(stdout) {
  const j = JSON.parse(stdout);
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error('iperf3: no result');
  const all = (j.intervals ?? []).map((i) => i.sum).filter((x) => x && typeof x.bytes === 'number');
  const best = Math.max(0, ...all.map((x) => x.bytes));
  const stalled = all.filter((x) => !x.omitted && x.bytes < best * 0.01).length;
  return { gbps: bps / 1e9, stalled };
}

/** A throughput metric's sample, and next to it (JSON only) how many seconds it stalled. */
const tput = (key, r) => ({ [key]: r.gbps, [`${key}_stalled_s`]: r.stalled });

/**
 * guest → host (or host → guest with reverse) through the host-loopback address: 10.0.2.2 (or
 * pasta's gateway) to 127.0.0.1, or with ipv6 fd00::2 (pasta's IPv6 gateway) to ::1.
 */
async function iperfLoopback(s, reverse, ipv6 = false, amount = ['-t', String(opts.seconds), '-O', '1']) {
  const bind = s.bindAddr ?? (ipv6 ? '::1' : '127.0.0.1');
  const port = await freePort(bind);
  const srv = track(spawn('iperf3', ['-s', '-B', bind, '-p', String(port), '-1'], { stdio: 'ignore' }));
  try {
    await waitFor(() => listening(port, bind), 5000, 'iperf3 -s');
    const r = await s.guest('iperf3', ['-c', ipv6 ? s.hostAddr6 : s.hostAddr, '-p', String(port), ...amount, '--connect-timeout', '3000', '-J', ...(reverse ? ['-R'] : [])], (opts.seconds + 60) * 1000);
    await killAndWait(srv);
    s.alive();
    return iperfGbps(r.stdout);
  } finally {
    await killAndWait(srv);
  }
}

/** host → guest through a port forward 127.0.0.1:P → 10.0.2.100:5201. */
async function iperfHostfwd(s) {
  if (s.bin.kind === 'kernel' || s.bin.kind === 'veth') throw new NotAvailable('no helper: nothing to forward through');
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
print('warm', flush=True)
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

/**
 * The guest's RR_PY, and the helper's CPU (process tree) between its 'warm'
 * line and its result: per measured round trip, JIT warm-up left out.
 */
async function rrWithCpu(s, args, timeoutMs) {
  const g = s.spawnGuest('python3', ['-c', RR_PY, ...args.map(String)]);
  let out = '';
  let err = '';
  let c0 = null;
  g.stderr.on('data', (d) => (err += d));
  const result = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('guest python: timed out')), timeoutMs);
    g.stdout.on('data', (d) => {
      out += d;
      if (c0 === null && out.includes('warm\n')) c0 = cpuSeconds(s.net.pid);
      const lines = out.split('\n');
      if (lines.length > 2 && lines.at(-1) === '' && lines.at(-2).startsWith('{')) {
        const c1 = cpuSeconds(s.net.pid);
        clearTimeout(timer);
        resolve({ ...JSON.parse(lines.at(-2)), c1 });
      }
    });
    g.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`guest python exited ${code}: ${(out + err).trim().slice(-300)}`));
    });
  });
  s.alive();
  if (c0 === null) throw new Error('guest python: no warm line');
  return { ...result, userUs: ((result.c1.user - c0.user) / result.n) * 1e6, sysUs: ((result.c1.sys - c0.sys) / result.n) * 1e6 };
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

// In this order within a repetition: each IPv6 group runs right after the IPv4 one it mirrors, so
// that their ratio compares runs close in time.
const GROUPS = {
  tput1500: { mtu: 1500, fwd: true, metrics: ['tcp_g2h_1500', 'tcp_h2g_1500', 'fwd_h2g_1500'] },
  tput6_1500: { mtu: 1500, fwd: false, ipv6: true, metrics: ['tcp6_g2h_1500', 'tcp6_h2g_1500'] },
  tput65520: { mtu: 65520, fwd: true, metrics: ['tcp_g2h_65520', 'tcp_h2g_65520', 'fwd_h2g_65520'] },
  tput6_65520: { mtu: 65520, fwd: false, ipv6: true, metrics: ['tcp6_g2h_65520', 'tcp6_h2g_65520'] },
  rr: { mtu: 1500, fwd: false, metrics: ['rr_rate', 'rr_p50', 'rr_p99', 'rr_cpu_user_us', 'rr_cpu_sys_us', 'conn_rate', 'udp_rr_rate'] },
  rr65520: {
    mtu: 65520,
    fwd: false,
    metrics: ['rr_rate_65520', 'rr_p50_65520', 'rr_p99_65520', 'rr_cpu_user_us_65520', 'rr_cpu_sys_us_65520', 'conn_rate_65520', 'udp_rr_rate_65520'],
  },
  rss: { mtu: 1500, fwd: false, metrics: ['rss_idle_mb', 'rss_after_bulk_mb', 'rss_conn_kb'] },
  help: { metrics: ['help_ms'] },
  tap: { metrics: ['tap_ms'] },
};

/**
 * Spawn → tap0 exists inside a fresh namespace, median of 20, by
 * bench/tap-latency.py (a poller in the namespace spins on
 * if_nametoindex; slirp4netns's DHCP test touches tap0 ~25 ms after the start).
 */
function tapMs(bin) {
  const cmd = bin.kind === 'pasta' ? `${bin.path} --runas 0:0 -I tap0 -f -q {pid}` : bin.path;
  const r = spawnSync('python3', [join(here, 'tap-latency.py'), '20', `x=${cmd}`], { encoding: 'utf8', timeout: 120_000 });
  const m = /median\s+([\d.]+) ms/.exec(r.stdout ?? '');
  if (m === null) throw new Error(`tap-latency.py: ${r.stderr || r.stdout || r.error}`);
  return Number(m[1]);
}

function helpMs(bin) {
  const ms = Array.from({ length: 20 }, () => {
    const t0 = process.hrtime.bigint();
    spawnSync(bin, ['--help'], { stdio: 'ignore', timeout: 10_000 });
    return Number(process.hrtime.bigint() - t0) / 1e6;
  });
  return median(ms);
}

// --only shorthands.
const GROUP_ALIASES = {
  tput: ['tput1500', 'tput65520'],
  tput6: ['tput6_1500', 'tput6_65520'],
};

async function runGroup(group, name) {
  const g = GROUPS[group];
  if (ALL_BINS[name].kind === 'kernel' && (group === 'help' || group === 'tap' || group === 'rss')) {
    return { out: {}, errs: {}, na: Object.fromEntries(g.metrics.map((m) => [m, 'no helper'])) };
  }
  if (ALL_BINS[name].kind === 'veth' && group !== 'tput1500' && group !== 'tput65520') {
    return { out: {}, errs: {}, na: Object.fromEntries(g.metrics.map((m) => [m, 'veth: the IPv4 bulk ceiling only'])) };
  }
  if (group === 'help') return { out: { help_ms: helpMs(ALL_BINS[name].path) }, errs: {}, na: {} };
  if (group === 'tap') {
    try {
      return { out: { tap_ms: tapMs(ALL_BINS[name]) }, errs: {}, na: {} };
    } catch (e) {
      return { out: {}, errs: { tap_ms: e.message.slice(0, 300) }, na: {} };
    }
  }
  const out = {};
  const errs = {};
  const na = {};
  // IPv6 sessions start with -6: their start-up time is kept apart from ready_ms.
  const readyKey = g.ipv6 ? 'ready6_ms' : 'ready_ms';
  const attempt = async (metrics, fn) => {
    try {
      Object.assign(out, await fn());
    } catch (e) {
      for (const m of metrics) (e instanceof NotAvailable ? na : errs)[m] = e.message.slice(0, 300);
    }
  };
  const s = new Session(name, g.mtu, g.fwd ? await freePort() : null, !!g.ipv6);
  try {
    try {
      await s.start();
      out[readyKey] = s.readyMs;
      if (g.ipv6) out.ipv6_wait_ms = s.ipv6WaitMs;
    } catch (e) {
      if (e instanceof NotAvailable) {
        out[readyKey] = s.readyMs;
        for (const m of g.metrics) na[m] = e.message.slice(0, 300);
      } else {
        for (const m of [...g.metrics, readyKey]) errs[m] = e.message.slice(0, 300);
      }
      return { out, errs, na };
    }
    if (g.ipv6) {
      const [g2h, h2g] = g.metrics;
      await attempt([g2h], async () => tput(g2h, await iperfLoopback(s, false, true)));
      await attempt([h2g], async () => tput(h2g, await iperfLoopback(s, true, true)));
    } else if (group.startsWith('tput')) {
      const [g2h, h2g, fwd] = g.metrics;
      await attempt([g2h], async () => tput(g2h, await iperfLoopback(s, false)));
      await attempt([h2g], async () => tput(h2g, await iperfLoopback(s, true)));
      await attempt([fwd], async () => tput(fwd, await iperfHostfwd(s)));
    } else if (group === 'rr' || group === 'rr65520') {
      const sfx = group === 'rr' ? '' : '_65520';
      const k = (m) => `${m}${sfx}`;
      const echo = await tcpEcho(1000);
      const uecho = await udpEcho();
      try {
        const t = opts.short;
        await attempt([k('rr_rate'), k('rr_p50'), k('rr_p99'), k('rr_cpu_user_us'), k('rr_cpu_sys_us')], async () => {
          // The helper's own CPU per measured round trip: steadier than the rate, which
          // depends on where the scheduler puts the three processes.
          const r = await rrWithCpu(s, [s.hostAddr, echo.port, t], (t + 20) * 1000);
          if (s.bin.kind === 'kernel') {
            na[k('rr_cpu_user_us')] = na[k('rr_cpu_sys_us')] = 'no helper';
            return { [k('rr_rate')]: r.rate, [k('rr_p50')]: r.p50, [k('rr_p99')]: r.p99 };
          }
          return { [k('rr_rate')]: r.rate, [k('rr_p50')]: r.p50, [k('rr_p99')]: r.p99, [k('rr_cpu_user_us')]: r.userUs, [k('rr_cpu_sys_us')]: r.sysUs };
        });
        await attempt([k('conn_rate')], async () => ({ [k('conn_rate')]: (await pyJson(s, CONN_PY, [s.hostAddr, echo.port, t], (t + 20) * 1000)).rate }));
        await attempt([k('udp_rr_rate')], async () => {
          const r = await pyJson(s, UDP_PY, [s.hostAddr, uecho.port, t], (t + 20) * 1000);
          return { [k('udp_rr_rate')]: r.rate, [k('udp_lost')]: r.lost };
        });
      } finally {
        await echo.close();
        await uecho.close();
      }
    } else if (group === 'rss') {
      // In this order: idle (nothing has moved yet); 1 GiB each way through the host loopback,
      // then 15 s of quiet: what stays resident; then the per-connection cost, from there.
      await attempt(['rss_idle_mb'], async () => {
        await sleep(500);
        return { rss_idle_mb: (await settledRss(s.net.pid)) / 1024 };
      });
      await attempt(['rss_after_bulk_mb'], async () => {
        await iperfLoopback(s, false, false, ['-n', '1G']);
        await iperfLoopback(s, true, false, ['-n', '1G']);
        await sleep(15_000);
        return { rss_after_bulk_mb: rssKb(s.net.pid) / 1024 };
      });
      await attempt(['rss_conn_kb'], async () => {
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
          return { rss_conn_kb: (loaded - idle) / opts.conns, rss_before_conns_kb: idle, rss_loaded_kb: loaded, rss_open_s: opened.seconds };
        } finally {
          await echo.close();
        }
      });
    }
    return { out, errs, na };
  } finally {
    await s.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Metric descriptions and the project's targets.

// An IPv6 row (v4: the IPv4 row it mirrors) comes right after it; its target is the project's
// acceptance criterion, usernet's IPv6 median at least 90 % of its IPv4 one (v6v4: 0.9).
const METRICS = [
  { key: 'tcp_g2h_1500', label: 'TCP guest→host MTU 1500', unit: 'Gbit/s', better: 'higher', target: { ratio: 5 } },
  { key: 'tcp6_g2h_1500', label: '  IPv6 guest→host MTU 1500', unit: 'Gbit/s', better: 'higher', v4: 'tcp_g2h_1500', target: { v6v4: 0.9 } },
  { key: 'tcp_h2g_1500', label: 'TCP host→guest MTU 1500', unit: 'Gbit/s', better: 'higher', target: { ratio: 5 } },
  { key: 'tcp6_h2g_1500', label: '  IPv6 host→guest MTU 1500', unit: 'Gbit/s', better: 'higher', v4: 'tcp_h2g_1500', target: { v6v4: 0.9 } },
  { key: 'fwd_h2g_1500', label: 'hostfwd host→guest MTU 1500', unit: 'Gbit/s', better: 'higher', target: { ratio: 5 } },
  { key: 'tcp_g2h_65520', label: 'TCP guest→host MTU 65520', unit: 'Gbit/s', better: 'higher', target: { ratio: 2 } },
  { key: 'tcp6_g2h_65520', label: '  IPv6 guest→host MTU 65520', unit: 'Gbit/s', better: 'higher', v4: 'tcp_g2h_65520', target: { v6v4: 0.9 } },
  { key: 'tcp_h2g_65520', label: 'TCP host→guest MTU 65520', unit: 'Gbit/s', better: 'higher', target: { ratio: 2 } },
  { key: 'tcp6_h2g_65520', label: '  IPv6 host→guest MTU 65520', unit: 'Gbit/s', better: 'higher', v4: 'tcp_h2g_65520', target: { v6v4: 0.9 } },
  { key: 'fwd_h2g_65520', label: 'hostfwd host→guest MTU 65520', unit: 'Gbit/s', better: 'higher', target: { ratio: 2 } },
  { key: 'rr_rate', label: 'TCP 1-byte req/resp', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'rr_p50', label: 'TCP req/resp latency p50', unit: 'µs', better: 'lower', target: null },
  { key: 'rr_p99', label: 'TCP req/resp latency p99', unit: 'µs', better: 'lower', target: null },
  { key: 'rr_cpu_user_us', label: '  helper user CPU per req/resp', unit: 'µs', better: 'lower', target: null },
  { key: 'rr_cpu_sys_us', label: '  helper sys CPU per req/resp', unit: 'µs', better: 'lower', target: null },
  { key: 'conn_rate', label: 'TCP connection rate', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'udp_rr_rate', label: 'UDP 1-byte req/resp', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'rr_rate_65520', label: 'TCP 1-byte req/resp MTU 65520', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'rr_p50_65520', label: 'TCP req/resp p50 MTU 65520', unit: 'µs', better: 'lower', target: null },
  { key: 'rr_p99_65520', label: 'TCP req/resp p99 MTU 65520', unit: 'µs', better: 'lower', target: null },
  { key: 'rr_cpu_user_us_65520', label: '  helper user CPU, MTU 65520', unit: 'µs', better: 'lower', target: null },
  { key: 'rr_cpu_sys_us_65520', label: '  helper sys CPU, MTU 65520', unit: 'µs', better: 'lower', target: null },
  { key: 'conn_rate_65520', label: 'TCP connection rate MTU 65520', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'udp_rr_rate_65520', label: 'UDP 1-byte req/resp MTU 65520', unit: '/s', better: 'higher', target: { ratio: 1 } },
  { key: 'rss_idle_mb', label: 'RSS idle', unit: 'MB', better: 'lower', target: { max: 60 } },
  { key: 'rss_after_bulk_mb', label: 'RSS 15 s after 1 GiB each way', unit: 'MB', better: 'lower' },
  { key: 'rss_conn_kb', label: `RSS per idle conn (${opts.conns})`, unit: 'KB', better: 'lower', target: { max: 12 } },
  { key: 'ready_ms', label: 'start → ready fd', unit: 'ms', better: 'lower', target: { max: 300 } },
  { key: 'help_ms', label: '--help (spawn → exit)', unit: 'ms', better: 'lower', target: null },
  { key: 'tap_ms', label: 'start → tap0 exists', unit: 'ms', better: 'lower', target: { max: 15 } },
  { key: 'ready6_ms', label: 'start → ready fd, -6', unit: 'ms', better: 'lower', target: null },
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
  const width = 1000;
  const plotW = width - left - 200; // room for the IPv6 rows' longer bar text
  const top = 60;
  const v6rows = items.some((r) => r.v4);
  const height = top + items.length * rowH + 50 + (v6rows ? 16 : 0);
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
    // IPv6 rows: the bar is usernet ÷ slirp4netns (no target); their status is about IPv6 ÷ IPv4.
    const v6 = r.v6v4?.usernet;
    const color = r.v4 ? '#5b7db1' : r.status === 'met' ? '#2a9d4b' : r.status === 'missed' ? '#d1495b' : '#5b7db1';
    parts.push(`<text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(r.label)}</text>`);
    parts.push(`<rect x="${Math.min(x0, x1).toFixed(1)}" y="${y + 4}" width="${Math.max(1, Math.abs(x1 - x0)).toFixed(1)}" height="${rowH - 8}" fill="${color}"/>`);
    const note = r.v4 ? (typeof v6 === 'number' ? ` · usernet v6/v4 ${v6.toFixed(2)}${r.status ? ` (${r.status})` : ''}` : '') : r.status ? ` (${r.status})` : '';
    parts.push(`<text x="${(Math.max(x0, x1) + 6).toFixed(1)}" y="${y + 16}">${v.toFixed(2)}×${esc(note)}</text>`);
    if (r.targetRatio) {
      const tv = r.better === 'lower' ? 1 / r.targetRatio : r.targetRatio;
      const tx = x(tv).toFixed(1);
      parts.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 1}" stroke="#000" stroke-width="2"/>`);
    }
  });
  parts.push(`<text x="10" y="${height - (v6rows ? 26 : 10)}" fill="#555">green: target met, red: missed, blue: no ratio target (absolute targets are judged on usernet alone)</text>`);
  if (v6rows) parts.push(`<text x="10" y="${height - 10}" fill="#555">IPv6 rows (blue): usernet ÷ slirp4netns over IPv6; met/missed there is usernet's IPv6 ÷ IPv4 against the target of 0.9</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// Main

/** The binaries in the order repetition `rep` (from 0) runs them: the list rotated by `rep`. */
function runOrder(list, rep) {
  return list.map((_, i) => list[(i + rep) % list.length]);
}

async function main() {
  const started = Date.now();
  let wanted = null;
  if (opts.only) {
    wanted = new Set();
    for (const g of opts.only) {
      if (GROUPS[g]) wanted.add(g);
      else if (GROUP_ALIASES[g]) for (const a of GROUP_ALIASES[g]) wanted.add(a);
      else {
        console.error(`bench: unknown group ${g} (groups: ${[...Object.keys(GROUPS), ...Object.keys(GROUP_ALIASES)].join(', ')})`);
        process.exit(2);
      }
    }
  }
  const groups = Object.keys(GROUPS).filter((g) => !wanted || wanted.has(g));
  if (opts.plan) {
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const group of groups) console.log(`rep ${rep + 1}/${opts.reps} ${group}: ${runOrder(bins, rep).join(' ')}`);
    }
    return;
  }
  const samples = {}; // bin → metric → [values]
  const errors = {}; // bin → metric → [messages]
  const notAvail = {}; // bin → metric → reason (n/a: the binary cannot do it here)
  const extra = {}; // bin → [ per-run raw ]
  for (const b of bins) {
    samples[b] = {};
    errors[b] = {};
    notAvail[b] = {};
    extra[b] = [];
  }
  console.error(`bench: ${bins.join(', ')}; ${opts.reps} rep(s), iperf3 ${opts.seconds} s, short tests ${opts.short} s, ${opts.conns} idle connections`);
  for (let rep = 0; rep < opts.reps; rep++) {
    for (const group of groups) {
      for (const b of runOrder(bins, rep)) {
        const t0 = Date.now();
        const { out, errs, na } = await runGroup(group, b);
        extra[b].push({ rep, group, ...out, errors: errs, notAvailable: na });
        for (const [k, v] of Object.entries(out)) (samples[b][k] ??= []).push(v);
        for (const [k, v] of Object.entries(errs)) (errors[b][k] ??= []).push(v);
        for (const [k, v] of Object.entries(na)) notAvail[b][k] ??= v;
        const short = GROUPS[group].metrics
          .map((m) => `${m}=${m in out ? fmt(out[m], METRICS.find((x) => x.key === m)?.unit) : m in na ? 'n/a' : 'FAIL'}${out[`${m}_stalled_s`] ? ` (stalled ${out[`${m}_stalled_s`]} s)` : ''}`)
          .join(' ');
        const ready = GROUPS[group].ipv6
          ? ` ready=${fmt(out.ready6_ms, 'ms')}ms ipv6-up=${fmt(out.ipv6_wait_ms, 'ms')}ms`
          : 'ready_ms' in out
            ? ` ready=${fmt(out.ready_ms, 'ms')}ms`
            : '';
        console.error(`  rep ${rep + 1}/${opts.reps} ${group.padEnd(11)} ${b.padEnd(11)} ${short}${ready} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
        for (const [k, v] of Object.entries(errs)) console.error(`    ${k}: ${v}`);
        for (const [k, v] of Object.entries(na)) console.error(`    ${k}: n/a: ${v}`);
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
    const shown =
      m.key === 'ready_ms' ? groups.some((g) => !GROUPS[g].ipv6) : m.key === 'ready6_ms' ? groups.some((g) => GROUPS[g].ipv6) : groups.some((g) => GROUPS[g].metrics.includes(m.key));
    if (!shown) continue;
    const u = medians.usernet?.[m.key] ?? null;
    const sl = medians.slirp4netns?.[m.key] ?? null;
    const ratio = hasBase && u !== null && sl !== null && sl !== 0 ? u / sl : null;
    const k = medians.kernel?.[m.key] ?? null;
    const kratio = u !== null && k !== null && k !== 0 ? u / k : null;
    const vk = medians.veth?.[m.key] ?? null;
    const vratio = u !== null && vk !== null && vk !== 0 ? u / vk : null;
    let status = null;
    let targetText = '';
    let targetRatio = null;
    // IPv6 rows: IPv6 ÷ IPv4 (same direction and MTU) per binary.
    const v6v4 = m.v4
      ? Object.fromEntries(
          bins.map((b) => {
            const a = medians[b][m.key];
            const c = medians[b][m.v4];
            // Not a ratio of two figures the table shows as 0.00 (pasta's stalls).
            return [b, a !== null && c !== null && fmt(c, m.unit) !== fmt(0, m.unit) && fmt(a, m.unit) !== fmt(0, m.unit) ? a / c : null];
          }),
        )
      : null;
    if (m.target?.v6v4) {
      targetText = `v6/v4 ≥${m.target.v6v4}`;
      if (v6v4.usernet != null) status = v6v4.usernet >= m.target.v6v4 ? 'met' : 'missed';
    } else if (m.target?.ratio) {
      targetRatio = m.target.ratio;
      targetText = `≥${m.target.ratio}×`;
      if (ratio !== null) status = ratio >= m.target.ratio ? 'met' : 'missed';
    } else if (m.target?.max !== undefined) {
      targetText = `≤${m.target.max} ${m.unit}`;
      if (u !== null) status = u <= m.target.max ? 'met' : 'missed';
    }
    rows.push({ ...m, medians: Object.fromEntries(bins.map((b) => [b, medians[b][m.key]])), ratio, kratio, vratio, v6v4, status, targetText, targetRatio });
  }

  // Table
  const w0 = 31;
  const wb = 19;
  // Each median with its spread across the repetitions: ±half the range, in % of the median.
  const spread = (b, key) => {
    const v = (samples[b][key] ?? []).filter((x) => typeof x === 'number' && Number.isFinite(x));
    const m = median(v);
    if (v.length < 2 || !m) return '';
    return ` ±${Math.round(((Math.max(...v) - Math.min(...v)) / 2 / Math.abs(m)) * 100)}%`;
  };
  const lines = [];
  lines.push(`usernet benchmark: medians of ${opts.reps} run(s) per binary, alternating (each repetition's order rotated by one), fresh namespace per run; iperf3 ${opts.seconds} s, req/resp, connection and UDP tests ${opts.short} s`);
  lines.push('');
  const anyV6 = rows.some((r) => r.v4);
  // IPv6/IPv4: one figure per binary, in the order of the binary columns.
  const wr = Math.max(11, bins.length * 7 + 1);
  // A ratio whose IPv6 or IPv4 samples include a stalled run is marked *: see the notes below.
  const stalledAny = (b, key) => (samples[b][`${key}_stalled_s`] ?? []).some((x) => x > 0);
  let head = 'metric'.padEnd(w0) + 'unit'.padEnd(8) + 'better'.padEnd(8);
  for (const b of bins) head += b.padStart(wb);
  head += 'usernet/slirp'.padStart(15);
  const hasKernel = bins.includes('kernel');
  if (hasKernel) head += 'usernet/kernel'.padStart(16);
  const hasVeth = bins.includes('veth');
  if (hasVeth) head += 'usernet/veth'.padStart(14);
  if (anyV6) head += 'IPv6/IPv4'.padStart(wr);
  head += '  target'.padEnd(16) + 'status';
  lines.push(head);
  lines.push('-'.repeat(head.length));
  for (const r of rows) {
    let line = r.label.padEnd(w0) + r.unit.padEnd(8) + r.better.padEnd(8);
    for (const b of bins) {
      const v = r.medians[b];
      const na = v === null && r.key in notAvail[b];
      const failed = v === null && (errors[b][r.key]?.length ?? 0) > 0;
      line += (failed ? 'FAIL' : na ? 'n/a' : `${fmt(v, r.unit)}${spread(b, r.key).padEnd(6)}`).padStart(wb);
    }
    line += (r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`).padStart(15);
    if (hasKernel) line += (r.kratio === null ? '—' : `${r.kratio.toFixed(2)}×`).padStart(16);
    if (hasVeth) line += (r.vratio === null ? '—' : `${r.vratio.toFixed(2)}×`).padStart(14);
    if (anyV6) {
      const one = (b) => {
        if (r.v6v4[b] === null) return r.key in notAvail[b] ? 'n/a ' : '— ';
        return r.v6v4[b].toFixed(2) + (stalledAny(b, r.key) || stalledAny(b, r.v4) ? '*' : ' ');
      };
      const cell = r.v4 ? bins.map((b) => one(b).padStart(6)).join(' ') : '';
      line += cell.padStart(wr);
    }
    line += `  ${r.targetText}`.padEnd(16);
    line += r.status ?? '';
    lines.push(line);
  }
  lines.push('');
  lines.push('Ratios are usernet ÷ slirp4netns. For latency (µs), RSS and ready time lower is better, so a ratio below 1 is the good side;');
  lines.push('the RSS and ready targets are absolute limits on usernet\'s own median.');
  if (bins.includes('kernel')) {
    lines.push('kernel: no helper, the same clients and servers on the host\'s 127.0.0.1 / ::1 (loopback MTU 65536): the ceiling for every');
    lines.push('row, measured in the same run; usernet/kernel is usernet\'s median ÷ the kernel\'s (the bulk rows\' target is ≥ 0.7×).');
  }
  if (bins.includes('veth')) {
    lines.push(`veth: no helper either: iperf3 between the host (${VETH_HOST}) and a namespace (${VETH_GUEST}) over a veth pair with the row's MTU,`);
    lines.push('the kernel\'s own cost of that MTU for a guest\'s TCP (bulk rows only); usernet/veth is usernet\'s median ÷ that.');
  }
  if (anyV6) {
    lines.push(`IPv6 rows (indented): the IPv4 row above, over [fd00::2] to the host's ::1 (pasta: its IPv6 gateway) in a session started with -6.`);
    lines.push(`IPv6/IPv4 is each binary's IPv6 median ÷ its IPv4 median, same direction and MTU, in column order (${bins.join(', ')});`);
    lines.push('the v6/v4 target (within 10 % of IPv4) is judged on usernet\'s. * : some IPv6 or IPv4 run of it stalled (listed below).');
  }
  for (const b of missing) lines.push(`${b}: not installed, not measured.`);
  for (const b of bins) {
    for (const [k, v] of Object.entries(notAvail[b])) lines.push(`${b} ${k}: n/a: ${v}`);
    for (const r of rows) {
      const st = samples[b][`${r.key}_stalled_s`] ?? [];
      const n = st.filter((x) => x > 0).length;
      if (n > 0) lines.push(`${b} ${r.key}: stalled (a second with under 1 % of the best second's data) in ${n} of ${st.length} run(s): ${st.join(', ')} s of ${opts.seconds}; samples ${samples[b][r.key].map((v) => fmt(v, r.unit)).join(', ')} Gbit/s`);
    }
  }
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
    if (ALL_BINS[b].kind === 'kernel' || ALL_BINS[b].kind === 'veth') {
      versions[b] = `Linux ${(await import('node:os')).release()} ${ALL_BINS[b].kind === 'kernel' ? 'loopback' : 'veth'}`;
      continue;
    }
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
        notAvailable: notAvail,
        runs: extra,
        medians,
        rows: rows.map(({ key, label, unit, better, medians: md, ratio, v4, v6v4, status, targetText }) => ({ key, label: label.trim(), unit, better, medians: md, ratio, ...(v4 ? { ipv4: v4, ipv6_over_ipv4: v6v4 } : {}), status, target: targetText })),
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
