/**
 * The TCP NAT's forwarder behaviour with the guest's side played by hand-built
 * segments and the host side by real sockets on 127.0.0.1 (or a fake host for
 * errors loopback cannot produce).
 *
 * Every test ends the connections it opened, and the leak check after it
 * (lwIP style) wants the flow table empty, no host connect pending, every
 * host connection ended from the stack's side (not by the cleanup) and the
 * process's file descriptors back to where the test started.
 */
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type HostNetwork } from '../../src/index.js';
import { memoryHarness, type Harness } from '../support/memory-harness.js';
import { realHost } from '../../src/nat/host.js';
import { ipText, linuxSynOptions, parseTcpFrame, tcpFrame } from '../support/frames.js';

const SYN = 2;
const RST = 4;
const ACK = 16;
const PSH = 8;
const FIN = 1;

const cleanups: Array<() => void | Promise<void>> = [];
const harnesses: Harness[] = [];
/** Per host-side socket of the test's listeners: settles when the stack's side ended it. */
const accepted: Array<Promise<true>> = [];
/** Sockets a fake host handed to the stack. */
const fakeSockets: net.Socket[] = [];

const openFds = (): number => readdirSync('/proc/self/fd').length;
let fdsBefore = 0;
beforeEach(() => {
  fdsBefore = openFds();
});

afterEach(async () => {
  const stacks = harnesses.splice(0);
  try {
    // The stack's side ends each host connection (FIN or RST) once the guest
    // let go of it. The bound only turns a leak into a failure. A listener may
    // accept a connection the stack already ended a turn later: look again.
    for (let checked = 0; checked < accepted.length; checked++) {
      expect(await within(accepted[checked], 3000), `host connection ${checked} ended by the stack`).toBe(true);
    }
    for (const h of stacks) {
      expect(h.stack.connections()).toEqual([]);
      expect(h.stack.stats().tcp).toMatchObject({ flows: 0, connecting: 0 });
    }
    expect(fakeSockets.map((s) => s.destroyed)).toEqual(fakeSockets.map(() => true));
  } finally {
    while (cleanups.length) await cleanups.pop()!();
    accepted.length = 0;
    fakeSockets.length = 0;
  }
  // The cleanups closed the stacks.
  for (const h of stacks) expect(h.clock.armed).toBe(false);
  expect(openFds(), 'file descriptors left open').toBe(fdsBefore);
});

function harness(options: { disableHostLoopback?: boolean; host?: HostNetwork; limits?: { tcpFlows?: number; tcpConnecting?: number; tcpConnectTimeoutMs?: number } } = {}): Harness {
  const h = memoryHarness({ ipv6: false, ...options }, (fn) => cleanups.push(fn));
  harnesses.push(h);
  return h;
}

/** Settles when the peer ends `s`: FIN, RST or close. */
function endedByPeer(s: net.Socket): Promise<true> {
  return new Promise((resolve) => {
    const done = () => resolve(true);
    s.once('end', done);
    s.once('error', done);
    s.once('close', done);
  });
}

/** `p`, or false once `boundMs` of real time passed: a bound that turns a hang into a failure. */
function within<T>(p: Promise<T>, boundMs: number): Promise<T | false> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), boundMs);
  });
  return Promise.race([p, bound]).finally(() => clearTimeout(timer));
}

async function listener(onConnection: (s: net.Socket) => void = () => {}): Promise<{ port: number; connections: net.Socket[]; accepts(n: number): Promise<void> }> {
  const connections: net.Socket[] = [];
  const waiters: Array<() => void> = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    connections.push(s);
    accepted.push(endedByPeer(s));
    s.on('error', () => {}); // the guest's RST arrives as ECONNRESET
    onConnection(s);
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const c of connections) c.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  /** Waits until the listener has accepted `n` connections (the kernel may finish a handshake before Node reports it). */
  async function accepts(n: number): Promise<void> {
    while (connections.length < n) await new Promise<void>((r) => waiters.push(r));
  }
  return { port: (server.address() as net.AddressInfo).port, connections, accepts };
}

/** The real host, counting the connects the stack asks of it (made synchronously on the SYN). */
function countingHost(): { host: HostNetwork; connects: () => number } {
  let n = 0;
  return {
    host: {
      ...realHost,
      connectTcp(o) {
        n++;
        return realHost.connectTcp(o);
      },
    },
    connects: () => n,
  };
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const isTcp = (f: Buffer) => f.readUInt16BE(12) === 0x0800 && f[23] === 6;
const isIcmp = (f: Buffer) => f.readUInt16BE(12) === 0x0800 && f[23] === 1;

describe('TCP forwarder pattern (compat §4.6)', () => {
  it('answers SYN-ACK only after the host accepted, then relays data both ways', async () => {
    const accepted: net.Socket[] = [];
    const { port } = await listener((s) => accepted.push(s));
    const h = harness();
    h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 40000, dstPort: port, seq: 5000, flags: SYN, options: linuxSynOptions() }));
    const synAck = parseTcpFrame(await h.next(isTcp));
    expect(accepted).toHaveLength(1);
    expect(synAck.flags).toBe(SYN | ACK);
    expect(synAck.src).toBe('10.0.2.2');
    expect(synAck.srcPort).toBe(port);
    expect(synAck.ack).toBe(5001);
    const ourSeq = synAck.seq;
    h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 40000, dstPort: port, seq: 5001, ack: ourSeq + 1, flags: ACK | PSH, data: Buffer.from('hello host') }));
    const got = await new Promise<Buffer>((r) => accepted[0].once('data', r));
    expect(got.toString()).toBe('hello host');
    accepted[0].write('hello guest');
    const data = parseTcpFrame(await h.next((f) => isTcp(f) && parseTcpFrame(f).data.length > 0));
    expect(data.data.toString()).toBe('hello guest');
    expect(data.seq).toBe(ourSeq + 1);
    expect(data.ack).toBe(5011);
    expect(h.stack.connections()).toMatchObject([{ guest: '10.0.2.100:40000', remote: `10.0.2.2:${port}`, host: `127.0.0.1:${port}`, state: 'ESTABLISHED', guestToHostBytes: 10, hostToGuestBytes: 11 }]);
    // Guest RST: the host socket is torn down and the flow forgotten.
    const closed = new Promise((r) => accepted[0].once('close', r));
    h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 40000, dstPort: port, seq: 5011, flags: RST }));
    await closed;
    // The flow was released when the RST was processed, before the host socket closed.
    expect(h.stack.stats().tcp.flows).toBe(0);
  });

  it('a refused host port gives RST+ACK acknowledging the SYN', async () => {
    const port = await closedPort();
    const h = harness();
    h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 40001, dstPort: port, seq: 777, flags: SYN, options: linuxSynOptions() }));
    const rst = parseTcpFrame(await h.next(isTcp));
    expect(rst.flags).toBe(RST | ACK);
    expect(rst.seq).toBe(0);
    expect(rst.ack).toBe(778);
    expect(h.stack.stats().tcp).toMatchObject({ flows: 0, connecting: 0, refused: 1 });
  });

  it('ignores retransmitted SYNs while the host connect is pending', async () => {
    const { port, connections } = await listener();
    const { host, connects } = countingHost();
    const h = harness({ host });
    const syn = tcpFrame({ dst: '10.0.2.2', srcPort: 40002, dstPort: port, seq: 1, flags: SYN, options: linuxSynOptions() });
    h.send(syn);
    h.send(syn);
    h.send(syn);
    const synAck = parseTcpFrame(await h.next(isTcp));
    expect(synAck.flags).toBe(SYN | ACK);
    // The three SYNs were processed in one batch, each connect is asked for synchronously:
    // one connect means the copies were dropped, not merely late.
    expect(connects()).toBe(1);
    expect(h.stack.stats().tcp.opened).toBe(1);
    // The guest resets; the host socket ending proves every earlier frame was handled,
    // and nothing but the one SYN-ACK went out before it.
    h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 40002, dstPort: port, seq: 2, flags: RST }));
    await endedByPeer(connections[0]);
    expect(h.sent.filter(isTcp).map((f) => parseTcpFrame(f).flags)).toEqual([SYN | ACK]);
    expect(connections).toHaveLength(1);
  });

  it('EHOSTUNREACH becomes ICMP host unreachable quoting the SYN; other errors net unreachable', async () => {
    for (const [code, icmpCode] of [['EHOSTUNREACH', 1], ['ENETUNREACH', 0], ['EACCES', 0]] as const) {
      const host: HostNetwork = {
        ...realHost,
        connectTcp() {
          const s = new net.Socket();
          fakeSockets.push(s);
          setImmediate(() => s.destroy(Object.assign(new Error(code), { code })));
          return s;
        },
      };
      const h = harness({ host });
      h.send(tcpFrame({ dst: '192.0.2.1', srcPort: 40003, dstPort: 80, seq: 42, flags: SYN, options: linuxSynOptions() }));
      const icmp = await h.next(isIcmp);
      expect(icmp[34]).toBe(3);
      expect(icmp[35]).toBe(icmpCode);
      expect(ipText(icmp, 26)).toBe('10.0.2.2');
      // The quoted datagram is the SYN: its IP header and TCP ports and sequence number.
      const quoted = icmp.subarray(42);
      expect(ipText(quoted, 16)).toBe('192.0.2.1');
      expect(quoted.readUInt16BE(20)).toBe(40003);
      expect(quoted.readUInt32BE(24)).toBe(42);
      expect(h.stack.stats().tcp.connecting).toBe(0);
    }
  });

  it('a host that never answers costs the guest an RST after the connect timeout', async () => {
    const sockets: net.Socket[] = [];
    const host: HostNetwork = {
      ...realHost,
      connectTcp() {
        const s = new net.Socket();
        sockets.push(s);
        fakeSockets.push(s);
        return s;
      },
    };
    const h = harness({ host, limits: { tcpConnectTimeoutMs: 5000 } });
    h.send(tcpFrame({ dst: '192.0.2.1', srcPort: 40004, dstPort: 80, seq: 9, flags: SYN, options: linuxSynOptions() }));
    // The link delivers on the next turn; the connect is asked for while the SYN is handled.
    await new Promise((r) => setImmediate(r));
    expect(sockets).toHaveLength(1);
    expect(h.stack.stats().tcp.connecting).toBe(1);
    h.clock.advance(4999);
    await new Promise((r) => setImmediate(r));
    expect(h.drain(isTcp)).toEqual([]);
    expect(sockets[0].destroyed).toBe(false);
    h.clock.advance(1);
    const rst = parseTcpFrame(await h.next(isTcp));
    expect(rst.flags).toBe(RST | ACK);
    expect(rst.ack).toBe(10);
    expect(sockets[0].destroyed).toBe(true);
    expect(h.stack.stats().tcp).toMatchObject({ flows: 0, connecting: 0, timedOut: 1 });
  });

  it('answers segments of unknown connections with RST (RFC 9293 §3.10.7.1)', async () => {
    const h = harness();
    h.send(tcpFrame({ dst: '192.0.2.1', srcPort: 40005, dstPort: 80, seq: 100, ack: 555, flags: ACK, data: Buffer.from('x') }));
    const rst = parseTcpFrame(await h.next(isTcp));
    expect(rst.flags).toBe(RST);
    expect(rst.seq).toBe(555);
    h.send(tcpFrame({ dst: '192.0.2.1', srcPort: 40005, dstPort: 80, seq: 100, flags: RST }));
    // A later segment that is answered marks the point by which the RST was handled: no RST answers a RST.
    h.send(tcpFrame({ dst: '192.0.2.1', srcPort: 40006, dstPort: 80, seq: 200, ack: 777, flags: ACK }));
    const answer = parseTcpFrame(await h.next(isTcp));
    expect([answer.dstPort, answer.flags, answer.seq]).toEqual([40006, RST, 777]);
    expect(h.sent.filter(isTcp)).toHaveLength(2);
  });

  it('refuses new connections over the flow limit with RST, and counts them', async () => {
    const { port, accepts } = await listener();
    const { host, connects } = countingHost();
    const h = harness({ host, limits: { tcpFlows: 2 } });
    for (let i = 0; i < 3; i++) h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 41000 + i, dstPort: port, seq: 1, flags: SYN, options: linuxSynOptions() }));
    const frames = [parseTcpFrame(await h.next(isTcp)), parseTcpFrame(await h.next(isTcp)), parseTcpFrame(await h.next(isTcp))];
    expect(frames.filter((f) => f.flags === (SYN | ACK))).toHaveLength(2);
    expect(frames.filter((f) => f.flags === (RST | ACK))).toHaveLength(1);
    expect(h.stack.stats().drops.tcp_flow_limit).toBe(1);
    expect(connects()).toBe(2);
    await accepts(2);
    for (const f of frames.filter((f) => f.flags === (SYN | ACK))) h.send(tcpFrame({ dst: '10.0.2.2', srcPort: f.dstPort, dstPort: port, seq: 2, flags: RST }));
  });
});

describe('--disable-host-loopback (compat §4.1)', () => {
  it('answers SYNs to the gateway, 255.255.255.255, 127.0.0.1 and 0.0.0.0 with ICMP net unreachable and connects nothing', async () => {
    const { port, connections } = await listener();
    const { host, connects } = countingHost();
    const h = harness({ disableHostLoopback: true, host });
    for (const dst of ['10.0.2.2', '255.255.255.255', '127.0.0.1', '0.0.0.0', '10.0.2.3']) {
      h.send(tcpFrame({ dst, srcPort: 42000, dstPort: port, seq: 1, flags: SYN, options: linuxSynOptions() }));
      const icmp = await h.next(isIcmp);
      expect([icmp[34], icmp[35]], dst).toEqual([3, 0]);
    }
    h.send(tcpFrame({ dst: '10.0.2.255', srcPort: 42000, dstPort: port, seq: 1, flags: SYN, options: linuxSynOptions() }));
    // A SYN answered after it marks the point by which the broadcast one was handled.
    h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 42000, dstPort: port, seq: 1, flags: SYN, options: linuxSynOptions() }));
    const icmp = await h.next(isIcmp);
    expect([icmp[34], icmp[35]]).toEqual([3, 0]);
    expect(h.drain(isTcp)).toEqual([]);
    expect(connects()).toBe(0);
    expect(connections).toHaveLength(0);
    expect(h.stack.stats().tcp.opened).toBe(0);
  });

  it('without it, the gateway is the host loopback', async () => {
    const { port, connections } = await listener();
    const h = harness();
    h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 42001, dstPort: port, seq: 1, flags: SYN, options: linuxSynOptions() }));
    expect(parseTcpFrame(await h.next(isTcp)).flags).toBe(SYN | ACK);
    expect(connections).toHaveLength(1);
    expect(connections[0].remoteAddress).toBe('127.0.0.1');
    h.send(tcpFrame({ dst: '10.0.2.2', srcPort: 42001, dstPort: port, seq: 2, flags: RST }));
  });

  it('other addresses of the guest subnet are unreachable hosts, never host sockets', async () => {
    const h = harness();
    h.send(tcpFrame({ dst: '10.0.2.77', srcPort: 42002, dstPort: 80, seq: 1, flags: SYN, options: linuxSynOptions() }));
    const icmp = await h.next(isIcmp);
    expect([icmp[34], icmp[35]]).toEqual([3, 1]);
    expect(h.stack.stats().tcp.opened).toBe(0);
  });
});

void FIN;
