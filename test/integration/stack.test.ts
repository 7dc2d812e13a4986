import { afterEach, describe, expect, it } from 'vitest';
import { createStack, ManualClock, MemoryLink, type Stack } from '../../src/index.js';
import {
  arpRequest,
  dhcpFrame,
  dhcpMessage,
  dhcpOptions,
  ethernet,
  GATEWAY_MAC,
  GUEST_MAC,
  icmpEcho,
  inetChecksum,
  ip,
  ipText,
  ipv4,
  macText,
  pingFrame,
} from '../support/frames.js';
import { noHost } from '../support/no-host.js';

interface Harness {
  stack: Stack;
  link: MemoryLink;
  clock: ManualClock;
  /** Frames the stack sent towards the guest, without virtio-net header. */
  sent: Buffer[];
  vnetHeaders: Buffer[];
  send(...frames: Buffer[]): Promise<Buffer[]>;
}

let current: Harness | null = null;

function harness(options: { vnetHdr?: boolean; mtu?: number; network?: string } = {}): Harness {
  const link = new MemoryLink({ vnetHdr: options.vnetHdr ?? false, mtu: options.mtu ?? 1500 });
  const guest = new MemoryLink({ vnetHdr: options.vnetHdr ?? false });
  link.peer = guest;
  guest.peer = link;
  const sent: Buffer[] = [];
  const vnetHeaders: Buffer[] = [];
  guest.start((buf, meta, count) => {
    for (let i = 0; i < count; i++) {
      const frame = Buffer.from(buf.subarray(meta[2 * i], meta[2 * i] + meta[2 * i + 1]));
      if (options.vnetHdr) {
        vnetHeaders.push(frame.subarray(0, 10));
        sent.push(frame.subarray(10));
      } else sent.push(frame);
    }
  });
  const clock = new ManualClock(1000);
  const stack = createStack({ link, clock, network: options.network, mtu: options.mtu, dns: false, host: noHost });
  const h: Harness = {
    stack,
    link,
    clock,
    sent,
    vnetHeaders,
    async send(...frames: Buffer[]) {
      const before = sent.length;
      for (const f of frames) link.inject(options.vnetHdr ? Buffer.concat([Buffer.alloc(10), f]) : f);
      // input is delivered on one turn, the replies on the next
      for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
      return sent.slice(before);
    },
  };
  current = h;
  return h;
}

afterEach(() => {
  if (current !== null) {
    // Leak check: nothing left half-done behind a test.
    expect(current.stack.stats().reassembly.inProgress).toBe(0);
    current.stack.close();
    expect(current.clock.armed).toBe(false);
  }
  current = null;
});

function fragments(datagram: Buffer, mtu: number): Buffer[] {
  const header = datagram.subarray(0, 20);
  const payload = datagram.subarray(20);
  const chunk = Math.floor((mtu - 20) / 8) * 8;
  const out: Buffer[] = [];
  for (let off = 0; off < payload.length; off += chunk) {
    const part = payload.subarray(off, off + chunk);
    const h = Buffer.from(header);
    h.writeUInt16BE(20 + part.length, 2);
    h.writeUInt16BE((off + chunk < payload.length ? 0x2000 : 0) | (off / 8), 6);
    h.writeUInt16BE(0, 10);
    h.writeUInt16BE(inetChecksum(h), 10);
    out.push(ethernet(GATEWAY_MAC, GUEST_MAC, 0x0800, Buffer.concat([h, part])));
  }
  return out;
}

/** Reassembles the IPv4 fragments of replies (payload after the IP header). */
function reassemble(frames: Buffer[]): Buffer {
  const parts = frames.map((f) => {
    const ipOff = 14;
    const total = f.readUInt16BE(ipOff + 2);
    const offset = (f.readUInt16BE(ipOff + 6) & 0x1fff) * 8;
    expect(inetChecksum(f.subarray(ipOff, ipOff + 20))).toBe(0);
    return { offset, data: f.subarray(ipOff + 20, ipOff + total) };
  });
  parts.sort((a, b) => a.offset - b.offset);
  return Buffer.concat(parts.map((p) => p.data));
}

describe('ARP (RFC 826, compat §4.4)', () => {
  it('answers for the gateway with 52:55:0a:00:02:02', async () => {
    const h = harness();
    const [reply, ...rest] = await h.send(arpRequest('10.0.2.100', '10.0.2.2'));
    expect(rest).toHaveLength(0);
    expect(macText(reply, 0)).toBe('02:00:00:00:00:64');
    expect(macText(reply, 6)).toBe('52:55:0a:00:02:02');
    expect(reply.readUInt16BE(12)).toBe(0x0806);
    expect(reply.readUInt16BE(14 + 6)).toBe(2);
    expect(macText(reply, 14 + 8)).toBe('52:55:0a:00:02:02');
    expect(ipText(reply, 14 + 14)).toBe('10.0.2.2');
    expect(macText(reply, 14 + 18)).toBe('02:00:00:00:00:64');
    expect(ipText(reply, 14 + 24)).toBe('10.0.2.100');
    expect(h.stack.stats().neighbours).toEqual([{ ip: '10.0.2.100', mac: '02:00:00:00:00:64' }]);
  });

  it('answers for the DNS address with 52:55:0a:00:02:03', async () => {
    const h = harness();
    const [reply] = await h.send(arpRequest('10.0.2.100', '10.0.2.3'));
    expect(macText(reply, 14 + 8)).toBe('52:55:0a:00:02:03');
  });

  it('ignores requests for other addresses and learns nothing from probes', async () => {
    const h = harness();
    expect(await h.send(arpRequest('10.0.2.100', '10.0.2.50'), arpRequest('0.0.0.0', '10.0.2.100'))).toHaveLength(0);
    expect(h.stack.stats().drops.arp_ignored).toBe(2);
    expect(h.stack.stats().neighbours).toEqual([{ ip: '10.0.2.100', mac: '02:00:00:00:00:64' }]);
  });

  it('follows --cidr: 10.0.135.128/25 has its gateway at .130', async () => {
    const h = harness({ network: '10.0.135.128/25' });
    const [reply] = await h.send(arpRequest('10.0.135.228', '10.0.135.130'));
    expect(macText(reply, 14 + 8)).toBe('52:55:0a:00:87:82');
  });
});

describe('ICMP echo (RFC 792) for the virtual addresses', () => {
  for (const dst of ['10.0.2.2', '10.0.2.3']) {
    it(`answers ${dst} with TTL 255 and the same id, sequence and data`, async () => {
      const h = harness();
      const data = Buffer.from('usernet ping payload 0123456789');
      const [reply] = await h.send(pingFrame(dst, 0xbeef, 7, data));
      expect(macText(reply, 0)).toBe('02:00:00:00:00:64');
      const ipH = reply.subarray(14, 34);
      expect(inetChecksum(ipH)).toBe(0);
      expect(ipH[8]).toBe(255);
      expect(ipH[9]).toBe(1);
      expect(ipText(ipH, 12)).toBe(dst);
      expect(ipText(ipH, 16)).toBe('10.0.2.100');
      const icmp = reply.subarray(34, 14 + ipH.readUInt16BE(2));
      expect(inetChecksum(icmp)).toBe(0);
      expect(icmp[0]).toBe(0);
      expect(icmp.readUInt16BE(4)).toBe(0xbeef);
      expect(icmp.readUInt16BE(6)).toBe(7);
      expect(icmp.subarray(8)).toEqual(data);
    });
  }

  it('releaseIdleMemory between batches loses nothing: the next echo is answered whole (the arena pages read back as zeros)', async () => {
    const h = harness();
    const data = Buffer.from('before and after the release');
    const [first] = await h.send(pingFrame('10.0.2.2', 1, 1, data));
    h.stack.releaseIdleMemory();
    const [second] = await h.send(pingFrame('10.0.2.2', 1, 2, data));
    expect(second.subarray(42)).toEqual(first.subarray(42));
    expect(second.readUInt16BE(40)).toBe(2);
    expect(inetChecksum(second.subarray(34))).toBe(0);
  });

  it('answers echo to an empty address of the subnet with ICMP host unreachable', async () => {
    const h = harness();
    const [err] = await h.send(pingFrame('10.0.2.77', 1, 1, Buffer.alloc(8)));
    expect(ipText(err, 14 + 12)).toBe('10.0.2.2');
    expect([err[34], err[35]]).toEqual([3, 1]);
    // The quoted datagram is the echo request.
    expect(ipText(err, 42 + 16)).toBe('10.0.2.77');
    expect(err[42 + 20]).toBe(8);
  });

  it('drops echo requests with a bad ICMP checksum', async () => {
    const h = harness();
    const f = pingFrame('10.0.2.2', 1, 1, Buffer.alloc(8));
    f[34 + 2] ^= 0xff;
    expect(await h.send(f)).toHaveLength(0);
    expect(h.stack.stats().drops.icmp_bad_checksum).toBe(1);
  });

  it('ignores Ethernet padding after the IPv4 total length', async () => {
    const h = harness();
    const f = Buffer.concat([pingFrame('10.0.2.2', 1, 2, Buffer.alloc(0)), Buffer.alloc(18, 0xee)]);
    const [reply] = await h.send(f);
    expect(reply.readUInt16BE(14 + 2)).toBe(28);
  });

  it('reassembles a fragmented 4000-byte echo and fragments the reply to the MTU', async () => {
    const h = harness();
    const data = Buffer.alloc(4000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const datagram = ipv4({ src: '10.0.2.100', dst: '10.0.2.2', protocol: 1, flagsFrag: 0, ident: 99 }, icmpEcho(5, 6, data));
    const replies = await h.send(...fragments(datagram, 1500).reverse());
    expect(replies.length).toBe(3);
    for (const r of replies) expect(r.length).toBeLessThanOrEqual(1514);
    const icmp = reassemble(replies);
    expect(inetChecksum(icmp)).toBe(0);
    expect(icmp[0]).toBe(0);
    expect(icmp.subarray(8)).toEqual(data);
    expect(h.stack.stats().reassembly.reassembled).toBe(1);
  });

  it('discards an incomplete datagram after 30 s', async () => {
    const h = harness();
    const datagram = ipv4({ src: '10.0.2.100', dst: '10.0.2.2', protocol: 1, flagsFrag: 0 }, icmpEcho(5, 6, Buffer.alloc(3000)));
    await h.send(fragments(datagram, 1500)[0]);
    expect(h.stack.stats().reassembly.inProgress).toBe(1);
    h.clock.advance(29_999);
    expect(h.stack.stats().reassembly.inProgress).toBe(1);
    h.clock.advance(1);
    expect(h.stack.stats().reassembly.inProgress).toBe(0);
    expect(h.stack.stats().drops.frag_timeout).toBe(1);
  });

  it('discards a datagram with overlapping fragments', async () => {
    const h = harness();
    const datagram = ipv4({ src: '10.0.2.100', dst: '10.0.2.2', protocol: 1, flagsFrag: 0 }, icmpEcho(5, 6, Buffer.alloc(3000)));
    const [first, second, third] = fragments(datagram, 1500);
    const overlapping = Buffer.from(second);
    overlapping.writeUInt16BE(0x2000 | (second.readUInt16BE(14 + 6) & 0x1fff) - 1, 14 + 6);
    overlapping.writeUInt16BE(0, 14 + 10);
    overlapping.writeUInt16BE(inetChecksum(overlapping.subarray(14, 34)), 14 + 10);
    expect(await h.send(first, overlapping, second, third)).toHaveLength(0);
    expect(h.stack.stats().drops.frag_overlap).toBe(1);
    h.clock.advance(30_000);
  });

  it('bounds the memory held by fragments', async () => {
    const link = new MemoryLink();
    const clock = new ManualClock();
    const stack = createStack({ link, clock, dns: false, host: noHost, limits: { reassemblyBytes: 10_000, reassemblyDatagrams: 4 } });
    for (let id = 0; id < 20; id++) {
      const d = ipv4({ src: '10.0.2.100', dst: '10.0.2.2', protocol: 1, flagsFrag: 0, ident: id }, icmpEcho(1, 1, Buffer.alloc(3000)));
      link.inject(fragments(d, 1500)[0]);
    }
    await new Promise((r) => setImmediate(r));
    const s = stack.stats();
    expect(s.reassembly.inProgress).toBeLessThanOrEqual(4);
    expect(s.reassembly.bytesHeld).toBeLessThanOrEqual(10_000);
    expect(s.drops.frag_limit).toBeGreaterThan(0);
    stack.close();
  });
});

describe('DHCP (compat §4.3)', () => {
  it('offers 10.0.2.15 and acknowledges the request, with router, DNS, lease and MTU', async () => {
    const h = harness({ mtu: 65520 });
    const [offer] = await h.send(dhcpFrame(dhcpMessage(1, 0xabcd)));
    expect(macText(offer, 0)).toBe('ff:ff:ff:ff:ff:ff');
    expect(ipText(offer, 14 + 12)).toBe('10.0.2.2');
    expect(ipText(offer, 14 + 16)).toBe('255.255.255.255');
    const udp = offer.subarray(34);
    expect(udp.readUInt16BE(0)).toBe(67);
    expect(udp.readUInt16BE(2)).toBe(68);
    const msg = udp.subarray(8);
    expect(msg[0]).toBe(2);
    expect(msg.readUInt32BE(4)).toBe(0xabcd);
    expect(ipText(msg, 16)).toBe('10.0.2.15');
    let opts = dhcpOptions(msg);
    expect(opts.get(53)).toEqual(Buffer.from([2]));
    expect(ipText(opts.get(54)!, 0)).toBe('10.0.2.2');
    expect(ipText(opts.get(1)!, 0)).toBe('255.255.255.0');
    expect(ipText(opts.get(3)!, 0)).toBe('10.0.2.2');
    expect(ipText(opts.get(6)!, 0)).toBe('10.0.2.3');
    expect(Buffer.from(opts.get(51)!).readUInt32BE(0)).toBe(86400);
    expect(Buffer.from(opts.get(26)!).readUInt16BE(0)).toBe(65520);

    const [ack] = await h.send(dhcpFrame(dhcpMessage(3, 0xabce, GUEST_MAC, [[50, ip('10.0.2.15')], [54, ip('10.0.2.2')]])));
    const ackMsg = ack.subarray(42);
    expect(ipText(ackMsg, 16)).toBe('10.0.2.15');
    opts = dhcpOptions(ackMsg);
    expect(opts.get(53)).toEqual(Buffer.from([5]));
    expect(h.stack.stats().neighbours).toContainEqual({ ip: '10.0.2.15', mac: '02:00:00:00:00:64' });
  });

  it('drops a malformed DHCP message and keeps serving', async () => {
    const h = harness();
    const bad = dhcpMessage(1, 1).subarray(0, 100);
    expect(await h.send(dhcpFrame(Buffer.from(bad)))).toHaveLength(0);
    const [offer] = await h.send(dhcpFrame(dhcpMessage(1, 2)));
    expect(offer).toBeDefined();
  });
});

describe('virtio-net header links', () => {
  it('accepts frames behind a 10-byte header and replies with an all-zero header', async () => {
    const h = harness({ vnetHdr: true });
    const [reply] = await h.send(pingFrame('10.0.2.2', 3, 4, Buffer.alloc(56, 1)));
    expect(h.vnetHeaders[0]).toEqual(Buffer.alloc(10));
    expect(reply.readUInt16BE(12)).toBe(0x0800);
  });

  it('does not verify an L4 checksum marked NEEDS_CSUM', async () => {
    const h = harness({ vnetHdr: true });
    const f = pingFrame('10.0.2.2', 3, 4, Buffer.alloc(56, 1));
    f.writeUInt16BE(0x1234, 34 + 2); // a partial checksum: not the final one
    const vnet = Buffer.alloc(10);
    vnet[0] = 1;
    vnet.writeUInt16LE(34, 6);
    vnet.writeUInt16LE(2, 8);
    h.link.inject(Buffer.concat([vnet, f]));
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
    expect(h.sent).toHaveLength(1);
  });
});

describe('hostile input (DESIGN.md: dropped and counted, never thrown)', () => {
  it('survives truncations of every valid frame at every length and still answers ping', async () => {
    const h = harness();
    const valid = [
      arpRequest('10.0.2.100', '10.0.2.2'),
      pingFrame('10.0.2.2', 1, 1, Buffer.alloc(40, 3)),
      dhcpFrame(dhcpMessage(1, 5)),
    ];
    for (const f of valid) for (let len = 0; len < f.length; len++) h.link.inject(f.subarray(0, len));
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
    const s = h.stack.stats();
    expect(s.drops.internal_error).toBeUndefined();
    expect(s.dropsTotal).toBeGreaterThan(100);
    const [reply] = await h.send(pingFrame('10.0.2.2', 9, 9, Buffer.alloc(8)));
    expect(reply).toBeDefined();
  });

  it('counts lying lengths per reason', async () => {
    const h = harness();
    const good = pingFrame('10.0.2.2', 1, 1, Buffer.alloc(8));
    const tooLong = Buffer.from(good);
    tooLong.writeUInt16BE(2000, 16);
    const shortIhl = Buffer.from(good);
    shortIhl[14] = 0x44;
    const longIhl = Buffer.from(good);
    longIhl[14] = 0x4f;
    const badVersion = Buffer.from(good);
    badVersion[14] = 0x65;
    const badSum = ethernet(GATEWAY_MAC, GUEST_MAC, 0x0800, ipv4({ src: '10.0.2.100', dst: '10.0.2.2', protocol: 1, badChecksum: true }, icmpEcho(1, 1, Buffer.alloc(8))));
    const martian = ethernet(GATEWAY_MAC, GUEST_MAC, 0x0800, ipv4({ src: '255.255.255.255', dst: '10.0.2.2', protocol: 1 }, icmpEcho(1, 1, Buffer.alloc(8))));
    expect(await h.send(tooLong, shortIhl, longIhl, badVersion, badSum, martian)).toHaveLength(0);
    const d = h.stack.stats().drops;
    expect(d.ipv4_bad_total_len).toBe(1);
    expect(d.ipv4_bad_header_len).toBe(2);
    expect(d.ipv4_bad_version).toBe(1);
    expect(d.ipv4_bad_checksum).toBe(1);
    expect(d.ipv4_bad_source).toBe(1);
  });

  it('never throws on 20,000 random frames (seeded)', async () => {
    const h = harness();
    let seed = 12345;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 0x1_0000_0000;
    };
    const template = pingFrame('10.0.2.2', 1, 1, Buffer.alloc(32));
    for (let n = 0; n < 20_000; n++) {
      const len = Math.floor(rand() * 200);
      const f = Buffer.alloc(len);
      for (let i = 0; i < len; i++) f[i] = Math.floor(rand() * 256);
      // Half the frames keep a plausible Ethernet/IPv4 prefix so deeper layers get fuzzed too.
      if (n % 2 === 0) template.copy(f, 0, 0, Math.min(len, 14 + Math.floor(rand() * 30)));
      h.link.inject(f);
      if (n % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
    expect(h.stack.stats().rx.frames).toBe(20_000);
    expect(h.stack.stats().drops.internal_error).toBeUndefined();
    const [reply] = await h.send(pingFrame('10.0.2.2', 9, 9, Buffer.alloc(8)));
    expect(reply).toBeDefined();
    h.clock.advance(60_000);
  });
});
