/**
 * The parser on its own. Its verdicts on real requests are checked against
 * slirp4netns's replies in api-golden.test.ts; this file pins the values it
 * returns and the limits no 4096-byte request can reach.
 */
import { describe, expect, it } from 'vitest';
import { MAX_NESTING, cString, isJsonObject, parseParsonJson } from '../../src/api/parson-json.js';

describe('parseParsonJson', () => {
  it('returns plain values', () => {
    expect(parseParsonJson('{"a":[1,-2.5,true,false,null,"x"],"b":{}}')).toEqual({
      a: [1, -2.5, true, false, null, 'x'],
      b: {},
    });
    expect(parseParsonJson(' 5 ')).toBe(5);
    expect(parseParsonJson('"s"')).toBe('s');
    expect(parseParsonJson('null')).toBe(null);
  });

  it('decodes escapes and surrogate pairs', () => {
    expect(parseParsonJson('"\\b\\f\\n\\r\\t\\"\\\\\\/\\u00e9\\ud83d\\ude00"')).toBe('\b\f\n\r\t"\\/é😀');
    expect(parseParsonJson('"a\\u0000b"')).toBe('a\u0000b');
  });

  it('reads strtod numbers with parson leading-zero rule', () => {
    expect(parseParsonJson('1.')).toBe(1);
    expect(parseParsonJson('1.e2')).toBe(100);
    expect(parseParsonJson('-.5')).toBe(-0.5);
    expect(parseParsonJson('0.e5')).toBe(0);
    expect(parseParsonJson('1e-400')).toBe(0);
    expect(parseParsonJson('18090.7')).toBe(18090.7);
    for (const bad of ['01', '00', '-01', '0e5', '-0e1', '.5', '+1', '0x10', '1e400', '-1e400', 'Infinity', '-inf', 'NaN', '-']) {
      expect(parseParsonJson(`[${bad}]`), bad).toBeUndefined();
    }
  });

  it('stops at the end of the first value', () => {
    expect(parseParsonJson('{"a":1} trailing')).toEqual({ a: 1 });
    expect(parseParsonJson('{"a":1}{"a":2}')).toEqual({ a: 1 });
    // A dangling exponent is left unread, as strtod leaves it.
    expect(parseParsonJson('5e')).toBe(5);
    expect(parseParsonJson('truex')).toBe(true);
  });

  it('skips a BOM only at the very start', () => {
    expect(parseParsonJson('\ufeff{"a":1}')).toEqual({ a: 1 });
    expect(parseParsonJson(' \ufeff{"a":1}')).toBeUndefined();
  });

  it('refuses duplicate keys at any depth and keys containing U+0000', () => {
    expect(parseParsonJson('{"a":1,"a":1}')).toBeUndefined();
    expect(parseParsonJson('[{"x":{"a":1,"a":2}}]')).toBeUndefined();
    expect(parseParsonJson('{"a\\u0000":1}')).toBeUndefined();
  });

  it('takes __proto__ and constructor as ordinary keys', () => {
    const v = parseParsonJson('{"__proto__":{"polluted":1},"constructor":2}');
    expect(isJsonObject(v)).toBe(true);
    const o = v as Record<string, unknown>;
    expect(Object.getPrototypeOf(o)).toBe(null);
    expect(Object.keys(o)).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(parseParsonJson('{"__proto__":1,"__proto__":2}')).toBeUndefined();
  });

  it(`allows ${MAX_NESTING + 1} nested containers and refuses one more (parson MAX_NESTING)`, () => {
    const nest = (n: number): string => '['.repeat(n) + ']'.repeat(n);
    expect(parseParsonJson(nest(MAX_NESTING + 1))).toBeDefined();
    expect(parseParsonJson(nest(MAX_NESTING + 2))).toBeUndefined();
    expect(parseParsonJson(nest(100_000))).toBeUndefined();
  });

  it('never throws on truncations of a valid request', () => {
    const req = '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":18200,"x":"\\ud83d\\ude00\\u0041"}}';
    for (let n = 0; n < req.length; n++) expect(parseParsonJson(req.slice(0, n)), `length ${n}`).toBeUndefined();
    expect(parseParsonJson(req)).toBeDefined();
  });
});

describe('cString', () => {
  it('cuts at the first U+0000', () => {
    expect(cString('list_hostfwd\u0000x')).toBe('list_hostfwd');
    expect(cString('\u0000x')).toBe('');
    expect(cString('abc')).toBe('abc');
  });
});
