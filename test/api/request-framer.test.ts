import { describe, expect, it } from 'vitest';
import { FramerVerdict, RequestFramer } from '../../src/api/request-framer.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function feed(chunks: Buffer[], max = 4096): { verdict: number; request: string } {
  const f = new RequestFramer(max);
  let verdict: number = FramerVerdict.INCOMPLETE;
  for (const c of chunks) verdict = f.push(c);
  return { verdict, request: f.request().toString('latin1') };
}

const RK = '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":18200,"guest_addr":"10.0.2.100","guest_port":80}}';

describe('RequestFramer', () => {
  it('completes at the bracket that closes the first object, leaving the newline out', () => {
    expect(feed([b(RK + '\n')])).toEqual({ verdict: FramerVerdict.COMPLETE, request: RK });
  });

  it('completes at the same byte for every split into two chunks, and for 1-byte chunks', () => {
    const text = RK + '\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const r = feed([b(text.slice(0, cut)), b(text.slice(cut))]);
      expect(r, `cut at ${cut}`).toEqual({ verdict: FramerVerdict.COMPLETE, request: RK });
    }
    const f = new RequestFramer(4096);
    for (let i = 0; i < RK.length; i++) {
      expect(f.push(b(RK[i])), `byte ${i}`).toBe(i === RK.length - 1 ? FramerVerdict.COMPLETE : FramerVerdict.INCOMPLETE);
    }
  });

  it('is not fooled by brackets, quotes and backslashes inside strings', () => {
    const tricky = '{"a":"}]{[","b":"\\"}","c":"\\\\","d":["x",{"e":"\\\\\\"}"}]}';
    expect(feed([b(tricky + 'tail')])).toEqual({ verdict: FramerVerdict.COMPLETE, request: tricky });
    for (let cut = 1; cut < tricky.length; cut++) {
      expect(feed([b(tricky.slice(0, cut))]).verdict, `prefix ${cut}`).toBe(FramerVerdict.INCOMPLETE);
    }
  });

  it('skips whitespace (isspace) and a leading BOM before the first bracket', () => {
    expect(feed([b(' \t\r\n\x0b\x0c{}x')])).toEqual({ verdict: FramerVerdict.COMPLETE, request: ' \t\r\n\x0b\x0c{}' });
    expect(feed([b('\xef'), b('\xbb'), b('\xbf[1]')])).toEqual({ verdict: FramerVerdict.COMPLETE, request: '\xef\xbb\xbf[1]' });
  });

  it('waits for end of stream when the request does not start with a bracket', () => {
    for (const text of ['badjson', '5', '"x"', 'null', '\x00\x00', ' \xef\xbb\xbf{}', '\xef\xbb{}']) {
      expect(feed([b(text)]), text).toEqual({ verdict: FramerVerdict.INCOMPLETE, request: text });
    }
  });

  it('completes mismatched brackets too: judging them is the parser job', () => {
    expect(feed([b('{]')]).verdict).toBe(FramerVerdict.COMPLETE);
  });

  it('is too large at maxBytes, as slirp4netns (a read of 4096 bytes is too large)', () => {
    const obj = (n: number): string => '{"x":"' + 'a'.repeat(n - 8) + '"}';
    expect(obj(4095).length).toBe(4095);
    expect(feed([b(obj(4095))]).verdict).toBe(FramerVerdict.COMPLETE);
    expect(feed([b(obj(4096))]).verdict).toBe(FramerVerdict.TOO_LARGE);
    expect(feed([b('{"x":"' + 'a'.repeat(5000))]).verdict).toBe(FramerVerdict.TOO_LARGE);
    expect(feed([b(' '.repeat(4096))]).verdict).toBe(FramerVerdict.TOO_LARGE);
    // The bound counts the request, not a newline after it.
    expect(feed([b(obj(4095) + '\n')]).verdict).toBe(FramerVerdict.COMPLETE);
    // Byte by byte reaches the same verdict.
    const f = new RequestFramer(4096);
    let v: number = FramerVerdict.INCOMPLETE;
    for (let i = 0; i < 4096 && v === FramerVerdict.INCOMPLETE; i++) v = f.push(Buffer.alloc(1));
    expect(v).toBe(FramerVerdict.TOO_LARGE);
    expect(f.receivedBytes).toBe(4096);
  });

  it('holds at most maxBytes however much arrives, and ignores chunks after its verdict', () => {
    const f = new RequestFramer(16);
    expect(f.push(Buffer.alloc(1 << 20))).toBe(FramerVerdict.TOO_LARGE);
    expect(f.receivedBytes).toBe(16);
    expect(f.push(b('{}'))).toBe(FramerVerdict.TOO_LARGE);
    const g = new RequestFramer(16);
    expect(g.push(b('{}{"more":1}'))).toBe(FramerVerdict.COMPLETE);
    expect(g.push(b('}}}'))).toBe(FramerVerdict.COMPLETE);
    expect(g.request().toString()).toBe('{}');
  });

  it('refuses a nonsensical bound', () => {
    expect(() => new RequestFramer(0)).toThrow(RangeError);
    expect(() => new RequestFramer(1.5)).toThrow(RangeError);
  });
});
