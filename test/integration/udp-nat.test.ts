/**
 * The UDP relay (src/nat/udp-nat.ts) over a memory link, with fake host
 * sockets that record what the relay asks of them: numeric destinations, the
 * guest's payload passed as a view (no copy), replies and ICMP errors handed
 * back through the socket's handlers, open failures, expiry and close.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createStack, ManualClock, MemoryLink, type HostNetwork, type HostUdpSocket, type Stack } from '../../src/index.js';
import { ethernet, GATEWAY_MAC, GUEST_MAC, inetChecksum, ipText, ipv4, udp } from '../support/frames.js';
import { noHost } from '../support/no-host.js';

const EMFILE = 24;
const ECONNREFUSED = 111;
const LOOPBACK = 0x7f000001;

interface Sent {
  dst: number;
  dstPort: number;
  bytes: Buffer;
  /** Whether the relay passed a view of a larger buffer (the link's), not a copy of the payload. */
  view: boolean;
}

class FakeUdpSocket implements HostUdpSocket {
  readonly sent: Sent[] = [];
  message: ((src: number, srcPort: number, buf: Uint8Array, off: number, len: number) => void) | null = null;
  icmpError: ((dst: number, dstPort: number, errno: number, icmpType: number, icmpCode: number) => void) | null = null;
  closed = 0;
  /** What send returns (0 or an errno). */
  sendResult = 0;

  constructor(
    readonly localPort: number,
    readonly localAddress: string | undefined,
  ) {}

  send(dst: number, dstPort: number, buf: Uint8Array, off: number, len: number): number {
    this.sent.push({ dst, dstPort, bytes: Buffer.from(buf.subarray(off, off + len)), view: buf.length > len });
    return this.sendResult;
  }

  onMessage(handler: FakeUdpSocket['message'] & {}): void {
    this.message = handler;
  }

  onIcmpError(handler: FakeUdpSocket['icmpError'] & {}): void {
    this.icmpError = handler;
  }

  close(): void {
    this.closed++;
  }

  /** A datagram from the host, in a reused buffer as the real socket has it. */
  deliver(src: number, srcPort: number, payload: Buffer): void {
    const shared = Buffer.alloc(65536, 0xa5);
    payload.copy(shared, 100);
    this.message!(src, srcPort, shared, 100, payload.length);
    shared.fill(0x5a); // the bytes are only valid during the call
  }
}

interface Harness {
  stack: Stack;
  clock: ManualClock;
  sockets: FakeUdpSocket[];
  /** errno for the next createUdpSocket calls, 0 to open. */
  openErrno: number;
  sent: Buffer[];
  send(frame: Buffer): Promise<Buffer[]>;
  flush(): Promise<Buffer[]>;
}

let current: Harness | null = null;

function harness(options: { outboundAddress?: string } = {}): Harness {
  const link = new MemoryLink({ vnetHdr: false, mtu: 1500 });
  const guest = new MemoryLink({ vnetHdr: false });
  link.peer = guest;
  guest.peer = link;
  const sent: Buffer[] = [];
  guest.start((buf, meta, count) => {
    for (let i = 0; i < count; i++) sent.push(Buffer.from(buf.subarray(meta[2 * i], meta[2 * i] + meta[2 * i + 1])));
  });
  const h = { sockets: [] as FakeUdpSocket[], openErrno: 0, sent } as Harness;
  const host: HostNetwork = {
    ...noHost,
    createUdpSocket: (localAddress) => {
      if (h.openErrno !== 0) return h.openErrno;
      const s = new FakeUdpSocket(40000 + h.sockets.length, localAddress);
      h.sockets.push(s);
      return s;
    },
  };
  h.clock = new ManualClock(1000);
  h.stack = createStack({ link, clock: h.clock, dns: false, host, outboundAddress: options.outboundAddress });
  const settle = async () => {
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  };
  h.send = async (frame) => {
    const before = sent.length;
    link.inject(frame);
    await settle();
    return sent.slice(before);
  };
  h.flush = async () => {
    const before = sent.length;
    await settle();
    return sent.slice(before);
  };
  current = h;
  return h;
}

afterEach(() => {
  if (current !== null) {
    current.stack.close();
    // Leak check: every host socket the relay opened is closed, once.
    expect(current.sockets.map((s) => s.closed)).toEqual(current.sockets.map(() => 1));
    expect(current.clock.armed).toBe(false);
  }
  current = null;
});

function guestUdp(dst: string, srcPort: number, dstPort: number, data: Buffer): Buffer {
  return ethernet(GATEWAY_MAC, GUEST_MAC, 0x0800, ipv4({ src: '10.0.2.100', dst, protocol: 17 }, udp('10.0.2.100', dst, srcPort, dstPort, data)));
}

/** The UDP datagram in a frame to the guest: addresses, ports, payload; checksums verified. */
function parseUdpFrame(f: Buffer): { src: string; dst: string; srcPort: number; dstPort: number; data: Buffer } {
  expect(f.readUInt16BE(12)).toBe(0x0800);
  expect(f[14 + 9]).toBe(17);
  expect(inetChecksum(f.subarray(14, 34))).toBe(0);
  const u = f.subarray(34, 14 + f.readUInt16BE(16));
  const pseudo = Buffer.concat([f.subarray(26, 34), Buffer.from([0, 17, u.length >> 8, u.length & 0xff])]);
  expect(inetChecksum(pseudo, u)).toBe(0);
  return { src: ipText(f, 26), dst: ipText(f, 30), srcPort: u.readUInt16BE(0), dstPort: u.readUInt16BE(2), data: u.subarray(8) };
}

describe('UDP relay over host sockets (fake host)', () => {
  it('sends the guest payload to the numeric destination, straight from the link buffer', async () => {
    const h = harness();
    await h.send(guestUdp('93.184.216.34', 5000, 7, Buffer.from('hello')));
    expect(h.sockets).toHaveLength(1);
    const [s] = h.sockets;
    expect(s.localAddress).toBeUndefined();
    expect(s.sent).toEqual([{ dst: 0x5db8d822, dstPort: 7, bytes: Buffer.from('hello'), view: true }]);
    // Same guest port, another destination: the same socket (endpoint-independent mapping).
    await h.send(guestUdp('8.8.4.4', 5000, 9, Buffer.from('again')));
    expect(h.sockets).toHaveLength(1);
    expect(s.sent[1]).toMatchObject({ dst: 0x08080404, dstPort: 9, bytes: Buffer.from('again') });
    expect(h.stack.stats().udp).toMatchObject({ mappings: 1, created: 1, datagramsOut: 2, sendErrors: 0 });
  });

  it('maps the gateway to the host loopback, and loopback replies back to the gateway', async () => {
    const h = harness();
    await h.send(guestUdp('10.0.2.2', 5001, 5353, Buffer.from('q')));
    const [s] = h.sockets;
    expect(s.sent[0]).toMatchObject({ dst: LOOPBACK, dstPort: 5353 });
    s.deliver(LOOPBACK, 5353, Buffer.from('answer'));
    const frames = await h.flush();
    expect(frames).toHaveLength(1);
    expect(parseUdpFrame(frames[0])).toEqual({ src: '10.0.2.2', dst: '10.0.2.100', srcPort: 5353, dstPort: 5001, data: Buffer.from('answer') });
    // Any remote may answer (endpoint-independent filtering); non-loopback sources stay as they are.
    s.deliver(0x01020304, 1234, Buffer.from('other'));
    const [other] = await h.flush();
    expect(parseUdpFrame(other)).toMatchObject({ src: '1.2.3.4', srcPort: 1234, dstPort: 5001, data: Buffer.from('other') });
    expect(h.stack.stats().udp).toMatchObject({ datagramsIn: 2 });
  });

  it('relays an ICMP port unreachable from the host as one to the guest, quoting its datagram', async () => {
    const h = harness();
    await h.send(guestUdp('10.0.2.2', 5002, 9999, Buffer.from('x')));
    const [s] = h.sockets;
    s.icmpError!(LOOPBACK, 9999, ECONNREFUSED, 3, 3);
    const frames = await h.flush();
    expect(frames).toHaveLength(1);
    const f = frames[0];
    expect(f[14 + 9]).toBe(1); // ICMP
    expect(ipText(f, 26)).toBe('10.0.2.2');
    expect(ipText(f, 30)).toBe('10.0.2.100');
    const icmp = f.subarray(34);
    expect([icmp[0], icmp[1]]).toEqual([3, 3]);
    // Quoted: the guest's own IP header (10.0.2.100 -> 10.0.2.2) and UDP ports.
    expect(ipText(icmp, 8 + 12)).toBe('10.0.2.100');
    expect(ipText(icmp, 8 + 16)).toBe('10.0.2.2');
    expect(icmp.readUInt16BE(8 + 20)).toBe(5002);
    expect(icmp.readUInt16BE(8 + 22)).toBe(9999);
    // Other ICMP types (time exceeded) are not relayed.
    s.icmpError!(LOOPBACK, 9999, 113, 11, 0);
    expect(await h.flush()).toHaveLength(0);
    expect(h.stack.stats().udp.unreachableFromHost).toBe(1);
  });

  it('counts a refused send and a socket that cannot be opened, and opens again later', async () => {
    const h = harness();
    h.openErrno = EMFILE;
    await h.send(guestUdp('1.1.1.1', 5003, 7, Buffer.from('a')));
    expect(h.sockets).toHaveLength(0);
    expect(h.stack.stats().udp).toMatchObject({ mappings: 0, openErrors: 1 });
    expect(h.stack.stats().drops).toMatchObject({ udp_no_socket: 1 });
    h.openErrno = 0;
    await h.send(guestUdp('1.1.1.1', 5003, 7, Buffer.from('b')));
    expect(h.sockets).toHaveLength(1);
    h.sockets[0].sendResult = 11; // EAGAIN: dropped, counted
    await h.send(guestUdp('1.1.1.1', 5003, 7, Buffer.from('c')));
    expect(h.stack.stats().udp).toMatchObject({ mappings: 1, sendErrors: 1, datagramsOut: 2 });
  });

  it('lists the mapping with the host socket local port and the outbound address', async () => {
    const h = harness({ outboundAddress: '127.0.0.1' });
    await h.send(guestUdp('1.1.1.1', 5004, 7, Buffer.from('a')));
    expect(h.sockets[0].localAddress).toBe('127.0.0.1');
    expect(h.stack.connections()).toMatchObject([{ proto: 'udp', guest: '10.0.2.100:5004', remote: '*', host: '127.0.0.1:40000', guestToHostDatagrams: 1 }]);
  });

  it('closes the host socket when the mapping expires, and ignores its late handlers', async () => {
    const h = harness();
    await h.send(guestUdp('1.1.1.1', 5005, 7, Buffer.from('a')));
    const [s] = h.sockets;
    h.clock.advance(239_000);
    expect(s.closed).toBe(0);
    h.clock.advance(2_000);
    expect(s.closed).toBe(1);
    expect(h.stack.stats().udp).toMatchObject({ mappings: 0, expired: 1 });
    s.deliver(0x01010101, 7, Buffer.from('late'));
    s.icmpError!(0x01010101, 7, ECONNREFUSED, 3, 3);
    expect(await h.flush()).toHaveLength(0);
  });
});

