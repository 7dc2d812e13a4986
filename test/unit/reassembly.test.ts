/**
 * The fragment reassembler (src/ip/reassembly.ts) on its own, mostly for
 * IPv6 (RFC 8200 §4.5, RFC 5722): fragments are hand-built
 * (test/support/frames6.ts), described the way Ipv6Input describes them,
 * fed from a buffer that is scribbled over after each call (the link reuses
 * its input buffer), on a manual clock.
 */
import { describe, expect, it } from 'vitest';
import { Ipv6Ids } from '../../src/ip/ipv6-ids.js';
import { FragResult, newFragmentRepr, Reassembler, type FragmentRepr, type ReassemblyClient, type ReassemblyOptions } from '../../src/ip/reassembly.js';
import { DropCounters } from '../../src/stats.js';
import { inetChecksum } from '../support/frames.js';
import { fragments6, ipv6 } from '../support/frames6.js';

const SRC = 'fd00::ff:fe00:64';
const DST = '2001:db8::1';
const MAC = 0x02_00_00_00_00_64;
const UDP = 17;
/** A Destination Options header of 8 bytes (PadN), for the unfragmentable part. */
const DEST_OPTS = Buffer.from([0, 0, 1, 4, 0, 0, 0, 0]);

function payload(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

class Client implements ReassemblyClient {
  readonly got: Buffer[] = [];
  readonly timeouts: Array<{ first: Buffer; src: number; srcMac: number }> = [];
  reassembled(buf: Uint8Array, off: number, len: number): void {
    this.got.push(Buffer.from(buf.subarray(off, off + len)));
  }
  timedOut(first: Uint8Array, off: number, len: number, src: number, srcMac: number): void {
    this.timeouts.push({ first: Buffer.from(first.subarray(off, off + len)), src, srcMac });
  }
}

interface Rig {
  r: Reassembler;
  ids: Ipv6Ids;
  drops: DropCounters;
  client: Client;
  /** Feeds one IPv6 fragment made by fragments6 (at most one extension header before its Fragment header). */
  feed(d: Buffer, nowMs?: number): FragResult;
  feed4(d: Buffer, nowMs?: number): FragResult;
}

function rig(options: ReassemblyOptions = {}): Rig {
  const ids = new Ipv6Ids();
  const drops = new DropCounters();
  const r = new Reassembler(drops, ids, options);
  const client = new Client();
  const input = new Uint8Array(70_000);
  const run = (d: Buffer, f: FragmentRepr, nowMs: number): FragResult => {
    input.fill(0xa5);
    input.set(d, 14);
    const res = r.input(input, 14, f, nowMs, client);
    input.fill(0xee); // the link reuses its buffer
    return res;
  };
  return {
    r,
    ids,
    drops,
    client,
    feed: (d, nowMs = 1000) => run(d, repr6(ids, d), nowMs),
    feed4: (d, nowMs = 1000) => run(d, repr4(d), nowMs),
  };
}

/** Describes a fragment by its known layout (not through walkIpv6). */
function repr6(ids: Ipv6Ids, d: Buffer): FragmentRepr {
  const f = newFragmentRepr();
  const unfrag = d[6] === 44 ? 0 : (d[41] + 1) * 8;
  const fh = 40 + unfrag;
  f.src = ids.id(d, 8);
  f.dst = ids.id(d, 24);
  f.protocol = -1;
  f.ident = d.readUInt32BE(fh + 4);
  f.headerLen = fh;
  f.dataOff = fh + 8;
  f.dataLen = d.length - fh - 8;
  f.fragOffset = d.readUInt16BE(fh + 2) & 0xfff8;
  f.moreFragments = (d[fh + 3] & 1) === 1;
  f.nextHeaderFieldOff = unfrag === 0 ? 6 : 40;
  f.srcMac = MAC;
  return f;
}

function repr4(d: Buffer): FragmentRepr {
  const f = newFragmentRepr();
  f.src = d.readUInt32BE(12);
  f.dst = d.readUInt32BE(16);
  f.protocol = d[9];
  f.ident = d.readUInt16BE(4);
  f.headerLen = f.dataOff = (d[0] & 0xf) * 4;
  f.dataLen = d.readUInt16BE(2) - f.headerLen;
  f.fragOffset = (d.readUInt16BE(6) & 0x1fff) * 8;
  f.moreFragments = (d[6] & 0x20) !== 0;
  return f;
}

/** An IPv4 fragment of 10.0.2.100 → 10.0.2.2, protocol 17. */
function frag4(ident: number, offset: number, more: boolean, data: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + data.length, 2);
  h.writeUInt16BE(ident, 4);
  h.writeUInt16BE((more ? 0x2000 : 0) | (offset / 8), 6);
  h[8] = 64;
  h[9] = UDP;
  Buffer.from([10, 0, 2, 100, 10, 0, 2, 2]).copy(h, 12);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, data]);
}

const whole = (data: Buffer): Buffer => ipv6({ src: SRC, dst: DST, nextHeader: UDP }, data);

/** A copy of a fragment (no unfragmentable extension header) with another offset and M flag. */
function withFragField(d: Buffer, offset: number, more: boolean): Buffer {
  const x = Buffer.from(d);
  x.writeUInt16BE(offset | (more ? 1 : 0), 42);
  return x;
}

describe('IPv6 reassembly (RFC 8200 §4.5)', () => {
  it('in order: the Fragment header goes, the Payload Length covers the whole, nothing is held after', () => {
    const t = rig();
    const data = payload(4000);
    const frags = fragments6(SRC, DST, UDP, data, { chunk: 1448, ident: 7 });
    expect(frags).toHaveLength(3);
    expect(frags.map((d) => t.feed(d))).toEqual([FragResult.HELD, FragResult.HELD, FragResult.REASSEMBLED]);
    expect(t.client.got).toEqual([whole(data)]);
    expect(t.r.stats).toEqual({ fragments: 3, reassembled: 1, inProgress: 0, bytesHeld: 0 });
    expect(t.drops.total).toBe(0);
  });

  it('in any order', () => {
    const data = payload(4000, 2);
    const frags = fragments6(SRC, DST, UDP, data, { chunk: 1448, ident: 8 });
    for (const order of [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]) {
      const t = rig();
      for (const i of order) t.feed(frags[i]);
      expect(t.client.got, order.join()).toEqual([whole(data)]);
      expect(t.r.inProgress).toBe(0);
    }
  });

  it('a Destination Options header before the Fragment header stays, and its Next Header names the upper layer', () => {
    const t = rig();
    const data = payload(3000, 3);
    const frags = fragments6(SRC, DST, UDP, data, { chunk: 1440, ident: 9, unfragmentable: DEST_OPTS, unfragmentableType: 60 });
    for (const d of frags.reverse()) t.feed(d);
    const [got] = t.client.got;
    expect(got[6]).toBe(60); // fixed header → Destination Options
    expect(got[40]).toBe(UDP); // Destination Options → UDP (was 44, the Fragment header)
    expect(got.subarray(41, 48)).toEqual(DEST_OPTS.subarray(1));
    expect(got.readUInt16BE(4)).toBe(8 + data.length);
    expect(got.subarray(48)).toEqual(data);
    expect(got.length).toBe(40 + 8 + data.length);
  });

  it('the unfragmentable part comes from the first fragment', () => {
    const t = rig();
    const data = payload(2000, 4);
    const frags = fragments6(SRC, DST, UDP, data, { chunk: 1000, ident: 10 });
    frags[1][7] = 1; // the hop limit of the last fragment
    t.feed(frags[1]);
    t.feed(frags[0]);
    expect(t.client.got[0][7]).toBe(64);
  });

  it('an exact duplicate is dropped alone and the datagram still completes', () => {
    const t = rig();
    const data = payload(4000, 5);
    const [a, b, c] = fragments6(SRC, DST, UDP, data, { chunk: 1448, ident: 11 });
    expect(t.feed(a)).toBe(FragResult.HELD);
    expect(t.feed(b)).toBe(FragResult.HELD);
    expect(t.feed(b)).toBe(FragResult.DROPPED);
    expect(t.feed(c)).toBe(FragResult.REASSEMBLED);
    expect(t.client.got).toEqual([whole(data)]);
    expect(t.drops.toJSON()).toEqual({ frag_duplicate: 1 });
  });

  describe('an overlap discards the whole datagram (RFC 5722 §4)', () => {
    const data = payload(4000, 6);
    const [a, b, c] = fragments6(SRC, DST, UDP, data, { chunk: 1448, ident: 12 });
    const cases: Array<[string, Buffer[], Buffer, Buffer]> = [
      ['same offset and length, other bytes', [a, b], Buffer.concat([b.subarray(0, 48), Buffer.alloc(b.length - 48, 0x77)]), c],
      ['starting 8 bytes into a fragment held', [a, b], withFragField(b, 1440, true), c],
      ['a fragment held, again, now claiming to be the last', [a, b], withFragField(b, 1448, false), c],
      ['a last fragment ending before data held', [b], withFragField(a.subarray(0, 48 + 8), 8, false), c],
      ['data past the end the last fragment set', [a, c], withFragField(b, 4000, true), b],
      ['a second last fragment ending elsewhere', [a, c], c.subarray(0, c.length - 8), b],
    ];
    for (const [what, before, bad, after] of cases) {
      it(what, () => {
        const t = rig();
        for (const d of before) t.feed(d);
        expect(t.feed(bad)).toBe(FragResult.DROPPED);
        expect(t.drops.toJSON()).toEqual({ frag_overlap: 1 });
        expect(t.r.stats).toMatchObject({ inProgress: 0, bytesHeld: 0 });
        // What comes after starts a datagram of its own, which never completes.
        expect(t.feed(after)).toBe(FragResult.HELD);
        expect(t.client.got).toHaveLength(0);
      });
    }
  });

  it('drops a non-final fragment whose length is not a multiple of 8, and an empty one', () => {
    const t = rig();
    const [a] = fragments6(SRC, DST, UDP, payload(3000), { chunk: 1448, ident: 13 });
    expect(t.feed(a.subarray(0, a.length - 1))).toBe(FragResult.BAD_LENGTH);
    expect(t.feed(a.subarray(0, 48))).toBe(FragResult.DROPPED);
    expect(t.drops.toJSON()).toEqual({ frag_bad_length: 2 });
    expect(t.r.inProgress).toBe(0);
  });

  it('drops a fragment reaching past 65535 bytes of payload, keeps one ending there', () => {
    const t = rig();
    // 65520 + 24 data bytes after an 8-byte Fragment header: a Payload Length of 65552.
    const [, over] = fragments6(SRC, DST, UDP, payload(65520 + 24), { chunk: 65520, ident: 14 });
    expect(t.feed(over)).toBe(FragResult.TOO_LARGE);
    const [, fits] = fragments6(SRC, DST, UDP, payload(65520 + 7), { chunk: 65520, ident: 15 });
    expect(t.feed(fits)).toBe(FragResult.HELD);
    expect(t.drops.toJSON()).toEqual({ frag_too_large: 1 });
  });

  it('drops a datagram that the first fragment’s headers make larger than 65535 bytes of payload', () => {
    const t = rig();
    const big = Buffer.alloc(1024);
    big[1] = 127; // 1024 bytes of Destination Options (Pad1)
    const [first] = fragments6(SRC, DST, UDP, payload(16), { chunk: 8, ident: 16, unfragmentable: big, unfragmentableType: 60 });
    const [last] = fragments6(SRC, DST, UDP, payload(64992), { chunk: 64992, ident: 16 });
    // The last fragment is fine with its own 40-byte unfragmentable part; the datagram has the first one's.
    expect(t.feed(withFragField(last, 8, false))).toBe(FragResult.HELD);
    expect(t.feed(first)).toBe(FragResult.DROPPED);
    expect(t.drops.toJSON()).toEqual({ frag_too_large: 1 });
    expect(t.r.stats).toMatchObject({ inProgress: 0, bytesHeld: 0 });
  });

  describe('limits', () => {
    it('bytes held: fragments over the budget are dropped', () => {
      const t = rig({ maxBytes: 10_000 });
      for (let id = 0; id < 20; id++) t.feed(fragments6(SRC, DST, UDP, payload(3000), { chunk: 1448, ident: id })[0]);
      expect(t.r.stats.bytesHeld).toBeLessThanOrEqual(10_000);
      expect(t.r.stats.bytesHeld).toBeGreaterThan(10_000 - 1448 - 48);
      expect(t.drops.toJSON()).toEqual({ frag_limit: 20 - t.r.inProgress });
    });

    it('datagrams in progress: the oldest is evicted', () => {
      const t = rig({ maxDatagrams: 4 });
      const all = Array.from({ length: 6 }, (_, id) => fragments6(SRC, DST, UDP, payload(3000, id), { chunk: 1448, ident: id }));
      all.forEach((frags, id) => t.feed(frags[0], 1000 + id));
      expect(t.r.inProgress).toBe(4);
      expect(t.drops.toJSON()).toEqual({ frag_limit: 2 });
      // Datagram 5 completes; datagram 0 was evicted, its rest starts anew.
      for (const d of all[5].slice(1)) t.feed(d, 2000);
      for (const d of all[0].slice(1)) t.feed(d, 2000);
      expect(t.client.got).toEqual([whole(payload(3000, 5))]);
    });

    it('fragments per datagram: 256', () => {
      const t = rig();
      const frags = fragments6(SRC, DST, UDP, payload(8 * 300), { chunk: 8, ident: 17 });
      const results = frags.slice(0, 257).map((d) => t.feed(d));
      expect(results.slice(0, 256).every((r) => r === FragResult.HELD)).toBe(true);
      expect(results[256]).toBe(FragResult.DROPPED);
      expect(t.drops.toJSON()).toEqual({ frag_limit: 1 });
    });
  });

  describe('timeouts (manual clock)', () => {
    it('60 s for IPv6 from the first-arriving fragment; the first fragment is handed back for Time Exceeded', () => {
      const t = rig();
      const [a, b, c] = fragments6(SRC, DST, UDP, payload(4000), { chunk: 1448, ident: 18 });
      t.feed(b, 1000);
      t.feed(a, 30_000);
      expect(t.r.nextDeadlineMs).toBe(61_000);
      expect(t.r.expire(60_999)).toBe(61_000);
      expect(t.r.inProgress).toBe(1);
      expect(t.r.expire(61_000)).toBe(Infinity);
      expect(t.r.stats).toMatchObject({ inProgress: 0, bytesHeld: 0 });
      expect(t.drops.toJSON()).toEqual({ frag_timeout: 1 });
      expect(t.client.timeouts).toEqual([{ first: a, src: t.ids.id(a, 8), srcMac: MAC }]);
      // Too late: the last fragment starts a datagram of its own.
      expect(t.feed(c, 61_000)).toBe(FragResult.HELD);
    });

    it('no Time Exceeded when the first fragment never came', () => {
      const t = rig();
      const [, b] = fragments6(SRC, DST, UDP, payload(4000), { chunk: 1448, ident: 19 });
      t.feed(b, 0);
      t.r.expire(60_000);
      expect(t.drops.toJSON()).toEqual({ frag_timeout: 1 });
      expect(t.client.timeouts).toEqual([]);
    });

    it('one instance, one budget, a timeout per family: IPv4 30 s and never Time Exceeded, IPv6 60 s', () => {
      const t = rig({ maxDatagrams: 2 });
      t.feed4(frag4(1, 0, true, payload(1480)), 0);
      t.feed(fragments6(SRC, DST, UDP, payload(3000), { chunk: 1448, ident: 1 })[0], 0);
      expect(t.r.inProgress).toBe(2);
      expect(t.r.expire(30_000)).toBe(60_000);
      expect(t.r.inProgress).toBe(1);
      expect(t.client.timeouts).toEqual([]);
      t.r.expire(60_000);
      expect(t.client.timeouts).toHaveLength(1);
      expect(t.drops.toJSON()).toEqual({ frag_timeout: 2 });
    });
  });

  it('holds the IPv6 addresses (ids) only while it keeps a datagram', () => {
    const t = rig();
    t.ids.sweep();
    const before = t.ids.size;
    const [a, b] = fragments6(SRC, DST, UDP, payload(2000), { chunk: 1448, ident: 20 });
    t.feed(a);
    t.ids.sweep();
    expect(t.ids.size).toBe(before + 2);
    t.feed(b);
    t.ids.sweep();
    expect(t.ids.size).toBe(before);
    t.feed(a, 0);
    t.r.expire(60_000);
    t.ids.sweep();
    expect(t.ids.size).toBe(before);
  });

  it('keys on source, destination and identification: other addresses or idents do not mix', () => {
    const t = rig();
    const data = payload(2000, 9);
    const [a, b] = fragments6(SRC, DST, UDP, data, { chunk: 1448, ident: 21 });
    const [, otherIdent] = fragments6(SRC, DST, UDP, data, { chunk: 1448, ident: 22 });
    const [, otherDst] = fragments6(SRC, '2001:db8::2', UDP, data, { chunk: 1448, ident: 21 });
    const [, otherSrc] = fragments6('fd00::5', DST, UDP, data, { chunk: 1448, ident: 21 });
    t.feed(a);
    for (const d of [otherIdent, otherDst, otherSrc]) expect(t.feed(d)).toBe(FragResult.HELD);
    expect(t.r.inProgress).toBe(4);
    expect(t.feed(b)).toBe(FragResult.REASSEMBLED);
    expect(t.client.got).toEqual([whole(data)]);
  });

  it('IPv4 in the same instance: total length, MF and offset cleared, header checksum recomputed', () => {
    const t = rig();
    const data = payload(3000, 10);
    t.feed4(frag4(99, 1480, false, data.subarray(1480)));
    expect(t.feed4(frag4(99, 0, true, data.subarray(0, 1480)))).toBe(FragResult.REASSEMBLED);
    const [got] = t.client.got;
    expect(got.readUInt16BE(2)).toBe(20 + 3000);
    expect(got.readUInt16BE(6)).toBe(0);
    expect(inetChecksum(got.subarray(0, 20))).toBe(0);
    expect(got.subarray(20)).toEqual(data);
  });
});
