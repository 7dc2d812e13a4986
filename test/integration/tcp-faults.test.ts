/**
 * Two stacks over the in-memory link: our own TCP endpoints play the guest's
 * kernel, the usernet stack relays to real sockets on 127.0.0.1, and the link
 * loses, reorders and duplicates frames with a seeded PRNG. Several MB must
 * arrive intact in both directions, and everything must wind down cleanly.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStack, FaultyLink, ManualClock, MemoryLink, type Stack, type StackLimits } from '../../src/index.js';
import { TcpState } from '../../src/tcp/contract.js';
import { TcpFlag } from '../../src/wire/tcp.js';
import { READ_BUDGET_BYTES } from '../../src/nat/native-stream.js';
import { GuestTcp, type GuestConnection } from '../support/guest-tcp.js';

const cleanups: Array<() => void | Promise<void>> = [];
let current: Setup | null = null;
const openFds = (): number => readdirSync('/proc/self/fd').length;
let fdsBefore = 0;
beforeEach(() => {
  fdsBefore = openFds();
});

/**
 * Leak check after each test: the guest resets whatever it still has open,
 * and then (TIME-WAIT included) the flow table must empty, every host
 * connection must have been ended from the stack's side (not by the
 * cleanup), no timer may be left after close, and the process's file
 * descriptors must be back to their count before the test.
 */
afterEach(async () => {
  try {
    const s = current;
    if (s === null) return;
    for (const c of s.guest.connections.values()) {
      if (c.endpoint.state !== TcpState.CLOSED) c.endpoint.abort(s.clock.now());
    }
    s.guest.flush();
    // 100 ms steps: TIME-WAIT (60 s) runs out within the budget.
    for (let i = 0; i < 2000 && s.stack.stats().tcp.flows > 0; i++) {
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      s.clock.advance(100);
      s.guest.tick();
    }
    expect(s.stack.connections()).toEqual([]);
    expect(s.stack.stats().tcp).toMatchObject({ flows: 0, connecting: 0, bufferedBytes: 0 });
    for (let i = 0; i < s.serverSockets.length; i++) {
      expect(await within(s.hostEnded[i], 3000), `host connection ${i} ended by the stack`).toBe(true);
    }
    s.stack.close();
    expect(s.clock.armed).toBe(false);
  } finally {
    current = null;
    while (cleanups.length) await cleanups.pop()!();
  }
  expect(openFds(), 'file descriptors left open').toBe(fdsBefore);
});

/** `p`, or false once `boundMs` of real time passed: a bound that turns a hang into a failure. */
function within<T>(p: Promise<T>, boundMs: number): Promise<T | false> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), boundMs);
  });
  return Promise.race([p, bound]).finally(() => clearTimeout(timer));
}

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Setup {
  stack: Stack;
  guest: GuestTcp;
  clock: ManualClock;
  port: number;
  serverSockets: net.Socket[];
  /** Per server socket: settles when the stack's side ended it (FIN, RST or close). */
  hostEnded: Array<Promise<true>>;
  received: Map<net.Socket, Buffer[]>;
}

async function setup(
  faults: { loss: number; reorder: number; duplicate: number },
  onConnection: (s: net.Socket) => void,
  limits: StackLimits = {},
  bufBytes = 256 << 10,
): Promise<Setup> {
  const stackSide = new MemoryLink({ maxQueuedFrames: 100_000 });
  const guestSide = new MemoryLink({ maxQueuedFrames: 100_000 });
  stackSide.peer = guestSide;
  guestSide.peer = stackSide;
  const stackLink = new FaultyLink(stackSide, { ...faults, seed: 7 });
  const guestLink = new FaultyLink(guestSide, { ...faults, seed: 11 });
  const clock = new ManualClock(1000);
  const stack = createStack({ link: stackLink, clock, dns: false, tcp: { rcvBufBytes: bufBytes, sndBufBytes: bufBytes }, limits });
  const guest = new GuestTcp(guestLink, clock);
  const serverSockets: net.Socket[] = [];
  const hostEnded: Array<Promise<true>> = [];
  const received = new Map<net.Socket, Buffer[]>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    serverSockets.push(s);
    hostEnded.push(
      new Promise((resolve) => {
        for (const event of ['end', 'error', 'close']) s.once(event, () => resolve(true));
      }),
    );
    received.set(s, []);
    s.on('data', (d) => received.get(s)!.push(d));
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    stack.close();
    for (const s of serverSockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  current = { stack, guest, clock, port: (server.address() as net.AddressInfo).port, serverSockets, hostEnded, received };
  return current;
}

/** Moves time in 10 ms steps, letting frames and sockets run, until `done()` or the step budget ends. */
async function run(s: Setup, done: () => boolean, maxSteps = 20_000): Promise<void> {
  let i = 0;
  for (; i < maxSteps && !done(); i++) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    s.clock.advance(10);
    s.guest.tick();
  }
}

describe('TCP through the stack over a lossy, reordering, duplicating link', () => {
  for (const faults of [
    { loss: 0, reorder: 0, duplicate: 0 },
    { loss: 0.02, reorder: 0.05, duplicate: 0.02 },
  ]) {
    it(`moves 4 MB each way intact (loss ${faults.loss}, reorder ${faults.reorder}, dup ${faults.duplicate})`, async () => {
      const up = pattern(4 << 20, 1);
      const down = pattern(4 << 20, 2);
      const s = await setup(faults, (sock) => {
        sock.write(down);
        sock.end();
      });
      const conn: GuestConnection = s.guest.connect('10.0.2.2', s.port);
      conn.write(up);
      conn.end();
      await run(s, () => conn.finReceived && conn.received === down.length && s.serverSockets.length === 1 && sha(Buffer.concat(s.received.get(s.serverSockets[0])!)) === sha(up));
      expect(conn.received).toBe(down.length);
      expect(sha(conn.data)).toBe(sha(down));
      const atHost = Buffer.concat(s.received.get(s.serverSockets[0])!);
      expect(atHost.length).toBe(up.length);
      expect(sha(atHost)).toBe(sha(up));
      // Both closed their sending side: the connection winds down (TIME-WAIT on one side).
      await run(s, () => s.stack.stats().tcp.flows === 0 && conn.closed, 20_000);
      expect(conn.closed).toBe(true);
      expect(s.stack.stats().tcp.flows).toBe(0);
      expect(s.stack.stats().drops.internal_error).toBeUndefined();
    }, 120_000);
  }

  it('a guest that stops reading is probed through a zero window, not dropped, and resumes', async () => {
    const down = pattern(4 << 20, 4);
    const s = await setup({ loss: 0, reorder: 0, duplicate: 0 }, (sock) => sock.write(down));
    const conn = s.guest.connect('10.0.2.2', s.port);
    conn.stalled = true;
    await run(s, () => conn.received >= 1 << 20, 5000);
    // Ten simulated minutes of a closed window: probes keep the connection.
    await run(s, () => false, 60_000);
    expect(s.stack.stats().tcp.flows).toBe(1);
    expect(conn.reset).toBe(false);
    conn.stalled = false;
    conn.settle();
    await run(s, () => conn.received === down.length);
    expect(sha(conn.data)).toBe(sha(down));
  }, 120_000);

  it('a host that sent everything and closed waits for a stalled guest to read it all', async () => {
    const down = pattern(4 << 20, 5);
    const s = await setup({ loss: 0, reorder: 0, duplicate: 0 }, (sock) => {
      sock.write(down);
      sock.end();
    });
    const conn = s.guest.connect('10.0.2.2', s.port);
    conn.stalled = true;
    await run(s, () => false, 60_000);
    expect(s.stack.stats().tcp.flows).toBe(1);
    conn.stalled = false;
    conn.settle();
    await run(s, () => conn.finReceived);
    expect(conn.received).toBe(down.length);
    expect(sha(conn.data)).toBe(sha(down));
  }, 120_000);

  it('a stack-wide budget caps what stalled flows hold together; they all resume when it recovers', async () => {
    const budget = 512 << 10;
    const flows = 8;
    const downs = Array.from({ length: flows }, (_, i) => pattern(2 << 20, 10 + i));
    let next = 0;
    // Send buffers of 2 MiB: without the budget the flows would hold 16 MiB.
    const s = await setup({ loss: 0, reorder: 0, duplicate: 0 }, (sock) => sock.write(downs[next++]), { tcpBufferBytes: budget }, 2 << 20);
    const conns = downs.map(() => s.guest.connect('10.0.2.2', s.port));
    for (const c of conns) c.stalled = true;
    let peak = 0;
    await run(s, () => {
      peak = Math.max(peak, s.stack.stats().tcp.bufferedBytes);
      return false;
    }, 300);
    const stats = s.stack.stats().tcp;
    expect(stats.flows).toBe(flows);
    // A flow notices the budget after the host read that crossed it: one read each at most.
    expect(peak).toBeGreaterThan(budget / 2);
    expect(peak).toBeLessThanOrEqual(budget + flows * READ_BUDGET_BYTES);
    expect(stats.budgetHolds).toBeGreaterThan(0);
    for (const c of conns) {
      c.stalled = false;
      c.settle();
    }
    await run(s, () => conns.every((c, i) => c.received === downs[i].length));
    conns.forEach((c, i) => expect(sha(c.data)).toBe(sha(downs[i])));
    await run(s, () => s.stack.stats().tcp.bufferedBytes === 0, 1000);
    expect(s.stack.stats().tcp.bufferedBytes).toBe(0);
  }, 120_000);

  it('near the budget no flow is offered more window than is left of it; all arrives once the host reads', async () => {
    const budget = 64 << 10;
    const up = pattern(16 << 20, 20);
    const s = await setup({ loss: 0, reorder: 0, duplicate: 0 }, (sock) => sock.pause(), { tcpBufferBytes: budget });
    const conn = s.guest.connect('10.0.2.2', s.port);
    conn.write(up);
    let peak = 0;
    await run(s, () => {
      peak = Math.max(peak, s.stack.stats().tcp.bufferedBytes);
      return false;
    }, 500);
    // The host's kernel buffers are full: our socket holds a backlog.
    expect(peak).toBeGreaterThan(0);
    // Without the budget the backlog would grow to the flow's 256 KiB receive buffer.
    expect(peak).toBeLessThanOrEqual(2 * budget);
    s.serverSockets[0].resume();
    await run(s, () => Buffer.concat(s.received.get(s.serverSockets[0])!).length === up.length);
    expect(sha(Buffer.concat(s.received.get(s.serverSockets[0])!))).toBe(sha(up));
  }, 120_000);

  it('at the flow limit a connection in TIME-WAIT makes room for a new one', async () => {
    // The host closes first, so our side of each connection ends in TIME-WAIT (60 s).
    const s = await setup({ loss: 0, reorder: 0, duplicate: 0 }, (sock) => sock.end('bye'), { tcpFlows: 2 });
    const done: GuestConnection[] = [];
    for (let i = 0; i < 5; i++) {
      const conn = s.guest.connect('10.0.2.2', s.port);
      await run(s, () => conn.finReceived || conn.reset, 2000);
      expect(conn.reset).toBe(false);
      expect(conn.data.toString()).toBe('bye');
      conn.end();
      await run(s, () => s.stack.connections().some((f) => f.state === 'TIME-WAIT' && f.guest.endsWith(`:${conn.localPort}`)), 2000);
      done.push(conn);
    }
    const stats = s.stack.stats().tcp;
    expect(stats.flows).toBe(2);
    expect(stats.timeWaitRecycled).toBe(3);
    expect(stats.rejectedByLimit).toBe(0);
  }, 60_000);

  it('a slow host reader closes the window and nothing is lost (backpressure)', async () => {
    const up = pattern(8 << 20, 3);
    const s = await setup({ loss: 0, reorder: 0, duplicate: 0 }, (sock) => sock.pause());
    const conn = s.guest.connect('10.0.2.2', s.port);
    // The window fields the stack advertises to this connection, in order.
    const windows: number[] = [];
    s.guest.observe = (seg) => {
      if (seg.dstPort === conn.localPort && (seg.flags & (TcpFlag.SYN | TcpFlag.RST)) === 0) windows.push(seg.window);
    };
    conn.write(up);
    await run(s, () => s.serverSockets.length === 1 && conn.endpoint.state === TcpState.ESTABLISHED, 2000);
    // With the host not reading, the guest can only fill the kernel buffers and our receive buffer.
    await run(s, () => false, 300);
    const flow = s.stack.connections()[0];
    expect(flow.guestToHostBytes).toBeLessThan(up.length);
    // The window closed on the wire, and it was open before.
    const firstZero = windows.indexOf(0);
    expect(firstZero).toBeGreaterThan(0);
    expect(windows[0]).toBeGreaterThan(0);
    // Closed since: the guest sent nothing the stack could take (its probes get window 0 back).
    expect(windows.slice(firstZero)).toEqual(windows.slice(firstZero).map(() => 0));
    s.serverSockets[0].resume();
    await run(s, () => Buffer.concat(s.received.get(s.serverSockets[0])!).length === up.length);
    expect(sha(Buffer.concat(s.received.get(s.serverSockets[0])!))).toBe(sha(up));
  }, 120_000);
});
