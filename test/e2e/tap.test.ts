/**
 * TapLink and the attach child against the real kernel: real namespaces, a
 * real TAP, the kernel's IP stack as the peer. Nothing leaves the machine:
 * every namespace is private to one test and deleted after it.
 *
 * Needs root and /dev/net/tun (plus ip, unshare, nsenter, ping). Without them
 * the suite is skipped with a loud SKIPPED warning, never passed silently.
 *
 * The attach child writes its messages to the process's fd 2, which vitest
 * cannot capture; tests about those messages run attach in a small node
 * subprocess and read its stderr.
 *
 * IPv6 --configure (configure.ipv6 of the native attach, not yet wired into
 * TapLink) is checked against the namespace's own view (ip -6), a Router
 * Advertisement written into the TAP, and namespaces where IPv6 cannot be
 * configured (disable_ipv6, MTU below 1280), which must still attach.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, TunFlags } from '../../src/link/native.js';
import { TapLink, TunOffload, offloadNames, type TapError } from '../../src/link/tap.js';

const ADDON = fileURLToPath(new URL('../../build/Release/usernet_native.node', import.meta.url));

function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push('root');
if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
for (const tool of ['ip', 'unshare', 'nsenter', 'ping']) if (!hasTool(tool)) missing.push(tool);
const SKIP = missing.length > 0;
if (SKIP) console.warn(`SKIPPED: test/e2e/tap.test.ts needs ${missing.join(', ')}; the TAP e2e tests did NOT run`);
const NO_SETPRIV = !SKIP && !hasTool('setpriv');
if (NO_SETPRIV) console.warn('SKIPPED: the rootless attach test needs setpriv (util-linux)');

const GATEWAY_MAC = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];
const GUEST_MAC = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x64];
const ip4 = (a: number, b: number, c: number, d: number) => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const GUEST = ip4(10, 0, 2, 100);
const GATEWAY = ip4(10, 0, 2, 2);
const NETMASK = ip4(255, 255, 255, 0);
const configure = { addr: GUEST, netmask: NETMASK, gateway: GATEWAY, mac: Uint8Array.from(GUEST_MAC) };

// ---------------------------------------------------------------------------
// Per-test resources, released in reverse order after each test.

const cleanups: (() => void)[] = [];

afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      fn();
    } catch {
      // best effort: the next cleanup must still run
    }
  }
  delete process.env.USERNET_NO_OFFLOAD;
});

function unique(): string {
  return randomBytes(4).toString('hex');
}

function track(link: TapLink): TapLink {
  cleanups.push(() => link.close());
  return link;
}

function trackProcess(child: ChildProcess): ChildProcess {
  cleanups.push(() => child.kill('SIGKILL'));
  return child;
}

/** A named netns (`ip netns add`), for path mode. */
function makeNetns(): string {
  const name = `usernet-tap-${unique()}`;
  execFileSync('ip', ['netns', 'add', name]);
  cleanups.push(() => execFileSync('ip', ['netns', 'del', name]));
  return name;
}

/** A process in fresh user+net namespaces, as a rootless container runtime makes them (pid mode). */
async function makeUserNetns(): Promise<number> {
  const child = trackProcess(spawn('unshare', ['--user', '--map-root-user', '--net', 'sleep', '1000'], { stdio: 'ignore' }));
  const pid = child.pid as number;
  const ownNet = readlinkSync('/proc/self/ns/net');
  await waitFor(() => {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) !== ownNet && readFileSync(`/proc/${pid}/uid_map`, 'utf8').trim() !== '';
    } catch {
      return false;
    }
  }, 3000);
  return pid;
}

async function waitFor<T>(probe: () => T | undefined | null | false, timeoutMs = 3000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function nsenterJson(pid: number, args: string[]): any {
  return JSON.parse(execFileSync('nsenter', ['-t', String(pid), '-U', '-n', '--preserve-credentials', 'ip', '-j', ...args], { encoding: 'utf8' }));
}

function netnsJson(ns: string, args: string[]): any {
  return JSON.parse(execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8' }) || '[]');
}

interface SubAttach {
  result: { fd?: number; ipv6Errno?: number; message?: string; code?: string; exitStatus?: number };
  stderr: string;
  status: number | null;
}

/** Runs native attach in a fresh node process so that the child's stderr can be read. */
function attachInSubprocess(opts: Record<string, unknown>): SubAttach {
  const script = `
    const n = require(${JSON.stringify(ADDON)});
    const opts = ${JSON.stringify({ usernsPath: null, vnetHdr: false, configure: null, ...opts })};
    if (opts.configure && opts.configure.mac) opts.configure.mac = Uint8Array.from(opts.configure.mac);
    if (opts.configure && opts.configure.ipv6) for (const k of ['addr', 'gateway']) opts.configure.ipv6[k] = Uint8Array.from(opts.configure.ipv6[k]);
    let out;
    try { out = n.attach(opts); }
    catch (e) { out = { message: e.message, code: e.code, exitStatus: e.exitStatus }; }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 });
  return { result: JSON.parse(r.stdout || '{}'), stderr: r.stderr, status: r.status };
}

// ---------------------------------------------------------------------------
// Frames

interface Frame {
  bytes: Uint8Array;
  /** Offset of the Ethernet header (10 with the vnet header). */
  eth: number;
}

function collect(link: TapLink): Frame[] {
  const frames: Frame[] = [];
  const eth = link.vnetHdr ? 10 : 0;
  link.start((buf, meta, count) => {
    // Copies: the batch buffer is reused for the next batch (link.ts).
    for (let i = 0; i < count; i++) frames.push({ bytes: buf.slice(meta[2 * i], meta[2 * i] + meta[2 * i + 1]), eth });
  });
  return frames;
}

const u16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const u32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

function isArpRequestFor(f: Frame, target: number): boolean {
  const b = f.bytes;
  const e = f.eth;
  return b.length >= e + 42 && u16(b, e + 12) === 0x0806 && u16(b, e + 20) === 1 && u32(b, e + 38) === target;
}

function isEchoRequestTo(f: Frame, dstMac: number[], dst: number): boolean {
  const b = f.bytes;
  const e = f.eth;
  return (
    b.length >= e + 42 &&
    dstMac.every((x, i) => b[e + i] === x) &&
    u16(b, e + 12) === 0x0800 &&
    b[e + 23] === 1 && // ICMP
    u32(b, e + 30) === dst &&
    b[e + 14 + ((b[e + 14] & 15) << 2)] === 8 // echo request
  );
}

/** An ARP reply to `request`, "from" the gateway: [eth header, arp body]. */
function arpReply(request: Frame): { eth: Uint8Array; arp: Uint8Array } {
  const r = request.bytes;
  const e = request.eth;
  const requesterMac = [...r.subarray(e + 22, e + 28)];
  const requesterIp = r.subarray(e + 28, e + 32);
  const eth = Uint8Array.from([...requesterMac, ...GATEWAY_MAC, 0x08, 0x06]);
  const arp = new Uint8Array(28);
  arp.set([0, 1, 0x08, 0x00, 6, 4, 0, 2]); // Ethernet, IPv4, reply
  arp.set(GATEWAY_MAC, 8);
  arp.set([10, 0, 2, 2], 14);
  arp.set(requesterMac, 18);
  arp.set(requesterIp, 24);
  return { eth, arp };
}

// ---------------------------------------------------------------------------

describe.skipIf(SKIP)('TAP attach and configure (pid mode: user + net namespace)', () => {
  it.each([65520, 1500])('configures lo, address, MTU %i, MAC and default route like slirp4netns -c', async (mtu) => {
    const pid = await makeUserNetns();
    const link = track(
      TapLink.attach({
        netnsPath: `/proc/${pid}/ns/net`,
        usernsPath: `/proc/${pid}/ns/user`,
        tapName: 'tap0',
        mtu,
        configure,
      }),
    );
    expect(link.mtu).toBe(mtu);
    const info = loadNative().tunInfo(link.fd);
    expect(info).toMatchObject({ name: 'tap0', vnetHdrSize: 10 });
    expect(info!.flags & (TunFlags.TAP | TunFlags.NO_PI | TunFlags.VNET_HDR)).toBe(TunFlags.TAP | TunFlags.NO_PI | TunFlags.VNET_HDR);

    const links: any[] = nsenterJson(pid, ['addr', 'show']);
    const lo = links.find((l) => l.ifname === 'lo');
    expect(lo.flags).toContain('UP');
    expect(lo.addr_info.some((a: any) => a.local === '127.0.0.1')).toBe(true);
    const tap = links.find((l) => l.ifname === 'tap0');
    expect(tap.flags).toContain('UP');
    expect(tap.mtu).toBe(mtu);
    expect(tap.address).toBe('02:00:5e:10:20:64');
    expect(tap.addr_info).toContainEqual(expect.objectContaining({ family: 'inet', local: '10.0.2.100', prefixlen: 24, broadcast: '10.0.2.255' }));

    const routes: any[] = nsenterJson(pid, ['route', 'show']);
    expect(routes).toContainEqual(expect.objectContaining({ dst: 'default', gateway: '10.0.2.2', dev: 'tap0' }));
    expect(routes).toContainEqual(expect.objectContaining({ dst: '10.0.2.0/24', dev: 'tap0', prefsrc: '10.0.2.100' }));
  });

  it('truncates the TAP name to 15 bytes and leaves an unconfigured TAP down', async () => {
    const pid = await makeUserNetns();
    const link = track(
      TapLink.attach({ netnsPath: `/proc/${pid}/ns/net`, usernsPath: `/proc/${pid}/ns/user`, tapName: 'usernet-tap-name-too-long' }),
    );
    expect(loadNative().tunInfo(link.fd)?.name).toBe('usernet-tap-nam');
    const links: any[] = nsenterJson(pid, ['link', 'show']);
    const tap = links.find((l) => l.ifname === 'usernet-tap-nam');
    expect(tap).toBeDefined();
    expect(tap.flags).not.toContain('UP');
  });
});

describe.skipIf(SKIP)('TAP attach (path mode) and failures', () => {
  it('attaches to a persistent TAP made beforehand; a second attach gets EBUSY; it is reusable after close', () => {
    const ns = makeNetns();
    execFileSync('ip', ['-n', ns, 'tuntap', 'add', 'name', 'tap0', 'mode', 'tap']);
    const netnsPath = `/run/netns/${ns}`;
    const link = track(TapLink.attach({ netnsPath, tapName: 'tap0' }));
    const info = loadNative().tunInfo(link.fd);
    expect(info!.flags & TunFlags.PERSIST).toBe(TunFlags.PERSIST);

    const busy = attachInSubprocess({ netnsPath, tapName: 'tap0' });
    expect(busy.result).toEqual({ message: 'child failed(1)', code: 'ERR_USERNET_CHILD_FAILED', exitStatus: 1 });
    expect(busy.stderr).toBe('ioctl(TUNSETIFF): Device or resource busy\n');

    link.close();
    const again = attachInSubprocess({ netnsPath, tapName: 'tap0', vnetHdr: true });
    expect(again.result.fd).toEqual(expect.any(Number));
    // The child's fd number (in the child) is what slirp4netns prints too.
    expect(again.stderr).toMatch(/^sent tapfd=\d+ for tap0\n$/);
    // Still there: persistent devices outlive their users.
    expect(netnsJson(ns, ['link', 'show', 'tap0'])[0].ifname).toBe('tap0');
  });

  it('reports each failing step with slirp4netns’s message and status', async () => {
    const ns = makeNetns();
    const gone = `/nonexistent-usernet-${unique()}/ns/net`;
    const cases: [Record<string, unknown>, string][] = [
      [{ netnsPath: gone, tapName: 'tap0' }, `${gone}: No such file or directory\n`],
      [{ netnsPath: '/proc/999999999/ns/net', tapName: 'tap0' }, '/proc/999999999/ns/net: No such file or directory\n'],
      [{ netnsPath: `/run/netns/${ns}`, usernsPath: gone, tapName: 'tap0' }, `${gone}: No such file or directory\n`],
      // Not a namespace file: open works, setns refuses it.
      [{ netnsPath: '/etc/hostname', tapName: 'tap0' }, 'setns(CLONE_NEWNET): Invalid argument\n'],
      // A bad MTU is refused by the kernel during --configure.
      [
        { netnsPath: `/run/netns/${ns}`, tapName: 'tap1', configure: { mtu: 70000, mac: null, addr: GUEST, netmask: NETMASK, gateway: GATEWAY } },
        'cannot set MTU: Invalid argument\n',
      ],
      // A multicast MAC is not a valid interface address.
      [
        { netnsPath: `/run/netns/${ns}`, tapName: 'tap3', configure: { mtu: 1500, mac: [1, 0, 0, 0, 0, 1], addr: GUEST, netmask: NETMASK, gateway: GATEWAY } },
        'cannot set MAC address: Cannot assign requested address\n',
      ],
      // The gateway outside the (host) route: the kernel refuses the default route.
      [
        { netnsPath: `/run/netns/${ns}`, tapName: 'tap2', configure: { mtu: 1500, mac: null, addr: GUEST, netmask: NETMASK, gateway: ip4(192, 168, 7, 1) } },
        'set route: Network is unreachable\n',
      ],
    ];
    for (const [opts, stderr] of cases) {
      const r = attachInSubprocess(opts);
      expect(r.result, JSON.stringify(opts)).toEqual({ message: 'child failed(1)', code: 'ERR_USERNET_CHILD_FAILED', exitStatus: 1 });
      expect(r.stderr, JSON.stringify(opts)).toBe(stderr);
    }
  });

  it.skipIf(NO_SETPRIV)('works rootless: an unprivileged user joins its own user namespace (and needs to)', () => {
    // Run as nobody, the way a rootless container runtime runs us. /dev/net/tun
    // is 0600 on this machine (0666 on desktop distros), so a private mount
    // namespace bind-mounts a 0666 node over it for this test only.
    const dir = mkdtempSync(join(tmpdir(), 'usernet-rootless-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    chmodSync(dir, 0o755);
    copyFileSync(ADDON, join(dir, 'addon.node'));
    writeFileSync(
      join(dir, 'attach.cjs'),
      `const n = require(${JSON.stringify(join(dir, 'addon.node'))});
       const pid = process.argv[2], withUserns = process.argv[3] === 'userns';
       try {
         const r = n.attach({ netnsPath: '/proc/' + pid + '/ns/net', usernsPath: withUserns ? '/proc/' + pid + '/ns/user' : null,
           tapName: 'tap0', vnetHdr: true, configure: { mtu: 1500, mac: null, addr: ${GUEST}, netmask: ${NETMASK}, gateway: ${GATEWAY} } });
         const inside = require('child_process').execFileSync('nsenter', ['-t', pid, '-U', '-n', '--preserve-credentials', 'ip', '-br', 'addr', 'show', 'tap0'], { encoding: 'utf8' });
         console.log(JSON.stringify({ uid: process.getuid(), offload: n.setOffload(r.fd, 0x0f), inside }));
       } catch (e) { console.log(JSON.stringify({ uid: process.getuid(), message: e.message })); }`,
    );
    writeFileSync(
      join(dir, 'rootless.sh'),
      `unshare --user --map-root-user --net sleep 30 & P=$!
       i=0; while [ "$(cat /proc/$P/uid_map 2>/dev/null)" = "" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done
       "${process.execPath}" "${join(dir, 'attach.cjs')}" $P userns
       "${process.execPath}" "${join(dir, 'attach.cjs')}" $P none
       kill $P`,
    );
    mkdirSync(join(dir, 'dev'));
    const r = spawnSync(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `mount -t tmpfs -o mode=755 tmpfs "${dir}/dev" && mknod -m 666 "${dir}/dev/tun" c 10 200 && ` +
          `mount --bind "${dir}/dev/tun" /dev/net/tun && ` +
          `exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all sh "${dir}/rootless.sh"`,
      ],
      { encoding: 'utf8', timeout: 20000 },
    );
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines, r.stderr).toHaveLength(2);
    expect(lines[0].uid).toBe(65534);
    expect(lines[0].offload).toBe(0);
    expect(lines[0].inside).toMatch(/^tap0\s+UNKNOWN\s+10\.0\.2\.100\/24/);
    // Without joining the user namespace the same user has no say over the netns.
    expect(lines[1]).toEqual({ uid: 65534, message: 'child failed(1)' });
    expect(r.stderr).toMatch(/^sent tapfd=\d+ for tap0\nsetns\(CLONE_NEWNET\): Operation not permitted\n$/);
  });
});

describe.skipIf(SKIP)('TAP frame I/O with the kernel as the peer', () => {
  it.each([
    ['vnet header + offloads', false],
    ['plain frames (USERNET_NO_OFFLOAD=1)', true],
  ])('reads the ARP request of a ping, answers it, and the kernel uses the answer (%s)', async (_name, noOffload) => {
    if (noOffload) process.env.USERNET_NO_OFFLOAD = '1';
    const ns = makeNetns();
    const link = track(TapLink.attach({ netnsPath: `/run/netns/${ns}`, tapName: 'tap0', mtu: 1500, configure }));
    expect(link.vnetHdr).toBe(!noOffload);
    const frames = collect(link);
    trackProcess(spawn('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '3', '10.0.2.2'], { stdio: 'ignore' }));

    const request = await waitFor(() => frames.find((f) => isArpRequestFor(f, GATEWAY)), 3000, 'ARP request');
    const b = request.bytes;
    const e = request.eth;
    expect([...b.subarray(e, e + 6)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect([...b.subarray(e + 6, e + 12)]).toEqual(GUEST_MAC);
    expect(u32(b, e + 28)).toBe(GUEST);
    if (link.vnetHdr) expect([...b.subarray(0, 10)]).toEqual(new Array(10).fill(0)); // no offload for ARP

    const { eth, arp } = arpReply(request);
    const vnet = new Uint8Array(link.vnetHdr ? 10 : 0); // flags 0, GSO_NONE
    let written: number;
    if (link.vnetHdr) {
      // Two slices: [vnet + Ethernet header] from one buffer, the body from another.
      const head = new Uint8Array(64).fill(0xa5);
      head.set(vnet, 16);
      head.set(eth, 26);
      const body = new Uint8Array(100).fill(0xa5);
      body.set(arp, 50);
      written = link.writeBatch([body, head], Uint32Array.from([1, 16, 24, 0, 50, 28]), 1);
    } else {
      const frame = new Uint8Array(200).fill(0xa5);
      frame.set(eth, 100);
      frame.set(arp, 114);
      written = link.writeBatch([frame], Uint32Array.from([0, 100, 42, 0, 0, 0]), 1);
    }
    expect(written).toBe(1);

    const neigh = await waitFor(
      () => netnsJson(ns, ['neigh', 'show', '10.0.2.2', 'dev', 'tap0']).find((n: any) => n.lladdr === '52:55:0a:00:02:02'),
      3000,
      'neighbour entry',
    );
    expect(neigh.state.some((s: string) => ['REACHABLE', 'STALE', 'DELAY'].includes(s))).toBe(true);
    // The echo request that waited for ARP now goes to the MAC we gave.
    await waitFor(() => frames.find((f) => isEchoRequestTo(f, GATEWAY_MAC, GATEWAY)), 3000, 'ICMP echo request');

    expect(link.stats.txFrames).toBe(1);
    expect(link.stats.txBytes).toBe((link.vnetHdr ? 10 : 0) + 42);
    expect(link.stats.txDropped).toBe(0);
    expect(link.stats.rxFrames).toBe(frames.length);
    expect(link.stats.rxBytes).toBe(frames.reduce((s, f) => s + f.bytes.length, 0));
    expect(link.stats.rxErrors).toBe(0);
  });

  it('counts frames the kernel refuses as dropped', () => {
    const ns = makeNetns();
    // No configure: the TAP is down, and a down TAP refuses writes with EIO.
    const link = track(TapLink.attach({ netnsPath: `/run/netns/${ns}`, tapName: 'tap0', offloads: false }));
    const frame = new Uint8Array(60);
    frame.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...GATEWAY_MAC, 0x08, 0x06]);
    const meta = Uint32Array.from([0, 0, 60, 0, 0, 0, 0, 0, 60, 0, 0, 0]);
    expect(link.writeBatch([frame], meta, 2)).toBe(0);
    expect(link.stats.txDropped).toBe(2);
    expect(link.lastTxErrno).toBe(5); // EIO
  });

  it('stops and reports through onError when the device is deleted', async () => {
    const ns = makeNetns();
    const link = track(TapLink.attach({ netnsPath: `/run/netns/${ns}`, tapName: 'tap0', mtu: 1500, configure }));
    const errors: TapError[] = [];
    link.onError = (err) => errors.push(err);
    collect(link);
    execFileSync('ip', ['-n', ns, 'link', 'del', 'tap0']);
    const err = await waitFor(() => errors[0], 3000, 'onError');
    expect(err.code).toBe('ERR_USERNET_TAP_IO');
    expect(err.errno).toBe(77); // EBADFD: the tun fd lost its device
    expect(err.message).toContain('EBADFD');
    expect(link.stats.rxErrors).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toHaveLength(1);
  });
});

describe.skipIf(SKIP)('TAP offloads', () => {
  it('accepts at least CSUM|TSO4|TSO6 with the vnet header', () => {
    const ns = makeNetns();
    const link = track(TapLink.attach({ netnsPath: `/run/netns/${ns}`, tapName: 'tap0' }));
    expect(link.vnetHdr).toBe(true);
    const core = TunOffload.CSUM | TunOffload.TSO4 | TunOffload.TSO6;
    expect(link.offloads & core).toBe(core);
    console.log(`TAP offloads accepted by this kernel: 0x${link.offloads.toString(16)} [${offloadNames(link.offloads).join(', ')}]`);
  });

  it('gives plain frames with USERNET_NO_OFFLOAD=1 or offloads: false, and a bare vnet header on request', () => {
    const ns = makeNetns();
    process.env.USERNET_NO_OFFLOAD = '1';
    const a = TapLink.attach({ netnsPath: `/run/netns/${ns}`, tapName: 'tapa' });
    delete process.env.USERNET_NO_OFFLOAD;
    const b = TapLink.attach({ netnsPath: `/run/netns/${ns}`, tapName: 'tapb', offloads: false });
    const c = TapLink.attach({ netnsPath: `/run/netns/${ns}`, tapName: 'tapc', offloads: false, vnetHdr: true });
    for (const l of [a, b, c]) track(l);
    const native = loadNative();
    for (const l of [a, b]) {
      expect(l.vnetHdr).toBe(false);
      expect(l.offloads).toBe(0);
      expect(native.tunInfo(l.fd)!.flags & TunFlags.VNET_HDR).toBe(0);
    }
    expect(c.vnetHdr).toBe(true);
    expect(c.offloads).toBe(0);
    expect(native.tunInfo(c.fd)!.flags & TunFlags.VNET_HDR).toBe(TunFlags.VNET_HDR);
  });

  it('fromFd adopts an attached fd, detecting the vnet header', () => {
    const ns = makeNetns();
    const native = loadNative();
    const { fd } = native.attach({ netnsPath: `/run/netns/${ns}`, usernsPath: null, tapName: 'tap0', vnetHdr: true, configure: null });
    const link = track(TapLink.fromFd(fd, { mtu: 9000 }));
    expect(link.vnetHdr).toBe(true);
    expect(link.offloads & TunOffload.CSUM).toBe(TunOffload.CSUM);
    expect(link.mtu).toBe(9000);
  });
});

// ---------------------------------------------------------------------------
// IPv6 --configure

/** fd00::100/64 via fe80::2, as a test network's guest. */
const GUEST6 = Uint8Array.from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
const GATEWAY6 = Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
const configure6 = { addr: GUEST6, prefixLength: 64, gateway: GATEWAY6 };
const EACCES = 13;
const EINVAL = 22;

/** native attach with configure.ipv6 (TapLink does not pass it yet); the fd is closed after the test. */
function attach6(netnsPath: string, usernsPath: string | null, mtu = 1500, tapName = 'tap0') {
  const r = loadNative().attach({
    netnsPath,
    usernsPath,
    tapName,
    vnetHdr: false,
    configure: { mtu, mac: Uint8Array.from(GUEST_MAC), addr: GUEST, netmask: NETMASK, gateway: GATEWAY, ipv6: configure6 },
  });
  cleanups.push(() => closeSync(r.fd));
  return r;
}

/** An ICMPv6 Router Advertisement from fe80::2 to ff02::1 (hop limit 77, router lifetime 1800 s, MTU option 1400). */
function routerAdvertisement(): Uint8Array {
  const allNodes = Uint8Array.from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  const ra = new Uint8Array(16 + 8);
  ra[0] = 134; // Router Advertisement
  ra[4] = 77; // cur hop limit
  ra[6] = 1800 >> 8;
  ra[7] = 1800 & 0xff; // router lifetime
  ra.set([5, 1, 0, 0, 0, 0, 1400 >> 8, 1400 & 0xff], 16); // MTU option
  const pseudo = new Uint8Array(40 + ra.length);
  pseudo.set(GATEWAY6, 0);
  pseudo.set(allNodes, 16);
  pseudo[35] = ra.length;
  pseudo[39] = 58;
  pseudo.set(ra, 40);
  let sum = 0;
  for (let i = 0; i < pseudo.length; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  ra[2] = (~sum >> 8) & 0xff;
  ra[3] = ~sum & 0xff;
  const frame = new Uint8Array(14 + 40 + ra.length);
  frame.set([0x33, 0x33, 0, 0, 0, 1, ...GATEWAY_MAC, 0x86, 0xdd]);
  frame.set([0x60, 0, 0, 0, 0, ra.length, 58, 255], 14); // version 6, payload length, ICMPv6, hop limit 255
  frame.set(GATEWAY6, 22);
  frame.set(allNodes, 38);
  frame.set(ra, 54);
  return frame;
}

describe.skipIf(SKIP)('TAP attach: IPv6 --configure', () => {
  it('adds the address without DAD (never tentative, a usable source at once) and a static default route via fe80::2', async () => {
    const pid = await makeUserNetns();
    const r = attach6(`/proc/${pid}/ns/net`, `/proc/${pid}/ns/user`);
    expect(r.ipv6Errno).toBe(0);
    const [tap] = nsenterJson(pid, ['-6', 'addr', 'show', 'dev', 'tap0']);
    const global = tap.addr_info.find((a: any) => a.local === 'fd00::100');
    expect(global).toMatchObject({ family: 'inet6', prefixlen: 64, scope: 'global', nodad: true });
    expect(global.tentative).toBeUndefined();
    const routes: any[] = nsenterJson(pid, ['-6', 'route', 'show']);
    expect(routes).toContainEqual(expect.objectContaining({ dst: 'default', gateway: 'fe80::2', dev: 'tap0', protocol: 'static', metric: 1023 }));
    expect(routes).toContainEqual(expect.objectContaining({ dst: 'fd00::/64', dev: 'tap0' }));
    // The kernel picks it as the source for anything routed out, right away.
    const [get] = nsenterJson(pid, ['-6', 'route', 'get', '2001:db8::1']);
    expect(get).toMatchObject({ gateway: 'fe80::2', dev: 'tap0', prefsrc: 'fd00::100' });
    // IPv4 is configured as without IPv6.
    const [tap4] = nsenterJson(pid, ['-4', 'addr', 'show', 'dev', 'tap0']);
    expect(tap4.addr_info).toContainEqual(expect.objectContaining({ local: '10.0.2.100', prefixlen: 24 }));
    expect(nsenterJson(pid, ['route', 'show'])).toContainEqual(expect.objectContaining({ dst: 'default', gateway: '10.0.2.2', dev: 'tap0' }));
  });

  it('a Router Advertisement from the gateway is processed in full; its route (proto ra, 1024) coexists with ours', async () => {
    const ns = makeNetns();
    const r = attach6(`/run/netns/${ns}`, null);
    expect(r.ipv6Errno).toBe(0);
    writeSync(r.fd, routerAdvertisement());
    const sysctl = (key: string) => execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-n', key], { encoding: 'utf8' }).trim();
    // Had our route the RA's metric, the kernel would fail to add its own
    // (EEXIST) and drop the rest of the RA: no hop limit, no MTU (tap.c).
    await waitFor(() => sysctl('net.ipv6.conf.tap0.hop_limit') === '77', 3000, 'the RA hop limit');
    expect(sysctl('net.ipv6.conf.tap0.mtu')).toBe('1400');
    const defaults = netnsJson(ns, ['-6', 'route', 'show', 'default']).map((d: any) => [d.protocol, d.metric, d.gateway, d.dev]);
    expect(defaults).toEqual(
      expect.arrayContaining([
        ['static', 1023, 'fe80::2', 'tap0'],
        ['ra', 1024, 'fe80::2', 'tap0'],
      ]),
    );
    expect(defaults).toHaveLength(2);
    const [get] = netnsJson(ns, ['-6', 'route', 'get', '2001:db8::1']);
    expect(get).toMatchObject({ protocol: 'static', metric: 1023, prefsrc: 'fd00::100' });
  });

  it('takes an existing default route of ours as done (EEXIST) and an existing address as updated (NODAD)', () => {
    const ns = makeNetns();
    // A persistent TAP someone configured before (IPv6 only: IPv4 would fail
    // slirp4netns's 'set route' step, as it does there).
    const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);
    ip('tuntap', 'add', 'name', 'tap0', 'mode', 'tap');
    ip('link', 'set', 'tap0', 'up');
    ip('-6', 'addr', 'add', 'fd00::100/64', 'dev', 'tap0');
    ip('-6', 'route', 'add', 'default', 'via', 'fe80::2', 'dev', 'tap0', 'proto', 'static', 'metric', '1023');
    const r = attach6(`/run/netns/${ns}`, null);
    expect(r.ipv6Errno).toBe(0);
    expect(netnsJson(ns, ['-6', 'route', 'show', 'default'])).toHaveLength(1);
    const [tap] = netnsJson(ns, ['-6', 'addr', 'show', 'dev', 'tap0']);
    expect(tap.addr_info.filter((a: any) => a.local === 'fd00::100')).toEqual([expect.objectContaining({ prefixlen: 64, nodad: true })]);
  });

  it('still attaches with IPv6 disabled in the namespace, reporting EACCES and printing nothing more', () => {
    const ns = makeNetns();
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    const sub = attachInSubprocess({
      netnsPath: `/run/netns/${ns}`,
      tapName: 'tap0',
      configure: { mtu: 1500, mac: null, addr: GUEST, netmask: NETMASK, gateway: GATEWAY, ipv6: { addr: [...GUEST6], prefixLength: 64, gateway: [...GATEWAY6] } },
    });
    expect(sub.result).toEqual({ fd: expect.any(Number), vnetHdr: false, ipv6Errno: EACCES });
    expect(sub.stderr).toMatch(/^sent tapfd=\d+ for tap0\n$/);
    // In this process too, and the IPv4 side is configured.
    const r = attach6(`/run/netns/${ns}`, null, 1500, 'tap1');
    expect(r.ipv6Errno).toBe(EACCES);
    const [tap] = netnsJson(ns, ['addr', 'show', 'dev', 'tap1']);
    expect(tap.addr_info).toContainEqual(expect.objectContaining({ family: 'inet', local: '10.0.2.100' }));
    expect(tap.addr_info.some((a: any) => a.family === 'inet6')).toBe(false);
  });

  it('still attaches with an MTU below 1280 (no IPv6 on such a link), reporting EINVAL', () => {
    const ns = makeNetns();
    const r = attach6(`/run/netns/${ns}`, null, 1000);
    expect(r.ipv6Errno).toBe(EINVAL);
    const [tap] = netnsJson(ns, ['addr', 'show', 'dev', 'tap0']);
    expect(tap.mtu).toBe(1000);
    expect(tap.addr_info).toContainEqual(expect.objectContaining({ family: 'inet', local: '10.0.2.100' }));
    expect(netnsJson(ns, ['route', 'show'])).toContainEqual(expect.objectContaining({ dst: 'default', gateway: '10.0.2.2' }));
  });

  it('without configure.ipv6: ipv6Errno 0, no IPv6 address or route of ours', () => {
    const ns = makeNetns();
    const { fd, ipv6Errno } = loadNative().attach({
      netnsPath: `/run/netns/${ns}`,
      usernsPath: null,
      tapName: 'tap0',
      vnetHdr: false,
      configure: { mtu: 1500, mac: null, addr: GUEST, netmask: NETMASK, gateway: GATEWAY, ipv6: null },
    });
    cleanups.push(() => closeSync(fd));
    expect(ipv6Errno).toBe(0);
    const [tap] = netnsJson(ns, ['-6', 'addr', 'show', 'dev', 'tap0']);
    expect((tap?.addr_info ?? []).filter((a: any) => a.scope === 'global')).toEqual([]);
    expect(netnsJson(ns, ['-6', 'route', 'show', 'default'])).toEqual([]);
  });

  it('checks configure.ipv6 before forking: 16-byte addresses, prefixLength <= 128', () => {
    const base = { netnsPath: '/nonexistent', usernsPath: null, tapName: 'tap0', vnetHdr: false };
    const cfg = { mtu: 1500, mac: null, addr: GUEST, netmask: NETMASK, gateway: GATEWAY };
    const attach = (ipv6: unknown) => loadNative().attach({ ...base, configure: { ...cfg, ipv6 } as any });
    expect(() => attach({ addr: new Uint8Array(4), prefixLength: 64, gateway: GATEWAY6 })).toThrow(RangeError);
    expect(() => attach({ addr: GUEST6, prefixLength: 129, gateway: GATEWAY6 })).toThrow(RangeError);
    expect(() => attach({ addr: GUEST6, prefixLength: 64 })).toThrow(TypeError);
    expect(() => attach('fd00::100')).toThrow(TypeError);
  });
});
