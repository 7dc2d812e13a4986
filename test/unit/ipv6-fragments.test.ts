/**
 * Ipv6Input's side of fragments (src/ip/ipv6-input.ts): what it decides
 * before and after the shared reassembler. Atomic fragments (RFC 6946),
 * first fragments without their header chain (RFC 7112), the ICMPv6 errors
 * RFC 8200 §4.5 asks for and those RFC 4443 §2.4(e) forbids, NDP in
 * fragments (RFC 6980), and how a reassembled datagram is dispatched. The
 * upper layers and the error sink are fakes that record their calls.
 */
import { describe, expect, it } from 'vitest';
import type { TcpSegmentInput } from '../../src/ip/ipv4-input.js';
import { Ipv6Ids } from '../../src/ip/ipv6-ids.js';
import { Ipv6Input, type Icmpv6ErrorSink, type Icmpv6Handler } from '../../src/ip/ipv6-input.js';
import { Reassembler } from '../../src/ip/reassembly.js';
import { DropCounters } from '../../src/stats.js';
import type { UdpInput } from '../../src/udp/udp-input.js';
import { ethernet, GATEWAY_MAC, GUEST_MAC } from '../support/frames.js';
import { echo6Body, fragment6Frames, GUEST6, icmp6, ipv6, nsBody, udp6 } from '../support/frames6.js';

const DST = '2001:db8::1';
const UDP = 17;
const TCP = 6;
const ICMPV6 = 58;
const MAC = 0x02_00_00_00_00_64;
const ETH = 14;

interface Call {
  to: 'udp' | 'tcp' | 'icmp';
  l4Off: number;
  l4Len: number;
  checksumPartial: boolean;
  gso?: number;
  /** The upper-layer bytes, copied. */
  l4: Buffer;
}

function rig() {
  const ids = new Ipv6Ids();
  const drops = new DropCounters();
  const reassembler = new Reassembler(drops, ids);
  const calls: Call[] = [];
  const errors: Array<{ type: number; code: number; param: number; quoted: Buffer; guestIp: number; guestMac: number }> = [];
  const record = (to: Call['to'], buf: Uint8Array, l4Off: number, l4Len: number, checksumPartial: boolean, gso?: number): void => {
    calls.push({ to, l4Off, l4Len, checksumPartial, gso, l4: Buffer.from(buf.subarray(l4Off, l4Off + l4Len)) });
  };
  const icmp: Icmpv6Handler = { input: (buf, _ip, l4, len, _s, _d, _m, _h, partial) => record('icmp', buf, l4, len, partial) };
  const udp = { input: (buf: Uint8Array, _ip: number, l4: number, len: number, _s: number, _d: number, _m: number, partial: boolean, gso: number) => record('udp', buf, l4, len, partial, gso) } as unknown as UdpInput;
  const tcp: TcpSegmentInput = { input: (buf, _ip, l4, len, _s, _d, _m, partial) => record('tcp', buf, l4, len, partial) };
  const sink: Icmpv6ErrorSink = {
    error6: (type, code, param, quoted, off, len, guestIp, guestMac) => errors.push({ type, code, param, quoted: Buffer.from(quoted.subarray(off, off + len)), guestIp, guestMac }),
  };
  const input = new Ipv6Input(ids, drops, icmp, udp, tcp, reassembler, sink);
  const buf = new Uint8Array(70_000);
  return {
    ids,
    drops,
    reassembler,
    calls,
    errors,
    /** Feeds an Ethernet frame (scribbled over afterwards: the link reuses its buffer). */
    send(frame: Buffer, o: { checksumPartial?: boolean; nowMs?: number } = {}): void {
      buf.set(frame, 0);
      input.input(buf, ETH, frame.length - ETH, MAC, o.checksumPartial ?? false, 0, o.nowMs ?? 1000);
      buf.fill(0xee, 0, frame.length);
    },
  };
}

const frame = (datagram: Buffer): Buffer => ethernet(GATEWAY_MAC, GUEST_MAC, 0x86dd, datagram);

/** A fragment by hand: Fragment header (next header, offset, M, ident), then `data`; `before` is an extension header in front of it. */
function fragment(o: { src?: string; dst?: string; nextHeader: number; offset?: number; more: boolean; ident: number; data: Buffer; before?: Buffer }): Buffer {
  const fh = Buffer.alloc(8);
  fh[0] = o.nextHeader;
  fh.writeUInt16BE((o.offset ?? 0) | (o.more ? 1 : 0), 2);
  fh.writeUInt32BE(o.ident, 4);
  const before = o.before === undefined ? Buffer.alloc(0) : Buffer.from(o.before);
  if (before.length > 0) before[0] = 44;
  return frame(ipv6({ src: o.src ?? GUEST6, dst: o.dst ?? DST, nextHeader: before.length > 0 ? 60 : 44 }, Buffer.concat([before, fh, o.data])));
}

describe('atomic fragments (RFC 6946)', () => {
  it('are dispatched at once, upper layer after the Fragment header, and leave a datagram with the same identification alone', () => {
    const t = rig();
    const message = udp6(GUEST6, DST, 5000, 53, Buffer.alloc(3000, 1));
    const [first, second] = fragment6Frames(GUEST6, DST, UDP, message, { chunk: 1448 * 2, ident: 5 });
    t.send(first);
    expect(t.reassembler.inProgress).toBe(1);
    const small = udp6(GUEST6, DST, 5000, 53, Buffer.from('atomic'));
    const [atomic] = fragment6Frames(GUEST6, DST, UDP, small, { chunk: 1448, ident: 5 });
    t.send(atomic, { checksumPartial: true });
    expect(t.calls).toEqual([{ to: 'udp', l4Off: ETH + 48, l4Len: small.length, checksumPartial: true, gso: 0, l4: small }]);
    expect(t.reassembler.stats).toMatchObject({ fragments: 1, inProgress: 1 });
    t.send(second);
    expect(t.calls[1]).toMatchObject({ to: 'udp', l4Len: message.length, checksumPartial: false, l4: message });
    expect(t.drops.total).toBe(0);
  });
});

describe('a reassembled datagram', () => {
  it('is walked again and dispatched whole, its checksum to be verified even when the fragments came with NEEDS_CSUM', () => {
    const t = rig();
    const segment = Buffer.alloc(3000, 7);
    segment[12] = 0x50; // a TCP header of 20 bytes
    const frames = fragment6Frames(GUEST6, DST, TCP, segment, { chunk: 1440, ident: 6, unfragmentable: Buffer.alloc(8), unfragmentableType: 60 });
    for (const f of frames) t.send(f, { checksumPartial: true });
    expect(t.calls).toHaveLength(1);
    expect(t.calls[0]).toMatchObject({ to: 'tcp', l4Off: 48, l4Len: 3000, checksumPartial: false, l4: segment });
  });
});

describe('a first fragment must hold the header chain through the upper-layer header (RFC 7112 §5)', () => {
  const cases: Array<[string, Parameters<typeof fragment>[0]]> = [
    ['8 bytes of a TCP header', { nextHeader: TCP, more: true, ident: 1, data: Buffer.alloc(8) }],
    ['a Destination Options header past its end', { nextHeader: 60, more: true, ident: 2, data: Buffer.from([UDP, 1, 0, 0, 0, 0, 0, 0]) }],
    ['4 bytes of an ICMPv6 echo request', { nextHeader: ICMPV6, more: true, ident: 3, data: Buffer.from([128, 0, 0, 0]) }],
  ];
  for (const [what, f] of cases) {
    it(`${what}: dropped, Parameter Problem code 3 pointing at 0`, () => {
      const t = rig();
      const bad = fragment(f);
      t.send(bad);
      expect(t.drops.toJSON()).toEqual({ frag_incomplete_chain: 1 });
      expect(t.reassembler.inProgress).toBe(0);
      expect(t.errors).toEqual([{ type: 4, code: 3, param: 0, quoted: bad.subarray(ETH), guestIp: t.ids.id(bad, ETH + 8), guestMac: MAC }]);
    });
  }

  it('a first fragment with 8 bytes of UDP is enough', () => {
    const t = rig();
    t.send(fragment({ nextHeader: UDP, more: true, ident: 4, data: Buffer.alloc(8) }));
    expect(t.reassembler.inProgress).toBe(1);
    expect(t.drops.total).toBe(0);
  });
});

describe('ICMPv6 errors about fragments (RFC 8200 §4.5, within RFC 4443 §2.4(e))', () => {
  it('Parameter Problem at the Payload Length for a non-final fragment not a multiple of 8', () => {
    const t = rig();
    const bad = fragment({ nextHeader: UDP, offset: 8, more: true, ident: 1, data: Buffer.alloc(13) });
    t.send(bad);
    expect(t.errors).toMatchObject([{ type: 4, code: 0, param: 4, quoted: bad.subarray(ETH) }]);
    expect(t.drops.toJSON()).toEqual({ frag_bad_length: 1 });
  });

  it('Parameter Problem at the Fragment Offset for one past 65535 bytes (behind a Destination Options header)', () => {
    const t = rig();
    const bad = fragment({ nextHeader: UDP, offset: 65528, more: false, ident: 1, data: Buffer.alloc(16), before: Buffer.alloc(8) });
    t.send(bad);
    expect(t.errors).toMatchObject([{ type: 4, code: 0, param: 40 + 8 + 2 }]);
    expect(t.drops.toJSON()).toEqual({ frag_too_large: 1 });
  });

  it('none about a fragment to a multicast address, nor about one carrying an ICMPv6 error', () => {
    const t = rig();
    t.send(fragment({ dst: 'ff02::1', nextHeader: UDP, offset: 8, more: true, ident: 1, data: Buffer.alloc(13) }));
    const unreachable = icmp6(GUEST6, DST, 1, 4, Buffer.alloc(4));
    t.send(fragment({ nextHeader: ICMPV6, more: true, ident: 2, data: Buffer.concat([unreachable, Buffer.alloc(5)]) }));
    expect(t.drops.toJSON()).toEqual({ frag_bad_length: 2 });
    expect(t.errors).toEqual([]);
  });

  it('Time Exceeded (code 1) quoting the first fragment when its datagram times out; none without it, none for overlaps', () => {
    const t = rig();
    const message = udp6(GUEST6, DST, 5000, 9, Buffer.alloc(3000, 3));
    const [first] = fragment6Frames(GUEST6, DST, UDP, message, { chunk: 1448, ident: 1 });
    const [, second] = fragment6Frames(GUEST6, DST, UDP, message, { chunk: 1448, ident: 2 });
    t.send(first, { nowMs: 0 });
    t.send(second, { nowMs: 0 });
    t.reassembler.expire(60_000);
    expect(t.drops.toJSON()).toEqual({ frag_timeout: 2 });
    expect(t.errors).toEqual([{ type: 3, code: 1, param: 0, quoted: first.subarray(ETH), guestIp: t.ids.id(first, ETH + 8), guestMac: MAC }]);
    t.send(first);
    t.send(Buffer.from(first).fill(0x55, ETH + 48));
    expect(t.drops.toJSON()).toEqual({ frag_timeout: 2, frag_overlap: 1 });
    expect(t.errors).toHaveLength(1);
  });
});

describe('what never gets reassembled', () => {
  it('NDP in a datagram with a Fragment header, even an atomic one (RFC 6980 §5); an echo request is fine', () => {
    const t = rig();
    const ns = icmp6(GUEST6, 'fd00::2', 135, 0, nsBody('fd00::2'));
    t.send(fragment({ dst: 'fd00::2', nextHeader: ICMPV6, more: false, ident: 1, data: ns }));
    expect(t.drops.toJSON()).toEqual({ ndp_invalid: 1 });
    const echo = icmp6(GUEST6, 'fd00::2', 128, 0, echo6Body(1, 1, Buffer.alloc(2000)));
    for (const f of fragment6Frames(GUEST6, 'fd00::2', ICMPV6, echo, { chunk: 1448, ident: 2 })) t.send(f);
    expect(t.calls).toMatchObject([{ to: 'icmp', l4: echo, checksumPartial: false }]);
  });

  it('fragments from the unspecified address', () => {
    const t = rig();
    t.send(fragment({ src: '::', nextHeader: ICMPV6, more: true, ident: 1, data: Buffer.alloc(8) }));
    expect(t.drops.toJSON()).toEqual({ ipv6_bad_source: 1 });
    expect(t.reassembler.inProgress).toBe(0);
    expect(t.errors).toEqual([]);
  });
});
