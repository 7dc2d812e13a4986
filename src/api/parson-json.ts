/**
 * JSON as slirp4netns reads it: the grammar of parson's
 * `json_parse_string`, not `JSON.parse`'s, so that every request gets the
 * same verdict ("cannot parse JSON" or not) as from slirp4netns 1.2.
 *
 * Where parson and JSON.parse part ways (each checked against the real
 * slirp4netns 1.2.0; see test/api/parson-json.test.ts):
 *
 * - Content after the first complete value is ignored: `{…} garbage` and
 *   `{…}{…}` parse as the first object.
 * - A UTF-8 byte order mark at the very start is skipped, and the whitespace
 *   set is C's isspace(): vertical tab and form feed count.
 * - Duplicate keys anywhere make the document unparsable; so does a key that
 *   contains U+0000.
 * - Numbers follow strtod plus parson's leading-zero check: `1.`, `1.e5`,
 *   `-.5` and `0.e5` are numbers; `01`, `0e5`, `-01`, `.5`, `+1`, hex,
 *   `Infinity` and `NaN` are not; a value that overflows to ±∞ (`1e400`) is
 *   refused, one that underflows (`1e-400`) becomes 0.
 * - Nesting deeper than 2048 (parson's MAX_NESTING) is refused.
 *
 * The caller cuts the request at its first NUL byte first (slirp4netns
 * handles it as a C string). Objects come back with a null prototype, so a
 * `__proto__` or `constructor` key is just a key.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** parson's MAX_NESTING. */
export const MAX_NESTING = 2048;

/** The first JSON value in `text`, or undefined where parson would return NULL. */
export function parseParsonJson(text: string): JsonValue | undefined {
  const p = new Parser(text);
  if (text.charCodeAt(0) === 0xfeff) p.pos = 1;
  const value = p.value(0);
  return value === FAIL ? undefined : value;
}

/** A C string's view of a JSON string: everything before the first U+0000 (from a `\u0000` escape). */
export function cString(s: string): string {
  const nul = s.indexOf('\u0000');
  return nul < 0 ? s : s.slice(0, nul);
}

/** Whether `v` is a JSON object (not an array, not null). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const FAIL: unique symbol = Symbol('fail');
type Result = JsonValue | typeof FAIL;

// strtod's decimal form; a dangling exponent ("1e", "1e+") is left unconsumed, as strtod does.
const NUMBER = /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;

class Parser {
  pos = 0;

  constructor(private readonly s: string) {}

  value(nesting: number): Result {
    if (nesting > MAX_NESTING) return FAIL;
    this.skipSpace();
    const c = this.s.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */:
        return this.object(nesting + 1);
      case 0x5b /* [ */:
        return this.array(nesting + 1);
      case 0x22 /* " */:
        return this.string();
      case 0x74 /* t */:
        return this.literal('true', true);
      case 0x66 /* f */:
        return this.literal('false', false);
      case 0x6e /* n */:
        return this.literal('null', null);
      default:
        if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) return this.number();
        return FAIL;
    }
  }

  private object(nesting: number): Result {
    const out: JsonObject = Object.create(null) as JsonObject;
    this.pos++;
    this.skipSpace();
    if (this.s.charCodeAt(this.pos) === 0x7d /* } */) {
      this.pos++;
      return out;
    }
    for (;;) {
      const key = this.string();
      if (key === FAIL || key.includes('\u0000')) return FAIL;
      this.skipSpace();
      if (this.s.charCodeAt(this.pos) !== 0x3a /* : */) return FAIL;
      this.pos++;
      const v = this.value(nesting);
      if (v === FAIL) return FAIL;
      if (Object.hasOwn(out, key)) return FAIL;
      out[key] = v;
      this.skipSpace();
      if (this.s.charCodeAt(this.pos) !== 0x2c /* , */) break;
      this.pos++;
      this.skipSpace();
    }
    if (this.s.charCodeAt(this.pos) !== 0x7d /* } */) return FAIL;
    this.pos++;
    return out;
  }

  private array(nesting: number): Result {
    const out: JsonValue[] = [];
    this.pos++;
    this.skipSpace();
    if (this.s.charCodeAt(this.pos) === 0x5d /* ] */) {
      this.pos++;
      return out;
    }
    for (;;) {
      const v = this.value(nesting);
      if (v === FAIL) return FAIL;
      out.push(v);
      this.skipSpace();
      if (this.s.charCodeAt(this.pos) !== 0x2c /* , */) break;
      this.pos++;
      this.skipSpace();
    }
    if (this.s.charCodeAt(this.pos) !== 0x5d /* ] */) return FAIL;
    this.pos++;
    return out;
  }

  private string(): string | typeof FAIL {
    const s = this.s;
    if (s.charCodeAt(this.pos) !== 0x22) return FAIL;
    let i = this.pos + 1;
    let out = '';
    let runStart = i;
    for (;;) {
      if (i >= s.length) return FAIL;
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      // RFC 8259 §7, and parson: raw control characters are not allowed in strings.
      if (c < 0x20) return FAIL;
      if (c !== 0x5c /* \ */) {
        i++;
        continue;
      }
      out += s.slice(runStart, i);
      const e = s.charCodeAt(i + 1);
      i += 2;
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75 /* u */: {
          const lead = hex4(s, i);
          if (lead < 0) return FAIL;
          i += 4;
          if (lead >= 0xdc00 && lead <= 0xdfff) return FAIL;
          if (lead >= 0xd800 && lead <= 0xdbff) {
            // parson wants the trail surrogate right after, as another \u escape.
            if (s.charCodeAt(i) !== 0x5c || s.charCodeAt(i + 1) !== 0x75) return FAIL;
            const trail = hex4(s, i + 2);
            if (trail < 0xdc00 || trail > 0xdfff) return FAIL;
            i += 6;
            out += String.fromCharCode(lead, trail);
          } else {
            out += String.fromCharCode(lead);
          }
          break;
        }
        default:
          return FAIL;
      }
      runStart = i;
    }
    out += s.slice(runStart, i);
    this.pos = i + 1;
    return out;
  }

  private literal(word: string, v: boolean | null): Result {
    if (!this.s.startsWith(word, this.pos)) return FAIL;
    this.pos += word.length;
    return v;
  }

  private number(): Result {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.s);
    if (m === null) return FAIL;
    const t = m[0];
    // parson's is_decimal(): strtod would read "01" and "0e5", JSON does not.
    if (t.length > 1 && t[0] === '0' && t[1] !== '.') return FAIL;
    if (t.length > 2 && t.startsWith('-0') && t[2] !== '.') return FAIL;
    const v = Number(t);
    // strtod's ERANGE on overflow; underflow to 0 is accepted.
    if (!Number.isFinite(v)) return FAIL;
    this.pos += t.length;
    return v;
  }

  private skipSpace(): void {
    const s = this.s;
    let i = this.pos;
    for (;;) {
      const c = s.charCodeAt(i);
      // C isspace(): space, \t \n \v \f \r.
      if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) i++;
      else break;
    }
    this.pos = i;
  }
}

function hex4(s: string, at: number): number {
  if (at + 4 > s.length) return -1;
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const c = s.charCodeAt(at + k);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}
