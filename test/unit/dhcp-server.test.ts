import { beforeEach, describe, expect, it } from 'vitest';
import { DhcpServer, type DhcpServerOptions, type DhcpServerStats } from '../../src/dhcp/server.js';
import {
  BootpOp,
  DhcpError,
  DhcpMessageType,
  DhcpView,
  emitDhcp,
  newDhcpRepr,
  parseDhcp,
  type DhcpRepr,
} from '../../src/wire/dhcp.js';

// Golden udhcpc messages: the same captures as test/wire/dhcp.test.ts (busybox
// 1.35.0 udhcpc, MAC 02:00:00:00:00:0c, xid 0x37706403); see there for how
// they were taken. Zero bytes are restored by capture().
function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  return Uint8Array.from({ length: clean.length / 2 }, (_, i) => parseInt(clean.slice(2 * i, 2 * i + 2), 16));
}
function capture(headerHex: string, optionsHex: string): Uint8Array {
  const out = new Uint8Array(300);
  out.set(hex(headerHex), 0);
  out.set([0x63, 0x82, 0x53, 0x63], 236);
  out.set(hex(optionsHex), 240);
  return out;
}
const UDHCPC_DISCOVER = capture(
  '01010600 37706403 0000 0000 00000000 00000000 00000000 00000000 02000000000c 00000000',
  '350101 39020240 3707 0103060c0f1c2a 0c05 6775657374 3c0c 756468637020312e33352e30 3d07 0102000000000c ff',
);
const UDHCPC_REQUEST = capture(
  '01010600 37706403 0002 0000 00000000 00000000 00000000 00000000 02000000000c 00000000',
  '350103 3204 0a00020f 3604 0a000202 39020240 3707 0103060c0f1c2a 0c05 6775657374 3c0c 756468637020312e33352e30 3d07 0102000000000c ff',
);
const UDHCPC_RENEW = capture(
  '01010600 37706403 0002 0000 0a00020f 00000000 00000000 00000000 02000000000c 00000000',
  '350103 39020240 3707 0103060c0f1c2a 0c05 6775657374 3c0c 756468637020312e33352e30 3d07 0102000000000c ff',
);
const UDHCPC_MAC = 0x02_00_00_00_00_0c;

const ip = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const NET = ip(10, 0, 2, 0);
const GATEWAY = ip(10, 0, 2, 2);
const DNS = ip(10, 0, 2, 3);
const MASK = ip(255, 255, 255, 0);
const LEASE_MS = 86400 * 1000;
const T0 = 1_000_000;

const OPTIONS: DhcpServerOptions = {
  network: NET,
  netmask: MASK,
  gateway: GATEWAY,
  dns: [DNS],
  poolStart: ip(10, 0, 2, 15),
  poolSize: 16,
  leaseTimeS: 86400,
  mtu: 1500,
};

const mac = (n: number): number => 0x52_54_00_00_00_00 + n;

/** A client message built with the wire emitter. */
function clientMsg(over: Partial<DhcpRepr>): Uint8Array {
  const r: DhcpRepr = { ...newDhcpRepr(), op: BootpOp.REQUEST, xid: 0x1234, ...over };
  const buf = new Uint8Array(600);
  return buf.subarray(0, emitDhcp(r, buf, 0));
}
const discover = (m: number, over: Partial<DhcpRepr> = {}): Uint8Array =>
  clientMsg({ chaddr: m, messageType: DhcpMessageType.DISCOVER, ...over });
const request = (m: number, requestedIp: number | null, over: Partial<DhcpRepr> = {}): Uint8Array =>
  clientMsg({ chaddr: m, messageType: DhcpMessageType.REQUEST, requestedIp, serverId: GATEWAY, ...over });

let server: DhcpServer;
const out = new Uint8Array(1024);

/** Runs one message through the server; returns the parsed reply or null. */
function send(msg: Uint8Array, nowMs = T0, srv = server): DhcpRepr | null {
  out.fill(0xa5);
  const n = srv.handle(msg, 0, msg.length, out, 16, nowMs);
  expect(out.subarray(0, 16).every((b) => b === 0xa5)).toBe(true);
  expect(out.subarray(16 + n).every((b) => b === 0xa5)).toBe(true);
  if (n === 0) return null;
  expect(n).toBeLessThanOrEqual(srv.maxReplyLength);
  const r = newDhcpRepr();
  expect(parseDhcp(new DhcpView().wrap(out, 16, n), r)).toBe(DhcpError.OK);
  return r;
}

/** DISCOVER then REQUEST for the offered address; returns the ACKed address. */
function bind(m: number, nowMs = T0): number {
  const offer = send(discover(m), nowMs);
  expect(offer?.messageType).toBe(DhcpMessageType.OFFER);
  const ack = send(request(m, offer!.yiaddr), nowMs);
  expect(ack?.messageType).toBe(DhcpMessageType.ACK);
  return ack!.yiaddr;
}

function rxTotal(s: DhcpServerStats): number {
  return (
    s.rxDiscover + s.rxRequest + s.rxBootp + s.rxDecline + s.rxRelease + s.rxInform + s.rxOther +
    s.dropTruncated + s.dropBadOp + s.dropBadHtype + s.dropBadOption + s.dropNotRequest
  );
}

beforeEach(() => {
  server = new DhcpServer(OPTIONS);
});

describe('DhcpServer: the udhcpc exchange', () => {
  it('DISCOVER -> OFFER of 10.0.2.15 with every option', () => {
    const offer = send(UDHCPC_DISCOVER);
    expect(offer).toEqual({
      ...newDhcpRepr(),
      op: BootpOp.REPLY,
      xid: 0x37706403,
      yiaddr: ip(10, 0, 2, 15),
      siaddr: GATEWAY,
      chaddr: UDHCPC_MAC,
      messageType: DhcpMessageType.OFFER,
      serverId: GATEWAY,
      subnetMask: MASK,
      router: GATEWAY,
      dns: [DNS],
      leaseTimeS: 86400,
      mtu: 1500,
    } satisfies DhcpRepr);
    expect(server.lastReply).toEqual({
      messageType: DhcpMessageType.OFFER,
      clientMac: UDHCPC_MAC,
      yiaddr: ip(10, 0, 2, 15),
      xid: 0x37706403,
    });
    expect(server.stats.rxDiscover).toBe(1);
    expect(server.stats.txOffer).toBe(1);
  });

  it('the OFFER bytes: libslirp option order (53 54 1 3 6 51) then 26, padded to 300', () => {
    const n = server.handle(UDHCPC_DISCOVER, 0, 300, out, 0, T0);
    expect(n).toBe(300);
    expect(Array.from(out.subarray(0, 12))).toEqual([2, 1, 6, 0, 0x37, 0x70, 0x64, 0x03, 0, 0, 0, 0]);
    expect(out.subarray(240, 240 + 38)).toEqual(
      hex('350102 3604 0a000202 0104 ffffff00 0304 0a000202 0604 0a000203 3304 00015180 1a02 05dc ff'),
    );
    expect(out.subarray(278, 300).every((b) => b === 0)).toBe(true);
  });

  it('mtu: null sends exactly the slirp4netns option set (no 26)', () => {
    const slirpLike = new DhcpServer({ ...OPTIONS, mtu: null });
    const offer = send(UDHCPC_DISCOVER, T0, slirpLike);
    expect(offer?.mtu).toBeNull();
    expect(offer?.dns).toEqual([DNS]);
  });

  it('REQUEST -> ACK, and the lease is recorded', () => {
    send(UDHCPC_DISCOVER);
    const ack = send(UDHCPC_REQUEST, T0 + 2000);
    expect(ack?.messageType).toBe(DhcpMessageType.ACK);
    expect(ack?.yiaddr).toBe(ip(10, 0, 2, 15));
    expect(ack?.leaseTimeS).toBe(86400);
    expect(ack?.serverId).toBe(GATEWAY);
    expect(server.lastReply.messageType).toBe(DhcpMessageType.ACK);
    expect(server.lastReply.yiaddr).toBe(ip(10, 0, 2, 15));
    expect(server.leases()).toEqual([{ mac: UDHCPC_MAC, ip: ip(10, 0, 2, 15), expiresMs: T0 + 2000 + LEASE_MS }]);
    expect(server.stats.txAck).toBe(1);
  });

  it('a REQUEST straight away (INIT-REBOOT into a fresh server) is ACKed if the address is free', () => {
    expect(send(UDHCPC_REQUEST)?.messageType).toBe(DhcpMessageType.ACK);
  });

  it('renewing REQUEST (ciaddr, no option 50) -> ACK and the lease restarts', () => {
    send(UDHCPC_DISCOVER);
    send(UDHCPC_REQUEST);
    const later = T0 + LEASE_MS / 2;
    const ack = send(UDHCPC_RENEW, later);
    expect(ack?.messageType).toBe(DhcpMessageType.ACK);
    expect(ack?.yiaddr).toBe(ip(10, 0, 2, 15));
    expect(server.leases()[0].expiresMs).toBe(later + LEASE_MS);
  });
});

describe('DhcpServer: address assignment', () => {
  it('a second MAC gets .16, a third .17', () => {
    expect(bind(mac(1))).toBe(ip(10, 0, 2, 15));
    expect(bind(mac(2))).toBe(ip(10, 0, 2, 16));
    expect(bind(mac(3))).toBe(ip(10, 0, 2, 17));
  });

  it('the same MAC gets the same address again', () => {
    bind(mac(1));
    bind(mac(2));
    expect(send(discover(mac(1)))?.yiaddr).toBe(ip(10, 0, 2, 15));
    expect(send(discover(mac(2)))?.yiaddr).toBe(ip(10, 0, 2, 16));
    expect(bind(mac(1))).toBe(ip(10, 0, 2, 15));
    expect(server.leases().map((l) => l.mac)).toEqual([mac(1), mac(2)]);
  });

  it('an OFFER already reserves the address (libslirp binds on DISCOVER)', () => {
    send(discover(mac(1)));
    expect(send(discover(mac(2)))?.yiaddr).toBe(ip(10, 0, 2, 16));
  });

  it('REQUEST for an address another MAC holds -> NAK with message 56', () => {
    bind(mac(1));
    const nak = send(request(mac(2), ip(10, 0, 2, 15)));
    expect(nak).toEqual({
      ...newDhcpRepr(),
      op: BootpOp.REPLY,
      xid: 0x1234,
      chaddr: mac(2),
      messageType: DhcpMessageType.NAK,
      serverId: GATEWAY,
      message: Uint8Array.from('requested address not available', (c) => c.charCodeAt(0)),
    } satisfies DhcpRepr);
    expect(server.lastReply).toEqual({ messageType: DhcpMessageType.NAK, clientMac: mac(2), yiaddr: 0, xid: 0x1234 });
    expect(server.stats.txNak).toBe(1);
    expect(server.leases().map((l) => l.mac)).toEqual([mac(1)]);
  });

  it('REQUEST for an address outside the pool -> NAK (a statically configured .100, a foreign net)', () => {
    expect(send(request(mac(1), ip(10, 0, 2, 100)))?.messageType).toBe(DhcpMessageType.NAK);
    expect(send(request(mac(1), ip(10, 0, 2, 31)))?.messageType).toBe(DhcpMessageType.NAK);
    expect(send(request(mac(1), ip(192, 168, 1, 15)))?.messageType).toBe(DhcpMessageType.NAK);
    expect(send(request(mac(1), null, { ciaddr: ip(10, 0, 2, 14) }))?.messageType).toBe(DhcpMessageType.NAK);
    expect(server.leases()).toEqual([]);
  });

  it('REQUEST for another free pool address -> ACK, and the old one is released', () => {
    bind(mac(1));
    const ack = send(request(mac(1), ip(10, 0, 2, 20)));
    expect(ack?.messageType).toBe(DhcpMessageType.ACK);
    expect(ack?.yiaddr).toBe(ip(10, 0, 2, 20));
    expect(server.leases().map((l) => l.ip)).toEqual([ip(10, 0, 2, 20)]);
    expect(bind(mac(2))).toBe(ip(10, 0, 2, 15));
  });

  it('DISCOVER with option 50: the requested address if free, else the usual one', () => {
    expect(send(discover(mac(1), { requestedIp: ip(10, 0, 2, 25) }))?.yiaddr).toBe(ip(10, 0, 2, 25));
    expect(send(discover(mac(2), { requestedIp: ip(10, 0, 2, 25) }))?.yiaddr).toBe(ip(10, 0, 2, 15));
    expect(send(discover(mac(3), { requestedIp: ip(10, 0, 2, 100) }))?.yiaddr).toBe(ip(10, 0, 2, 16));
  });

  it('REQUEST naming no address: the MAC\'s own address, else a new one (libslirp "windows fix")', () => {
    bind(mac(1));
    expect(send(request(mac(1), null, { serverId: null }))?.yiaddr).toBe(ip(10, 0, 2, 15));
    const ack = send(request(mac(2), null, { serverId: null }));
    expect(ack?.messageType).toBe(DhcpMessageType.ACK);
    expect(ack?.yiaddr).toBe(ip(10, 0, 2, 16));
  });

  it('pool exhaustion: the 17th client gets nothing, counted', () => {
    for (let i = 0; i < 16; i++) expect(bind(mac(i))).toBe(ip(10, 0, 2, 15 + i));
    expect(send(discover(mac(16)))).toBeNull();
    expect(send(request(mac(16), null, { serverId: null }))).toBeNull();
    expect(server.stats.dropPoolExhausted).toBe(2);
    // Naming a taken address still gets a NAK, as in libslirp.
    expect(send(request(mac(16), ip(10, 0, 2, 15)))?.messageType).toBe(DhcpMessageType.NAK);
    // Clients that have a lease are still served.
    expect(send(discover(mac(7)))?.yiaddr).toBe(ip(10, 0, 2, 22));
    expect(server.leases()).toHaveLength(16);
  });
});

describe('DhcpServer: lease expiry (nowMs only, no clock)', () => {
  it('frees the address leaseTimeS after the ACK, not a millisecond before', () => {
    bind(mac(1), T0);
    expect(send(request(mac(2), ip(10, 0, 2, 15)), T0 + LEASE_MS - 1)?.messageType).toBe(DhcpMessageType.NAK);
    expect(server.stats.leasesExpired).toBe(0);
    const ack = send(request(mac(2), ip(10, 0, 2, 15)), T0 + LEASE_MS);
    expect(ack?.messageType).toBe(DhcpMessageType.ACK);
    expect(server.stats.leasesExpired).toBe(1);
    expect(server.leases()).toEqual([{ mac: mac(2), ip: ip(10, 0, 2, 15), expiresMs: T0 + 2 * LEASE_MS }]);
  });

  it('leases(nowMs) leaves out leases that have run out', () => {
    bind(mac(1), T0);
    bind(mac(2), T0 + 1000);
    expect(server.leases(T0 + LEASE_MS).map((l) => l.mac)).toEqual([mac(2)]);
    expect(server.leases().map((l) => l.mac)).toEqual([mac(1), mac(2)]);
  });

  it('an expired pool takes new clients again', () => {
    for (let i = 0; i < 16; i++) bind(mac(i), T0);
    expect(send(discover(mac(99)), T0 + 1)).toBeNull();
    expect(send(discover(mac(99)), T0 + LEASE_MS)?.yiaddr).toBe(ip(10, 0, 2, 15));
    expect(server.stats.leasesExpired).toBe(16);
  });

  it('a client back after its lease expired gets an address again', () => {
    bind(mac(1), T0);
    expect(bind(mac(1), T0 + 3 * LEASE_MS)).toBe(ip(10, 0, 2, 15));
  });
});

describe('DhcpServer: BOOTP and ignored types', () => {
  it('no option 53 (BOOTP with the cookie) is answered as a REQUEST: ACK', () => {
    const ack = send(clientMsg({ chaddr: mac(1) }));
    expect(ack?.messageType).toBe(DhcpMessageType.ACK);
    expect(ack?.yiaddr).toBe(ip(10, 0, 2, 15));
    expect(server.stats.rxBootp).toBe(1);
    expect(server.stats.txAck).toBe(1);
  });

  it('RFC 951 BOOTP without the cookie is answered too', () => {
    const msg = clientMsg({ chaddr: mac(1) });
    msg.fill(0, 236); // vend: no cookie
    const ack = send(msg);
    expect(ack?.messageType).toBe(DhcpMessageType.ACK);
    expect(server.stats.rxBootp).toBe(1);
    // A 236-byte BOOTP header with no vendor area at all.
    expect(send(msg.subarray(0, 236))?.yiaddr).toBe(ip(10, 0, 2, 15));
  });

  it('BOOTP: ciaddr is not looked at (libslirp only reads it for option-53 REQUESTs)', () => {
    bind(mac(1));
    const ack = send(clientMsg({ chaddr: mac(2), ciaddr: ip(10, 0, 2, 15) }));
    expect(ack?.messageType).toBe(DhcpMessageType.ACK);
    expect(ack?.yiaddr).toBe(ip(10, 0, 2, 16));
  });

  it('DECLINE, RELEASE, INFORM and other types get no reply; RELEASE keeps the lease (libslirp)', () => {
    bind(mac(1));
    for (const t of [DhcpMessageType.DECLINE, DhcpMessageType.RELEASE, DhcpMessageType.INFORM, 9, 200]) {
      expect(send(clientMsg({ chaddr: mac(1), messageType: t, ciaddr: ip(10, 0, 2, 15) }))).toBeNull();
    }
    expect(send(clientMsg({ chaddr: mac(1), messageType: DhcpMessageType.ACK }))).toBeNull();
    const s = server.stats;
    expect([s.rxDecline, s.rxRelease, s.rxInform, s.rxOther, s.dropIgnoredType]).toEqual([1, 1, 1, 3, 6]);
    expect(server.leases().map((l) => l.mac)).toEqual([mac(1)]);
  });

  it('a BOOTREPLY (another server on the link) is dropped', () => {
    expect(send(clientMsg({ op: BootpOp.REPLY, chaddr: mac(1), messageType: DhcpMessageType.DISCOVER }))).toBeNull();
    expect(server.stats.dropNotRequest).toBe(1);
  });
});

describe('DhcpServer: malformed input is counted, never thrown', () => {
  it('drops by reason', () => {
    expect(send(UDHCPC_DISCOVER.subarray(0, 100))).toBeNull();
    expect(send(UDHCPC_DISCOVER.subarray(0, 280))).toBeNull(); // options cut before the end option
    const badOp = UDHCPC_DISCOVER.slice();
    badOp[0] = 7;
    expect(send(badOp)).toBeNull();
    const badHtype = UDHCPC_DISCOVER.slice();
    badHtype[1] = 32;
    expect(send(badHtype)).toBeNull();
    const badOption = UDHCPC_DISCOVER.slice();
    badOption[241] = 2; // option 53 with length 2
    expect(send(badOption)).toBeNull();
    const s = server.stats;
    expect([s.dropTruncated, s.dropBadOp, s.dropBadHtype, s.dropBadOption]).toEqual([2, 1, 1, 1]);
    expect(server.leases()).toEqual([]);
  });

  it('truncation sweep over the udhcpc DISCOVER: an OFFER only for the complete message', () => {
    for (let len = 0; len <= 300; len++) {
      const n = server.handle(UDHCPC_DISCOVER, 0, len, out, 0, T0);
      const type = n > 0 ? out[242] : 0;
      // 236..239 bytes hold a whole BOOTP header without the cookie: plain
      // BOOTP, answered with an ACK as libslirp does.
      const want = len >= 287 ? DhcpMessageType.OFFER : len >= 236 && len < 240 ? DhcpMessageType.ACK : 0;
      expect(type, `len ${len}`).toBe(want);
    }
  });

  it('random bytes never throw; every datagram lands in exactly one counter (property)', () => {
    let s = 0x1234567;
    const next = (): number => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return s >>> 0;
    };
    const buf = new Uint8Array(600);
    for (let i = 0; i < 5000; i++) {
      const len = next() % buf.length;
      for (let j = 0; j < len; j++) buf[j] = next() & 0xff;
      if (i % 3 !== 0 && len >= 240) buf.set(UDHCPC_DISCOVER.subarray(0, 240)); // reach the options
      if (i % 3 === 2 && len >= 243) buf.set([53, 1, 1 + (next() % 8)], 240);
      expect(() => server.handle(buf, 0, len, out, 0, T0 + i)).not.toThrow();
    }
    expect(rxTotal(server.stats)).toBe(5000);
  });
});

describe('DhcpServer: API misuse throws', () => {
  it('an output buffer without maxReplyLength bytes of room', () => {
    expect(server.maxReplyLength).toBe(300);
    expect(() => server.handle(UDHCPC_DISCOVER, 0, 300, new Uint8Array(299), 0, T0)).toThrow(RangeError);
    expect(() => server.handle(UDHCPC_DISCOVER, 0, 300, new Uint8Array(300), 1, T0)).toThrow(RangeError);
  });

  it('bad options', () => {
    expect(() => new DhcpServer({ ...OPTIONS, poolSize: 0 })).toThrow(RangeError);
    expect(() => new DhcpServer({ ...OPTIONS, poolStart: ip(10, 0, 2, 250) })).toThrow(RangeError);
    expect(() => new DhcpServer({ ...OPTIONS, leaseTimeS: 0 })).toThrow(RangeError);
    expect(() => new DhcpServer({ ...OPTIONS, mtu: 67 })).toThrow(RangeError);
  });
});
