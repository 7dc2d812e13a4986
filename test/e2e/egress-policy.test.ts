/**
 * The egress policy through `bin/usernet` (slirp4netns grammar, the kernel as
 * the guest): USERNET_POLICY=FILE; a denied connect that fails at once with
 * EHOSTUNREACH (ICMP administratively prohibited) while the allowed one goes
 * through; get_policy / set_policy on the API socket at runtime; `private`;
 * a rule by name that the test's own resolver (on 127.0.0.1) answers; UDP and
 * TCP over IPv6 as the guest kernel sees them; ping and CIDR rules, IPv4 and
 * IPv6, to addresses that exist only in a namespace the test made, where the
 * helper runs. Nothing leaves the machine.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nameserverLine, startServer, TempResolvConf, zoneHandler } from '../dns/test-server.js';
import { CONNECT_PY, DNS_PY, echoServer, startCliGuest, udpServer, USERNET_BIN } from '../support/guest-tools.js';
import { announceSkip, e2eUnavailable, namedNetns } from '../support/netns.js';
import { perTest } from '../support/per-test.js';
import { apiRequest } from '../support/proc-status.js';

const skip = announceSkip('e2e egress policy', e2eUnavailable());
const t = perTest('usernet-policy-e2e-');
const { defer } = t;

/**
 * UDP to an allowed and a denied port, TCP over IPv6 to an allowed and a denied port; errno names.
 * (No ping here: echo to 10.0.2.2 and fd00::2 is answered by usernet itself, and any other
 * destination would leave the machine if the policy failed; integration tests cover ICMP.)
 */
const KINDS_PY = String.raw`
import errno, json, socket, sys
A = json.loads(sys.argv[1]); res = {}
def err(e): return errno.errorcode.get(e.errno, str(e))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3); u.connect(('10.0.2.2', A['udpOk']))
u.send(b'hello'); res['udpOk'] = u.recv(100).decode()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3); u.connect(('10.0.2.2', A['udpNo']))
try:
    u.send(b'x'); u.recv(100); res['udpNo'] = 'answered'
except OSError as e: res['udpNo'] = err(e)
for k in ('tcp6', 'tcp6No'):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(3)
    try:
        s.connect(('fd00::2', A[k])); res[k] = True
    except OSError as e: res[k] = err(e)
    s.close()
print(json.dumps(res))
`;

/** One raw echo request to each address; what came back first, as [type, code]. */
const PING_PY = String.raw`
import json, socket, struct, sys, time
A = json.loads(sys.argv[1]); res = {}
def csum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
r4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); r4.settimeout(3)
for i, a in enumerate(A['v4']):
    body = struct.pack('!HH', 0x4400 + i, 1) + b'policy!!'
    r4.sendto(struct.pack('!BBH', 8, 0, csum(b'\x08\x00\x00\x00' + body)) + body, (a, 0))
    while True:
        p, frm = r4.recvfrom(1500); ihl = (p[0] & 15) * 4
        if p[ihl] in (0, 3): res[a] = [p[ihl], p[ihl + 1]]; break
r6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6); r6.settimeout(3)
for i, a in enumerate(A['v6']):
    r6.sendto(struct.pack('!BBHHH', 128, 0, 0, 0x6600 + i, 1) + b'policy!!', (a, 0))
    while True:
        p, frm = r6.recvfrom(1500)
        if p[0] in (129, 1): res[a] = [p[0], p[1]]; break
print(json.dumps(res))
`;

type Connects = { results: Array<{ host: string; port: number; ok: boolean; errno?: string; seconds: number }> };

describe.skipIf(skip)(`${USERNET_BIN} with USERNET_POLICY`, () => {
  it('default deny + one allowed port: that connect works, the other fails at once; set_policy swaps them', async () => {
    const allowed = await echoServer();
    defer(() => allowed.close());
    const denied = await echoServer();
    defer(() => denied.close());
    const policy = join(t.dir(), 'egress.policy');
    writeFileSync(policy, `# only the one service\ndefault deny\nallow tcp:10.0.2.2:${allowed.port}\n`);
    const api = join(t.dir(), 'api.sock');
    const g = await startCliGuest({ defer, dir: t.dir(), args: ['--enable-sandbox', '-a', api], env: { USERNET_POLICY: policy } });

    const targets = [['10.0.2.2', allowed.port], ['10.0.2.2', denied.port]];
    const first = await g.py<Connects>(CONNECT_PY, { targets, timeout: 5 });
    expect(first.results[0]).toMatchObject({ ok: true });
    expect(first.results[1]).toMatchObject({ ok: false, errno: 'EHOSTUNREACH' });
    expect(first.results[1]!.seconds).toBeLessThan(1);
    expect(denied.accepted).toBe(0);

    expect(await apiRequest(api, { execute: 'get_policy' })).toBe(`{"return":{"rules":["default deny","allow tcp:10.0.2.2:${allowed.port}"]}}`);
    expect(await apiRequest(api, { execute: 'set_policy', arguments: { rules: ['deny tcp:10.0.2.2:' + allowed.port] } })).toBe(
      `{"return":{"rules":["default allow","deny tcp:10.0.2.2:${allowed.port}"]}}`,
    );
    const second = await g.py<Connects>(CONNECT_PY, { targets, timeout: 5 });
    expect(second.results.map((r) => [r.ok, r.errno ?? null])).toEqual([[false, 'EHOSTUNREACH'], [true, null]]);

    // A bad policy is refused whole, with its line, and the running one stays.
    const bad = await apiRequest(api, { execute: 'set_policy', arguments: { rules: ['allow tcp:10.0.0.0/33'] } });
    expect(bad).toMatch(/^\{"error":\{"desc":"bad request: set_policy: .*line 1: \\"allow tcp:10\.0\.0\.0\/33\\": prefix length 33/);
    expect(await apiRequest(api, { execute: 'set_policy', arguments: {} })).toMatch(/arguments\.rules must be an array/);
    expect(await apiRequest(api, { execute: 'get_policy' })).toBe(`{"return":{"rules":["default allow","deny tcp:10.0.2.2:${allowed.port}"]}}`);
    const stats = JSON.parse(await apiRequest(api, { execute: 'stats' })) as { return: { policy: { rules: Array<{ denied: number }> } } };
    expect(stats.return.policy.rules[0]!.denied).toBe(1);

    // "private" covers the gateway's host-loopback mapping: 10.0.2.2 is 10.0.0.0/8.
    expect(await apiRequest(api, { execute: 'set_policy', arguments: { rules: ['deny private'] } })).toBe('{"return":{"rules":["default allow","deny private"]}}');
    const third = await g.py<Connects>(CONNECT_PY, { targets, timeout: 5 });
    expect(third.results.map((r) => r.errno ?? null)).toEqual(['EHOSTUNREACH', 'EHOSTUNREACH']);
  });

  it('by name: the test’s resolver names the service; the guest reaches it after asking 10.0.2.3, other names get NXDOMAIN', async () => {
    const svc = await echoServer();
    defer(() => svc.close());
    const resolver = await startServer(zoneHandler({ 'svc.test': { A: ['10.0.2.2'], ttl: 120 }, 'other.test': { A: ['10.0.2.2'], ttl: 120 } }), { address: '127.0.0.1' });
    defer(() => resolver.close());
    const conf = new TempResolvConf(nameserverLine(resolver));
    defer(() => conf.remove());
    const policy = join(t.dir(), 'names.policy');
    writeFileSync(policy, `default deny\nallow tcp:svc.test:${svc.port}\n`);
    const g = await startCliGuest({ defer, dir: t.dir(), args: ['--enable-sandbox'], env: { USERNET_POLICY: policy, USERNET_RESOLV_CONF: conf.path } });
    const target = [['10.0.2.2', svc.port]];
    // Before the name was asked, the address is nobody's: denied.
    expect((await g.py<Connects>(CONNECT_PY, { targets: target, timeout: 5 })).results[0]).toMatchObject({ ok: false, errno: 'EHOSTUNREACH' });
    type Dns = { results: Array<{ rcode: string; answers?: Array<{ data: string }> }> };
    const dns = await g.py<Dns>(DNS_PY, { server: '10.0.2.3', timeout: 3, queries: [{ name: 'svc.test', type: 'A', transport: 'udp' }, { name: 'other.test', type: 'A', transport: 'udp' }] });
    expect(dns.results.map((r) => [r.rcode, r.answers?.[0]?.data ?? null])).toEqual([['NOERROR', '10.0.2.2'], ['NXDOMAIN', null]]);
    expect((await g.py<Connects>(CONNECT_PY, { targets: target, timeout: 5 })).results[0]).toMatchObject({ ok: true });
  });

  it('the guest kernel sees the denials: UDP EHOSTUNREACH, TCP over IPv6 EACCES (ICMPv6 administratively prohibited); allowed ones work', async () => {
    const udpOk = await udpServer({ echo: true });
    defer(() => udpOk.close());
    const udpNo = await udpServer({ echo: true });
    defer(() => udpNo.close());
    const tcp6 = await echoServer('::1');
    defer(() => tcp6.close());
    const tcp6No = await echoServer('::1');
    defer(() => tcp6No.close());
    const policy = join(t.dir(), 'kinds.policy');
    writeFileSync(policy, `deny udp:10.0.2.2:${udpNo.port}\ndeny tcp:[fd00::2]:${tcp6No.port}\n`);
    const g = await startCliGuest({ defer, dir: t.dir(), args: ['-6'], env: { USERNET_POLICY: policy } });
    const r = await g.py<Record<string, unknown>>(KINDS_PY, { udpOk: udpOk.port, udpNo: udpNo.port, tcp6: tcp6.port, tcp6No: tcp6No.port });
    expect(r).toEqual({ udpOk: 'hello', udpNo: 'EHOSTUNREACH', tcp6: true, tcp6No: 'EACCES' });
    expect(udpNo.received).toHaveLength(0);
    expect(tcp6No.accepted).toBe(0);
  });

  it('ping and CIDR rules, IPv4 and IPv6, to addresses that exist only in a namespace of the test (the helper runs in it)', async () => {
    // The helper's host side: a namespace with only lo, holding 198.51.100.0/24 and
    // 2001:db8::1-2, and ping sockets allowed. Nothing it sends can leave it.
    const hostside = await namedNetns();
    defer(() => hostside.close());
    await hostside.exec(['ip', 'link', 'set', 'lo', 'up']);
    await hostside.exec(['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'lo']);
    await hostside.exec(['ip', 'addr', 'add', '2001:db8::1/128', 'dev', 'lo']);
    await hostside.exec(['ip', 'addr', 'add', '2001:db8::2/128', 'dev', 'lo']);
    await hostside.exec(['sysctl', '-qw', 'net.ipv4.ping_group_range=0 2147483647']);
    const wrapper = join(t.dir(), 'usernet-in-hostside');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${hostside.name} ${USERNET_BIN} "$@"\n`, { mode: 0o755 });
    const policy = join(t.dir(), 'ping.policy');
    writeFileSync(policy, 'deny icmp:198.51.100.128/25\ndeny icmp:[2001:db8::2]\n');
    const g = await startCliGuest({ defer, dir: t.dir(), bin: wrapper, args: ['-6'], env: { USERNET_POLICY: policy } });
    const r = await g.py<Record<string, number[]>>(PING_PY, { v4: ['198.51.100.1', '198.51.100.200'], v6: ['2001:db8::1', '2001:db8::2'] });
    // [type, code]: echo reply, or destination unreachable administratively prohibited.
    expect(r).toEqual({ '198.51.100.1': [0, 0], '198.51.100.200': [3, 13], '2001:db8::1': [129, 0], '2001:db8::2': [1, 1] });
  });

  it('a policy file that cannot be parsed stops the helper before the ready fd, naming the line', async () => {
    const policy = join(t.dir(), 'bad.policy');
    writeFileSync(policy, 'allow tcp:any\nallow tcp:198.51.100.0/24:99999\n');
    await expect(startCliGuest({ defer, dir: t.dir(), env: { USERNET_POLICY: policy } })).rejects.toThrow(
      /exited 1: [\s\S]*line 2: "allow tcp:198\.51\.100\.0\/24:99999": port 99999/,
    );
  });
});
