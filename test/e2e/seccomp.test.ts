/**
 * `bin/usernet --enable-seccomp` in a real namespace: the filter is on every
 * thread by the time the ready fd says "1", and the helper keeps working
 * under it (TCP, UDP, DNS at 10.0.2.3, ICMP, a port forward added through the
 * API), alive afterwards; stdout has slirp4netns's WARNING and its
 * `seccomp: The following syscalls are blocked:` line after the banner, and
 * the exit fd still ends it with status 0.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../src/link/native.js';
import { nameserverLine, startServer, TempResolvConf, zoneHandler } from '../dns/test-server.js';
import { echoServer, guestPython, startCliGuest, udpServer, USERNET_BIN } from '../support/guest-tools.js';
import { perTest } from '../support/per-test.js';
import { announceSkip, e2eUnavailable, userNetns, waitFor } from '../support/netns.js';
import { apiRequest, runWithInjectedError, STRACE, threadStatus } from '../support/proc-status.js';

const BUILT = existsSync(new URL('../../dist/bundle/usernet.js', import.meta.url));
const skip = announceSkip('e2e --enable-seccomp', e2eUnavailable() ?? (BUILT ? null : `${USERNET_BIN} needs dist/ (npm run build)`));

const t = perTest('usernet-seccomp-e2e-');
const { defer } = t;

/** TCP echo, UDP echo, an A query to 10.0.2.3 and a raw ICMP echo to 10.0.2.2, from the guest. */
const TRAFFIC_PY = String.raw`
import json, os, socket, struct, sys, time
A = json.loads(sys.argv[1])
res = {}
s = socket.create_connection(('10.0.2.2', A['tcpPort']), timeout=5)
s.sendall(b'hello tcp'); res['tcp'] = s.recv(100).decode(); s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(b'hello udp', ('10.0.2.2', A['udpPort'])); res['udp'] = u.recvfrom(100)[0].decode()
q = struct.pack('!HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0)
for l in A['name'].split('.'): q += bytes([len(l)]) + l.encode()
q += b'\0' + struct.pack('!HH', 1, 1)
u.sendto(q, ('10.0.2.3', 53)); m = u.recvfrom(1500)[0]
res['dns'] = {'id': struct.unpack('!H', m[:2])[0], 'rcode': m[3] & 15, 'answers': struct.unpack('!H', m[6:8])[0], 'last': '.'.join(str(b) for b in m[-4:])}
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); r.settimeout(5)
body = struct.pack('!HH', 0x4242, 1) + b'seccomp'
r.sendto(struct.pack('!BBH', 8, 0, csum(b'\x08\x00\x00\x00' + body)) + body, ('10.0.2.2', 0))
while True:
    p, frm = r.recvfrom(1500); ihl = (p[0] & 15) * 4
    if p[ihl] == 0: res['icmp'] = frm[0]; break
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(('0.0.0.0', 8080)); srv.listen(1)
print(json.dumps(res), flush=True)
srv.settimeout(20); c, _ = srv.accept(); c.sendall(b'from guest ' + c.recv(100)); c.close()
`;


describe.skipIf(skip)('bin/usernet --enable-seccomp', () => {
  it('every thread is filtered at the ready fd; TCP, UDP, DNS, ICMP and an API port forward still work', async () => {
    const tcp = await echoServer();
    defer(() => tcp.close());
    const udp = await udpServer({ echo: true });
    defer(() => udp.close());
    const resolver = await startServer(zoneHandler({ 'seccomp.test': { A: ['192.0.2.77'], ttl: 60 } }), { address: '127.0.0.1' });
    defer(() => resolver.close());
    const conf = new TempResolvConf(nameserverLine(resolver));
    defer(() => conf.remove());
    const api = join(t.dir(), 'api.sock');
    const g = await startCliGuest({ defer, dir: t.dir(), args: ['--enable-seccomp', '-a', api], env: { USERNET_RESOLV_CONF: conf.path } });

    const threads = threadStatus(g.child.pid!);
    expect(threads.length).toBeGreaterThan(1);
    for (const t of threads) expect(t, t.name).toMatchObject({ seccomp: '2', nnp: '1' });

    const py = guestPython(g.ns.pid, TRAFFIC_PY, { tcpPort: tcp.port, udpPort: udp.port, name: 'seccomp.test' }, 40_000);
    defer(() => py.proc.kill());
    await waitFor(() => {
      if (py.proc.child.exitCode !== null) throw new Error(`guest: ${py.proc.stderr()}`);
      return py.proc.stdout().includes('\n');
    }, 20_000, 'guest traffic');
    expect(JSON.parse(py.proc.stdout())).toEqual({
      tcp: 'hello tcp',
      udp: 'hello udp',
      dns: { id: 0x1234, rcode: 0, answers: 1, last: '192.0.2.77' },
      icmp: '10.0.2.2',
    });

    const port = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    expect(await apiRequest(api, { execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: port, guest_port: 8080 } })).toBe(
      '{"return":{"id":1}}',
    );
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('host'));
      let got = '';
      c.setEncoding('utf8').on('data', (d: string) => (got += d)).on('end', () => resolve(got)).on('error', reject);
    });
    expect(reply).toBe('from guest host');

    // Threads started since (the libuv pool for DNS, ...) inherit the filter.
    for (const t of threadStatus(g.child.pid!)) expect(t, t.name).toMatchObject({ seccomp: '2', nnp: '1' });
    expect(g.child.exitCode).toBeNull();
    expect(g.child.signalCode).toBeNull();
  });

  it('prints the WARNING and the blocked list after the banner, and the exit fd still ends it with 0', async () => {
    const ns = await userNetns();
    defer(() => ns.close());
    // fd 3: the exit pipe; its write end stays here until the end.
    const child = spawn(USERNET_BIN, ['--enable-seccomp', '-c', '-e', '3', String(ns.pid), 'tap0'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
    defer(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${err}`);
      return out.includes('seccomp: ');
    }, 15_000, 'the seccomp line');
    const blocked = loadNative().seccompBlocked();
    const lines = out.split('\n');
    expect(lines[0]).toBe('WARNING: Support for seccomp is experimental');
    expect(lines[1]).toBe('Starting slirp');
    const at = lines.findIndex((l) => l.startsWith('seccomp: '));
    expect(lines[at - 1]).toMatch(/^WARNING: 127\.0\.0\.1:\* on the host is accessible as 10\.0\.2\.2/);
    expect(lines[at]).toBe(`seccomp: The following syscalls are blocked: ${blocked.join(' ')}`);
    expect(lines[at]).toContain(' execve lookup_dcookie pidfd_getfd ptrace ');
    (child.stdio[3] as net.Socket).destroy();
    expect(await exited).toEqual([0, null]);
    expect(err).toContain('exitfd event\ndo_slirp is exiting\n');
  });

  it.skipIf(STRACE === null).each(['EINVAL', 'ENOSYS'])(
    'a kernel that refuses the filter (%s, injected by strace) gets one line on stderr, exit 1 and no ready byte',
    async (errno) => {
      const ns = await userNetns();
      defer(() => ns.close());
      const ready = join(t.dir(), 'ready');
      const api = join(t.dir(), 'api.sock');
      const { code, stdout: out, stderr: err } = await runWithInjectedError('seccomp', errno, ready, USERNET_BIN, [
        '--enable-seccomp', '-c', '-r', '9', '-a', api, String(ns.pid), 'tap0',
      ]);
      expect(code).toBe(1);
      expect(readFileSync(ready, 'utf8')).toBe('');
      const lines = err.split('\n').filter((l) => l.startsWith('usernet:'));
      expect(lines).toEqual([`usernet: --enable-seccomp: the kernel refused the seccomp filter (${errno}); ` +
        'it needs seccomp filters with SECCOMP_FILTER_FLAG_TSYNC and SECCOMP_RET_KILL_PROCESS (Linux >= 4.14)']);
      expect(out).not.toContain('seccomp: The following');
      // Released on the way out, as after any other failure.
      expect(existsSync(api)).toBe(false);
    },
  );
});
