import { describe, expect, test } from 'vitest';
import {
  DHCPV6_CLIENT_PORT,
  DHCPV6_SERVER_PORT,
  DUID_HW_ETHERNET,
  Dhcpv6MessageType,
  Dhcpv6Option,
  Dhcpv6Status,
  Dhcpv6View,
  DuidType,
  dhcpv6ReplyLength,
  duidLl,
  emitDhcpv6Reply,
  newDhcpv6ReplyRepr,
  type Dhcpv6ReplyRepr,
} from '../../src/wire/dhcpv6.js';
import { dnsNameText, encodeDnsNameList, skipUncompressedDnsName } from '../../src/wire/dns.js';
import { Wire } from '../../src/wire/errors.js';
import { readMac } from '../../src/wire/ethernet.js';
import { ipv6WordSum, parseIpv6 } from '../../src/wire/ipv6-address.js';
import { UdpView } from '../../src/wire/udp.js';
import { a5, concat, hex, toHex } from './golden.js';
import {
  DHCP6_ADVERTISE_DNSMASQ,
  DHCP6_INFO_REQUEST,
  DHCP6_REPLY_DNSMASQ,
  DHCP6_SOLICIT,
  IP6,
  L4,
  MAC_A6,
} from './golden6.js';

/** The DHCPv6 message of a captured frame: after the 8-byte UDP header. */
const MSG = L4 + 8;
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

function view(frame: Uint8Array, at = MSG): Dhcpv6View {
  const v = new Dhcpv6View().wrap(frame, at, frame.length - at);
  expect(v.check()).toBe(Wire.OK);
  return v;
}
function names(buf: Uint8Array, off: number, len: number): string[] {
  const out: string[] = [];
  for (let p = off; p < off + len; p = skipUncompressedDnsName(buf, p, off + len)) out.push(dnsNameText(buf, p - 12, off + len, p)!);
  return out;
}
/** Option code and length words at p. */
function opt(buf: Uint8Array, p: number): [number, number] {
  return [(buf[p] << 8) | buf[p + 1], (buf[p + 2] << 8) | buf[p + 3]];
}
/** All options of a checked view, as [code, data hex]. */
function options(v: Dhcpv6View): [number, string][] {
  const out: [number, string][] = [];
  for (let p = v.firstOptionOffset; p >= 0; p = v.nextOption(p)) {
    const [c, n] = opt(v.buf, p);
    out.push([c, toHex(v.buf.subarray(p + 4, p + 4 + n))]);
  }
  return out;
}

/** dnsmasq's Server ID (DUID-LLT) as captured. */
const DNSMASQ_DUID = hex('0001000132a4056a020000000002');

describe('DHCPv6 golden messages', () => {
  test('the UDP datagrams around them are whole: ports and checksums', () => {
    for (const [frame, toServer] of [
      [DHCP6_INFO_REQUEST, true],
      [DHCP6_SOLICIT, true],
      [DHCP6_REPLY_DNSMASQ, false],
      [DHCP6_ADVERTISE_DNSMASQ, false],
    ] as const) {
      const u = new UdpView().wrap(frame, L4, frame.length - L4);
      expect(u.check()).toBe(Wire.OK);
      expect(u.srcPort).toBe(toServer ? DHCPV6_CLIENT_PORT : DHCPV6_SERVER_PORT);
      expect(u.dstPort).toBe(toServer ? DHCPV6_SERVER_PORT : DHCPV6_CLIENT_PORT);
      expect(u.verifyChecksum6(ipv6WordSum(frame, IP6 + 8) + ipv6WordSum(frame, IP6 + 24))).toBe(true);
    }
  });

  test("dhclient's Information-request: every field", () => {
    const v = view(DHCP6_INFO_REQUEST);
    expect(v.msgType).toBe(Dhcpv6MessageType.INFORMATION_REQUEST);
    expect(v.transactionId).toBe(0x7b23c6);
    expect(v.clientIdOffset).toBe(MSG + 8);
    expect(v.clientIdLength).toBe(10);
    const duid = DHCP6_INFO_REQUEST.subarray(v.clientIdOffset, v.clientIdOffset + 10);
    expect(toHex(duid)).toBe(toHex(duidLl(MAC_A6)));
    expect((duid[0] << 8) | duid[1]).toBe(DuidType.LL);
    expect((duid[2] << 8) | duid[3]).toBe(DUID_HW_ETHERNET);
    expect(readMac(duid, 4)).toBe(MAC_A6);
    expect(v.serverIdOffset).toBe(-1);
    expect(v.serverIdLength).toBe(0);
    expect(v.oroLength).toBe(8);
    const oro = [];
    for (let i = 0; i < v.oroLength; i += 2) oro.push((v.buf[v.oroOffset + i] << 8) | v.buf[v.oroOffset + i + 1]);
    expect(oro).toEqual([23, 24, 39, 31]);
    expect(v.requestsOption(Dhcpv6Option.DNS_SERVERS)).toBe(true);
    expect(v.requestsOption(Dhcpv6Option.DOMAIN_LIST)).toBe(true);
    expect(v.requestsOption(Dhcpv6Option.INFORMATION_REFRESH_TIME)).toBe(false);
    expect(v.elapsedTime).toBe(0);
    expect(v.rapidCommit).toBe(false);
    expect(v.hasIa).toBe(false);
    expect(v.statusCode).toBe(-1);
    expect(options(v).map(([c]) => c)).toEqual([1, 6, 8]);
  });

  test("dhclient's Solicit: DUID-LLT and one IA_NA", () => {
    const v = view(DHCP6_SOLICIT);
    expect(v.msgType).toBe(Dhcpv6MessageType.SOLICIT);
    expect(v.transactionId).toBe(0x72f747);
    expect(toHex(v.buf.subarray(v.clientIdOffset, v.clientIdOffset + v.clientIdLength))).toBe('0001000132a4056f020000000001');
    expect(v.iaNaCount).toBe(1);
    expect(v.iaTaCount).toBe(0);
    expect(v.iaPdCount).toBe(0);
    expect(v.hasIa).toBe(true);
    expect(v.elapsedTime).toBe(0);
    expect(options(v)).toEqual([
      [1, '0001000132a4056f020000000001'],
      [6, '001700180027001f'],
      [8, '0000'],
      [3, '00000001' + '00000e10' + '00001518'], // IAID 1, T1 3600, T2 5400
    ]);
  });

  test("dnsmasq's Reply: Server ID, Domain List, DNS Servers, Information Refresh Time", () => {
    const v = view(DHCP6_REPLY_DNSMASQ);
    expect(v.msgType).toBe(Dhcpv6MessageType.REPLY);
    expect(v.transactionId).toBe(0x7b23c6);
    expect(toHex(v.buf.subarray(v.serverIdOffset, v.serverIdOffset + v.serverIdLength))).toBe(toHex(DNSMASQ_DUID));
    expect(names(v.buf, v.domainListOffset, v.domainListLength)).toEqual(['example.test', 'corp.example']);
    expect(v.dnsServersLength).toBe(16);
    expect(toHex(v.buf.subarray(v.dnsServersOffset, v.dnsServersOffset + 16))).toBe(toHex(parseIpv6('fd00::3')!));
    expect(v.informationRefreshTime).toBe(3600);
    expect(v.statusCode).toBe(-1);
  });

  test("dnsmasq's Advertise: NoAddrsAvail and nothing else", () => {
    const v = view(DHCP6_ADVERTISE_DNSMASQ);
    expect(v.msgType).toBe(Dhcpv6MessageType.ADVERTISE);
    expect(v.statusCode).toBe(Dhcpv6Status.NO_ADDRS_AVAIL);
    const m = v.buf.subarray(v.statusMessageOffset, v.statusMessageOffset + v.statusMessageLength);
    expect(String.fromCharCode(...m)).toBe('no addresses available');
    expect(options(v).map(([c]) => c)).toEqual([1, 2, 13]);
    expect(v.dnsServersOffset).toBe(-1);
  });
});

/** dnsmasq's two answers rebuilt with our emitter, from the requests. */
function dnsmasqRepr(request: Uint8Array, msgType: number): Dhcpv6ReplyRepr {
  const q = view(request);
  const r = newDhcpv6ReplyRepr();
  r.msgType = msgType;
  r.transactionId = q.transactionId;
  r.serverId = DNSMASQ_DUID;
  r.clientId = request;
  r.clientIdOffset = q.clientIdOffset;
  r.clientIdLength = q.clientIdLength;
  return r;
}

describe('emitDhcpv6Reply', () => {
  test("reproduces dnsmasq's Reply byte for byte", () => {
    const r = dnsmasqRepr(DHCP6_INFO_REQUEST, Dhcpv6MessageType.REPLY);
    r.domainList = encodeDnsNameList(['example.test', 'corp.example'])!;
    r.domainListLength = r.domainList.length;
    r.dnsServers = parseIpv6('fd00::3')!;
    r.dnsServerCount = 1;
    r.informationRefreshTime = 3600;
    const want = DHCP6_REPLY_DNSMASQ.subarray(MSG);
    expect(dhcpv6ReplyLength(r)).toBe(want.length);
    for (const at of [0, 5]) {
      const buf = a5(at + want.length + 4);
      expect(emitDhcpv6Reply(r, buf, at)).toBe(want.length);
      expect(toHex(buf.subarray(at, at + want.length))).toBe(toHex(want));
      expect(buf[at + want.length]).toBe(0xa5);
      if (at > 0) expect(buf[at - 1]).toBe(0xa5);
    }
  });

  test("reproduces dnsmasq's Advertise byte for byte", () => {
    const r = dnsmasqRepr(DHCP6_SOLICIT, Dhcpv6MessageType.ADVERTISE);
    r.status = Dhcpv6Status.NO_ADDRS_AVAIL;
    r.statusMessage = ascii('no addresses available');
    const want = DHCP6_ADVERTISE_DNSMASQ.subarray(MSG);
    const buf = a5(want.length + 1);
    expect(emitDhcpv6Reply(r, buf, 0)).toBe(want.length);
    expect(toHex(buf.subarray(0, want.length))).toBe(toHex(want));
    expect(buf[want.length]).toBe(0xa5);
  });

  test('IAs echoed with a Status Code inside: IA_NA and IA_PD with T1/T2 0, IA_TA without', () => {
    const r = dnsmasqRepr(DHCP6_SOLICIT, Dhcpv6MessageType.REPLY);
    r.ias = [
      { type: Dhcpv6Option.IA_NA, iaid: 1, status: Dhcpv6Status.NO_BINDING, message: ascii('nb') },
      { type: Dhcpv6Option.IA_TA, iaid: 0xfffffffe, status: Dhcpv6Status.NO_ADDRS_AVAIL, message: new Uint8Array(0) },
      { type: Dhcpv6Option.IA_PD, iaid: 7, status: Dhcpv6Status.NO_PREFIX_AVAIL, message: ascii('x') },
    ];
    r.iaCount = 3;
    r.status = Dhcpv6Status.SUCCESS;
    r.statusMessage = ascii('ok');
    const buf = a5(200);
    const n = emitDhcpv6Reply(r, buf, 1);
    expect(n).toBe(dhcpv6ReplyLength(r));
    expect(buf[1 + n]).toBe(0xa5);
    const v = new Dhcpv6View().wrap(buf, 1, n);
    expect(v.check()).toBe(Wire.OK);
    expect(v.iaNaCount + v.iaTaCount + v.iaPdCount).toBe(3);
    expect(v.statusCode).toBe(Dhcpv6Status.SUCCESS);
    expect(options(v)).toEqual([
      [1, '0001000132a4056f020000000001'],
      [2, toHex(DNSMASQ_DUID)],
      [3, '00000001' + '00000000' + '00000000' + '000d0004' + '0003' + '6e62'],
      [4, 'fffffffe' + '000d0002' + '0002'],
      [25, '00000007' + '00000000' + '00000000' + '000d0003' + '0006' + '78'],
      [13, '0000' + '6f6b'],
    ]);
  });

  test('throws on a buffer too small; emits nothing but the header and Server ID when empty', () => {
    const r = newDhcpv6ReplyRepr();
    r.serverId = duidLl(0x52_54_00_12_34_56);
    r.transactionId = 0xabcdef;
    expect(() => emitDhcpv6Reply(r, new Uint8Array(17), 0)).toThrow(RangeError);
    const buf = a5(19);
    expect(emitDhcpv6Reply(r, buf, 1)).toBe(18);
    expect(toHex(buf.subarray(1, 19))).toBe('07abcdef' + '0002000a' + '00030001525400123456');
  });
});

describe('domain lists in wire form', () => {
  test('encodeDnsNameList: names one after the other; null for a bad name or the root', () => {
    expect(toHex(encodeDnsNameList(['example.test', 'corp.example.'])!)).toBe(
      '076578616d706c65047465737400' + '04636f7270076578616d706c6500',
    );
    expect(encodeDnsNameList([])!.length).toBe(0);
    expect(encodeDnsNameList(['ok.test', 'a..b'])).toBeNull();
    expect(encodeDnsNameList(['.'])).toBeNull();
    expect(encodeDnsNameList(['x'.repeat(64)])).toBeNull();
  });

  test('skipUncompressedDnsName: labels only; a pointer or a cut name is an error', () => {
    const list = encodeDnsNameList(['a.b', 'c'])!;
    expect(skipUncompressedDnsName(list, 0, list.length)).toBe(5);
    expect(skipUncompressedDnsName(list, 5, list.length)).toBe(list.length);
    expect(skipUncompressedDnsName(hex('0161c000'), 0, 4)).toBeLessThan(0);
    expect(skipUncompressedDnsName(hex('c000'), 0, 2)).toBeLessThan(0);
    expect(skipUncompressedDnsName(list, 0, 3)).toBeLessThan(0);
  });
});

describe('Dhcpv6View.check', () => {
  /** A message of type `type`, xid 1, with the given options (hex). */
  const msg = (type: number, optionsHex: string): Uint8Array => concat(Uint8Array.of(type, 0, 0, 1), hex(optionsHex.replace(/ /g, '')));
  const code = (m: Uint8Array): number => new Dhcpv6View().wrap(m, 0, m.length).check();

  test('shorter than the header is TRUNCATED; the bare header is OK', () => {
    for (let n = 0; n < 4; n++) expect(new Dhcpv6View().wrap(new Uint8Array(n), 0, n).check()).toBe(Wire.TRUNCATED);
    expect(code(msg(11, ''))).toBe(Wire.OK);
  });

  test('an option header or data running past the end is TRUNCATED', () => {
    for (const o of ['00', '000100', '0001000a 0003', '0008 0002 00', '0001000a 00030001020000000001 0006']) {
      expect(code(msg(11, o))).toBe(Wire.TRUNCATED);
    }
  });

  test('known options with lengths their RFC forbids are BAD_OPTIONS', () => {
    for (const o of [
      '0001 0002 0003', // DUID too short
      '0002 0002 0003',
      `0001 0083 ${'00'.repeat(131)}`, // DUID of 131 bytes
      '0006 0003 001700', // odd ORO
      '0008 0001 00', // Elapsed Time
      '0008 0003 000000',
      '000e 0001 00', // Rapid Commit with data
      '0003 000b 00000001 00000e10 000015', // IA_NA of 11
      '0019 0004 00000001', // IA_PD of 4
      '0004 0003 000000', // IA_TA of 3
      '000d 0001 00', // Status Code of 1
      '0017 000f 000000000000000000000000000000', // DNS Servers of 15
      '0018 0004 c00c0000', // Domain List with a pointer
      '0018 0003 056162', // Domain List name running out
      '0020 0002 0000', // Information Refresh Time of 2
    ]) {
      expect(code(msg(11, o))).toBe(Wire.BAD_OPTIONS);
    }
  });

  test('the edges that are allowed: DUID of 3 and 130 bytes, empty ORO, unknown options', () => {
    expect(code(msg(1, '0001 0003 000300'))).toBe(Wire.OK);
    expect(code(msg(1, `0001 0082 ${'00'.repeat(130)}`))).toBe(Wire.OK);
    expect(code(msg(1, '0006 0000'))).toBe(Wire.OK);
    expect(code(msg(1, 'ffff 0000 1234 0003 010203'))).toBe(Wire.OK);
  });

  test('Relay-forward and Relay-reply are UNSUPPORTED', () => {
    expect(code(msg(12, ''))).toBe(Wire.UNSUPPORTED);
    expect(code(msg(13, ''))).toBe(Wire.UNSUPPORTED);
  });

  test('the first of a repeated option counts', () => {
    const m = msg(11, '0008 0002 0005 0008 0002 0009 0001 0003 000301 0001 0003 000302');
    const v = new Dhcpv6View().wrap(m, 0, m.length);
    expect(v.check()).toBe(Wire.OK);
    expect(v.elapsedTime).toBe(5);
    expect(v.buf[v.clientIdOffset + 2]).toBe(1);
  });

  test('a view reused on another message forgets the last one', () => {
    const v = new Dhcpv6View();
    v.wrap(DHCP6_SOLICIT, MSG, DHCP6_SOLICIT.length - MSG).check();
    expect(v.hasIa).toBe(true);
    const m = msg(11, '');
    expect(v.wrap(m, 0, m.length).check()).toBe(Wire.OK);
    expect(v.hasIa).toBe(false);
    expect(v.clientIdOffset).toBe(-1);
    expect(v.elapsedTime).toBe(-1);
  });

  test('truncation sweep: every cut of every capture gives a code, OK only at an option boundary', () => {
    const v = new Dhcpv6View();
    for (const frame of [DHCP6_INFO_REQUEST, DHCP6_SOLICIT, DHCP6_REPLY_DNSMASQ, DHCP6_ADVERTISE_DNSMASQ]) {
      const m = frame.slice(MSG);
      const boundaries = new Set<number>([4]);
      const full = view(m, 0);
      for (let p = full.firstOptionOffset; p >= 0; p = full.nextOption(p)) boundaries.add(p + 4 + opt(m, p)[1]);
      for (let len = 0; len < m.length; len++) {
        const c = v.wrap(m.slice(0, len), 0, len).check();
        expect(c === Wire.OK).toBe(boundaries.has(len));
        // A cut inside a Domain List can leave a shorter but valid-looking option only at a boundary.
        expect([Wire.OK, Wire.TRUNCATED]).toContain(c);
      }
    }
  });
});
