import { describe, expect, it } from 'vitest';
import {
  BootpOp,
  DHCP_FIXED_LEN,
  DHCP_MAGIC_COOKIE,
  DHCP_MIN_LEN,
  DhcpError,
  DhcpMessageType,
  DhcpOption,
  DhcpView,
  dhcpEmitLength,
  dhcpErrorName,
  emitDhcp,
  newDhcpRepr,
  parseDhcp,
  type DhcpRepr,
} from '../../src/wire/dhcp.js';

// ---------------------------------------------------------------------------
// Golden messages (UDP payloads), captured with tshark on a veth pair inside a
// throwaway network namespace: busybox 1.35.0 `udhcpc -f -i vc -x hostname:guest`
// (client MAC 02:00:00:00:00:0c) against busybox udhcpd (10.0.2.2, pool
// 10.0.2.15). Every capture is 300 bytes; below, the 44 bytes op..chaddr and the
// options after the cookie are given in hex, and `capture()` restores the zero
// bytes (rest of chaddr, sname, file, trailing padding). The result is
// byte-identical to the capture.
// ---------------------------------------------------------------------------

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function capture(headerHex: string, optionsHex: string): Uint8Array {
  const out = new Uint8Array(300);
  out.set(hex(headerHex), 0);
  out.set([0x63, 0x82, 0x53, 0x63], DHCP_FIXED_LEN);
  out.set(hex(optionsHex), 240);
  return out;
}

/** udhcpc DHCPDISCOVER, frame 1. */
const UDHCPC_DISCOVER = capture(
  '01010600 37706403 0000 0000 00000000 00000000 00000000 00000000 02000000000c 00000000',
  // 53=1, 57=576, 55=[1,3,6,12,15,28,42], 12="guest", 60="udhcp 1.35.0", 61=01:02:00:00:00:00:0c, end
  '350101 39020240 3707 0103060c0f1c2a 0c05 6775657374 3c0c 756468637020312e33352e30 3d07 0102000000000c ff',
);
const UDHCPC_DISCOVER_END = 286; // offset of option 255

/** udhcpc DHCPREQUEST in SELECTING state, frame 4 (secs = 2). */
const UDHCPC_REQUEST = capture(
  '01010600 37706403 0002 0000 00000000 00000000 00000000 00000000 02000000000c 00000000',
  // 53=3, 50=10.0.2.15, 54=10.0.2.2, then as in the DISCOVER
  '350103 3204 0a00020f 3604 0a000202 39020240 3707 0103060c0f1c2a 0c05 6775657374 3c0c 756468637020312e33352e30 3d07 0102000000000c ff',
);

/** udhcpc DHCPREQUEST broadcast while renewing (after SIGUSR1): ciaddr = 10.0.2.15, no option 50/54. Frame 7. */
const UDHCPC_RENEW = capture(
  '01010600 37706403 0002 0000 0a00020f 00000000 00000000 00000000 02000000000c 00000000',
  '350103 39020240 3707 0103060c0f1c2a 0c05 6775657374 3c0c 756468637020312e33352e30 3d07 0102000000000c ff',
);

/** busybox udhcpd DHCPACK for the REQUEST above, frame 6. */
const UDHCPD_ACK = capture(
  '02010600 37706403 0000 0000 00000000 0a00020f 00000000 00000000 02000000000c 00000000',
  // 53=5, 54=10.0.2.2, 51=86400, 1=255.255.255.0, 3=10.0.2.2, 6=10.0.2.3, end
  '350105 3604 0a000202 3304 00015180 0104 ffffff00 0304 0a000202 0604 0a000203 ff',
);

const MAC = 0x02_00_00_00_00_0c;
const ip = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

function view(bytes: Uint8Array, len = bytes.length, off = 0): DhcpView {
  return new DhcpView().wrap(bytes, off, len);
}

function parsed(bytes: Uint8Array): DhcpRepr {
  const repr = newDhcpRepr();
  expect(parseDhcp(view(bytes), repr)).toBe(DhcpError.OK);
  return repr;
}

/** xorshift32: deterministic "random" for property tests. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

describe('DhcpView: golden udhcpc DISCOVER', () => {
  it('reads the header fields', () => {
    const v = view(UDHCPC_DISCOVER);
    expect(v.check()).toBe(DhcpError.OK);
    expect(v.op).toBe(BootpOp.REQUEST);
    expect(v.htype).toBe(1);
    expect(v.hlen).toBe(6);
    expect(v.hops).toBe(0);
    expect(v.xid).toBe(0x37706403);
    expect(v.secs).toBe(0);
    expect(v.flags).toBe(0);
    expect(v.broadcast).toBe(false);
    expect(v.ciaddr).toBe(0);
    expect(v.yiaddr).toBe(0);
    expect(v.siaddr).toBe(0);
    expect(v.giaddr).toBe(0);
    expect(v.chaddr).toBe(MAC);
    expect(v.magic).toBe(DHCP_MAGIC_COOKIE);
    expect(v.messageType).toBe(DhcpMessageType.DISCOVER);
    expect(v.requestedIp).toBe(0);
  });

  it('finds options by code, skipping unknown ones (57, 60)', () => {
    const v = view(UDHCPC_DISCOVER);
    const p = v.findOption(DhcpOption.HOSTNAME);
    expect(p).toBeGreaterThan(0);
    expect(UDHCPC_DISCOVER[p - 1]).toBe(5);
    expect(UDHCPC_DISCOVER.slice(p, p + 5)).toEqual(ascii('guest'));
    expect(v.findOption(60)).toBeGreaterThan(0);
    expect(v.findOption(DhcpOption.SERVER_ID)).toBe(-1);
  });

  it('parses into a repr', () => {
    expect(parsed(UDHCPC_DISCOVER)).toEqual({
      op: 1,
      hops: 0,
      xid: 0x37706403,
      secs: 0,
      flags: 0,
      ciaddr: 0,
      yiaddr: 0,
      siaddr: 0,
      giaddr: 0,
      chaddr: MAC,
      messageType: DhcpMessageType.DISCOVER,
      requestedIp: null,
      serverId: null,
      leaseTimeS: null,
      subnetMask: null,
      router: null,
      dns: [],
      mtu: null,
      clientId: hex('0102000000000c'),
      hostname: ascii('guest'),
      paramRequestList: Uint8Array.from([1, 3, 6, 12, 15, 28, 42]),
      message: null,
    } satisfies DhcpRepr);
  });

  it('ignores bytes past len and reads at an offset', () => {
    const big = new Uint8Array(400).fill(0xa5);
    big.set(UDHCPC_DISCOVER, 50);
    const repr = newDhcpRepr();
    expect(parseDhcp(view(big, 300, 50), repr)).toBe(DhcpError.OK);
    expect(repr).toEqual(parsed(UDHCPC_DISCOVER));
  });
});

describe('DhcpView: other golden messages', () => {
  it('udhcpc REQUEST (SELECTING): requested IP and server id', () => {
    const r = parsed(UDHCPC_REQUEST);
    expect(r.messageType).toBe(DhcpMessageType.REQUEST);
    expect(r.secs).toBe(2);
    expect(r.requestedIp).toBe(ip(10, 0, 2, 15));
    expect(r.serverId).toBe(ip(10, 0, 2, 2));
    expect(view(UDHCPC_REQUEST).requestedIp).toBe(ip(10, 0, 2, 15));
  });

  it('udhcpc renewing REQUEST: ciaddr, no option 50', () => {
    const r = parsed(UDHCPC_RENEW);
    expect(r.ciaddr).toBe(ip(10, 0, 2, 15));
    expect(r.requestedIp).toBeNull();
    expect(r.serverId).toBeNull();
  });

  it('udhcpd ACK: the options a server sends', () => {
    const r = parsed(UDHCPD_ACK);
    expect(r.op).toBe(BootpOp.REPLY);
    expect(r.messageType).toBe(DhcpMessageType.ACK);
    expect(r.yiaddr).toBe(ip(10, 0, 2, 15));
    expect(r.serverId).toBe(ip(10, 0, 2, 2));
    expect(r.leaseTimeS).toBe(86400);
    expect(r.subnetMask).toBe(ip(255, 255, 255, 0));
    expect(r.router).toBe(ip(10, 0, 2, 2));
    expect(r.dns).toEqual([ip(10, 0, 2, 3)]);
  });
});

describe('emitDhcp', () => {
  /** A libslirp-style OFFER plus option 26, laid out by hand from RFC 2131/2132. */
  const OFFER: DhcpRepr = {
    ...newDhcpRepr(),
    op: BootpOp.REPLY,
    xid: 0x37706403,
    yiaddr: ip(10, 0, 2, 15),
    siaddr: ip(10, 0, 2, 2),
    chaddr: MAC,
    messageType: DhcpMessageType.OFFER,
    serverId: ip(10, 0, 2, 2),
    subnetMask: ip(255, 255, 255, 0),
    router: ip(10, 0, 2, 2),
    dns: [ip(10, 0, 2, 3)],
    leaseTimeS: 86400,
    mtu: 1500,
  };
  const OFFER_BYTES = capture(
    '02010600 37706403 0000 0000 00000000 0a00020f 0a000202 00000000 02000000000c 00000000',
    '350102 3604 0a000202 0104 ffffff00 0304 0a000202 0604 0a000203 3304 00015180 1a02 05dc ff',
  );

  it('writes every byte at an offset into a 0xa5-filled buffer', () => {
    const buf = new Uint8Array(320).fill(0xa5);
    const n = emitDhcp(OFFER, buf, 7);
    expect(n).toBe(300);
    expect(n).toBe(dhcpEmitLength(OFFER));
    expect(buf.slice(7, 7 + n)).toEqual(OFFER_BYTES);
    expect(buf.slice(0, 7).every((b) => b === 0xa5)).toBe(true);
    expect(buf.slice(7 + n).every((b) => b === 0xa5)).toBe(true);
  });

  it('pads short messages to 300 bytes and grows past it without padding', () => {
    const small = { ...newDhcpRepr(), messageType: DhcpMessageType.DISCOVER };
    expect(dhcpEmitLength(small)).toBe(DHCP_MIN_LEN);
    const big = { ...small, hostname: new Uint8Array(255).fill(0x61), message: new Uint8Array(100).fill(0x62) };
    expect(dhcpEmitLength(big)).toBe(240 + 3 + 257 + 102 + 1);
    const buf = new Uint8Array(700).fill(0xa5);
    const n = emitDhcp(big, buf, 0);
    expect(n).toBe(603);
    expect(buf[602]).toBe(DhcpOption.END);
    expect(buf[603]).toBe(0xa5);
    expect(parsed(buf.subarray(0, n))).toEqual(big);
  });

  it('emits plain BOOTP (no option 53) when messageType is 0', () => {
    const buf = new Uint8Array(300).fill(0xa5);
    emitDhcp({ ...newDhcpRepr(), chaddr: MAC }, buf, 0);
    expect(view(buf).check()).toBe(DhcpError.NO_MESSAGE_TYPE);
    expect(buf[240]).toBe(DhcpOption.END);
  });

  it('throws RangeError on caller bugs, not silently truncating', () => {
    expect(() => emitDhcp(OFFER, new Uint8Array(299), 0)).toThrow(RangeError);
    expect(() => emitDhcp(OFFER, new Uint8Array(300), 1)).toThrow(RangeError);
    expect(() => emitDhcp({ ...OFFER, hostname: new Uint8Array(256) }, new Uint8Array(600), 0)).toThrow(RangeError);
    expect(() => emitDhcp({ ...OFFER, clientId: new Uint8Array(1) }, new Uint8Array(600), 0)).toThrow(RangeError);
    expect(() => emitDhcp({ ...OFFER, dns: new Array<number>(64).fill(1) }, new Uint8Array(600), 0)).toThrow(
      RangeError,
    );
  });

  it('wrap() rejects a range outside the buffer (a caller bug, not input)', () => {
    expect(() => new DhcpView().wrap(new Uint8Array(10), 5, 6)).toThrow(RangeError);
    expect(() => new DhcpView().wrap(new Uint8Array(10), -1, 2)).toThrow(RangeError);
    expect(new DhcpView().wrap(new Uint8Array(10), 5, 5).check()).toBe(DhcpError.TRUNCATED);
  });

  it('view setters write the header in place', () => {
    const buf = new Uint8Array(300).fill(0xa5);
    const v = view(buf);
    v.op = 2;
    v.htype = 1;
    v.hlen = 6;
    v.hops = 3;
    v.xid = 0xdeadbeef;
    v.secs = 0x1234;
    v.flags = 0x8000;
    v.ciaddr = ip(1, 2, 3, 4);
    v.yiaddr = ip(255, 255, 255, 255);
    v.siaddr = ip(10, 0, 2, 2);
    v.giaddr = ip(192, 168, 0, 1);
    v.chaddr = 0xfe_dc_ba_98_76_54;
    expect([v.op, v.htype, v.hlen, v.hops, v.xid, v.secs, v.flags, v.broadcast]).toEqual([
      2, 1, 6, 3, 0xdeadbeef, 0x1234, 0x8000, true,
    ]);
    expect([v.ciaddr, v.yiaddr, v.siaddr, v.giaddr, v.chaddr]).toEqual([
      ip(1, 2, 3, 4),
      ip(255, 255, 255, 255),
      ip(10, 0, 2, 2),
      ip(192, 168, 0, 1),
      0xfe_dc_ba_98_76_54,
    ]);
    expect(buf[34]).toBe(0xa5); // setters touch only their own bytes
  });
});

describe('round trip parse(emit(r)) == r', () => {
  const next = rng(0xd4c9);
  const u32 = (): number => next();
  const bytes = (min: number, max: number): Uint8Array => {
    const n = min + (next() % (max - min + 1));
    return Uint8Array.from({ length: n }, () => next() & 0xff);
  };
  const maybe = <T>(f: () => T): T | null => (next() & 1 ? f() : null);

  it('holds for 2000 random reprs', () => {
    const buf = new Uint8Array(2048);
    for (let i = 0; i < 2000; i++) {
      const r: DhcpRepr = {
        op: next() & 1 ? BootpOp.REQUEST : BootpOp.REPLY,
        hops: next() & 0xff,
        xid: u32(),
        secs: next() & 0xffff,
        flags: next() & 0xffff,
        ciaddr: u32(),
        yiaddr: u32(),
        siaddr: u32(),
        giaddr: u32(),
        chaddr: (next() & 0xffff) * 0x1_0000_0000 + u32(),
        messageType: 1 + (next() % 255),
        requestedIp: maybe(u32),
        serverId: maybe(u32),
        leaseTimeS: maybe(u32),
        subnetMask: maybe(u32),
        router: maybe(u32),
        dns: Array.from({ length: next() % 5 }, u32),
        mtu: maybe(() => next() & 0xffff),
        clientId: maybe(() => bytes(2, 40)),
        hostname: maybe(() => bytes(1, 255)),
        paramRequestList: maybe(() => bytes(1, 30)),
        message: maybe(() => bytes(1, 255)),
      };
      buf.fill(0xa5);
      const n = emitDhcp(r, buf, 3);
      const back = newDhcpRepr();
      expect(parseDhcp(new DhcpView().wrap(buf, 3, n), back)).toBe(DhcpError.OK);
      expect(back).toEqual(r);
    }
  });
});

describe('malformed input returns a code', () => {
  const mutate = (f: (b: Uint8Array) => void, from = UDHCPC_DISCOVER): Uint8Array => {
    const b = from.slice();
    f(b);
    return b;
  };

  it('truncation sweep: every length of the DISCOVER', () => {
    for (let len = 0; len <= UDHCPC_DISCOVER.length; len++) {
      const v = view(UDHCPC_DISCOVER, len);
      const repr = newDhcpRepr();
      const code = parseDhcp(v, repr);
      let want: number;
      if (len < DHCP_FIXED_LEN) want = DhcpError.TRUNCATED;
      else if (len < 240) want = DhcpError.BAD_MAGIC;
      else if (len <= UDHCPC_DISCOVER_END) want = DhcpError.TRUNCATED;
      else want = DhcpError.OK;
      expect(code, `len ${len}`).toBe(want);
      expect(v.check()).toBe(code);
      // Option lookups stay in bounds on any prefix.
      expect(() => [v.messageType, v.requestedIp, v.findOption(61)]).not.toThrow();
    }
  });

  it('truncation sweep: every length of the REQUEST and the ACK', () => {
    for (const msg of [UDHCPC_REQUEST, UDHCPD_ACK]) {
      const end = msg.lastIndexOf(0xff);
      for (let len = 0; len <= msg.length; len++) {
        const code = parseDhcp(view(msg, len), newDhcpRepr());
        expect(code === DhcpError.OK, `len ${len}`).toBe(len > end);
      }
    }
  });

  it('BAD_OP, BAD_HTYPE, BAD_MAGIC, BAD_OPTION, NO_MESSAGE_TYPE', () => {
    expect(view(mutate((b) => (b[0] = 3))).check()).toBe(DhcpError.BAD_OP);
    expect(view(mutate((b) => (b[0] = 0))).check()).toBe(DhcpError.BAD_OP);
    expect(view(mutate((b) => (b[1] = 6))).check()).toBe(DhcpError.BAD_HTYPE);
    expect(view(mutate((b) => (b[2] = 16))).check()).toBe(DhcpError.BAD_HTYPE);
    expect(view(mutate((b) => (b[239] = 0x64))).check()).toBe(DhcpError.BAD_MAGIC);
    // option 53 with length 2
    expect(view(mutate((b) => b.set([0x35, 0x02, 0x01], 240))).check()).toBe(DhcpError.BAD_OPTION);
    // option 53 replaced by 3 pads
    const noType = mutate((b) => b.set([0, 0, 0], 240));
    expect(view(noType).check()).toBe(DhcpError.NO_MESSAGE_TYPE);
    expect(view(noType).messageType).toBe(0);
    expect(parseDhcp(view(noType), newDhcpRepr())).toBe(DhcpError.NO_MESSAGE_TYPE);
    // the header is still readable for a BOOTP-tolerant caller
    expect(view(noType).chaddr).toBe(MAC);
    expect(dhcpErrorName[DhcpError.NO_MESSAGE_TYPE]).toBe('no_message_type');
  });

  it('known options with RFC-invalid lengths are BAD_OPTION', () => {
    const withOption = (opt: number[]): Uint8Array => {
      const b = new Uint8Array(300);
      b.set(UDHCPC_DISCOVER.subarray(0, 243));
      b.set([...opt, 0xff], 243);
      return b;
    };
    const bad = [
      [1, 3, 0, 0, 0],
      [3, 0],
      [3, 6, 0, 0, 0, 0, 0, 0],
      [6, 5, 0, 0, 0, 0, 0],
      [12, 0],
      [26, 1, 0],
      [50, 0],
      [51, 8, 0, 0, 0, 0, 0, 0, 0, 0],
      [52, 2, 0, 0],
      [54, 3, 0, 0, 0],
      [55, 0],
      [56, 0],
      [61, 1, 1],
    ];
    for (const opt of bad) expect(view(withOption(opt)).check(), `option ${opt[0]}`).toBe(DhcpError.BAD_OPTION);
    expect(view(withOption([6, 8, 1, 1, 1, 1, 8, 8, 8, 8])).check()).toBe(DhcpError.OK);
    expect(view(withOption([200, 0])).check()).toBe(DhcpError.OK); // unknown option, any length
  });

  it('the first occurrence of a repeated option wins', () => {
    const b = new Uint8Array(300);
    b.set(UDHCPC_DISCOVER.subarray(0, 240));
    b.set([53, 1, 3, 53, 1, 1, 50, 4, 10, 0, 2, 20, 50, 4, 10, 0, 2, 21, 6, 4, 1, 1, 1, 1, 6, 4, 2, 2, 2, 2, 255], 240);
    const r = parsed(b);
    expect(r.messageType).toBe(DhcpMessageType.REQUEST);
    expect(r.requestedIp).toBe(ip(10, 0, 2, 20));
    expect(r.dns).toEqual([ip(1, 1, 1, 1)]);
    expect(view(b).messageType).toBe(DhcpMessageType.REQUEST);
    expect(view(b).requestedIp).toBe(ip(10, 0, 2, 20));
  });

  it('random bytes never throw (property)', () => {
    const next = rng(0x5eed);
    const buf = new Uint8Array(700);
    const v = new DhcpView();
    const repr = newDhcpRepr();
    for (let i = 0; i < 20000; i++) {
      const len = next() % buf.length;
      for (let j = 0; j < len; j++) buf[j] = next() & 0xff;
      // Half the time make the header plausible so the option walker is reached.
      if (i & 1 && len >= 240) {
        buf.set(UDHCPC_DISCOVER.subarray(0, 240));
      }
      v.wrap(buf, 0, len);
      const code = parseDhcp(v, repr);
      expect(code).toBeGreaterThanOrEqual(0);
      expect(code).toBeLessThan(dhcpErrorName.length);
      expect(() => [v.messageType, v.requestedIp, v.findOption(next() & 0xff)]).not.toThrow();
    }
  });

  it('bit flips of the golden messages never throw (property)', () => {
    const next = rng(0xf11b);
    const goldens = [UDHCPC_DISCOVER, UDHCPC_REQUEST, UDHCPD_ACK];
    for (let i = 0; i < 20000; i++) {
      const b = goldens[i % 3].slice();
      const flips = 1 + (next() % 4);
      for (let k = 0; k < flips; k++) b[236 + (next() % 64)] ^= 1 << (next() & 7);
      const len = next() & 1 ? b.length : 236 + (next() % 64);
      const code = parseDhcp(view(b, len), newDhcpRepr());
      expect(dhcpErrorName[code]).toBeDefined();
    }
  });
});
