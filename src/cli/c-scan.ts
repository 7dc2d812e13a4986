/**
 * The C library's number scanning as slirp4netns uses it, on LP64 glibc:
 * strtol() with its whitespace, sign, ERANGE and end-pointer rules, and
 * sscanf("%x"). Values come back as bigint or number so that callers can
 * apply C's conversions (to int, to unsigned int) themselves.
 */

const LONG_MIN = -(1n << 63n);
const LONG_MAX = (1n << 63n) - 1n;
const ULONG_MAX = (1n << 64n) - 1n;

/** isspace() in the C locale. */
function isCSpace(ch: number): boolean {
  return ch === 0x20 || (ch >= 0x09 && ch <= 0x0d);
}

function isDigit(ch: number): boolean {
  return ch >= 0x30 && ch <= 0x39;
}

function isHexDigit(ch: number): boolean {
  return isDigit(ch) || (ch >= 0x41 && ch <= 0x46) || (ch >= 0x61 && ch <= 0x66);
}

/** Where strtol's digits start: past C-locale white space and one optional sign (then at the index before). */
function skipSpaceAndSign(s: string, off: number): number {
  let i = off;
  while (i < s.length && isCSpace(s.charCodeAt(i))) i++;
  if (s[i] === '+' || s[i] === '-') i++;
  return i;
}

/**
 * `v = strtol(s, &end, 10); if (errno || *end != '\0') fail;` on a 64-bit long.
 * Leading whitespace and a sign are accepted. With no digits at all, strtol
 * sets end = s, so the empty string passes as 0 (`--exit-fd=` means fd 0 in
 * slirp4netns too, verified) while " " or "+" fail.
 */
export function strtolWhole(s: string): bigint | null {
  let i = skipSpaceAndSign(s, 0);
  const negative = s[i - 1] === '-';
  const digitsStart = i;
  while (i < s.length && isDigit(s.charCodeAt(i))) i++;
  if (i === digitsStart) return s.length === 0 ? 0n : null;
  if (i !== s.length) return null;
  let v = BigInt(s.slice(digitsStart, i));
  if (negative) v = -v;
  if (v < LONG_MIN || v > LONG_MAX) return null; // ERANGE
  return v;
}

/**
 * `sscanf(s + off, "%x", &int_var)` as glibc does it: skip whitespace, optional
 * sign, optional `0x` after a 0, hex digits, strtoul (wrapping a negation,
 * saturating on overflow), stored through `unsigned int *` and read back as int.
 * null when no number was converted.
 */
export function scanHexInt(s: string, off: number): number | null {
  let i = skipSpaceAndSign(s, off);
  const negative = i > off && s[i - 1] === '-';
  let sawZero = false;
  if (s[i] === '0') {
    sawZero = true;
    i++;
    if (s[i] === 'x' || s[i] === 'X') i++;
  }
  const digitsStart = i;
  while (i < s.length && isHexDigit(s.charCodeAt(i))) i++;
  if (!sawZero && i === digitsStart) return null;
  let v = i === digitsStart ? 0n : BigInt('0x' + s.slice(digitsStart, i));
  if (v > ULONG_MAX) v = ULONG_MAX;
  else if (negative) v = -v & ULONG_MAX;
  return Number(BigInt.asIntN(32, v));
}
