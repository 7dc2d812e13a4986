/**
 * The library on a real TAP: createStack over TapLink.attach, the guest
 * kernel in a namespace this test makes, and the stack's own counters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, type Stack } from '../../src/index.js';
import { announceSkip, attachTap, e2eUnavailable, userNetns, type UserNetns } from '../support/netns.js';

const skip = announceSkip('e2e library on a TAP', e2eUnavailable());

let ns: UserNetns | null = null;
let stack: Stack | null = null;

afterEach(async () => {
  stack?.close();
  stack = null;
  await ns?.close();
  ns = null;
});

const FLOOD = [
  'import os, random, socket',
  'random.seed(11)',
  "s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('tap0', 0))",
  "gw = bytes.fromhex('52550a000202'); me = s.getsockname()[4]",
  'def ip(total, ihl=5, sumok=False):',
  "    h = bytes([0x40 | ihl, 0]) + total.to_bytes(2, 'big') + bytes(8) + bytes([10, 0, 2, 100, 10, 0, 2, 2])",
  '    return h',
  'frames = []',
  'for i in range(500):',
  '    frames.append(os.urandom(random.randint(1, 200)))',
  "    frames.append(gw + me + b'\\x08\\x00' + ip(random.randint(0, 65535)) + os.urandom(random.randint(0, 40)))",
  "    frames.append(gw + me + b'\\x08\\x00' + ip(40, ihl=random.randint(0, 4)))",
  "    frames.append(gw + me + b'\\x08\\x06' + os.urandom(random.randint(0, 27)))",
  'sent = 0',
  'for f in frames:',
  '    try: s.send(f); sent += 1',
  '    except OSError: pass',
  'print(sent)',
].join('\n');

describe.skipIf(skip)('createStack on a real TAP', () => {
  for (const offloads of [true, false]) {
    it(`counts and drops hostile frames while ping keeps answering (offloads ${offloads ? 'on' : 'off'})`, async () => {
      ns = await userNetns();
      const link = attachTap(ns, { offloads });
      expect(link.vnetHdr).toBe(offloads);
      stack = createStack({ link });
      const pinged = await ns.run(['ping', '-c', '2', '-i', '0.2', '-W', '3', '10.0.2.2']);
      expect(pinged.code, pinged.stdout).toBe(0);
      const before = stack.stats();
      expect(before.icmp.echoReplies).toBeGreaterThanOrEqual(2);

      const flood = await ns.exec(['python3', '-c', FLOOD], { timeoutMs: 30_000 });
      expect(Number(flood.stdout.trim())).toBeGreaterThan(1500);
      const again = await ns.run(['ping', '-c', '1', '-W', '3', '-s', '2000', '10.0.2.3']);
      expect(again.code, again.stdout).toBe(0);

      const after = stack.stats();
      expect(after.drops.internal_error).toBeUndefined();
      // The TAP may overflow under the flood; every hostile frame that reached
      // the stack must have been dropped (a few frames belong to the pings).
      const arrived = after.rx.frames - before.rx.frames;
      expect(arrived).toBeGreaterThan(500);
      expect(after.dropsTotal - before.dropsTotal).toBeGreaterThanOrEqual(arrived - 20);
      expect(after.drops.ipv4_bad_header_len).toBeGreaterThan(0);
      expect(after.drops.arp_malformed).toBeGreaterThan(0);
      expect(after.reassembly.reassembled).toBeGreaterThanOrEqual(1);
    });
  }
});
