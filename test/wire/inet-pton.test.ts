import { describe, expect, it } from 'vitest';
import { isInetPton4, isInetPton6 } from '../../src/wire/inet-pton.js';

// Verdicts of glibc inet_pton() on this machine (Python's socket.inet_pton calls it).
const V4: ReadonlyArray<[string, boolean]> = [
  ['0.0.0.0', true],
  ['255.255.255.255', true],
  ['1.2.3.4', true],
  ['10.0.2.100', true],
  ['01.2.3.4', false],
  ['1.2.3.04', false],
  ['0.0.0.00', false],
  ['00.0.0.0', false],
  ['1.2.3', false],
  ['1.2.3.4.', false],
  ['.1.2.3.4', false],
  ['1..2.3', false],
  ['256.0.0.0', false],
  ['1.2.3.256', false],
  ['1234.1.1.1', false],
  ['1.2.3.4 ', false],
  [' 1.2.3.4', false],
  ['1.2.3.-4', false],
  ['0x1.2.3.4', false],
  ['1.2.3.4.5', false],
  ['', false],
  ['::1', false],
  ['localhost', false],
];

const V6: ReadonlyArray<[string, boolean]> = [
  ['::', true],
  ['::1', true],
  ['1::', true],
  ['1:2:3:4:5:6:7:8', true],
  ['1:2:3:4:5:6:7::', true],
  ['::2:3:4:5:6:7:8', true],
  ['0:0:0:0:0:0:0:0', true],
  ['0000::', true],
  ['FFFF::', true],
  ['ffff:FFFF::', true],
  ['::ffff:1.2.3.4', true],
  ['::1.2.3.4', true],
  ['::0:1.2.3.4', true],
  ['1:2:3:4:5:6:1.2.3.4', true],
  ['1:2:3:4:5::1.2.3.4', true],
  ['fe80::1', true],
  ['1:2:3:4:5:6:7::8', false],
  ['1:2:3:4:5:6:7:8:9', false],
  ['1:2:3:4:5:6:7:8::', false],
  ['1:2:3:4:5:6:7:8:', false],
  [':1:2:3:4:5:6:7:8', false],
  [':1::', false],
  [':::', false],
  ['1:::2', false],
  ['1::2::3', false],
  ['1::2:', false],
  ['1:', false],
  ['fe80::1%eth0', false],
  ['[::1]', false],
  [' ::1', false],
  ['::1 ', false],
  ['::ffff:01.2.3.4', false],
  ['::ffff:1.2.3', false],
  ['::ffff:256.1.1.1', false],
  ['::1.2.3.4:5', false],
  ['1::1.2.3.4.5', false],
  ['1:2:3:4:5:6:7:1.2.3.4', false],
  ['1:2:3:4:5:6::1.2.3.4', false],
  ['12345::', false],
  ['00000::', false],
  ['g::', false],
  ['', false],
  ['1.2.3.4', false],
];

describe('inet_pton as glibc', () => {
  it.each(V4)('AF_INET %j → %s', (text, ok) => {
    expect(isInetPton4(text)).toBe(ok);
  });
  it.each(V6)('AF_INET6 %j → %s', (text, ok) => {
    expect(isInetPton6(text)).toBe(ok);
  });
});
