import { beforeEach, describe, expect, it } from 'vitest';
import { DHCPV6_SERVER_MAX_IAS, Dhcpv6Server, type Dhcpv6ServerOptions, type Dhcpv6ServerStats } from '../../src/dhcp/dhcpv6-server.js';
import { Dhcpv6MessageType as T, Dhcpv6Option, Dhcpv6Status, Dhcpv6View, duidLl } from '../../src/wire/dhcpv6.js';
import { dnsNameText, skipUncompressedDnsName } from '../../src/wire/dns.js';
import { Wire } from '../../src/wire/errors.js';
import { parseIpv6 } from '../../src/wire/ipv6-address.js';
import { hex, prng, randomBytes, toHex } from '../wire/golden.js';
import { DHCP6_ADVERTISE_DNSMASQ, DHCP6_INFO_REQUEST, DHCP6_SOLICIT, L4 } from '../wire/golden6.js';

// Golden client messages: dhclient 4.4.3-P1 against dnsmasq, see
// test/wire/golden6.ts for how they were captured.
const INFO_REQUEST = DHCP6_INFO_REQUEST.slice(L4 + 8);
const SOLICIT = DHCP6_SOLICIT.slice(L4 + 8);

const ROUTER_MAC = 0x52_55_0a_00_02_02;
const OUR_ID = duidLl(ROUTER_MAC);
const DNS1 = parseIpv6('fd00::3')!;
const DNS2 = parseIpv6('fd00::53')!;
const OPTIONS: Dhcpv6ServerOptions = {
  routerMac: ROUTER_MAC,
  dnsServers: [DNS1, DNS2],
  domainSearch: ['example.test', 'corp.example'],
  informationRefreshTimeS: null,
};

/** Options as hex, `code len data`. */
const o = (code: number, dataHex = ''): string => {
  const d = dataHex.replace(/\s+/g, '');
  return code.toString(16).padStart(4, '0') + (d.length / 2).toString(16).padStart(4, '0') + d;
};
const CLIENT = o(1, '00030001 020000000001');
const SERVER = o(2, toHex(OUR_ID));
const OTHER_SERVER = o(2, '0001000132a4056a020000000002');
const ORO_BOTH = o(6, '0017 0018');
const IA_NA = (iaid: string): string => o(3, `${iaid} 00000e10 00001518`);
const IA_TA = (iaid: string): string => o(4, iaid);
const IA_PD = (iaid: string): string => o(25, `${iaid} 00000000 00000000`);
const ELAPSED = o(8, '0000');
/** A client message: type, transaction id 0x123456, options. */
const m = (type: number, ...opts: string[]): Uint8Array => hex(type.toString(16).padStart(2, '0') + '123456' + opts.join(''));

let server: Dhcpv6Server;
const out = new Uint8Array(2048);

interface Reply {
  type: number;
  xid: number;
  /** [code, data hex] in order. */
  options: [number, string][];
  view: Dhcpv6View;
}

/** Runs one message through the server; the parsed reply, or null. */
function send(msg: Uint8Array, srv = server): Reply | null {
  out.fill(0xa5);
  const n = srv.handle(msg, 0, msg.length, out, 16, 0);
  expect(out.subarray(0, 16).every((b) => b === 0xa5)).toBe(true);
  expect(out.subarray(16 + n).every((b) => b === 0xa5)).toBe(true);
  if (n === 0) return null;
  expect(n).toBeLessThanOrEqual(srv.maxReplyLength);
  const v = new Dhcpv6View().wrap(out, 16, n);
  expect(v.check()).toBe(Wire.OK);
  const options: [number, string][] = [];
  for (let p = v.firstOptionOffset; p >= 0; p = v.nextOption(p)) {
    const len = (out[p + 2] << 8) | out[p + 3];
    options.push([(out[p] << 8) | out[p + 1], toHex(out.subarray(p + 4, p + 4 + len))]);
  }
  return { type: v.msgType, xid: v.transactionId, options, view: v };
}

const status = (code: number, text: string): string => code.toString(16).padStart(4, '0') + toHex(Uint8Array.from(text, (c) => c.charCodeAt(0)));
const DNS_DATA = toHex(DNS1) + toHex(DNS2);
const DOMAINS_DATA = '076578616d706c650474657374' + '00' + '04636f7270076578616d706c6500';

function total(s: Dhcpv6ServerStats): number {
  return (
    s.rxSolicit + s.rxRequest + s.rxConfirm + s.rxRenew + s.rxRebind + s.rxRelease + s.rxDecline +
    s.rxInformationRequest + s.rxOther + s.malformed
  );
}

beforeEach(() => {
  server = new Dhcpv6Server(OPTIONS);
});

describe('Dhcpv6Server: the dhclient exchanges', () => {
  it('Information-request -> Reply with Client ID, our DUID-LL, Domain List and DNS Servers', () => {
    const r = send(INFO_REQUEST)!;
    expect(r.type).toBe(T.REPLY);
    expect(r.xid).toBe(0x7b23c6);
    expect(r.options).toEqual([
      [1, '00030001020000000001'],
      [2, '00030001' + '52550a000202'],
      [24, DOMAINS_DATA],
      [23, DNS_DATA],
    ]);
    const v = r.view;
    const names: string[] = [];
    for (let p = v.domainListOffset; p < v.domainListOffset + v.domainListLength; p = skipUncompressedDnsName(out, p, v.domainListOffset + v.domainListLength)) {
      names.push(dnsNameText(out, p - 12, v.domainListOffset + v.domainListLength, p)!);
    }
    expect(names).toEqual(['example.test', 'corp.example']);
    expect(server.stats).toMatchObject({ rxInformationRequest: 1, txReply: 1, txAdvertise: 0, discarded: 0 });
  });

  it('Solicit -> Advertise with NoAddrsAvail only, shaped as dnsmasq answered it', () => {
    const r = send(SOLICIT)!;
    expect(r.type).toBe(T.ADVERTISE);
    expect(r.xid).toBe(0x72f747);
    expect(r.options).toEqual([
      [1, '0001000132a4056f020000000001'],
      [2, toHex(OUR_ID)],
      [13, status(2, 'no addresses available')],
    ]);
    // dnsmasq's is the same but for its Server ID.
    const theirs = DHCP6_ADVERTISE_DNSMASQ.subarray(L4 + 8);
    expect(toHex(out.subarray(16, 16 + 4 + 18))).toBe(toHex(theirs.subarray(0, 22)));
    expect(toHex(out.subarray(16 + 22 + 14, 16 + 22 + 14 + 28))).toBe(toHex(theirs.subarray(22 + 18)));
    expect(server.stats).toMatchObject({ rxSolicit: 1, txAdvertise: 1, txReply: 0 });
  });

  it('the reply is written at any offset and never past its length', () => {
    const big = new Uint8Array(server.maxReplyLength + 3).fill(0xa5);
    const n = server.handle(INFO_REQUEST, 0, INFO_REQUEST.length, big, 3, 0);
    expect(n).toBe(4 + 14 + 14 + 32 + 4 + 28 + 4);
    expect(big.subarray(0, 3).every((b) => b === 0xa5)).toBe(true);
    expect(big[3]).toBe(T.REPLY);
    expect(() => server.handle(INFO_REQUEST, 0, INFO_REQUEST.length, big, 4, 0)).toThrow(RangeError);
    expect(() => server.handle(INFO_REQUEST, 0, INFO_REQUEST.length, big, -1, 0)).toThrow(RangeError);
  });

  it('reads the message at an offset inside a larger buffer (the whole frame)', () => {
    out.fill(0);
    const n = server.handle(DHCP6_INFO_REQUEST, L4 + 8, INFO_REQUEST.length, out, 0, 0);
    expect(n).toBe(100);
    expect(out[0]).toBe(T.REPLY);
  });
});

describe('Information-request (§18.3.6, §16.12)', () => {
  it('the ORO picks the configuration options; no ORO gets them all', () => {
    expect(send(m(11, CLIENT, o(6, '0017')))!.options.map(([c]) => c)).toEqual([1, 2, 23]);
    expect(send(m(11, CLIENT, o(6, '0018 0027')))!.options.map(([c]) => c)).toEqual([1, 2, 24]);
    expect(send(m(11, CLIENT, o(6)))!.options.map(([c]) => c)).toEqual([1, 2]);
    expect(send(m(11, CLIENT))!.options.map(([c]) => c)).toEqual([1, 2, 24, 23]);
  });

  it('without a Client ID: a Reply without one (the option is optional here)', () => {
    expect(send(m(11, ORO_BOTH, ELAPSED))!.options.map(([c]) => c)).toEqual([2, 24, 23]);
  });

  it('with our Server ID: answered; with another server\'s: discarded', () => {
    expect(send(m(11, CLIENT, SERVER, ORO_BOTH))?.type).toBe(T.REPLY);
    expect(send(m(11, CLIENT, OTHER_SERVER, ORO_BOTH))).toBeNull();
    // Same length as ours, one byte off.
    const near = toHex(OUR_ID).slice(0, -1) + '3';
    expect(send(m(11, CLIENT, o(2, near)))).toBeNull();
    expect(server.stats).toMatchObject({ rxInformationRequest: 3, txReply: 1, discarded: 2 });
  });

  it('with any IA option: discarded', () => {
    for (const ia of [IA_NA('00000001'), IA_TA('00000002'), IA_PD('00000003')]) expect(send(m(11, CLIENT, ia))).toBeNull();
    expect(server.stats.discarded).toBe(3);
  });

  it('Information Refresh Time when configured, only in replies to Information-request', () => {
    const srv = new Dhcpv6Server({ ...OPTIONS, informationRefreshTimeS: 3600 });
    expect(send(m(11, CLIENT, ORO_BOTH), srv)!.options).toContainEqual([32, '00000e10']);
    expect(send(m(11, CLIENT, ORO_BOTH), srv)!.view.informationRefreshTime).toBe(3600);
    expect(send(m(5, CLIENT, SERVER, IA_NA('00000001')), srv)!.view.informationRefreshTime).toBe(-1);
  });

  it('no DNS servers and no domains configured: only the identifiers', () => {
    const srv = new Dhcpv6Server({ ...OPTIONS, dnsServers: [], domainSearch: [] });
    expect(send(INFO_REQUEST, srv)!.options.map(([c]) => c)).toEqual([1, 2]);
  });
});

describe('Solicit (§18.3.1, §18.3.9, §16.2)', () => {
  it('Rapid Commit does not turn the Advertise into a Reply', () => {
    const r = send(m(1, CLIENT, ORO_BOTH, o(14), IA_NA('00000001')))!;
    expect(r.type).toBe(T.ADVERTISE);
    expect(r.options.map(([c]) => c)).toEqual([1, 2, 13]);
  });

  it('without a Client ID, or with a Server ID: discarded', () => {
    expect(send(m(1, ORO_BOTH, IA_NA('00000001')))).toBeNull();
    expect(send(m(1, CLIENT, SERVER, IA_NA('00000001')))).toBeNull();
    expect(server.stats).toMatchObject({ rxSolicit: 2, discarded: 2, txAdvertise: 0 });
  });
});

describe('messages for a binding this server never made', () => {
  it('Request: each IA back with NoAddrsAvail (NoPrefixAvail for IA_PD), and the configuration', () => {
    const r = send(m(3, CLIENT, SERVER, ORO_BOTH, IA_NA('0000000a'), IA_PD('0000000b'), IA_TA('0000000c'), ELAPSED))!;
    expect(r.type).toBe(T.REPLY);
    expect(r.xid).toBe(0x123456);
    expect(r.options).toEqual([
      [1, '00030001020000000001'],
      [2, toHex(OUR_ID)],
      [3, '0000000a' + '00000000' + '00000000' + o(13, status(2, 'no addresses available'))],
      [25, '0000000b' + '00000000' + '00000000' + o(13, status(6, 'no prefixes available'))],
      [4, '0000000c' + o(13, status(2, 'no addresses available'))],
      [24, DOMAINS_DATA],
      [23, DNS_DATA],
    ]);
  });

  it('Renew: each IA back with NoBinding, and the configuration', () => {
    const r = send(m(5, CLIENT, SERVER, ORO_BOTH, IA_NA('00000001')))!;
    expect(r.options).toEqual([
      [1, '00030001020000000001'],
      [2, toHex(OUR_ID)],
      [3, '00000001' + '00000000' + '00000000' + o(13, status(3, 'no binding'))],
      [24, DOMAINS_DATA],
      [23, DNS_DATA],
    ]);
  });

  it('Release and Decline: each IA with NoBinding and a top-level Success, no configuration', () => {
    for (const type of [T.RELEASE, T.DECLINE]) {
      const r = send(m(type, CLIENT, SERVER, ORO_BOTH, IA_NA('00000001'), IA_NA('00000002')))!;
      expect(r.type).toBe(T.REPLY);
      expect(r.options).toEqual([
        [1, '00030001020000000001'],
        [2, toHex(OUR_ID)],
        [3, '00000001' + '00000000' + '00000000' + o(13, status(3, 'no binding'))],
        [3, '00000002' + '00000000' + '00000000' + o(13, status(3, 'no binding'))],
        [13, status(0, 'success')],
      ]);
      expect(r.view.statusCode).toBe(Dhcpv6Status.SUCCESS);
    }
    expect(server.stats).toMatchObject({ rxRelease: 1, rxDecline: 1, txReply: 2 });
  });

  it('Request, Renew, Release, Decline: no Server ID, another server\'s, or no Client ID is discarded', () => {
    for (const type of [T.REQUEST, T.RENEW, T.RELEASE, T.DECLINE]) {
      expect(send(m(type, CLIENT, IA_NA('00000001')))).toBeNull();
      expect(send(m(type, CLIENT, OTHER_SERVER, IA_NA('00000001')))).toBeNull();
      expect(send(m(type, SERVER, IA_NA('00000001')))).toBeNull();
    }
    expect(server.stats).toMatchObject({ rxRequest: 3, rxRenew: 3, rxRelease: 3, rxDecline: 3, discarded: 12, txReply: 0 });
  });

  it('Rebind and Confirm get no answer; with a Server ID or without a Client ID they are discarded', () => {
    for (const type of [T.REBIND, T.CONFIRM]) {
      expect(send(m(type, CLIENT, ORO_BOTH, IA_NA('00000001')))).toBeNull();
      expect(send(m(type, CLIENT, SERVER, IA_NA('00000001')))).toBeNull();
      expect(send(m(type, IA_NA('00000001')))).toBeNull();
    }
    expect(server.stats).toMatchObject({ rxRebind: 3, rxConfirm: 3, unanswered: 2, discarded: 4, txReply: 0 });
  });

  it('at most 8 IAs are echoed', () => {
    const ias = Array.from({ length: 12 }, (_, i) => IA_NA(i.toString(16).padStart(8, '0')));
    const r = send(m(5, CLIENT, SERVER, ...ias))!;
    expect(r.options.filter(([c]) => c === Dhcpv6Option.IA_NA).length).toBe(DHCPV6_SERVER_MAX_IAS);
  });
});

describe('what a server does not answer', () => {
  it('server-to-client types, relay messages and unknown types', () => {
    for (const type of [T.ADVERTISE, T.REPLY, T.RECONFIGURE, T.RELAY_FORW, T.RELAY_REPL, 0, 14, 255]) {
      expect(send(m(type, CLIENT, SERVER))).toBeNull();
    }
    expect(server.stats).toMatchObject({ rxOther: 8, unanswered: 8, txReply: 0, txAdvertise: 0, malformed: 0 });
  });

  it('malformed messages are counted and dropped', () => {
    const bad = [
      new Uint8Array(0),
      hex('0b1234'),
      m(11, CLIENT.slice(0, -2)), // Client ID running past the end
      m(11, CLIENT, '00'), // a lone byte after the last option
      m(11, o(1, '0003')), // DUID too short
      m(1, CLIENT, o(8, '00')), // Elapsed Time of 1 byte
      m(1, CLIENT, o(3, '00000001')), // IA_NA of 4 bytes
    ];
    for (const msg of bad) expect(send(msg)).toBeNull();
    expect(server.stats.malformed).toBe(bad.length);
    expect(total(server.stats)).toBe(bad.length);
  });

  it('every cut of the golden messages: handled or malformed, never a throw', () => {
    let handled = 0;
    for (const msg of [INFO_REQUEST, SOLICIT]) {
      for (let len = 0; len <= msg.length; len++) {
        server.handle(msg, 0, len, out, 0, 0);
        handled++;
      }
    }
    expect(total(server.stats)).toBe(handled);
    // Cuts at option boundaries are valid messages: Client ID alone and on.
    expect(server.stats.txReply + server.stats.txAdvertise).toBeGreaterThan(0);
  });

  it('20,000 random messages: no throw, replies within maxReplyLength, every message counted once', () => {
    const rand = prng(0xd6c9);
    const codes = [1, 2, 3, 4, 6, 8, 13, 14, 23, 24, 25, 32, 99];
    for (let k = 0; k < 20_000; k++) {
      let h = ((1 + rand() * 13) | 0).toString(16).padStart(2, '0') + '000001';
      const count = (rand() * 6) | 0;
      for (let i = 0; i < count; i++) {
        const r = rand();
        if (r < 0.2) h += CLIENT;
        else if (r < 0.3) h += SERVER;
        else if (r < 0.4) h += IA_NA('00000001');
        else {
          const data = toHex(randomBytes(rand, (rand() * 20) | 0));
          h += o(codes[(rand() * codes.length) | 0], data);
        }
      }
      const msg = hex(h);
      const cut = rand() < 0.2 ? (rand() * msg.length) | 0 : msg.length;
      const n = server.handle(msg, 0, cut, out, 0, 0);
      expect(n).toBeLessThanOrEqual(server.maxReplyLength);
    }
    const s = server.stats;
    expect(total(s)).toBe(20_000);
    expect(s.txReply + s.txAdvertise).toBeGreaterThan(500);
    expect(s.discarded).toBeGreaterThan(500);
    expect(s.malformed).toBeGreaterThan(500);
  });
});

describe('Dhcpv6Server options', () => {
  it('Server ID is the DUID-LL of the router MAC', () => {
    expect(toHex(server.serverId)).toBe('00030001' + '52550a000202');
  });

  it('rejects bad configuration', () => {
    expect(() => new Dhcpv6Server({ ...OPTIONS, dnsServers: [new Uint8Array(4)] })).toThrow(RangeError);
    expect(() => new Dhcpv6Server({ ...OPTIONS, domainSearch: ['bad..name'] })).toThrow(RangeError);
    expect(() => new Dhcpv6Server({ ...OPTIONS, domainSearch: ['.'] })).toThrow(RangeError);
    expect(() => new Dhcpv6Server({ ...OPTIONS, informationRefreshTimeS: 599 })).toThrow(RangeError);
    expect(() => new Dhcpv6Server({ ...OPTIONS, informationRefreshTimeS: 600 })).not.toThrow();
  });

  it('maxReplyLength covers the longest reply', () => {
    const longId = o(1, '0002' + 'ab'.repeat(128));
    const ias = Array.from({ length: 12 }, (_, i) => IA_PD(i.toString(16).padStart(8, '0')));
    const srv = new Dhcpv6Server({ ...OPTIONS, informationRefreshTimeS: 86400 });
    const buf = new Uint8Array(srv.maxReplyLength);
    for (const msg of [m(3, longId, SERVER, ...ias), m(11, longId), m(8, longId, SERVER, ...ias)]) {
      const n = srv.handle(msg, 0, msg.length, buf, 0, 0);
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(srv.maxReplyLength);
    }
  });
});
