/**
 * Port forwards into the guest (issue 5, part 2) with the library on a real
 * TAP and the kernel as the guest: the guest sees the client's real address
 * (loopback clients as 10.0.2.2), a refusing guest resets the client,
 * removal leaves established connections alone, and UDP forwards round-trip.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../../src/index.js';
import { announceSkip, attachTap, e2eUnavailable, spawnInNetns, userNetns, waitFor, type UserNetns } from '../support/netns.js';
import { tcpExchange } from '../support/guest-tools.js';

const skip = announceSkip('e2e port forwards', e2eUnavailable());

let ns: UserNetns | null = null;
let stack: Stack | null = null;
const cleanups: Array<() => void | Promise<void>> = [];

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  stack?.close();
  stack = null;
  await ns?.close();
  ns = null;
});

function hostGlobalAddress(): string | null {
  try {
    const m = /inet ([\d.]+)\//.exec(execFileSync('ip', ['-4', '-o', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' }));
    return m === null ? null : m[1];
  } catch {
    return null;
  }
}

async function freePort(type: 'tcp' | 'udp'): Promise<number> {
  if (type === 'tcp') {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const p = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  }
  const u = dgram.createSocket('udp4');
  await new Promise<void>((r) => u.bind(0, '127.0.0.1', r));
  const p = u.address().port;
  await new Promise<void>((r) => u.close(() => r()));
  return p;
}

async function start(offloads: boolean): Promise<Stack> {
  ns = await userNetns();
  const link = attachTap(ns, { offloads });
  stack = createStack({ link, dns: false });
  return stack;
}

/** A TCP server in the guest that greets each client with the address it sees, then echoes. */
const GUEST_TCP_SERVER = String.raw`
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16); print('listening', flush=True)
def serve(c, a):
    c.sendall(('peer %s\n' % a[0]).encode())
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, a = s.accept(); threading.Thread(target=serve, args=(c, a), daemon=True).start()
`;

const GUEST_UDP_SERVER = String.raw`
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', int(sys.argv[1]))); print('listening', flush=True)
while True:
    d, a = u.recvfrom(65535); u.sendto(('%s|' % a[0]).encode() + d, a)
`;

async function guestServer(script: string, port: number): Promise<void> {
  const proc = spawnInNetns(ns!.pid, ['python3', '-c', script, String(port)]);
  cleanups.push(() => proc.kill());
  await waitFor(() => proc.stdout().includes('listening'), 5000, `guest server: ${proc.stderr()}`);
}


describe.skipIf(skip)('port forwards into the guest', () => {
  for (const offloads of [true, false]) {
    it(`TCP: a loopback client appears as 10.0.2.2, data echoes both ways (offloads ${offloads ? 'on' : 'off'})`, async () => {
      const s = await start(offloads);
      await guestServer(GUEST_TCP_SERVER, 8080);
      const hostPort = await freePort('tcp');
      await s.addForward({ proto: 'tcp', hostAddr: '127.0.0.1', hostPort, guestAddr: '10.0.2.100', guestPort: 8080 });
      const big = 'x'.repeat(300_000);
      const got = await tcpExchange('127.0.0.1', hostPort, big);
      expect(got.startsWith('peer 10.0.2.2\n')).toBe(true);
      expect(got.length).toBe('peer 10.0.2.2\n'.length + big.length);
      expect(s.stats().tcp.inbound).toBe(1);
    });
  }

  it('TCP: a non-loopback client keeps its real address', async () => {
    const addr = hostGlobalAddress();
    if (addr === null) {
      console.warn('*** SKIPPED: the host has no global IPv4 address ***');
      return;
    }
    const s = await start(true);
    await guestServer(GUEST_TCP_SERVER, 8081);
    const hostPort = await freePort('tcp');
    await s.addForward({ proto: 'tcp', hostAddr: '0.0.0.0', hostPort, guestAddr: '10.0.2.100', guestPort: 8081 });
    const got = await tcpExchange(addr, hostPort, 'hello', addr);
    expect(got).toBe(`peer ${addr}\nhello`);
  });

  it('TCP: a refusing guest resets the client; a taken host port is refused; removal keeps open connections', async () => {
    const s = await start(true);
    const hostPort = await freePort('tcp');
    await s.addForward({ proto: 'tcp', hostAddr: '127.0.0.1', hostPort, guestAddr: '10.0.2.100', guestPort: 9999 });
    await expect(tcpExchange('127.0.0.1', hostPort, 'x')).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(s.addForward({ proto: 'tcp', hostAddr: '127.0.0.1', hostPort, guestAddr: '10.0.2.100', guestPort: 1 })).rejects.toBeTruthy();

    await guestServer(GUEST_TCP_SERVER, 8082);
    const port2 = await freePort('tcp');
    const fwd = { proto: 'tcp' as const, hostAddr: '127.0.0.1', hostPort: port2, guestAddr: '10.0.2.100', guestPort: 8082 };
    await s.addForward(fwd);
    const c = net.connect({ host: '127.0.0.1', port: port2 });
    let got = '';
    c.on('data', (d) => (got += d));
    await waitFor(() => got.startsWith('peer'), 5000, 'greeting');
    await s.removeForward(fwd);
    await expect(tcpExchange('127.0.0.1', port2, 'y')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    c.write('still here');
    await waitFor(() => got.endsWith('still here'), 5000, 'echo after removal');
    c.destroy();
  });

  it('UDP: a forward round-trips, and the guest sees 10.0.2.2 for a loopback client', async () => {
    const s = await start(true);
    await guestServer(GUEST_UDP_SERVER, 5353);
    const hostPort = await freePort('udp');
    await s.addForward({ proto: 'udp', hostAddr: '127.0.0.1', hostPort, guestAddr: '10.0.2.100', guestPort: 5353 });
    const c = dgram.createSocket('udp4');
    cleanups.push(() => {
      c.close();
    });
    const replies: string[] = [];
    c.on('message', (m) => replies.push(m.toString()));
    await new Promise<void>((r) => c.bind(0, '127.0.0.1', r));
    // The first datagram may be spent on ARP for the guest; resend until answered.
    for (let i = 0; i < 20 && replies.length === 0; i++) {
      c.send('ping', hostPort, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(replies[0]).toBe('10.0.2.2|ping');
  });
});

describe.skipIf(skip)('the API socket while traffic flows', () => {
  it('200 add/remove cycles through the API socket while a transfer runs through another forward', async () => {
    const { ApiServer } = await import('../../src/api/api-server.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const s = await start(true);
    await guestServer(GUEST_TCP_SERVER, 8090);
    const dir = mkdtempSync(join(tmpdir(), 'usernet-api-'));
    const path = join(dir, 'api.sock');
    const api = new ApiServer({ path, defaultGuestAddr: '10.0.2.100', forwarder: { add: (f) => s.addForward(f), remove: (f) => s.removeForward(f) } });
    await api.listen();
    cleanups.push(async () => {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const request = (body: unknown): Promise<string> =>
      new Promise((resolve, reject) => {
        const c = net.connect(path);
        let out = '';
        c.on('data', (d) => (out += d));
        c.on('end', () => resolve(out));
        c.on('error', reject);
        c.end(`${JSON.stringify(body)}\n`);
      });
    const mainPort = await freePort('tcp');
    expect(await request({ execute: 'add_hostfwd', arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: mainPort, guest_addr: '', guest_port: 8090 } })).toBe('{"return":{"id":1}}');

    // A 64 MiB echo through forward 1 runs while forwards 2..201 come and go.
    const total = 64 << 20;
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    const client = net.connect({ host: '127.0.0.1', port: mainPort });
    let echoed = -'peer 10.0.2.2\n'.length;
    client.on('data', (d) => (echoed += d.length));
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!client.write(chunk)) {
          client.once('drain', pump);
          return;
        }
      }
    };
    client.on('connect', pump);

    const spare = await freePort('tcp');
    for (let i = 0; i < 200; i++) {
      const added = await request({ execute: 'add_hostfwd', arguments: { proto: i % 2 === 0 ? 'tcp' : 'udp', host_addr: '127.0.0.1', host_port: spare, guest_port: 8091 } });
      expect(added).toBe(`{"return":{"id":${i + 2}}}`);
      expect(await request({ execute: 'remove_hostfwd', arguments: { id: i + 2 } })).toBe('{"return":{}}');
    }
    expect(await request({ execute: 'list_hostfwd' })).toBe(
      `{"entries":[{"id":1,"proto":"tcp","host_addr":"127.0.0.1","host_port":${mainPort},"guest_addr":"10.0.2.100","guest_port":8090}]}`,
    );
    await waitFor(() => echoed >= total, 60_000, 'the transfer through forward 1');
    expect(echoed).toBe(total);
    client.destroy();
  }, 120_000);
});
