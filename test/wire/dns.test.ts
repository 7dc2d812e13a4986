import dnsPacket from 'dns-packet';
import { describe, expect, it, test } from 'vitest';
import {
  DNS_HEADER_LEN,
  DnsClass,
  DnsCursor,
  DnsError,
  DnsFlag,
  DnsOpcode,
  DnsRcode,
  DnsType,
  DnsView,
  decrementDnsTtls,
  dnsErrorName,
  dnsNameKey,
  dnsNameText,
  dnsReplyFlags,
  dnsReplyLength,
  emitDnsReply,
  encodeDnsName,
  newDnsScan,
  scanDns,
  skipDnsName,
  type DnsAnswerRepr,
  type DnsScan,
} from '../../src/wire/dns.js';
import { a5, concat, hex, prng, randomBytes, toHex } from './golden.js';

// ---------------------------------------------------------------------------
// Golden messages, written by hand in the layout of a recursive resolver's
// replies (name compression as BIND/unbound emit it) and cross-checked by
// decoding them with dns-packet below. dns-packet itself never compresses, so
// its encodings serve as uncompressed goldens.
// ---------------------------------------------------------------------------

/**
 * www.example.com A, reply: CNAME → example.com (pointer into the question),
 * example.com A 93.184.216.34 (owner: pointer), OPT 1232 with DO.
 *   @0  id beef, flags 8180 (QR RD RA), qd 1, an 2, ns 0, ar 1
 *   @12 03www 07example 03com 00, A IN                    → questionEnd 33
 *   @33 c00c CNAME IN ttl 3600 rdlen 2: c010             → 47
 *   @47 c010 A IN ttl 300 rdlen 4: 5db8d822               → 63
 *   @63 00 OPT 04d0 ttl 00008000 rdlen 0                  → 74
 */
const CNAME_REPLY = hex(
  'beef81800001000200000001' +
    '03777777076578616d706c6503636f6d0000010001' +
    'c00c000500010000' +
    '0e100002c010' +
    'c010000100010000012c00045db8d822' +
    '0000290' +
    '4d000008000' +
    '0000',
);

/**
 * nope.example.com AAAA, NXDOMAIN with the zone's SOA in authority:
 *   @0  id 1234, flags 8183, qd 1, an 0, ns 1, ar 0
 *   @12 04nope 07example 03com 00, AAAA IN                → 34
 *   @34 c011 SOA IN ttl 3600 rdlen 38: 02ns c011, 0ahostmaster c011,
 *       serial 78a3c1e2 refresh 7200 retry 3600 expire 604800 minimum 300 → 84
 */
const NXDOMAIN_REPLY = hex(
  '123481830001000000010000' +
    '046e6f7065076578616d706c6503636f6d00001c0001' +
    'c011000600010000' +
    '0e100026' +
    '026e73c011' +
    '0a686f73746d6173746572c011' +
    '78a3c1e2' +
    '00001c20' +
    '00000e10' +
    '00093a80' +
    '0000012c',
);

/** A stub's query: example.com A, RD, id 0x0102 (dns-packet encoding). */
const QUERY = new Uint8Array(
  dnsPacket.encode({
    type: 'query',
    id: 0x0102,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name: 'example.com' }],
  }),
);

function scanOf(msg: Uint8Array, off = 0, len = msg.length - off): [number, DnsScan] {
  const s = newDnsScan();
  return [scanDns(msg, off, len, s), s];
}

function header(id: number, flags: number, qd: number, an: number, ns: number, ar: number): Uint8Array {
  const h = new Uint8Array(12);
  const v = new DnsView().wrap(h, 0, 12);
  v.id = id;
  v.flags = flags;
  v.qdcount = qd;
  v.ancount = an;
  v.nscount = ns;
  v.arcount = ar;
  return h;
}

const A_IN = hex('00010001');

describe('golden messages', () => {
  it('the hand-written goldens decode with dns-packet as intended', () => {
    const c = dnsPacket.decode(Buffer.from(CNAME_REPLY));
    expect(c.id).toBe(0xbeef);
    expect(c.answers?.map((a) => [a.type, a.name, (a as { data: unknown }).data])).toEqual([
      ['CNAME', 'www.example.com', 'example.com'],
      ['A', 'example.com', '93.184.216.34'],
    ]);
    const n = dnsPacket.decode(Buffer.from(NXDOMAIN_REPLY));
    expect((n.flags ?? 0) & 0xf).toBe(3);
    const soa = n.authorities?.[0] as { type: string; data: { mname: string; rname: string; minimum: number } };
    expect(soa.type).toBe('SOA');
    expect(soa.data.mname).toBe('ns.example.com');
    expect(soa.data.rname).toBe('hostmaster.example.com');
    expect(soa.data.minimum).toBe(300);
  });

  it('header view reads every field', () => {
    const v = new DnsView().wrap(CNAME_REPLY, 0, CNAME_REPLY.length);
    expect(v.check()).toBe(DnsError.OK);
    expect([v.id, v.flags, v.qr, v.opcode, v.aa, v.tc, v.rd, v.ra, v.ad, v.cd, v.rcode]).toEqual([
      0xbeef, 0x8180, true, 0, false, false, true, true, false, false, 0,
    ]);
    expect([v.qdcount, v.ancount, v.nscount, v.arcount]).toEqual([1, 2, 0, 1]);
    const n = new DnsView().wrap(NXDOMAIN_REPLY, 0, NXDOMAIN_REPLY.length);
    expect(n.rcode).toBe(DnsRcode.NXDOMAIN);
  });

  it('header setters write big-endian fields', () => {
    expect(toHex(header(0xabcd, 0x0120, 1, 2, 3, 4))).toBe('abcd01200001000200030004');
    const v = new DnsView().wrap(header(0, 0x7800 | 0x0400 | 0x0200 | 0x0020 | 0x0010 | 5, 0, 0, 0, 0), 0, 12);
    expect([v.opcode, v.aa, v.tc, v.ad, v.cd, v.rcode, v.qr]).toEqual([15, true, true, true, true, 5, false]);
  });

  it('a view over fewer than 12 bytes is TRUNCATED', () => {
    for (let n = 0; n < 12; n++) expect(new DnsView().wrap(QUERY, 0, n).check()).toBe(DnsError.TRUNCATED);
  });

  it('scans a compressed positive reply', () => {
    const [code, s] = scanOf(CNAME_REPLY);
    expect(code).toBe(DnsError.OK);
    expect(s).toEqual({
      questionEnd: 33,
      qtype: DnsType.A,
      qclass: DnsClass.IN,
      end: 74,
      minTtl: 300,
      negativeTtl: -1,
      optOff: 63,
      ednsUdpSize: 1232,
      ednsDo: true,
    });
  });

  it('scans a negative reply: RFC 2308 §5 TTL = min(SOA TTL, MINIMUM)', () => {
    const [code, s] = scanOf(NXDOMAIN_REPLY);
    expect(code).toBe(DnsError.OK);
    expect(s.questionEnd).toBe(34);
    expect(s.qtype).toBe(DnsType.AAAA);
    expect(s.negativeTtl).toBe(300);
    expect(s.minTtl).toBe(3600);
    expect(s.optOff).toBe(-1);
  });

  it('scans a message at an offset inside a larger buffer (pointers count from the message start)', () => {
    const buf = concat(a5(7), CNAME_REPLY, a5(5));
    const [code, s] = scanOf(buf, 7, CNAME_REPLY.length);
    expect(code).toBe(DnsError.OK);
    expect(s.questionEnd).toBe(7 + 33);
    expect(s.optOff).toBe(7 + 63);
    expect(dnsNameText(buf, 7, 7 + CNAME_REPLY.length, 7 + 47)).toBe('example.com');
  });

  it('scans the query and dns-packet encodings', () => {
    const [code, s] = scanOf(QUERY);
    expect(code).toBe(DnsError.OK);
    expect([s.questionEnd, s.qtype, s.qclass, s.minTtl, s.end]).toEqual([29, 1, 1, -1, 29]);
    const txt = new Uint8Array(
      dnsPacket.encode({
        type: 'response',
        id: 9,
        questions: [{ type: 'TXT', name: 'Example.COM' }],
        answers: [{ type: 'TXT', name: 'example.com', ttl: 77, data: ['hello', 'world'] }],
        additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [] } as never],
      }),
    );
    const [c2, s2] = scanOf(txt);
    expect(c2).toBe(DnsError.OK);
    expect([s2.qtype, s2.minTtl, s2.ednsUdpSize, s2.ednsDo]).toEqual([DnsType.TXT, 77, 4096, false]);
  });

  it('walks records with the cursor', () => {
    const c = new DnsCursor().start(CNAME_REPLY, 0, CNAME_REPLY.length);
    expect(c.question()).toBe(DnsError.OK);
    expect([c.nameOff, c.type, c.klass, c.ttlOff, c.pos]).toEqual([12, 1, 1, -1, 33]);
    expect(c.record()).toBe(DnsError.OK);
    expect([c.nameOff, c.type, c.ttl, c.ttlOff, c.rdOff, c.rdLen]).toEqual([33, DnsType.CNAME, 3600, 39, 45, 2]);
    expect(dnsNameText(CNAME_REPLY, 0, CNAME_REPLY.length, c.rdOff)).toBe('example.com');
    expect(c.record()).toBe(DnsError.OK);
    expect([c.type, c.ttl, toHex(CNAME_REPLY.subarray(c.rdOff, c.rdOff + c.rdLen))]).toEqual([1, 300, '5db8d822']);
    expect(c.record()).toBe(DnsError.OK);
    expect([c.type, c.klass, c.pos]).toEqual([DnsType.OPT, 1232, 74]);
    expect(c.record()).toBe(DnsError.TRUNCATED);
  });
});

describe('names', () => {
  it('key is lowercased wire form, text is presentation form', () => {
    const m = concat(header(1, 0, 1, 0, 0, 0), hex('03577757074578416d506c6503434f4d00'), A_IN);
    expect(dnsNameKey(m, 0, m.length, 12)).toBe('\x03www\x07example\x03com\x00');
    expect(dnsNameText(m, 0, m.length, 12)).toBe('WwW.ExAmPle.COM');
    expect(skipDnsName(m, 0, m.length, 12)).toBe(29);
  });

  it('only ASCII letters fold (RFC 4343); other bytes are escaped in text', () => {
    const m = concat(header(1, 0, 1, 0, 0, 0), hex('04c12e5b4100'), A_IN);
    expect(dnsNameKey(m, 0, m.length, 12)).toBe('\x04\xc1.[a\x00');
    expect(dnsNameText(m, 0, m.length, 12)).toBe('\\193\\046\\091A');
  });

  it('the root name', () => {
    const m = concat(header(1, 0, 1, 0, 0, 0), hex('00'), hex('00020001'));
    expect(dnsNameText(m, 0, m.length, 12)).toBe('.');
    expect(dnsNameKey(m, 0, m.length, 12)).toBe('\x00');
  });

  it('encodeDnsName', () => {
    expect(toHex(encodeDnsName('example.com')!)).toBe('076578616d706c6503636f6d00');
    expect(toHex(encodeDnsName('example.com.')!)).toBe('076578616d706c6503636f6d00');
    expect(toHex(encodeDnsName('.')!)).toBe('00');
    expect(encodeDnsName('a..b')).toBeNull();
    expect(encodeDnsName('x'.repeat(64))).toBeNull();
    expect(encodeDnsName('x'.repeat(63))).not.toBeNull();
    expect(encodeDnsName('a b')).toBeNull();
    expect(encodeDnsName('é.com')).toBeNull();
    // 127 labels "a." = 254 bytes + root = 255: the limit.
    expect(encodeDnsName('a.'.repeat(127))?.length).toBe(255);
    expect(encodeDnsName('a.'.repeat(127) + 'b')).toBeNull();
  });

  it('a 255-byte name passes, a 257-byte one is NAME_TOO_LONG', () => {
    const ok = concat(header(1, 0, 1, 0, 0, 0), encodeDnsName('a.'.repeat(127))!, A_IN);
    expect(scanOf(ok)[0]).toBe(DnsError.OK);
    const long = concat(header(1, 0, 1, 0, 0, 0), hex('0161'.repeat(128) + '00'), A_IN);
    expect(scanOf(long)[0]).toBe(DnsError.NAME_TOO_LONG);
  });

  it('the 255-byte bound applies across pointers', () => {
    // Question: 100 × "a" labels (200 bytes) + root. Answer owner: 30 × "b" labels then a pointer to the question.
    const q = hex('0161'.repeat(100) + '00');
    const owner = concat(hex('0162'.repeat(30)), hex('c00c'));
    const m = concat(header(1, 0x8000, 1, 1, 0, 0), q, A_IN, owner, hex('00010001000000010000'));
    const [code] = scanOf(m);
    expect(code).toBe(DnsError.NAME_TOO_LONG);
  });

  it('label types 01 and 10 are BAD_LABEL', () => {
    for (const b of [0x40, 0x41, 0x80, 0xbf]) {
      const m = concat(header(1, 0, 1, 0, 0, 0), Uint8Array.of(b, 0, 0, 0, 0, 0, 0), A_IN);
      expect(scanOf(m)[0]).toBe(DnsError.BAD_LABEL);
    }
  });
});

describe('compression pointers', () => {
  const answer = (ownerHex: string): Uint8Array =>
    concat(header(1, 0x8000, 1, 1, 0, 0), encodeDnsName('a.b')!, A_IN, hex(ownerHex), hex('00010001000000010000'));
  // The question "a.b" is 12..17 (01 61 01 62 00), the answer owner starts at 21.

  it('a backward pointer to a suffix is followed', () => {
    const m = answer('c00e');
    expect(scanOf(m)[0]).toBe(DnsError.OK);
    expect(dnsNameText(m, 0, m.length, 21)).toBe('b');
  });

  it('a pointer to itself is a loop: BAD_POINTER', () => {
    expect(scanOf(answer('c015'))[0]).toBe(DnsError.BAD_POINTER);
  });

  it('a two-pointer loop A → B → A is BAD_POINTER', () => {
    // Record 1 @21 (TXT, owner c00c) has RDATA @33 = pointer to 35; record 2's owner @35 is a
    // pointer to 33. Walking record 2's owner: 35 → 33 (backwards, fine) → 35 (not before 33).
    const m = concat(
      header(1, 0x8000, 1, 2, 0, 0),
      encodeDnsName('a.b')!,
      A_IN,
      hex('c00c00100001000000010002c023'),
      hex('c02100010001000000010000'),
    );
    expect(scanOf(m)[0]).toBe(DnsError.BAD_POINTER);
    expect(skipDnsName(m, 0, m.length, 35)).toBe(-DnsError.BAD_POINTER);
  });

  it('a forward pointer is BAD_POINTER (RFC 1035 §4.1.4: a prior occurrence)', () => {
    expect(scanOf(answer('c020'))[0]).toBe(DnsError.BAD_POINTER);
  });

  it('a pointer into the header or past the end is BAD_POINTER', () => {
    expect(scanOf(answer('c000'))[0]).toBe(DnsError.BAD_POINTER);
    expect(scanOf(answer('c00b'))[0]).toBe(DnsError.BAD_POINTER);
    expect(scanOf(answer('ffff'))[0]).toBe(DnsError.BAD_POINTER);
  });

  it('a pointer in the question is impossible (it would target the header)', () => {
    const m = concat(header(1, 0, 1, 0, 0, 0), hex('c00c'), A_IN);
    expect(scanOf(m)[0]).toBe(DnsError.BAD_POINTER);
  });

  it('a pointer cut after its first byte is TRUNCATED', () => {
    const m = concat(header(1, 0x8000, 1, 1, 0, 0), encodeDnsName('a.b')!, A_IN, hex('c0'));
    expect(scanOf(m)[0]).toBe(DnsError.TRUNCATED);
  });

  test('attack: 1000 owners each a chain of 8000 pointers are walked in bounded time', () => {
    // Question "a" at 12..19. One TXT record (owner c00c) whose RDATA, from offset 31, is a
    // region of 8000 pointers, pointer i targeting pointer i-1 and pointer 0 the question
    // (14-bit offsets: the region must end below 16384). Then 1000 A records whose owner
    // points at the last pointer: every owner expands to "a" through an 8000-step chain.
    const n = 8000;
    const base = 31;
    const region = new Uint8Array(2 * n);
    for (let i = 0; i < n; i++) {
      const target = i === 0 ? 12 : base + 2 * (i - 1);
      region[2 * i] = 0xc0 | (target >> 8);
      region[2 * i + 1] = target & 0xff;
    }
    const txt = hex('c00c00100001000000010000');
    txt[10] = region.length >> 8;
    txt[11] = region.length & 0xff;
    const lastPtr = base + 2 * (n - 1);
    const owners: Uint8Array[] = [];
    for (let i = 0; i < 1000; i++) {
      owners.push(Uint8Array.of(0xc0 | (lastPtr >> 8), lastPtr & 0xff), hex('00010001000000010000'));
    }
    const m = concat(header(1, 0x8000, 1, 1001, 0, 0), hex('016100'), A_IN, txt, region, ...owners);
    const t0 = performance.now();
    const [code] = scanOf(m);
    const ms = performance.now() - t0;
    expect(code).toBe(DnsError.OK);
    expect(dnsNameText(m, 0, m.length, m.length - 12)).toBe('a');
    expect(ms).toBeLessThan(2000);
  });

  test('attack: a pointer ring at every position never hangs', () => {
    // Every byte pair in the record area is a pointer to the pair after it (forward → rejected at once),
    // or to itself: scanDns must return BAD_POINTER immediately.
    for (const mk of [(p: number) => p + 2, (p: number) => p]) {
      const parts: Uint8Array[] = [header(1, 0x8000, 1, 100, 0, 0), hex('016100'), A_IN];
      let p = 19;
      for (let i = 0; i < 100; i++) {
        const t = mk(p);
        parts.push(Uint8Array.of(0xc0 | (t >> 8), t & 0xff), hex('00010001000000010000'));
        p += 12;
      }
      expect(scanOf(concat(...parts))[0]).toBe(DnsError.BAD_POINTER);
    }
  });
});

describe('record checks', () => {
  it('OPT outside additional, twice, or with a non-root owner is BAD_OPT', () => {
    const q = concat(encodeDnsName('a')!, A_IN);
    const opt = hex('0000291000000000000000');
    expect(scanOf(concat(header(1, 0, 1, 1, 0, 0), q, opt))[0]).toBe(DnsError.BAD_OPT);
    expect(scanOf(concat(header(1, 0, 1, 0, 0, 2), q, opt, opt))[0]).toBe(DnsError.BAD_OPT);
    expect(scanOf(concat(header(1, 0, 1, 0, 0, 1), q, hex('c00c'), opt.subarray(1)))[0]).toBe(DnsError.BAD_OPT);
    expect(scanOf(concat(header(1, 0, 1, 0, 0, 1), q, opt))[0]).toBe(DnsError.OK);
  });

  it('SOA RDATA that does not hold exactly two names and 20 bytes is BAD_RDATA', () => {
    const good = NXDOMAIN_REPLY.slice();
    expect(scanOf(good)[0]).toBe(DnsError.OK);
    // rdlen 37 (one short), message cut to match.
    const short = NXDOMAIN_REPLY.slice(0, NXDOMAIN_REPLY.length - 1);
    short[45] = 37;
    expect(scanOf(short)[0]).toBe(DnsError.BAD_RDATA);
    // rdlen 39 with an extra byte.
    const long = concat(NXDOMAIN_REPLY, hex('00'));
    long[45] = 39;
    expect(scanOf(long)[0]).toBe(DnsError.BAD_RDATA);
  });

  it('RDLENGTH past the end is TRUNCATED; bytes after the last record are ignored', () => {
    const cut = CNAME_REPLY.slice(0, 60);
    expect(scanOf(cut)[0]).toBe(DnsError.TRUNCATED);
    const [code, s] = scanOf(concat(CNAME_REPLY, hex('deadbeef')));
    expect(code).toBe(DnsError.OK);
    expect(s.end).toBe(74);
  });

  it('a TTL with the top bit set reads as 0 (RFC 2181 §8)', () => {
    const m = CNAME_REPLY.slice();
    m.set(hex('80000000'), 53); // the A record's TTL
    expect(scanOf(m)[1].minTtl).toBe(0);
  });

  it('the question is reported even when a later section is broken', () => {
    const m = CNAME_REPLY.slice(0, 50);
    const [code, s] = scanOf(m);
    expect(code).toBe(DnsError.TRUNCATED);
    expect(s.questionEnd).toBe(33);
    expect(s.qtype).toBe(DnsType.A);
  });
});

describe('TTL decrement', () => {
  it('subtracts from every record except OPT, clamping at 0', () => {
    const m = CNAME_REPLY.slice();
    expect(decrementDnsTtls(m, 0, m.length, 100)).toBe(DnsError.OK);
    const c = new DnsCursor().start(m, 0, m.length);
    c.question();
    const ttls: number[] = [];
    for (let i = 0; i < 3; i++) {
      c.record();
      ttls.push(c.ttl);
    }
    expect(ttls).toEqual([3500, 200, 0x8000]);
    expect(toHex(m.subarray(68, 72))).toBe('00008000');
    decrementDnsTtls(m, 0, m.length, 1000);
    expect(toHex(m.subarray(53, 57))).toBe('00000000');
    // Only TTL bytes changed.
    const diff = [...m].flatMap((b, i) => (b !== CNAME_REPLY[i] ? [i] : []));
    expect(diff.every((i) => (i >= 39 && i < 43) || (i >= 53 && i < 57))).toBe(true);
  });

  it('stops at a malformed record', () => {
    expect(decrementDnsTtls(CNAME_REPLY.slice(0, 50), 0, 50, 1)).toBe(DnsError.TRUNCATED);
    expect(decrementDnsTtls(hex('00'), 0, 1, 1)).toBe(DnsError.TRUNCATED);
  });
});

describe('emit', () => {
  const [, qs] = scanOf(QUERY);

  it('error replies echo the id and question, copy RD/CD/opcode, set QR and RA', () => {
    for (const rcode of [DnsRcode.FORMERR, DnsRcode.SERVFAIL, DnsRcode.NOTIMP, DnsRcode.REFUSED]) {
      const at = 5;
      const out = a5(at + 29 + 3);
      const n = emitDnsReply(QUERY, 0, qs.questionEnd, dnsReplyFlags(0x0110, rcode), [], out, at);
      expect(n).toBe(29);
      expect(toHex(out.subarray(0, at))).toBe('a5a5a5a5a5');
      expect(toHex(out.subarray(at + n))).toBe('a5a5a5');
      const d = dnsPacket.decode(Buffer.from(out.subarray(at, at + n)));
      expect(d.id).toBe(0x0102);
      expect(d.type).toBe('response');
      expect(d.questions).toEqual([{ name: 'example.com', type: 'A', class: 'IN' }]);
      expect((d.flags ?? 0) & 0x0fff).toBe(0x0190 | rcode);
    }
  });

  it('an error reply without a question has qdcount 0', () => {
    const out = a5(12);
    expect(emitDnsReply(QUERY, 0, -1, dnsReplyFlags(0x0100, DnsRcode.FORMERR), [], out, 0)).toBe(12);
    expect(toHex(out)).toBe('010281810000000000000000');
  });

  it('dnsReplyFlags keeps only opcode, RD and CD of the query', () => {
    expect(dnsReplyFlags(0xffff, DnsRcode.NOERROR)).toBe(0x8000 | 0x7800 | 0x0100 | 0x0010 | 0x0080);
    expect(dnsReplyFlags(0, DnsRcode.NXDOMAIN, DnsFlag.AA)).toBe(0x8483);
    expect((dnsReplyFlags(DnsOpcode.NOTIFY << 11, 0) >> 11) & 0xf).toBe(DnsOpcode.NOTIFY);
  });

  it('static answers point at the question name and decode with dns-packet', () => {
    const answers: DnsAnswerRepr[] = [
      { type: DnsType.A, klass: DnsClass.IN, ttl: 60, rdata: hex('0a000202') },
      { type: DnsType.AAAA, klass: DnsClass.IN, ttl: 60, rdata: hex('fd000000000000000000000000000002') },
    ];
    const len = dnsReplyLength(qs.questionEnd - 12, answers);
    expect(len).toBe(29 + 16 + 28);
    const out = a5(len);
    expect(emitDnsReply(QUERY, 0, qs.questionEnd, dnsReplyFlags(0x0100, 0, DnsFlag.AA), answers, out, 0)).toBe(len);
    expect(toHex(out.subarray(29, 45))).toBe('c00c00010001' + '0000003c' + '0004' + '0a000202');
    const d = dnsPacket.decode(Buffer.from(out));
    expect(d.answers?.map((a) => [a.name, a.type, (a as { ttl: number }).ttl, (a as { data: unknown }).data])).toEqual([
      ['example.com', 'A', 60, '10.0.2.2'],
      ['example.com', 'AAAA', 60, 'fd00::2'],
    ]);
    expect(scanOf(out)[0]).toBe(DnsError.OK);
  });

  it('misuse throws RangeError', () => {
    const ans: DnsAnswerRepr[] = [{ type: 1, klass: 1, ttl: 1, rdata: hex('01020304') }];
    expect(() => emitDnsReply(QUERY, 0, qs.questionEnd, 0, [], new Uint8Array(28), 0)).toThrow(RangeError);
    expect(() => emitDnsReply(QUERY, 0, -1, 0, ans, new Uint8Array(100), 0)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------
// Hostile input: truncation at every length and random bytes.
// ---------------------------------------------------------------------------

const GOLDENS = [QUERY, CNAME_REPLY, NXDOMAIN_REPLY];

/** A Proxy over `data` that records every index read or written outside [0, length). */
function tracked(data: Uint8Array): { buf: Uint8Array; outside: number[] } {
  const outside: number[] = [];
  const isIndex = (key: string | symbol): key is string => typeof key === 'string' && /^-?\d+$/.test(key);
  const buf = new Proxy(data, {
    get(target, key) {
      if (isIndex(key) && (Number(key) < 0 || Number(key) >= target.length)) outside.push(Number(key));
      return Reflect.get(target, key);
    },
    set(target, key, value) {
      if (isIndex(key) && (Number(key) < 0 || Number(key) >= target.length)) outside.push(Number(key));
      return Reflect.set(target, key, value);
    },
  });
  return { buf, outside };
}

/** Everything observable about `len` bytes at `off`: scan results, a name key, a TTL pass on a copy. */
function observe(buf: Uint8Array, off: number, len: number): unknown[] {
  const s = newDnsScan();
  const code = scanDns(buf, off, len, s);
  const rel = (x: number): number => (x < 0 ? x : x - off);
  const out: unknown[] = [code, rel(s.questionEnd), s.qtype, s.qclass, s.minTtl, s.negativeTtl, rel(s.optOff)];
  if (code === DnsError.OK) {
    out.push(rel(s.end), s.ednsUdpSize, s.ednsDo);
    expect(s.end).toBeLessThanOrEqual(off + len);
  }
  if (len >= DNS_HEADER_LEN) out.push(dnsNameKey(buf, off, off + len, off + DNS_HEADER_LEN));
  return out;
}

function runAll(data: Uint8Array): void {
  const n = data.length;
  const t = tracked(data.slice());
  const viaProxy = observe(t.buf, 0, n);
  if (t.outside.length > 0) throw new Error(`read index ${t.outside[0]} of a ${n}-byte buffer: ${toHex(data)}`);
  const t2 = tracked(data.slice());
  decrementDnsTtls(t2.buf, 0, n, 7);
  if (t2.outside.length > 0) throw new Error(`decrement touched index ${t2.outside[0]}: ${toHex(data)}`);
  const off = 3;
  const lo = new Uint8Array(off + n + 64);
  const hi = new Uint8Array(off + n + 64).fill(0xff);
  lo.set(data, off);
  hi.set(data, off);
  const a = JSON.stringify(observe(lo, off, n));
  const b = JSON.stringify(observe(hi, off, n));
  if (a !== b) throw new Error(`result depends on bytes past len: ${toHex(data)}`);
  if (a !== JSON.stringify(viaProxy)) throw new Error(`result depends on the offset: ${toHex(data)}`);
}

describe('hostile input', () => {
  test('truncation sweep: every proper prefix of every golden fails, without throwing', () => {
    for (const g of GOLDENS) {
      for (let len = 0; len < g.length; len++) {
        const [code] = scanOf(g, 0, len);
        expect(code, `${toHex(g)} cut at ${len}`).not.toBe(DnsError.OK);
        expect(dnsErrorName[code]).toBeDefined();
        runAll(g.slice(0, len));
      }
      expect(scanOf(g)[0]).toBe(DnsError.OK);
    }
  });

  test('20,000 random buffers never throw and never read outside the message', () => {
    const rand = prng(0xd115);
    for (let k = 0; k < 20_000; k++) {
      const r = rand();
      const n = r < 0.6 ? (rand() * 40) | 0 : r < 0.95 ? (rand() * 200) | 0 : (rand() * 1500) | 0;
      const data = randomBytes(rand, n);
      // Small counts make the random bytes reach the record walk more often.
      if (n >= 12 && rand() < 0.7) {
        data[4] = 0;
        data[5] = (rand() * 2) | 0;
        data[6] = 0;
        data[7] = (rand() * 4) | 0;
        data[8] = 0;
        data[10] = 0;
      }
      runAll(data);
    }
  });

  test('20,000 mutated goldens (bit flips, cuts, pointer bytes)', () => {
    const rand = prng(0xc0ffee);
    let ok = 0;
    for (let k = 0; k < 20_000; k++) {
      const g = GOLDENS[(rand() * GOLDENS.length) | 0];
      const cut = rand() < 0.2 ? (rand() * (g.length + 1)) | 0 : g.length;
      const data = g.slice(0, cut);
      const flips = 1 + ((rand() * 3) | 0);
      for (let f = 0; f < flips && data.length > 0; f++) {
        const at = (rand() * data.length) | 0;
        const x = rand();
        if (x < 0.4) data[at] ^= 1 << ((rand() * 8) | 0);
        else if (x < 0.7) data[at] = 0xc0 | ((rand() * 4) | 0);
        else data[at] = (rand() * 256) | 0;
      }
      runAll(data);
      if (scanOf(data)[0] === DnsError.OK) ok++;
    }
    // The mutations must reach the accept path too.
    expect(ok).toBeGreaterThan(2000);
  });
});
