/**
 * --outbound-addr (host sockets bound to a chosen local address) and UDP GSO
 * super-frames from the guest, with the kernel as the guest.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../../src/index.js';
import { announceSkip, attachTap, e2eUnavailable, userNetns, waitFor, type UserNetns } from '../support/netns.js';

const skip = announceSkip('e2e --outbound-addr and USO', e2eUnavailable());

/** The host's first global IPv4 address and its interface, if it has one. */
function hostAddress(): { address: string; dev: string } | null {
  try {
    const out = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' });
    const m = /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//m.exec(out);
    return m === null ? null : { dev: m[1], address: m[2] };
  } catch {
    return null;
  }
}

let ns: UserNetns | null = null;
let stack: Stack | null = null;
const closers: Array<() => void> = [];

afterEach(async () => {
  while (closers.length) closers.pop()!();
  stack?.close();
  stack = null;
  await ns?.close();
  ns = null;
});

async function attach(outboundAddress?: string): Promise<Stack> {
  ns = await userNetns();
  const link = attachTap(ns);
  stack = createStack({ link, outboundAddress, dns: false });
  return stack;
}

const host = hostAddress();

describe.skipIf(skip)('outbound address and UDP GSO', () => {
  it.skipIf(host === null)('--outbound-addr: TCP and UDP to 10.0.2.2 leave from the chosen address', async () => {
    const h = host!;
    await attach(h.address);
    const seen: string[] = [];
    const server = net.createServer((s) => {
      seen.push(s.remoteAddress ?? '');
      s.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    const port = (server.address() as net.AddressInfo).port;
    const udp = dgram.createSocket('udp4');
    const udpSeen: string[] = [];
    udp.on('message', (m, r) => {
      udpSeen.push(r.address);
      udp.send(m, r.port, r.address);
    });
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    closers.push(() => udp.close());
    const uport = udp.address().port;
    const script = [
      'import socket, sys',
      `t = socket.create_connection(('10.0.2.2', ${port}), timeout=5); print(t.recv(10).decode())`,
      "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)",
      `u.sendto(b'ping', ('10.0.2.2', ${uport})); print(u.recvfrom(100)[0].decode())`,
    ].join('\n');
    const r = await ns!.exec(['python3', '-c', script]);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual(['ok', 'ping']);
    expect(seen).toEqual([h.address]);
    expect(udpSeen).toEqual([h.address]);
  });

  it('splits a UDP GSO super-frame from the guest into its datagrams', async () => {
    const s = await attach();
    const udp = dgram.createSocket('udp4');
    const got: number[] = [];
    udp.on('message', (m) => got.push(m.length));
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    closers.push(() => udp.close());
    const uport = udp.address().port;
    // UDP_SEGMENT (103): one 14,000-byte send becomes ten 1,400-byte datagrams.
    const script = [
      'import socket',
      'u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      'u.setsockopt(17, 103, 1400)',
      `u.sendto(bytes(14000), ('10.0.2.2', ${uport}))`,
    ].join('\n');
    await ns!.exec(['python3', '-c', script]);
    await waitFor(() => got.length === 10, 5000, 'ten datagrams');
    expect(got).toEqual(Array(10).fill(1400));
    const link = s.stats().link;
    expect(link.rxFrames).toBeGreaterThan(0);
    // With USO accepted by the TAP the ten datagrams came as one super-frame.
    console.log(`USO super-frames split: ${s.stats().udp.gsoSuperFrames}`);
  });
});
