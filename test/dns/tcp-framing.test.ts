import { describe, expect, it } from 'vitest';
import { DNS_TCP_MAX_FRAME, DnsTcpFramer, TcpFramerResult, frame } from '../../src/dns/tcp-framing.js';
import { concat, pat, prng } from '../wire/golden.js';

/** Comparable form: vitest's deep equality walks 64 KB arrays element by element. */
const b64 = (ms: Uint8Array[]): string[] =>
  ms.map((m) => Buffer.from(m.buffer, m.byteOffset, m.length).toString('base64'));

function feed(framer: DnsTcpFramer, chunks: Uint8Array[]): { code: number; msgs: Uint8Array[] } {
  const msgs: Uint8Array[] = [];
  let code: number = TcpFramerResult.OK;
  for (const c of chunks) {
    code = framer.push(c, msgs);
    if (code !== TcpFramerResult.OK) break;
  }
  return { code, msgs };
}

describe('frame', () => {
  it('prefixes the big-endian length', () => {
    expect(Array.from(frame(Uint8Array.of(1, 2, 3)))).toEqual([0, 3, 1, 2, 3]);
    expect(frame(new Uint8Array(65535)).length).toBe(65537);
    expect(() => frame(new Uint8Array(65536))).toThrow(RangeError);
  });
});

describe('DnsTcpFramer', () => {
  const msgs = [pat(12), pat(300, 1), pat(0), pat(1, 2), pat(4000, 3), pat(65535, 4)];
  const stream = concat(...msgs.map(frame));

  it('yields whole messages from one chunk (pipelining)', () => {
    const r = feed(new DnsTcpFramer(), [stream]);
    expect(r.code).toBe(TcpFramerResult.OK);
    expect(b64(r.msgs)).toEqual(b64(msgs));
  });

  it('yields the same messages for every split into byte-sized and random chunks', () => {
    const small = concat(...msgs.slice(0, 5).map(frame));
    const oneByte = feed(new DnsTcpFramer(), Array.from(small, (b) => Uint8Array.of(b)));
    expect(b64(oneByte.msgs)).toEqual(b64(msgs.slice(0, 5)));
    const rand = prng(7);
    for (let k = 0; k < 100; k++) {
      const chunks: Uint8Array[] = [];
      for (let p = 0; p < stream.length; ) {
        const n = 1 + ((rand() * (rand() < 0.5 ? 8 : 20000)) | 0);
        chunks.push(stream.slice(p, p + n));
        p += n;
      }
      const f = new DnsTcpFramer();
      const r = feed(f, chunks);
      expect(b64(r.msgs)).toEqual(b64(msgs));
      expect(f.pendingBytes).toBe(0);
    }
  });

  it('hands out copies: reusing the chunk buffer does not change them', () => {
    const chunk = frame(pat(20));
    const out: Uint8Array[] = [];
    new DnsTcpFramer().push(chunk, out);
    chunk.fill(0);
    expect(out[0]).toEqual(pat(20));
  });

  it('bounds what it holds: a message longer than maxPendingBytes is OVERFLOW, sticky until reset', () => {
    const f = new DnsTcpFramer(514);
    expect(feed(f, [frame(pat(512))]).msgs.length).toBe(1);
    // Announced 513 + 2 > 514: refused as soon as the prefix is seen, split or not.
    expect(feed(f, [frame(pat(513)).subarray(0, 1)]).code).toBe(TcpFramerResult.OK);
    expect(feed(f, [Uint8Array.of(1)]).code).toBe(TcpFramerResult.OVERFLOW);
    expect(f.pendingBytes).toBe(0);
    expect(feed(f, [frame(pat(10))]).code).toBe(TcpFramerResult.OVERFLOW);
    f.reset();
    expect(feed(f, [frame(pat(10))]).msgs).toEqual([pat(10)]);
    expect(new DnsTcpFramer(514).push(frame(pat(600)).subarray(0, 100), [])).toBe(TcpFramerResult.OVERFLOW);
  });

  it('a complete oversized message inside one chunk is still handed out (nothing waits)', () => {
    const r = feed(new DnsTcpFramer(100), [frame(pat(1000))]);
    expect(r.code).toBe(TcpFramerResult.OK);
    expect(r.msgs[0].length).toBe(1000);
  });

  it('the default bound admits the largest message, and never holds more than a frame', () => {
    const f = new DnsTcpFramer();
    const big = frame(pat(65535));
    expect(feed(f, [big.subarray(0, 40000)]).msgs.length).toBe(0);
    expect(f.pendingBytes).toBe(40000);
    expect(feed(f, [big.subarray(40000)]).msgs.length).toBe(1);
    expect(DNS_TCP_MAX_FRAME).toBe(65537);
    expect(() => new DnsTcpFramer(1)).toThrow(RangeError);
  });
});
