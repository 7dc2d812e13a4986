import { describe, expect, test } from 'vitest';
import { checksum, finish, fold, pseudoHeaderSumV4, sum16 } from '../../src/wire/checksum.js';
import { ETH, IP_A, IP_B, TCP_SYN, UDP_HELLO, UDP_ODD, hex, prng, randomBytes } from './golden.js';

/** RFC 1071 taken literally: big-endian 16-bit words, odd byte padded with zero, end-around carry. */
function naiveSum(buf: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i < len; i += 2) {
    const hi = buf[off + i];
    const lo = i + 1 < len ? buf[off + i + 1] : 0;
    sum += (hi << 8) | lo;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return sum;
}

function naiveChecksum(buf: Uint8Array, off: number, len: number): number {
  return ~naiveSum(buf, off, len) & 0xffff;
}

/** A copy of `data` whose Uint8Array starts at byteOffset `shift` of its ArrayBuffer. */
function misaligned(data: Uint8Array, shift: number): Uint8Array {
  const backing = new Uint8Array(data.length + shift + 8).fill(0x5a);
  const view = backing.subarray(shift, shift + data.length);
  view.set(data);
  return view;
}

describe('fold / finish', () => {
  test('end-around carry', () => {
    expect(fold(0)).toBe(0);
    expect(fold(0xffff)).toBe(0xffff);
    expect(fold(0x1_0000)).toBe(1);
    expect(fold(0x1_fffe)).toBe(0xffff);
    expect(fold(0xffff_ffff)).toBe(0xffff);
    // Sums beyond 2^32 (a 64 KB payload plus headers cannot get there, a caller chaining can).
    expect(fold(0x1_0000_0000)).toBe(1);
    expect(fold(2 ** 52)).toBe(fold(naiveFoldBig(2 ** 52)));
  });

  test('finish complements', () => {
    expect(finish(0xffff)).toBe(0);
    expect(finish(0)).toBe(0xffff);
    expect(finish(0xddf2)).toBe(0x220d);
  });
});

function naiveFoldBig(x: number): number {
  while (x > 0xffff) x = (x % 65536) + Math.floor(x / 65536);
  return x;
}

describe('sum16 / checksum', () => {
  test('RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2', () => {
    const b = hex('0001f203f4f5f6f7');
    expect(fold(sum16(b, 0, 8))).toBe(0xddf2);
    expect(checksum(b, 0, 8)).toBe(0x220d);
  });

  test('empty and single byte', () => {
    const b = hex('ab');
    expect(sum16(b, 0, 0)).toBe(0);
    expect(sum16(b, 0, 1)).toBe(0xab00);
    expect(checksum(b, 0, 0)).toBe(0xffff);
  });

  test('odd length pads the last byte as a high byte', () => {
    const b = hex('0102030405');
    expect(fold(sum16(b, 0, 5))).toBe(0x0102 + 0x0304 + 0x0500);
  });

  test('odd offset: words are counted from off, not from the buffer start', () => {
    const b = hex('ff0102030405');
    expect(fold(sum16(b, 1, 5))).toBe(0x0102 + 0x0304 + 0x0500);
    expect(fold(sum16(b, 1, 4))).toBe(0x0102 + 0x0304);
  });

  test('the initial running sum is carried', () => {
    const b = hex('0001f203f4f5f6f7');
    expect(fold(sum16(b, 4, 4, sum16(b, 0, 4)))).toBe(0xddf2);
  });

  test('a header summed with its own checksum gives 0xffff', () => {
    const ip = UDP_HELLO.subarray(ETH, ETH + 20);
    expect(fold(sum16(ip, 0, 20))).toBe(0xffff);
    expect(checksum(UDP_HELLO, ETH, 20)).toBe(0);
  });

  test('agrees with the naive reference on every length 0..300 at every offset 0..7 and byteOffset 0..3', () => {
    const rand = prng(1071);
    for (let shift = 0; shift < 4; shift++) {
      const data = misaligned(randomBytes(rand, 320), shift);
      for (let off = 0; off < 8; off++) {
        for (let len = 0; len <= 300; len++) {
          const got = checksum(data, off, len);
          if (got !== naiveChecksum(data, off, len)) {
            throw new Error(`mismatch shift=${shift} off=${off} len=${len}: ${got}`);
          }
        }
      }
    }
  });

  test('lengths around the 64-byte word-loop threshold, all alignments', () => {
    const rand = prng(64);
    for (let shift = 0; shift < 4; shift++) {
      for (let len = 56; len <= 76; len++) {
        const data = misaligned(randomBytes(rand, len), shift);
        expect(checksum(data, 0, len)).toBe(naiveChecksum(data, 0, len));
      }
    }
  });

  test('all-0xff data (maximal carries) through the word loop', () => {
    for (const len of [64, 65, 66, 67, 128, 1500, 65535, 65536]) {
      const data = new Uint8Array(len).fill(0xff);
      expect(checksum(data, 0, len)).toBe(naiveChecksum(data, 0, len));
    }
  });

  test('64 KB of random data, aligned and misaligned', () => {
    const rand = prng(65536);
    const raw = randomBytes(rand, 65536);
    for (let shift = 0; shift < 4; shift++) {
      const data = misaligned(raw, shift);
      expect(checksum(data, 0, 65536)).toBe(naiveChecksum(data, 0, 65536));
      expect(checksum(data, 1, 65535)).toBe(naiveChecksum(data, 1, 65535));
      expect(checksum(data, 2, 65533)).toBe(naiveChecksum(data, 2, 65533));
    }
  });

  test('random lengths, offsets and alignments agree with the reference', () => {
    const rand = prng(20_000);
    const raw = randomBytes(rand, 9100);
    const views = [0, 1, 2, 3].map((s) => misaligned(raw, s));
    for (let k = 0; k < 2000; k++) {
      const data = views[(rand() * 4) | 0];
      const off = (rand() * 100) | 0;
      const len = (rand() * 9000) | 0;
      const initial = (rand() * 0x1_0000_0000) >>> 0;
      const got = fold(sum16(data, off, len, initial));
      const want = fold(naiveSum(data, off, len) + initial);
      expect(got).toBe(want);
    }
  });

  test('does not read the ArrayBuffer outside [off, off+len) (word loop included)', () => {
    const rand = prng(7);
    const data = randomBytes(rand, 200);
    const backing = new Uint8Array(400).fill(0xff);
    backing.set(data, 100);
    // Same bytes, different neighbours: sums must agree.
    const zeros = new Uint8Array(400);
    zeros.set(data, 100);
    for (const [off, len] of [
      [100, 200],
      [101, 199],
      [102, 130],
      [103, 97],
    ]) {
      expect(sum16(backing, off, len)).toBe(sum16(zeros, off, len));
    }
  });
});

describe('pseudoHeaderSumV4', () => {
  test('10.0.0.1 → 10.0.0.2, UDP, length 21', () => {
    // 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 17 + 21
    expect(pseudoHeaderSumV4(IP_A, IP_B, 17, 21)).toBe(0x0a00 + 1 + 0x0a00 + 2 + 17 + 21);
  });

  test('addresses with the high bit set stay positive', () => {
    const s = pseudoHeaderSumV4(0xffff_ffff, 0xc0a8_0101, 6, 40);
    expect(s).toBe(0xffff + 0xffff + 0xc0a8 + 0x0101 + 6 + 40);
  });

  test('verifies the captured UDP and TCP checksums', () => {
    for (const [frame, proto] of [
      [UDP_HELLO, 17],
      [UDP_ODD, 17],
      [TCP_SYN, 6],
    ] as const) {
      const ipLen = (frame[ETH + 2] << 8) | frame[ETH + 3];
      const l4Len = ipLen - 20;
      const ps = pseudoHeaderSumV4(IP_A, IP_B, proto, l4Len);
      expect(checksum(frame, ETH + 20, l4Len, ps)).toBe(0);
    }
  });
});
