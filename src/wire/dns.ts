/**
 * DNS messages (RFC 1035 §4): the subset a caching forwarder needs. Offsets
 * are into the caller's buffer; `msgOff` is where the message starts, which
 * is what compression pointers count from.
 *
 * Size: one file on purpose. The parser, the scanner and the emitter of one
 * wire format share its offsets, limits and name compression; split, each
 * part would re-declare them.
 *
 *   0               2               4               6               8
 *   +---------------+---------------+---------------+---------------+
 *   |      id       |     flags     |    qdcount    |    ancount    |
 *   +---------------+---------------+---------------+---------------+
 *   |    nscount    |    arcount    |  question, answer, authority, additional ...
 *   +---------------+---------------+---------------------------------
 *
 *   flags: QR(15) OPCODE(14..11) AA(10) TC(9) RD(8) RA(7) Z(6) AD(5) CD(4) RCODE(3..0)
 *
 * Names (RFC 1035 §3.1, §4.1.4) are labels of 1..63 bytes ended by a zero
 * byte, at most 255 bytes on the wire, or ended early by a 14-bit pointer to
 * an earlier occurrence. Every name read here goes through `walkName`, which
 * enforces:
 * - label types 01 and 10 (RFC 6891 §5 and the retired RFC 2673 bitstrings)
 *   are BAD_LABEL;
 * - a pointer must land inside the message, after the header, and strictly
 *   before the start of the run of labels it ends. Targets then strictly
 *   decrease along a chain, so a pointer loop (to itself, or A → B → A)
 *   cannot be followed, only reported (BAD_POINTER). RFC 1035 §4.1.4 only
 *   ever points to a "prior occurance"; every compressor does so.
 * - the expanded name is at most 255 bytes (NAME_TOO_LONG).
 * The walk costs at most 255 label bytes plus one step per pointer, and a
 * chain has fewer pointers than the message has bytes: bounded by the
 * message length whatever the pointers say.
 *
 * Because a pointer cannot target the header, the first question's name holds
 * no pointers: the question bytes can be copied verbatim into replies.
 *
 * Nothing here throws on network input: readers return a DnsError code (or a
 * negative code where an offset is returned). Emitters throw RangeError when
 * the caller's buffer is too small, which is a caller bug.
 *
 * Deliberate limits: only the first question is interpreted (a query with
 * qdcount ≠ 1 is refused by the forwarder, as by every mainstream server);
 * RDATA is bounds-checked by RDLENGTH only, except SOA (read for RFC 2308
 * negative caching) and OPT (RFC 6891, read for the UDP size and DO bit).
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';

export const DNS_PORT = 53;
export const DNS_HEADER_LEN = 12;
export const DNS_MAX_LABEL_LEN = 63;
/** Wire length of a name, length bytes and root label included (RFC 1035 §3.1). */
export const DNS_MAX_NAME_LEN = 255;
/** Largest UDP reply to a client that sent no OPT record (RFC 1035 §4.2.1). */
export const DNS_MAX_UDP_LEN = 512;
/** A TCP message has a 2-byte length prefix (RFC 1035 §4.2.2). */
export const DNS_MAX_MESSAGE_LEN = 65535;
/** Question type and class after the name. */
const QUESTION_FIXED_LEN = 4;
/** Type, class, TTL, RDLENGTH after a record's name. */
const RECORD_FIXED_LEN = 10;

/** Bits of the flags word (RFC 1035 §4.1.1; AD/CD: RFC 4035 §3.2). */
export const DnsFlag = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
} as const;
export const DNS_OPCODE_MASK = 0x7800;
export const DNS_OPCODE_SHIFT = 11;
export const DNS_RCODE_MASK = 0x000f;

export const DnsOpcode = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;

export const DnsRcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const DnsClass = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

/** The DO bit in the low 16 bits of an OPT record's TTL field (RFC 3225 §3). */
export const EDNS_FLAG_DO = 0x8000;

export const DnsError = {
  OK: 0,
  /** The header, a name, a fixed field or RDATA runs past the end of the message. */
  TRUNCATED: 1,
  /** A label type other than 00 (normal) or 11 (pointer). */
  BAD_LABEL: 2,
  /** A name longer than 255 bytes once expanded. */
  NAME_TOO_LONG: 3,
  /** A pointer outside the message, into the header, or not strictly backwards (loops). */
  BAD_POINTER: 4,
  /** RDATA inconsistent with RDLENGTH (SOA). */
  BAD_RDATA: 5,
  /** OPT outside the additional section, more than one OPT, or an OPT owner other than the root. */
  BAD_OPT: 6,
} as const;

export type DnsErrorCode = (typeof DnsError)[keyof typeof DnsError];

/** Index = code; for logs and stats keys. */
export const dnsErrorName: readonly string[] = [
  'ok',
  'truncated',
  'bad_label',
  'name_too_long',
  'bad_pointer',
  'bad_rdata',
  'bad_opt',
];

/** The 12-byte header. `check` only asks for 12 bytes; sections are read by `DnsCursor` or `scanDns`. */
export class DnsView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at a message; no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  check(): DnsErrorCode {
    return this.len < DNS_HEADER_LEN ? DnsError.TRUNCATED : DnsError.OK;
  }

  get id(): number {
    return readU16(this.buf, this.off);
  }
  set id(v: number) {
    writeU16(this.buf, this.off, v);
  }
  /** The whole flags word, RCODE included. */
  get flags(): number {
    return readU16(this.buf, this.off + 2);
  }
  set flags(v: number) {
    writeU16(this.buf, this.off + 2, v);
  }
  get qr(): boolean {
    return (this.flags & DnsFlag.QR) !== 0;
  }
  get opcode(): number {
    return (this.flags & DNS_OPCODE_MASK) >>> DNS_OPCODE_SHIFT;
  }
  get aa(): boolean {
    return (this.flags & DnsFlag.AA) !== 0;
  }
  get tc(): boolean {
    return (this.flags & DnsFlag.TC) !== 0;
  }
  get rd(): boolean {
    return (this.flags & DnsFlag.RD) !== 0;
  }
  get ra(): boolean {
    return (this.flags & DnsFlag.RA) !== 0;
  }
  get ad(): boolean {
    return (this.flags & DnsFlag.AD) !== 0;
  }
  get cd(): boolean {
    return (this.flags & DnsFlag.CD) !== 0;
  }
  get rcode(): number {
    return this.flags & DNS_RCODE_MASK;
  }
  get qdcount(): number {
    return readU16(this.buf, this.off + 4);
  }
  set qdcount(v: number) {
    writeU16(this.buf, this.off + 4, v);
  }
  get ancount(): number {
    return readU16(this.buf, this.off + 6);
  }
  set ancount(v: number) {
    writeU16(this.buf, this.off + 6, v);
  }
  get nscount(): number {
    return readU16(this.buf, this.off + 8);
  }
  set nscount(v: number) {
    writeU16(this.buf, this.off + 8, v);
  }
  get arcount(): number {
    return readU16(this.buf, this.off + 10);
  }
  set arcount(v: number) {
    writeU16(this.buf, this.off + 10, v);
  }
}

export const DnsSection = { QUESTION: 0, ANSWER: 1, AUTHORITY: 2, ADDITIONAL: 3 } as const;

/**
 * Reads a message's entries in order. `question()` and `record()` read the
 * entry at `pos`, fill the fields below and advance `pos`; on an error code
 * the fields and `pos` are unspecified. The caller chooses how many of each
 * to read (from the header counts).
 */
export class DnsCursor {
  buf: Uint8Array = EMPTY;
  msgOff = 0;
  msgEnd = 0;
  pos = 0;
  /** Offset of the owner name of the last entry read. */
  nameOff = 0;
  type = 0;
  klass = 0;
  /** Records only. A TTL with the top bit set reads as 0 (RFC 2181 §8). */
  ttl = 0;
  /** Offset of the 4-byte TTL field; -1 after a question. */
  ttlOff = -1;
  rdOff = 0;
  rdLen = 0;

  /** Positions the cursor at the first question of the message at (buf, off, len). */
  start(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.msgOff = off;
    this.msgEnd = off + len;
    this.pos = off + DNS_HEADER_LEN;
    return this;
  }

  question(): DnsErrorCode {
    const p = walkName(this.buf, this.msgOff, this.msgEnd, this.pos, null);
    if (p < 0) return -p as DnsErrorCode;
    if (p + QUESTION_FIXED_LEN > this.msgEnd) return DnsError.TRUNCATED;
    this.nameOff = this.pos;
    this.type = readU16(this.buf, p);
    this.klass = readU16(this.buf, p + 2);
    this.ttl = 0;
    this.ttlOff = -1;
    this.rdOff = p + QUESTION_FIXED_LEN;
    this.rdLen = 0;
    this.pos = p + QUESTION_FIXED_LEN;
    return DnsError.OK;
  }

  record(): DnsErrorCode {
    const buf = this.buf;
    const p = walkName(buf, this.msgOff, this.msgEnd, this.pos, null);
    if (p < 0) return -p as DnsErrorCode;
    if (p + RECORD_FIXED_LEN > this.msgEnd) return DnsError.TRUNCATED;
    const rdLen = readU16(buf, p + 8);
    if (p + RECORD_FIXED_LEN + rdLen > this.msgEnd) return DnsError.TRUNCATED;
    const ttl = readU32(buf, p + 4);
    this.nameOff = this.pos;
    this.type = readU16(buf, p);
    this.klass = readU16(buf, p + 2);
    this.ttl = ttl > 0x7fff_ffff ? 0 : ttl;
    this.ttlOff = p + 4;
    this.rdOff = p + RECORD_FIXED_LEN;
    this.rdLen = rdLen;
    this.pos = p + RECORD_FIXED_LEN + rdLen;
    return DnsError.OK;
  }
}

/** What a forwarder needs to know about a message, filled by `scanDns`. */
export interface DnsScan {
  /** Offset just after the first question; -1 when qdcount is 0 or the question is unreadable. */
  questionEnd: number;
  /** The first question's type and class (0 when questionEnd is -1). */
  qtype: number;
  qclass: number;
  /** Offset just after the last record; bytes after it are ignored. Valid when OK. */
  end: number;
  /** Smallest TTL of any record other than OPT, in seconds; -1 with none. */
  minTtl: number;
  /** min(TTL, MINIMUM) of the first SOA in the authority section (RFC 2308 §5); -1 with none. */
  negativeTtl: number;
  /** Offset of the OPT record's first byte (its root owner name), or -1. */
  optOff: number;
  /** The OPT record's CLASS: the sender's UDP payload size (RFC 6891 §6.1.2); 0 without OPT. */
  ednsUdpSize: number;
  /** RFC 3225 DO bit of the OPT record. */
  ednsDo: boolean;
}

export function newDnsScan(): DnsScan {
  return {
    questionEnd: -1,
    qtype: 0,
    qclass: 0,
    end: 0,
    minTtl: -1,
    negativeTtl: -1,
    optOff: -1,
    ednsUdpSize: 0,
    ednsDo: false,
  };
}

/**
 * Walks the whole message at (buf, off, len): header, every question, every
 * record. Returns the first problem. `scan.questionEnd`, `qtype` and `qclass`
 * are filled as soon as the first question is read, so a caller can still
 * echo the question when a later section is broken (FORMERR).
 */
export function scanDns(
  buf: Uint8Array,
  off: number,
  len: number,
  scan: DnsScan,
  cursor = new DnsCursor(),
): DnsErrorCode {
  scan.questionEnd = -1;
  scan.qtype = 0;
  scan.qclass = 0;
  scan.end = off;
  scan.minTtl = -1;
  scan.negativeTtl = -1;
  scan.optOff = -1;
  scan.ednsUdpSize = 0;
  scan.ednsDo = false;
  if (len < DNS_HEADER_LEN) return DnsError.TRUNCATED;
  const c = cursor.start(buf, off, len);
  const qd = readU16(buf, off + 4);
  for (let i = 0; i < qd; i++) {
    const code = c.question();
    if (code !== DnsError.OK) return code;
    if (i === 0) {
      scan.questionEnd = c.pos;
      scan.qtype = c.type;
      scan.qclass = c.klass;
    }
  }
  const an = readU16(buf, off + 6);
  const ns = readU16(buf, off + 8);
  const ar = readU16(buf, off + 10);
  const total = an + ns + ar;
  for (let i = 0; i < total; i++) {
    const code = c.record();
    if (code !== DnsError.OK) return code;
    const section = i < an ? DnsSection.ANSWER : i < an + ns ? DnsSection.AUTHORITY : DnsSection.ADDITIONAL;
    if (c.type === DnsType.OPT) {
      // RFC 6891 §6.1.1: one OPT at most, in the additional section, owned by the root.
      if (section !== DnsSection.ADDITIONAL || scan.optOff >= 0 || buf[c.nameOff] !== 0) return DnsError.BAD_OPT;
      scan.optOff = c.nameOff;
      scan.ednsUdpSize = c.klass;
      scan.ednsDo = (readU16(buf, c.ttlOff + 2) & EDNS_FLAG_DO) !== 0;
      continue;
    }
    if (scan.minTtl < 0 || c.ttl < scan.minTtl) scan.minTtl = c.ttl;
    if (c.type === DnsType.SOA && section === DnsSection.AUTHORITY && scan.negativeTtl < 0) {
      const minimum = soaMinimum(buf, off, off + len, c.rdOff, c.rdLen);
      if (minimum < 0) return DnsError.BAD_RDATA;
      scan.negativeTtl = Math.min(c.ttl, minimum);
    }
  }
  scan.end = c.pos;
  return DnsError.OK;
}

/** SOA MINIMUM (RFC 1035 §3.3.13: MNAME, RNAME, then five u32), or -1 if the RDATA does not hold exactly that. */
function soaMinimum(buf: Uint8Array, msgOff: number, msgEnd: number, rdOff: number, rdLen: number): number {
  const rdEnd = rdOff + rdLen;
  const mname = walkName(buf, msgOff, msgEnd, rdOff, null);
  if (mname < 0 || mname > rdEnd) return -1;
  const rname = walkName(buf, msgOff, msgEnd, mname, null);
  if (rname < 0 || rname + 20 !== rdEnd) return -1;
  const minimum = readU32(buf, rdEnd - 4);
  return minimum > 0x7fff_ffff ? 0 : minimum;
}

/**
 * Offset just after the name at `pos` (where the message continues), or a
 * negative DnsError code. Pointer targets must lie in [msgOff + 12, msgEnd).
 */
export function skipDnsName(buf: Uint8Array, msgOff: number, msgEnd: number, pos: number): number {
  return walkName(buf, msgOff, msgEnd, pos, null);
}

/**
 * Offset just after the uncompressed name at `pos`, or a negative DnsError,
 * for names outside a DNS message: the domain lists of NDP (RFC 8106 §5.2)
 * and DHCPv6 (RFC 8415 §10) are plain labels, so a pointer is BAD_POINTER.
 */
export function skipUncompressedDnsName(buf: Uint8Array, pos: number, end: number): number {
  // With the "message" starting 12 bytes before the name, walkName's rule
  // (a target after the header and before the name) leaves no valid target.
  return walkName(buf, pos - DNS_HEADER_LEN, end, pos, null);
}

/**
 * The name at `pos`, expanded, in wire form with ASCII letters lowercased
 * (RFC 4343: comparisons are ASCII-case-insensitive), as a latin1 string; or
 * null if the name is malformed. Two names are equal iff their keys are. Use
 * it as a map key, not for display (`dnsNameText`).
 */
export function dnsNameKey(buf: Uint8Array, msgOff: number, msgEnd: number, pos: number): string | null {
  const out: number[] = [];
  if (walkName(buf, msgOff, msgEnd, pos, out) < 0) return null;
  return String.fromCharCode(...out);
}

/**
 * The name at `pos` in presentation form ("www.example.com", "." for the
 * root), bytes other than letters, digits, '-' and '_' as \DDD (RFC 1035
 * §5.1); null if malformed. For logs and tests.
 */
export function dnsNameText(buf: Uint8Array, msgOff: number, msgEnd: number, pos: number): string | null {
  const out: number[] = [];
  if (walkName(buf, msgOff, msgEnd, pos, out, false) < 0) return null;
  if (out.length === 1) return '.';
  let s = '';
  let i = 0;
  while (out[i] !== 0) {
    const n = out[i];
    if (i > 0) s += '.';
    for (let j = i + 1; j <= i + n; j++) {
      const b = out[j];
      const plain =
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f;
      s += plain ? String.fromCharCode(b) : '\\' + String(b).padStart(3, '0');
    }
    i += n + 1;
  }
  return s;
}

/**
 * Wire form of a presentation name ("example.com" or "example.com.", "." is
 * the root), or null when it cannot be one: an empty label, a label over 63
 * bytes, over 255 bytes in all, or a character outside printable ASCII.
 * Escapes (\. and \DDD) are not supported: static host names never need them.
 */
export function encodeDnsName(text: string): Uint8Array | null {
  if (text === '.' || text === '') return Uint8Array.of(0);
  const body = text.endsWith('.') ? text.slice(0, -1) : text;
  const labels = body.split('.');
  const out = new Uint8Array(body.length + 2);
  let p = 0;
  for (const label of labels) {
    if (label.length === 0 || label.length > DNS_MAX_LABEL_LEN) return null;
    out[p++] = label.length;
    for (let i = 0; i < label.length; i++) {
      const ch = label.charCodeAt(i);
      if (ch <= 0x20 || ch >= 0x7f || ch === 0x5c) return null;
      out[p++] = ch;
    }
  }
  out[p++] = 0;
  return p > DNS_MAX_NAME_LEN ? null : out;
}

/**
 * Wire forms of `names` one after the other, uncompressed: the domain lists
 * of NDP's DNSSL (RFC 8106 §5.2) and DHCPv6's Domain List (RFC 3646 §4).
 * Null when a name cannot be encoded (encodeDnsName) or is the root, which
 * is no search domain. Built once at configuration time.
 */
export function encodeDnsNameList(names: readonly string[]): Uint8Array | null {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const name of names) {
    const wire = encodeDnsName(name);
    if (wire === null || wire.length === 1) return null;
    parts.push(wire);
    total += wire.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Follows the name at `pos`. Returns the offset after it in the original
 * byte stream, or -DnsError. With `out`, appends the expanded wire form
 * (lowercased when `lower`). See the module comment for the pointer rule.
 */
function walkName(
  buf: Uint8Array,
  msgOff: number,
  msgEnd: number,
  pos: number,
  out: number[] | null,
  lower = true,
): number {
  const minTarget = msgOff + DNS_HEADER_LEN;
  let p = pos;
  let runStart = pos;
  let after = -1;
  let wireLen = 0;
  for (;;) {
    if (p >= msgEnd) return -DnsError.TRUNCATED;
    const b = buf[p];
    if (b === 0) {
      if (out !== null) out.push(0);
      return after < 0 ? p + 1 : after;
    }
    const kind = b & 0xc0;
    if (kind === 0xc0) {
      if (p + 1 >= msgEnd) return -DnsError.TRUNCATED;
      const target = msgOff + (((b & 0x3f) << 8) | buf[p + 1]);
      if (after < 0) after = p + 2;
      if (target < minTarget || target >= runStart) return -DnsError.BAD_POINTER;
      runStart = target;
      p = target;
      continue;
    }
    if (kind !== 0) return -DnsError.BAD_LABEL;
    // + 1 for the length byte; the root's zero byte must still fit.
    wireLen += b + 1;
    if (wireLen + 1 > DNS_MAX_NAME_LEN) return -DnsError.NAME_TOO_LONG;
    if (p + 1 + b > msgEnd) return -DnsError.TRUNCATED;
    if (out !== null) {
      out.push(b);
      for (let i = p + 1; i <= p + b; i++) {
        const ch = buf[i];
        out.push(lower && ch >= 0x41 && ch <= 0x5a ? ch | 0x20 : ch);
      }
    }
    p += 1 + b;
  }
}

/**
 * Subtracts `seconds` from the TTL of every record except OPT (whose TTL
 * field holds EDNS flags), clamping at 0, in place. For serving a cached
 * reply (RFC 1035 §7.4: the TTL counts down while cached). Returns the first
 * problem; the message is then partly adjusted.
 */
export function decrementDnsTtls(buf: Uint8Array, off: number, len: number, seconds: number): DnsErrorCode {
  if (len < DNS_HEADER_LEN) return DnsError.TRUNCATED;
  const c = new DnsCursor().start(buf, off, len);
  const qd = readU16(buf, off + 4);
  for (let i = 0; i < qd; i++) {
    const code = c.question();
    if (code !== DnsError.OK) return code;
  }
  const total = readU16(buf, off + 6) + readU16(buf, off + 8) + readU16(buf, off + 10);
  for (let i = 0; i < total; i++) {
    const code = c.record();
    if (code !== DnsError.OK) return code;
    if (c.type === DnsType.OPT) continue;
    writeU32(buf, c.ttlOff, c.ttl > seconds ? c.ttl - seconds : 0);
  }
  return DnsError.OK;
}

/**
 * Flags of a reply to a query with `queryFlags`: opcode, RD and CD echoed
 * (RFC 1035 §4.1.1, RFC 4035 §3.2.2), RA set.
 */
export function dnsReplyFlags(queryFlags: number, rcode: number, extraFlags = 0): number {
  return (
    DnsFlag.QR |
    (queryFlags & (DNS_OPCODE_MASK | DnsFlag.RD | DnsFlag.CD)) |
    DnsFlag.RA |
    (extraFlags & ~(DNS_OPCODE_MASK | DNS_RCODE_MASK)) |
    (rcode & DNS_RCODE_MASK)
  );
}

/** A record for `emitDnsReply`: owned by the question's name. */
export interface DnsAnswerRepr {
  type: number;
  klass: number;
  ttl: number;
  rdata: Uint8Array;
}

/** Bytes `emitDnsReply` writes. `questionLen` is questionEnd - (query offset + 12), or 0. */
export function dnsReplyLength(questionLen: number, answers: readonly DnsAnswerRepr[]): number {
  let n = DNS_HEADER_LEN + questionLen;
  for (const a of answers) n += 2 + RECORD_FIXED_LEN + a.rdata.length;
  return n;
}

/**
 * Writes a reply to the query at `qOff`: its id, `flags` (see
 * `dnsReplyFlags`), its first question copied verbatim when `questionEnd` >
 * qOff + 12 (qdcount 1, else 0), and `answers`, each owned by a pointer to
 * the question name (offset 12, RFC 1035 §4.1.4). Returns the bytes written.
 * This is how error replies (FORMERR, SERVFAIL, NOTIMP, REFUSED: no answers)
 * and local answers are built. Throws RangeError when `out` is too small, an
 * answer has no question to point to, or RDATA is over 65535 bytes.
 */
export function emitDnsReply(
  query: Uint8Array,
  qOff: number,
  questionEnd: number,
  flags: number,
  answers: readonly DnsAnswerRepr[],
  out: Uint8Array,
  outOff: number,
): number {
  const qLen = questionEnd > qOff + DNS_HEADER_LEN ? questionEnd - qOff - DNS_HEADER_LEN : 0;
  const total = dnsReplyLength(qLen, answers);
  if (outOff < 0 || outOff + total > out.length) throw new RangeError('emitDnsReply: buffer too small');
  if (answers.length > 0 && qLen === 0) throw new RangeError('emitDnsReply: answers need a question');
  if (total > DNS_MAX_MESSAGE_LEN) throw new RangeError('emitDnsReply: reply over 65535 bytes');
  out[outOff] = query[qOff];
  out[outOff + 1] = query[qOff + 1];
  writeU16(out, outOff + 2, flags);
  writeU16(out, outOff + 4, qLen > 0 ? 1 : 0);
  writeU16(out, outOff + 6, answers.length);
  writeU16(out, outOff + 8, 0);
  writeU16(out, outOff + 10, 0);
  // copyWithin semantics are not needed: query and out are separate regions.
  for (let i = 0; i < qLen; i++) out[outOff + DNS_HEADER_LEN + i] = query[qOff + DNS_HEADER_LEN + i];
  let p = outOff + DNS_HEADER_LEN + qLen;
  for (const a of answers) {
    out[p] = 0xc0;
    out[p + 1] = DNS_HEADER_LEN;
    writeU16(out, p + 2, a.type);
    writeU16(out, p + 4, a.klass);
    writeU32(out, p + 6, a.ttl);
    writeU16(out, p + 10, a.rdata.length);
    out.set(a.rdata, p + 12);
    p += 12 + a.rdata.length;
  }
  return total;
}

const EMPTY = new Uint8Array(0);
