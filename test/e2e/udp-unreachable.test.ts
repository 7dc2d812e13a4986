/**
 * ICMP port unreachable for UDP: the host's kernel refuses a datagram, the
 * relay learns it through IP_RECVERR, and the guest gets the same error —
 * while its mapping stays unconnected (replies from anyone still arrive).
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../../src/index.js';
import { announceSkip, attachTap, e2eUnavailable, userNetns, type UserNetns } from '../support/netns.js';

const skip = announceSkip('e2e UDP port unreachable', e2eUnavailable());

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

async function closedUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe.skipIf(skip)('UDP errors from the host network', () => {
  for (const offloads of [true, false]) {
    it(`a closed host port is ECONNREFUSED in the guest, and the mapping keeps working (offloads ${offloads ? 'on' : 'off'})`, async () => {
      ns = await userNetns();
      const link = attachTap(ns, { offloads });
      stack = createStack({ link, dns: false });
      const closed = await closedUdpPort();
      const echo = dgram.createSocket('udp4');
      echo.on('message', (m, r) => echo.send(m, r.port, r.address));
      await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
      closers.push(() => echo.close());
      const script = [
        'import socket, errno',
        'u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)',
        `u.connect(('10.0.2.2', ${closed})); u.send(b'anyone?')`,
        'try:',
        '    u.recv(100); print("answer")',
        'except ConnectionRefusedError: print("refused")',
        'except socket.timeout: print("timeout")',
        // A mapping that was refused once still reaches a live server afterwards.
        `u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u2.settimeout(3); u2.sendto(b'hi', ('10.0.2.2', ${closed})); u2.sendto(b'echo me', ('10.0.2.2', ${echo.address().port}))`,
        'print(u2.recvfrom(100)[0].decode())',
      ].join('\n');
      const r = await ns.exec(['python3', '-c', script]);
      expect(r.stdout.trim().split('\n')).toEqual(['refused', 'echo me']);
      expect(stack.stats().udp.unreachableFromHost).toBeGreaterThanOrEqual(1);
      expect(stack.stats().icmpErrors.unreachableSent).toBeGreaterThanOrEqual(1);
    });
  }
});
