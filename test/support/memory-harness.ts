/**
 * A stack on a MemoryLink with the guest played by hand-built frames: what
 * the integration tests send in and read back out. Options are the stack's
 * (default: ManualClock at 1000 ms, no DNS, IPv6 on).
 */
import { createStack, ManualClock, MemoryLink, type Stack, type StackOptions } from '../../src/index.js';

export interface Harness {
  stack: Stack;
  /** The stack's side of the link. */
  link: MemoryLink;
  clock: ManualClock;
  sent: Buffer[];
  send(frame: Buffer): void;
  next(pred?: (f: Buffer) => boolean, timeoutMs?: number): Promise<Buffer>;
  /** Frames sent so far that match, without waiting. */
  drain(pred?: (f: Buffer) => boolean): Buffer[];
}

/** `defer` receives the stack's close, for the test's cleanup. */
export function memoryHarness(options: Partial<StackOptions>, defer: (fn: () => void) => void): Harness {
  const link = new MemoryLink({ vnetHdr: false, mtu: 1500 });
  const guest = new MemoryLink({ vnetHdr: false });
  link.peer = guest;
  guest.peer = link;
  const sent: Buffer[] = [];
  let waiter: (() => void) | null = null;
  guest.start((buf, meta, count) => {
    for (let i = 0; i < count; i++) sent.push(Buffer.from(buf.subarray(meta[2 * i], meta[2 * i] + meta[2 * i + 1])));
    waiter?.();
  });
  const clock = new ManualClock(1000);
  const stack = createStack({ link, clock, dns: false, ipv6: true, ...options });
  defer(() => stack.close());
  let read = 0;
  return {
    stack,
    link,
    clock,
    sent,
    send: (f) => link.inject(f),
    async next(pred = () => true, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (read < sent.length) {
          const f = sent[read++];
          if (pred(f)) return f;
        }
        if (Date.now() > deadline) throw new Error('no matching frame from the stack');
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, 20);
        });
        waiter = null;
      }
    },
    drain(pred = () => true) {
      const out = sent.slice(read).filter(pred);
      read = sent.length;
      return out;
    },
  };
}
