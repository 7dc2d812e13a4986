/**
 * IPv6 end to end (issue 11): the kernel in a namespace is the guest and
 * bin/usernet runs with -6. The guest configures itself (static with -c, by
 * SLAAC without), pings our addresses, moves data over TCP and UDP to the
 * host's ::1 through fd00::2, asks fd00::3 for AAAA records from a resolver
 * reached over IPv4, and fails fast on refused and unreachable destinations.
 *
 * No traffic leaves the machine: the guest addresses our own addresses and
 * the host's loopback; the tests that need an "outside" IPv6 address run
 * usernet itself inside a network namespace made here ("the host"), whose
 * loopback holds 2001:db8::1 and which has no route anywhere else.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CONNECT_PY,
  DNS_PY,
  RAW6_SYN_PY,
  TRANSFER_PY,
  UDP_ECHO_PY,
  USERNET_BIN,
  hostServer,
  startCliGuest,
  tcpExchange,
  transferServer,
  udpServer,
  type CliGuest,
} from '../support/guest-tools.js';
import { announceSkip, e2eUnavailable, namedNetns, spawnInNetns, userNetns, waitFor, type NamedNetns } from '../support/netns.js';
import { nameserverLine, startServer, zoneHandler, type TestServer } from '../dns/test-server.js';
import { exchange } from '../api/api-client.js';
import net from 'node:net';
import dgram from 'node:dgram';

const BUILT = existsSync(resolve(__dirname, '../../dist/cli/main.js'));

function hostLoopback6(): string | null {
  try {
    const out = execFileSync('ip', ['-6', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
    return out.includes('::1/128') ? null : 'the host has no ::1 (IPv6 disabled?)';
  } catch (err) {
    return `cannot read the host's addresses: ${(err as Error).message}`;
  }
}

const skip = announceSkip('e2e IPv6', e2eUnavailable() ?? (BUILT ? null : `${USERNET_BIN} needs dist/ (npm run build)`) ?? hostLoopback6());

let dir = '';
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-ipv6-e2e-'));
});

afterEach(async () => {
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      console.warn(`cleanup failed: ${String(e)}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

const defer = (fn: () => Promise<void> | void): void => {
  cleanups.push(fn);
};

const MiB = 1024 * 1024;

function guest(args: string[] = [], options: { bin?: string; env?: Record<string, string> } = {}): Promise<CliGuest> {
  return startCliGuest({ defer, dir, args: ['-6', ...args], ...options });
}

async function sh(g: CliGuest, script: string): Promise<string> {
  return (await g.ns.exec(['sh', '-c', script])).stdout;
}

/** A network namespace playing the host: lo up with 2001:db8::1 and ::1, ping sockets allowed, no other route. */
async function outsideHost(): Promise<NamedNetns> {
  const ns = await namedNetns();
  defer(() => ns.close());
  await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
  await ns.exec(['ip', '-6', 'addr', 'add', '2001:db8::1/128', 'dev', 'lo']);
  await ns.exec(['sysctl', '-qw', 'net.ipv4.ping_group_range=0 2147483647']);
  return ns;
}

/** A server on [2001:db8::1]:7000 in `ns` greeting each client with "hello <its address>". */
async function helloServer(ns: NamedNetns): Promise<void> {
  const py = spawnInNamed(ns, [
    'python3',
    '-c',
    "import socket\ns=socket.socket(socket.AF_INET6)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('2001:db8::1',7000))\ns.listen(8)\nprint('up',flush=True)\nwhile True:\n c,a=s.accept()\n c.sendall(('hello '+a[0]+'\\n').encode())\n c.close()\n",
  ]);
  defer(() => py.kill());
  await waitFor(() => py.stdout().includes('up'), 5000, 'server in the host namespace');
}

/** A script that runs bin/usernet inside `ns` (its host sockets live there). */
function usernetIn(ns: NamedNetns): string {
  const path = join(dir, 'usernet-in-netns');
  writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${ns.name} ${JSON.stringify(USERNET_BIN)} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

describe.skipIf(skip)('IPv6 configuration of the guest', () => {
  it('-6 -c: the SLAAC address without DAD and a static default route via fe80::2 before the ready fd', async () => {
    const g = await guest();
    const addr = await sh(g, 'ip -6 -o addr show dev tap0 scope global');
    expect(addr).toMatch(/inet6 fd00::[0-9a-f:]+\/64/);
    expect(addr).not.toMatch(/tentative/);
    const route = await sh(g, 'ip -6 route show default');
    expect(route).toMatch(/default via fe80::2 dev tap0/);
    // Router Advertisements arrive too (RDNSS, prefix); the static route stays.
    await waitFor(async () => (await sh(g, 'ip -6 route show')).includes('fd00::/64'), 5000, 'the on-link prefix');
  });

  it('the static route survives net.ipv6.conf.all.forwarding=1 (what dockerd-rootless.sh sets), which drops routes learnt from RAs', async () => {
    const server = await transferServer('::1');
    defer(() => server.close());
    const g = await guest();
    await g.ns.exec(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
    // The next RAs (1, 2, 4 … s after start) reach a router now: they must not take the route away.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await sh(g, 'ip -6 route show default')).toMatch(/default via fe80::2 dev tap0 proto static/);
    const r = await g.py<{ results: Array<{ ok: boolean; errno?: string }> }>(CONNECT_PY, { targets: [['fd00::2', server.port]], timeout: 5 });
    expect(r.results[0]).toMatchObject({ ok: true });
  });

  it('without -c (a TAP made and brought up by the client, as RootlessKit does), SLAAC completes from our Router Advertisements', async () => {
    const ns = await userNetns();
    defer(() => ns.close());
    await ns.exec(['sh', '-c', 'ip link set lo up && ip tuntap add tap0 mode tap && ip link set tap0 up']);
    const conf = join(dir, 'no-resolver.conf');
    writeFileSync(conf, 'nameserver 127.0.0.1#1\n');
    const started = Date.now();
    const child = spawnInNetnsHost([USERNET_BIN, '-6', String(ns.pid), 'tap0'], { USERNET_RESOLV_CONF: conf });
    defer(() => child.kill());
    let got = '';
    await waitFor(
      async () => {
        got = (await ns.exec(['sh', '-c', 'ip -6 -o addr show dev tap0 scope global; ip -6 route show default'])).stdout;
        return /inet6 fd00::\S+\/64 scope global (?!tentative)/.test(got) && got.includes('default via fe80::2');
      },
      10_000,
      'SLAAC address and default route',
    );
    const ms = Date.now() - started;
    console.log(`SLAAC without --configure: address and route after ${ms} ms`);
    expect(got).toMatch(/proto ra/);
  });
});

/** bin/usernet in this process's network namespace (the real host), not waiting for anything. */
function spawnInNetnsHost(argv: string[], env: Record<string, string>) {
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  return {
    child,
    kill: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGKILL');
      }),
  };
}

describe.skipIf(skip)('ICMPv6 echo', () => {
  it('the guest pings fd00::2, fd00::3 and fe80::2', async () => {
    const g = await guest();
    for (const dst of ['fd00::2', 'fd00::3', 'fe80::2%tap0']) {
      const r = await g.ns.run(['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', dst]);
      expect(r.code, `${dst}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });
});

describe.skipIf(skip)('TCP over IPv6 to the host through fd00::2', () => {
  for (const mtu of [1500, 65520]) {
    it(`64 MiB each way at MTU ${mtu}, checked by SHA-256`, async () => {
      const server = await transferServer('::1');
      defer(() => server.close());
      const g = await guest([`--mtu=${mtu}`]);
      const jobs = [
        { id: 1, dir: 'up', bytes: 64 * MiB, seed: 11 },
        { id: 2, dir: 'down', bytes: 64 * MiB, seed: 12 },
      ];
      const out = await g.py<{ results: Array<{ id: number; sha?: string; bytes?: number; error?: string; reply?: string }> }>(
        TRANSFER_PY,
        { host: 'fd00::2', port: server.port, timeout: 60, jobs },
        120_000,
      );
      for (const r of out.results) {
        expect(r.error, JSON.stringify(r)).toBeUndefined();
        const hostSide = server.results.get(r.id)!;
        expect(hostSide.bytes).toBe(64 * MiB);
        expect(r.sha).toBe(hostSide.sha);
      }
    });
  }

  it('a closed port is ECONNREFUSED at once; with --disable-host-loopback fd00::2 and fe80::2 fail fast and nothing reaches ::1', async () => {
    const seen: string[] = [];
    const listener = await hostServer((s) => {
      seen.push(String(s.remoteAddress));
      s.destroy();
    }, { host: '::1' });
    defer(() => listener.close());
    const closed = await hostServer(() => {}, { host: '::1' });
    const closedPort = closed.port;
    await closed.close();
    const open = await guest();
    const r1 = await open.py<{ results: Array<{ ok: boolean; errno?: string; seconds: number }> }>(CONNECT_PY, { targets: [['fd00::2', closedPort], ['fd00::2', listener.port]], timeout: 5 });
    expect(r1.results[0]).toMatchObject({ ok: false, errno: 'ECONNREFUSED' });
    expect(r1.results[1]).toMatchObject({ ok: true });
    expect(seen).toEqual(['::1']);

    const locked = await guest(['--disable-host-loopback']);
    const r2 = await locked.py<{ results: Array<{ ok: boolean; errno?: string; seconds: number }> }>(CONNECT_PY, {
      targets: [['fd00::2', listener.port], ['fe80::2%tap0', listener.port]],
      timeout: 5,
    });
    for (const r of r2.results) {
      expect(r.ok).toBe(false);
      expect(r.seconds).toBeLessThan(2);
    }
    // Crafted SYNs to destinations the guest's own stack would not route.
    const src = (await sh(locked, "ip -6 -o addr show dev tap0 scope global | awk '{print $4}' | cut -d/ -f1")).trim();
    await locked.py(RAW6_SYN_PY, { iface: 'tap0', src, targets: ['::1', '::ffff:127.0.0.1', '::127.0.0.1', 'fd00::2', 'fd00::5'], port: listener.port, repeat: 2 });
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual(['::1']);
  });
});

describe.skipIf(skip)('UDP over IPv6 to the host through fd00::2', () => {
  it('datagrams up to the MTU both ways, from the address the guest used', async () => {
    const server = await udpServer({ echo: true, host: '::1' });
    defer(() => server.close());
    const g = await guest();
    const out = await g.py<{ results: Array<{ ok?: boolean; error?: string; from?: [string, number] }> }>(UDP_ECHO_PY, { host: 'fd00::2', port: server.port, sizes: [1, 100, 1400], timeout: 5 });
    for (const r of out.results) {
      expect(r.error, JSON.stringify(r)).toBeUndefined();
      expect(r.ok).toBe(true);
      expect(r.from).toEqual(['fd00::2', server.port]);
    }
    expect(server.received.map((d) => d.address)).toEqual(['::1', '::1', '::1']);
  });

  it('datagrams larger than the MTU: the guest fragments them, usernet reassembles them and fragments the replies; no drops', async () => {
    const server = await udpServer({ echo: true, host: '::1' });
    defer(() => server.close());
    const sock = join(dir, 'api.sock');
    const g = await guest(['--mtu=1500', '-a', sock]);
    const sizes = [4000, 60000];
    const out = await g.py<{ results: Array<{ ok?: boolean; error?: string; got?: number }> }>(UDP_ECHO_PY, { host: 'fd00::2', port: server.port, sizes, timeout: 10 });
    for (const r of out.results) {
      expect(r.error, JSON.stringify(r)).toBeUndefined();
      expect(r.ok, JSON.stringify(r)).toBe(true);
    }
    expect(server.received.map((d) => d.size)).toEqual(sizes);
    const stats = (await api(sock, { execute: 'stats' })).return as { drops: Record<string, number>; reassembly: { fragments: number; reassembled: number; inProgress: number; bytesHeld: number } };
    // 4000 bytes are 3 fragments at MTU 1500, 60000 bytes 42.
    expect(stats.reassembly).toEqual({ fragments: 45, reassembled: 2, inProgress: 0, bytesHeld: 0 });
    expect(stats.drops).toEqual({});
    const mtu = JSON.parse(await sh(g, 'ip -j link show tap0'))[0].mtu;
    expect(mtu).toBe(1500);
  });
});

describe.skipIf(skip)('DNS at fd00::3', () => {
  it('answers A and AAAA over UDP and TCP from a resolver reached over IPv4', async () => {
    const resolver: TestServer = await startServer(
      zoneHandler({ 'v6.test': { A: ['192.0.2.7'], AAAA: ['2001:db8::7', '2001:db8::8'], ttl: 300 } }),
      { address: '127.0.0.1' },
    );
    defer(() => resolver.close());
    const conf = join(dir, 'resolv.conf');
    writeFileSync(conf, `${nameserverLine(resolver)}\n`);
    const g = await guest([], { env: { USERNET_RESOLV_CONF: conf } });
    const out = await g.py<{ results: Array<{ rcode?: string; error?: string; answers?: Array<{ type: string; data: string }> }> }>(DNS_PY, {
      server: 'fd00::3',
      timeout: 5,
      queries: [
        { name: 'v6.test', type: 'AAAA', transport: 'udp' },
        { name: 'v6.test', type: 'AAAA', transport: 'tcp' },
        { name: 'v6.test', type: 'A', transport: 'udp' },
      ],
    });
    expect(out.results[0]).toMatchObject({ rcode: 'NOERROR' });
    expect(out.results[0]!.answers!.map((a) => a.data).sort()).toEqual(['2001:db8::7', '2001:db8::8']);
    expect(out.results[1]!.answers!.map((a) => a.data).sort()).toEqual(['2001:db8::7', '2001:db8::8']);
    expect(out.results[2]!.answers!.map((a) => a.data)).toEqual(['192.0.2.7']);
  });
});

describe.skipIf(skip)('an outside IPv6 host (2001:db8::1 in a namespace playing the host)', () => {
  it('TCP reaches it, a closed port is refused, an unroutable address fails at once', async () => {
    const host = await outsideHost();
    await helloServer(host);
    const g = await guest([], { bin: usernetIn(host) });
    const r = await g.py<{ results: Array<{ ok: boolean; errno?: string; seconds: number }> }>(CONNECT_PY, {
      targets: [['2001:db8::1', 7000], ['2001:db8::1', 7001], ['2001:db8:dead::1', 80]],
      timeout: 10,
    });
    expect(r.results[0]).toMatchObject({ ok: true });
    expect(r.results[1]).toMatchObject({ ok: false, errno: 'ECONNREFUSED' });
    expect(r.results[2]!.ok).toBe(false);
    expect(['ENETUNREACH', 'EHOSTUNREACH']).toContain(r.results[2]!.errno);
    expect(r.results[2]!.seconds).toBeLessThan(2);
    // ICMPv6 echo to it goes through a ping socket in the host namespace.
    const ping = await g.ns.run(['ping', '-6', '-c', '2', '-i', '0.2', '-W', '2', '2001:db8::1']);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
    const t0 = Date.now();
    const lost = await g.ns.run(['ping', '-6', '-c', '1', '-W', '3', '2001:db8:dead::1']);
    expect(lost.code).not.toBe(0);
    expect(lost.stdout).toMatch(/unreachable/i);
    expect(Date.now() - t0).toBeLessThan(2500);
  });
});

function spawnInNamed(ns: NamedNetns, cmd: string[]) {
  const child = spawn('ip', ['netns', 'exec', ns.name, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  return {
    stdout: () => out,
    kill: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGKILL');
      }),
  };
}

/** A dual-stack TCP server in the guest that greets each client with the address it sees, then echoes. */
const GUEST_TCP6_SERVER = String.raw`
import socket, sys, threading
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', int(sys.argv[1]))); s.listen(16); print('listening', flush=True)
def serve(c, a):
    peer = a[0][7:] if a[0].startswith('::ffff:') else a[0]
    c.sendall(('peer %s\n' % peer).encode())
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, a = s.accept(); threading.Thread(target=serve, args=(c, a), daemon=True).start()
`;

const GUEST_UDP6_SERVER = String.raw`
import socket, sys
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
u.bind(('::', int(sys.argv[1]))); print('listening', flush=True)
while True:
    d, a = u.recvfrom(65535); u.sendto(('%s|' % a[0]).encode() + d, a)
`;

async function guestServer(g: CliGuest, script: string, port: number): Promise<void> {
  const proc = spawnInNetns(g.ns.pid, ['python3', '-c', script, String(port)]);
  defer(() => proc.kill());
  await waitFor(() => proc.stdout().includes('listening'), 5000, `guest server: ${proc.stderr()}`);
}


async function freePort(host = '::1'): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function api(sock: string, request: object): Promise<Record<string, unknown>> {
  return JSON.parse((await exchange(sock, JSON.stringify(request))).reply) as Record<string, unknown>;
}

async function guestAddress6(g: CliGuest): Promise<string> {
  return (await sh(g, "ip -6 -o addr show dev tap0 scope global | awk '{print $4}' | cut -d/ -f1")).trim();
}

describe.skipIf(skip)('a host whose IPv6 is switched off (disable_ipv6=1 in a namespace playing the host)', () => {
  it('-6 still starts; IPv4 works; IPv6 destinations fail at once with ICMPv6 no-route', async () => {
    const host = await outsideHost();
    await host.exec(['sh', '-c', 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1; ip addr add 198.51.100.1/32 dev lo']);
    const g = await guest([], { bin: usernetIn(host) });
    expect(g.stderr()).toContain('usernet: the host has no IPv6 (no IPv6 address on any interface)');
    const py = spawnInNamed(host, ['python3', '-c', "import socket\ns=socket.socket()\ns.bind(('198.51.100.1',7000))\ns.listen(8)\nprint('up',flush=True)\nwhile True:\n c,a=s.accept()\n c.close()\n"]);
    defer(() => py.kill());
    await waitFor(() => py.stdout().includes('up'), 5000, 'IPv4 server in the host namespace');
    const r = await g.py<{ results: Array<{ ok: boolean; errno?: string; seconds: number }> }>(CONNECT_PY, {
      targets: [['198.51.100.1', 7000], ['2001:db8::1', 7000], ['fd00::2', 7000]],
      timeout: 10,
    });
    expect(r.results[0]).toMatchObject({ ok: true });
    for (const x of r.results.slice(1)) {
      expect(x.ok).toBe(false);
      expect(['ENETUNREACH', 'EHOSTUNREACH', 'ECONNREFUSED', 'EADDRNOTAVAIL']).toContain(x.errno);
      expect(x.seconds).toBeLessThan(2);
    }
  });
});

describe.skipIf(skip)('--outbound-addr6 (and, as slirp4netns\'s own outbound-addr test does, --outbound-addr)', () => {
  it('IPv6 host sockets leave from the given address; -v reports SLIRP_CONFIG_VERSION_MAX 3', async () => {
    const version = execFileSync(USERNET_BIN, ['-v'], { encoding: 'utf8' });
    expect(version).toContain('SLIRP_CONFIG_VERSION_MAX: 3\n');
    const host = await outsideHost();
    await host.exec(['ip', '-6', 'addr', 'add', '2001:db8::2/128', 'dev', 'lo']);
    await helloServer(host);
    const g = await guest(['--outbound-addr6=2001:db8::2'], { bin: usernetIn(host) });
    const hello = await g.ns.run(['python3', '-c', "import socket\ns=socket.create_connection(('2001:db8::1',7000),timeout=5)\nprint(s.recv(100).decode().strip())"]);
    expect(hello.stdout.trim(), hello.stderr).toBe('hello 2001:db8::2');
  });

  it('IPv4 host sockets leave from 127.0.0.1 and from the host\'s first non-loopback address (slirp4netns test-slirp4netns-outbound-addr.sh)', async () => {
    const seen: string[] = [];
    const server = await hostServer((sock) => {
      seen.push(String(sock.remoteAddress));
      sock.destroy();
    }, { host: '0.0.0.0' });
    defer(() => server.close());
    const first = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(execFileSync('ip', ['-4', '-o', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' }))?.[1];
    for (const addr of first === undefined ? ['127.0.0.1'] : ['127.0.0.1', first]) {
      const g = await guest([`--outbound-addr=${addr}`]);
      const r = await g.py<{ results: Array<{ ok: boolean }> }>(CONNECT_PY, { targets: [['10.0.2.2', server.port]], timeout: 5 });
      expect(r.results[0]!.ok).toBe(true);
      await waitFor(() => seen.length > 0, 2000, 'the host server saw the connection');
      expect(seen.shift()).toBe(addr);
    }
  });
});

describe.skipIf(skip)('port forwards over IPv6 (the API socket)', () => {
  it('TCP from [::1] to the guest’s IPv6 address (the guest sees fd00::2) and to its IPv4 address (10.0.2.2); listed in RFC 5952 form', async () => {
    const sock = join(dir, 'api.sock');
    const g = await guest(['-a', sock]);
    await guestServer(g, GUEST_TCP6_SERVER, 8080);
    const guest6 = await guestAddress6(g);
    const p6 = await freePort();
    const p4 = await freePort();
    expect(await api(sock, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '::1', host_port: p6, guest_addr: guest6, guest_port: 8080 } })).toEqual({ return: { id: 1 } });
    expect(await api(sock, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '0:0::1', host_port: p4, guest_port: 8080 } })).toEqual({ return: { id: 2 } });
    const big = 'y'.repeat(200_000);
    const got6 = await tcpExchange('::1', p6, big);
    expect(got6.startsWith('peer fd00::2\n')).toBe(true);
    expect(got6.length).toBe('peer fd00::2\n'.length + big.length);
    expect(await tcpExchange('::1', p4, 'hello')).toBe('peer 10.0.2.2\nhello');
    const listed = (await api(sock, { execute: 'list_hostfwd' })) as { entries: Array<Record<string, unknown>> };
    expect(listed.entries).toEqual([
      { id: 1, proto: 'tcp', host_addr: '::1', host_port: p6, guest_addr: guest6, guest_port: 8080 },
      { id: 2, proto: 'tcp', host_addr: '::1', host_port: p4, guest_addr: '10.0.2.100', guest_port: 8080 },
    ]);
  });

  it('UDP from [::1] to the guest’s IPv6 address, replies back', async () => {
    const sock = join(dir, 'api.sock');
    const g = await guest(['-a', sock]);
    await guestServer(g, GUEST_UDP6_SERVER, 5353);
    const guest6 = await guestAddress6(g);
    const port = await freePort();
    expect(await api(sock, { execute: 'add_hostfwd', arguments: { proto: 'udp', host_addr: '::1', host_port: port, guest_addr: guest6, guest_port: 5353 } })).toEqual({ return: { id: 1 } });
    const u = dgram.createSocket('udp6');
    defer(() => new Promise<void>((r) => u.close(() => r())));
    await new Promise<void>((r) => u.bind(0, '::1', r));
    const reply = new Promise<string>((resolve) => u.once('message', (m) => resolve(m.toString())));
    // The guest may still be resolving our solicitation for its address: send until answered.
    const timer = setInterval(() => u.send('ping6', port, '::1'), 200);
    u.send('ping6', port, '::1');
    try {
      expect(await reply).toBe('fd00::2|ping6');
    } finally {
      clearInterval(timer);
    }
  });

  it('a client with a real IPv6 address keeps it (usernet in a namespace playing the host, client from 2001:db8::1)', async () => {
    const host = await outsideHost();
    const sock = join(dir, 'api.sock');
    const g = await guest(['-a', sock], { bin: usernetIn(host) });
    await guestServer(g, GUEST_TCP6_SERVER, 8080);
    const guest6 = await guestAddress6(g);
    expect(await api(sock, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '::', host_port: 18080, guest_addr: guest6, guest_port: 8080 } })).toEqual({ return: { id: 1 } });
    const client = spawnInNamed(host, [
      'python3',
      '-c',
      "import socket\ns=socket.create_connection(('2001:db8::1',18080),source_address=('2001:db8::1',0),timeout=10)\nprint(s.recv(100).decode().strip(),flush=True)\n",
    ]);
    defer(() => client.kill());
    await waitFor(() => client.stdout().includes('peer'), 10_000, 'client in the host namespace');
    expect(client.stdout().trim()).toBe('peer 2001:db8::1');
  });
});
