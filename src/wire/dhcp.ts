/**
 * BOOTP / DHCPv4 messages (RFC 951, RFC 2131, options from RFC 2132): the
 * UDP payload only. The IPv4 and UDP headers around it belong to the caller.
 *
 * Layout (RFC 2131 §2, Figure 1), offsets from the start of the payload:
 *
 *     0  op    1  htype   2  hlen   3  hops
 *     4  xid (4)          8  secs (2)        10  flags (2, bit 15 = broadcast)
 *    12  ciaddr          16  yiaddr          20  siaddr          24  giaddr
 *    28  chaddr (16)     44  sname (64)     108  file (128)
 *   236  magic cookie 99.130.83.99 (RFC 2131 §3)
 *   240  options: code, length, data ... ; 0 = pad, 255 = end
 *
 * Everything before the cookie is plain BOOTP; a message with no cookie is an
 * RFC 951 BOOTP message, and a message with a cookie but no option 53 is BOOTP
 * with RFC 1048 vendor extensions. `check()` reports both (BAD_MAGIC,
 * NO_MESSAGE_TYPE) after validating everything else, so a caller that serves
 * plain BOOTP too, as libslirp does, can accept those codes and read the
 * header getters, which are in bounds whenever `check()` returned anything but
 * TRUNCATED, BAD_OP or BAD_HTYPE.
 *
 * Deliberate limits:
 * - only Ethernet (htype 1, hlen 6): anything else is BAD_HTYPE.
 * - the option list must end with option 255 (RFC 2132 §3.2). A list that runs
 *   into the end of the datagram is TRUNCATED. libslirp stops at the end of the
 *   buffer instead; every real client sends the end option.
 * - option overload (52, RFC 2132 §9.3) is ignored: sname and file are never
 *   scanned for options. A client only overloads when its options do not fit in
 *   576 bytes, and the options this stack reads are the first ones any client
 *   puts in.
 * - a repeated option: the first occurrence wins. RFC 3396 concatenation of
 *   split long options is not done; no option read here is long.
 *
 * The options known here have their lengths checked (BAD_OPTION otherwise);
 * unknown options are skipped by their length byte.
 */
import { readU32, writeU32 } from './bytes.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
export const DHCP_MAGIC_COOKIE = 0x6382_5363;
/** op .. file: the fixed BOOTP part (RFC 951). */
export const DHCP_FIXED_LEN = 236;
export const DHCP_OPTIONS_OFFSET = 240;
/**
 * Emitted messages are zero-padded to this size: RFC 951's vendor area is 64
 * octets (236 + 64), and RFC 1542 §2.1 asks for at least 300 octets of BOOTP.
 */
export const DHCP_MIN_LEN = 300;
/** RFC 2131 §2 bit 15 of `flags`: the client cannot receive unicast before it is configured. */
export const DHCP_FLAG_BROADCAST = 0x8000;

export const DhcpError = {
  OK: 0,
  /** Shorter than the 236-byte BOOTP header, or an option runs past the end / no end option. */
  TRUNCATED: 1,
  /** op is neither BOOTREQUEST (1) nor BOOTREPLY (2). */
  BAD_OP: 2,
  /** htype/hlen are not Ethernet (1/6). */
  BAD_HTYPE: 3,
  /** No 99.130.83.99 cookie: plain RFC 951 BOOTP (the header is still valid). */
  BAD_MAGIC: 4,
  /** A known option has a length its RFC forbids. */
  BAD_OPTION: 5,
  /** Well-formed, but no option 53: BOOTP with vendor extensions (the header is still valid). */
  NO_MESSAGE_TYPE: 6,
} as const;

export type DhcpErrorCode = (typeof DhcpError)[keyof typeof DhcpError];

/** Index = code; for logs and stats keys. */
export const dhcpErrorName: readonly string[] = [
  'ok',
  'truncated',
  'bad_op',
  'bad_htype',
  'bad_magic',
  'bad_option',
  'no_message_type',
];

export const BootpOp = { REQUEST: 1, REPLY: 2 } as const;

/** Option 53 values (RFC 2132 §9.6). */
export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

/** Option codes (RFC 2132 section in brackets). */
export const DhcpOption = {
  PAD: 0, // §3.1
  SUBNET_MASK: 1, // §3.3
  ROUTER: 3, // §3.5
  DNS: 6, // §3.8
  HOSTNAME: 12, // §3.14
  MTU: 26, // §5.1
  REQUESTED_IP: 50, // §9.1
  LEASE_TIME: 51, // §9.2
  OVERLOAD: 52, // §9.3
  MESSAGE_TYPE: 53, // §9.6
  SERVER_ID: 54, // §9.7
  PARAM_REQUEST_LIST: 55, // §9.8
  MESSAGE: 56, // §9.9
  CLIENT_ID: 61, // §9.14
  END: 255, // §3.2
} as const;

/**
 * A DHCP message as plain values. htype/hlen are not here: they are always
 * Ethernet (1/6). sname and file are always empty. An absent option is `null`
 * (or an empty `dns` list); `messageType` 0 means no option 53, which only
 * `emitDhcp` accepts (to build plain BOOTP in tests), never `parseDhcp`.
 */
export interface DhcpRepr {
  op: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** The client's MAC: the first 6 bytes of chaddr, as a 48-bit number. */
  chaddr: number;
  messageType: number;
  requestedIp: number | null;
  serverId: number | null;
  leaseTimeS: number | null;
  subnetMask: number | null;
  /** The first router of option 3; later ones are not kept. */
  router: number | null;
  dns: number[];
  mtu: number | null;
  clientId: Uint8Array | null;
  hostname: Uint8Array | null;
  paramRequestList: Uint8Array | null;
  message: Uint8Array | null;
}

export function newDhcpRepr(): DhcpRepr {
  return {
    op: BootpOp.REQUEST,
    hops: 0,
    xid: 0,
    secs: 0,
    flags: 0,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr: 0,
    messageType: 0,
    requestedIp: null,
    serverId: null,
    leaseTimeS: null,
    subnetMask: null,
    router: null,
    dns: [],
    mtu: null,
    clientId: null,
    hostname: null,
    paramRequestList: null,
    message: null,
  };
}

export class DhcpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /**
   * Points the view at a DHCP message (a UDP payload); the contents are not
   * validated (call `check`). A range outside `buf` is a caller bug: RangeError.
   */
  wrap(buf: Uint8Array, off: number, len: number): this {
    if (!(off >= 0 && len >= 0 && off + len <= buf.length)) throw new RangeError('DhcpView.wrap: range outside buffer');
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /**
   * Validates the header and walks the option list once. Returns the first
   * problem; BAD_MAGIC and NO_MESSAGE_TYPE are reported only when nothing
   * else is wrong (see the module comment).
   */
  check(): DhcpErrorCode {
    if (this.len < DHCP_FIXED_LEN) return DhcpError.TRUNCATED;
    const op = this.op;
    if (op !== BootpOp.REQUEST && op !== BootpOp.REPLY) return DhcpError.BAD_OP;
    if (this.htype !== 1 || this.hlen !== 6) return DhcpError.BAD_HTYPE;
    if (!this.hasMagic) return DhcpError.BAD_MAGIC;

    const buf = this.buf;
    const end = this.off + this.len;
    let p = this.off + DHCP_OPTIONS_OFFSET;
    let sawType = false;
    for (;;) {
      if (p >= end) return DhcpError.TRUNCATED;
      const code = buf[p];
      if (code === DhcpOption.PAD) {
        p++;
        continue;
      }
      if (code === DhcpOption.END) break;
      if (p + 2 > end) return DhcpError.TRUNCATED;
      const optLen = buf[p + 1];
      if (p + 2 + optLen > end) return DhcpError.TRUNCATED;
      if (!optionLengthValid(code, optLen)) return DhcpError.BAD_OPTION;
      if (code === DhcpOption.MESSAGE_TYPE) sawType = true;
      p += 2 + optLen;
    }
    return sawType ? DhcpError.OK : DhcpError.NO_MESSAGE_TYPE;
  }

  get op(): number {
    return this.buf[this.off];
  }
  set op(v: number) {
    this.buf[this.off] = v;
  }
  get htype(): number {
    return this.buf[this.off + 1];
  }
  set htype(v: number) {
    this.buf[this.off + 1] = v;
  }
  get hlen(): number {
    return this.buf[this.off + 2];
  }
  set hlen(v: number) {
    this.buf[this.off + 2] = v;
  }
  get hops(): number {
    return this.buf[this.off + 3];
  }
  set hops(v: number) {
    this.buf[this.off + 3] = v;
  }
  get xid(): number {
    return readU32(this.buf, this.off + 4);
  }
  set xid(v: number) {
    writeU32(this.buf, this.off + 4, v);
  }
  get secs(): number {
    return (this.buf[this.off + 8] << 8) | this.buf[this.off + 9];
  }
  set secs(v: number) {
    this.buf[this.off + 8] = (v >>> 8) & 0xff;
    this.buf[this.off + 9] = v & 0xff;
  }
  get flags(): number {
    return (this.buf[this.off + 10] << 8) | this.buf[this.off + 11];
  }
  set flags(v: number) {
    this.buf[this.off + 10] = (v >>> 8) & 0xff;
    this.buf[this.off + 11] = v & 0xff;
  }
  get broadcast(): boolean {
    return (this.flags & DHCP_FLAG_BROADCAST) !== 0;
  }
  get ciaddr(): number {
    return readU32(this.buf, this.off + 12);
  }
  set ciaddr(v: number) {
    writeU32(this.buf, this.off + 12, v);
  }
  get yiaddr(): number {
    return readU32(this.buf, this.off + 16);
  }
  set yiaddr(v: number) {
    writeU32(this.buf, this.off + 16, v);
  }
  get siaddr(): number {
    return readU32(this.buf, this.off + 20);
  }
  set siaddr(v: number) {
    writeU32(this.buf, this.off + 20, v);
  }
  get giaddr(): number {
    return readU32(this.buf, this.off + 24);
  }
  set giaddr(v: number) {
    writeU32(this.buf, this.off + 24, v);
  }
  /** The first 6 bytes of chaddr (hlen is 6 once `check` passed). */
  get chaddr(): number {
    const b = this.buf;
    const o = this.off + 28;
    return ((b[o] << 8) | b[o + 1]) * 0x1_0000_0000 + readU32(b, o + 2);
  }
  set chaddr(mac: number) {
    writeMac(this.buf, this.off + 28, mac);
  }
  get magic(): number {
    return this.len >= DHCP_OPTIONS_OFFSET ? readU32(this.buf, this.off + DHCP_FIXED_LEN) : 0;
  }
  get hasMagic(): boolean {
    return this.magic === DHCP_MAGIC_COOKIE;
  }

  /**
   * Offset (into `buf`) of the data of the first option `code`, or -1. Its
   * length is `buf[result - 1]`. Bounded by `len` on its own, but only
   * meaningful after `check` returned OK or NO_MESSAGE_TYPE.
   */
  findOption(code: number): number {
    if (!this.hasMagic) return -1;
    const buf = this.buf;
    const end = this.off + this.len;
    let p = this.off + DHCP_OPTIONS_OFFSET;
    while (p < end) {
      const c = buf[p];
      if (c === DhcpOption.PAD) {
        p++;
        continue;
      }
      if (c === DhcpOption.END || p + 2 > end) return -1;
      const optLen = buf[p + 1];
      if (p + 2 + optLen > end) return -1;
      if (c === code) return p + 2;
      p += 2 + optLen;
    }
    return -1;
  }

  /** Option 53, or 0 when absent. */
  get messageType(): number {
    const p = this.findOption(DhcpOption.MESSAGE_TYPE);
    return p < 0 || this.buf[p - 1] !== 1 ? 0 : this.buf[p];
  }

  /** Option 50, or 0 when absent (0.0.0.0 is never a valid request). */
  get requestedIp(): number {
    const p = this.findOption(DhcpOption.REQUESTED_IP);
    return p < 0 || this.buf[p - 1] !== 4 ? 0 : readU32(this.buf, p);
  }
}

/** RFC 2132 lengths of the options this module knows; others are free-form. */
function optionLengthValid(code: number, len: number): boolean {
  switch (code) {
    case DhcpOption.SUBNET_MASK:
    case DhcpOption.REQUESTED_IP:
    case DhcpOption.LEASE_TIME:
    case DhcpOption.SERVER_ID:
      return len === 4;
    case DhcpOption.ROUTER:
    case DhcpOption.DNS:
      return len >= 4 && len % 4 === 0;
    case DhcpOption.MTU:
      return len === 2;
    case DhcpOption.OVERLOAD:
    case DhcpOption.MESSAGE_TYPE:
      return len === 1;
    case DhcpOption.HOSTNAME:
    case DhcpOption.PARAM_REQUEST_LIST:
    case DhcpOption.MESSAGE:
      return len >= 1;
    case DhcpOption.CLIENT_ID:
      return len >= 2;
    default:
      return true;
  }
}

/**
 * Fills `repr` from a message that passes `check()` with OK; any other code is
 * returned unchanged and `repr` is left as it was. Byte-string options are
 * copied out of `view.buf`.
 */
export function parseDhcp(view: DhcpView, repr: DhcpRepr): DhcpErrorCode {
  const code = view.check();
  if (code !== DhcpError.OK) return code;
  repr.op = view.op;
  repr.hops = view.hops;
  repr.xid = view.xid;
  repr.secs = view.secs;
  repr.flags = view.flags;
  repr.ciaddr = view.ciaddr;
  repr.yiaddr = view.yiaddr;
  repr.siaddr = view.siaddr;
  repr.giaddr = view.giaddr;
  repr.chaddr = view.chaddr;
  repr.messageType = 0;
  repr.requestedIp = null;
  repr.serverId = null;
  repr.leaseTimeS = null;
  repr.subnetMask = null;
  repr.router = null;
  repr.dns = [];
  repr.mtu = null;
  repr.clientId = null;
  repr.hostname = null;
  repr.paramRequestList = null;
  repr.message = null;

  // check() has proven every option lies inside the datagram, with valid lengths.
  const buf = view.buf;
  let p = view.off + DHCP_OPTIONS_OFFSET;
  let seenType = false;
  let seenDns = false;
  for (;;) {
    const c = buf[p];
    if (c === DhcpOption.PAD) {
      p++;
      continue;
    }
    if (c === DhcpOption.END) break;
    const n = buf[p + 1];
    const d = p + 2;
    switch (c) {
      case DhcpOption.MESSAGE_TYPE:
        if (!seenType) repr.messageType = buf[d];
        seenType = true;
        break;
      case DhcpOption.REQUESTED_IP:
        repr.requestedIp ??= readU32(buf, d);
        break;
      case DhcpOption.SERVER_ID:
        repr.serverId ??= readU32(buf, d);
        break;
      case DhcpOption.LEASE_TIME:
        repr.leaseTimeS ??= readU32(buf, d);
        break;
      case DhcpOption.SUBNET_MASK:
        repr.subnetMask ??= readU32(buf, d);
        break;
      case DhcpOption.ROUTER:
        repr.router ??= readU32(buf, d);
        break;
      case DhcpOption.DNS:
        if (!seenDns) for (let i = 0; i < n; i += 4) repr.dns.push(readU32(buf, d + i));
        seenDns = true;
        break;
      case DhcpOption.MTU:
        repr.mtu ??= (buf[d] << 8) | buf[d + 1];
        break;
      case DhcpOption.CLIENT_ID:
        repr.clientId ??= buf.slice(d, d + n);
        break;
      case DhcpOption.HOSTNAME:
        repr.hostname ??= buf.slice(d, d + n);
        break;
      case DhcpOption.PARAM_REQUEST_LIST:
        repr.paramRequestList ??= buf.slice(d, d + n);
        break;
      case DhcpOption.MESSAGE:
        repr.message ??= buf.slice(d, d + n);
        break;
      default:
        break;
    }
    p = d + n;
  }
  return DhcpError.OK;
}

/** Bytes `emitDhcp` writes for `repr`, padding included. */
export function dhcpEmitLength(repr: DhcpRepr): number {
  let n = DHCP_OPTIONS_OFFSET + 1; // + end option
  if (repr.messageType !== 0) n += 3;
  if (repr.serverId !== null) n += 6;
  if (repr.subnetMask !== null) n += 6;
  if (repr.router !== null) n += 6;
  if (repr.dns.length > 0) n += 2 + 4 * repr.dns.length;
  if (repr.leaseTimeS !== null) n += 6;
  if (repr.mtu !== null) n += 4;
  if (repr.requestedIp !== null) n += 6;
  if (repr.clientId !== null) n += 2 + repr.clientId.length;
  if (repr.hostname !== null) n += 2 + repr.hostname.length;
  if (repr.paramRequestList !== null) n += 2 + repr.paramRequestList.length;
  if (repr.message !== null) n += 2 + repr.message.length;
  return n < DHCP_MIN_LEN ? DHCP_MIN_LEN : n;
}

/**
 * Writes the whole message at `off`, zero padding included; returns the bytes
 * written (`dhcpEmitLength(repr)`). htype/hlen are 1/6, sname and file are
 * zero. Options go out in the order of libslirp's replies (53, 54, 1, 3, 6,
 * 51), then 26, 50, 61, 12, 55, 56, then 255.
 * Throws RangeError when the buffer is too small or an option cannot be
 * encoded (caller bugs, not network input).
 */
export function emitDhcp(repr: DhcpRepr, buf: Uint8Array, off: number): number {
  const total = dhcpEmitLength(repr);
  if (off < 0 || off + total > buf.length) throw new RangeError('emitDhcp: buffer too small');
  if (repr.dns.length > 63) throw new RangeError('emitDhcp: more than 63 DNS servers');
  checkBytesOption(repr.clientId, 2, 'clientId');
  checkBytesOption(repr.hostname, 1, 'hostname');
  checkBytesOption(repr.paramRequestList, 1, 'paramRequestList');
  checkBytesOption(repr.message, 1, 'message');

  buf[off] = repr.op;
  buf[off + 1] = 1;
  buf[off + 2] = 6;
  buf[off + 3] = repr.hops;
  writeU32(buf, off + 4, repr.xid);
  buf[off + 8] = (repr.secs >>> 8) & 0xff;
  buf[off + 9] = repr.secs & 0xff;
  buf[off + 10] = (repr.flags >>> 8) & 0xff;
  buf[off + 11] = repr.flags & 0xff;
  writeU32(buf, off + 12, repr.ciaddr);
  writeU32(buf, off + 16, repr.yiaddr);
  writeU32(buf, off + 20, repr.siaddr);
  writeU32(buf, off + 24, repr.giaddr);
  writeMac(buf, off + 28, repr.chaddr);
  buf.fill(0, off + 34, off + DHCP_FIXED_LEN); // chaddr padding, sname, file
  writeU32(buf, off + DHCP_FIXED_LEN, DHCP_MAGIC_COOKIE);

  let p = off + DHCP_OPTIONS_OFFSET;
  if (repr.messageType !== 0) {
    buf[p] = DhcpOption.MESSAGE_TYPE;
    buf[p + 1] = 1;
    buf[p + 2] = repr.messageType;
    p += 3;
  }
  if (repr.serverId !== null) p = putU32Option(buf, p, DhcpOption.SERVER_ID, repr.serverId);
  if (repr.subnetMask !== null) p = putU32Option(buf, p, DhcpOption.SUBNET_MASK, repr.subnetMask);
  if (repr.router !== null) p = putU32Option(buf, p, DhcpOption.ROUTER, repr.router);
  if (repr.dns.length > 0) {
    buf[p] = DhcpOption.DNS;
    buf[p + 1] = 4 * repr.dns.length;
    p += 2;
    for (const addr of repr.dns) {
      writeU32(buf, p, addr);
      p += 4;
    }
  }
  if (repr.leaseTimeS !== null) p = putU32Option(buf, p, DhcpOption.LEASE_TIME, repr.leaseTimeS);
  if (repr.mtu !== null) {
    buf[p] = DhcpOption.MTU;
    buf[p + 1] = 2;
    buf[p + 2] = (repr.mtu >>> 8) & 0xff;
    buf[p + 3] = repr.mtu & 0xff;
    p += 4;
  }
  if (repr.requestedIp !== null) p = putU32Option(buf, p, DhcpOption.REQUESTED_IP, repr.requestedIp);
  if (repr.clientId !== null) p = putBytesOption(buf, p, DhcpOption.CLIENT_ID, repr.clientId);
  if (repr.hostname !== null) p = putBytesOption(buf, p, DhcpOption.HOSTNAME, repr.hostname);
  if (repr.paramRequestList !== null) {
    p = putBytesOption(buf, p, DhcpOption.PARAM_REQUEST_LIST, repr.paramRequestList);
  }
  if (repr.message !== null) p = putBytesOption(buf, p, DhcpOption.MESSAGE, repr.message);
  buf[p++] = DhcpOption.END;
  buf.fill(0, p, off + total);
  return total;
}

function checkBytesOption(v: Uint8Array | null, minLen: number, name: string): void {
  if (v !== null && (v.length < minLen || v.length > 255)) {
    throw new RangeError(`emitDhcp: ${name} must be ${minLen}..255 bytes`);
  }
}

function putU32Option(buf: Uint8Array, p: number, code: number, v: number): number {
  buf[p] = code;
  buf[p + 1] = 4;
  writeU32(buf, p + 2, v);
  return p + 6;
}

function putBytesOption(buf: Uint8Array, p: number, code: number, v: Uint8Array): number {
  buf[p] = code;
  buf[p + 1] = v.length;
  buf.set(v, p + 2);
  return p + 2 + v.length;
}

// Local copies of the MAC codec (wire/ethernet.ts has the shared ones): this
// module stays self-contained while the other wire files are being written.
function writeMac(buf: Uint8Array, off: number, mac: number): void {
  const hi = Math.floor(mac / 0x1_0000_0000);
  buf[off] = (hi >>> 8) & 0xff;
  buf[off + 1] = hi & 0xff;
  writeU32(buf, off + 2, mac >>> 0);
}

const EMPTY = new Uint8Array(0);
