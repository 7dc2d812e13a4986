/**
 * DHCPv6 messages (RFC 8415): the UDP payload only. The IPv6 and UDP headers
 * around it belong to the caller (client port 546, server port 547).
 *
 *   0               1               2               3
 *   +---------------+-----------------------------------------------+
 *   |   msg-type    |              transaction-id (3)               |
 *   +---------------+-----------------------------------------------+
 *   |  options: option-code (2) | option-len (2) | option-data ...   |
 *
 * (RFC 8415 §8, §21.1.) Relay-forward and Relay-reply have another header
 * (§9) and are not handled: `check()` says UNSUPPORTED.
 *
 * `check()` walks the options once, within bounds: an option header or data
 * running past the end makes the message TRUNCATED (malformed as a whole;
 * nothing after it can be read). The options this module reads have their
 * lengths checked (BAD_OPTIONS otherwise): a DUID is 2 + 1..128 bytes
 * (§11.1), an ORO holds 2-byte codes (§21.7), Elapsed Time is 2 bytes (§21.9),
 * Rapid Commit empty (§21.14), an IA_NA or IA_PD at least 12 and an IA_TA at
 * least 4 bytes (§21.4, §21.5, §21.21), a Status Code at least 2 (§21.13),
 * DNS Servers a multiple of 16 (RFC 3646 §3), a Domain List uncompressed names
 * (RFC 3646 §4, RFC 8415 §10). Other options are skipped by their length. A
 * repeated option: the first one counts (§21: each option may appear only
 * once unless said otherwise).
 *
 * What check() found is kept in the view (offsets into `buf`, -1 when absent)
 * so that the getters cost nothing and nothing is allocated per message.
 */
import { readU16, readU32, writeU16, writeU32 } from './bytes.js';
import { skipUncompressedDnsName } from './dns.js';
import { Wire, type WireCode } from './errors.js';
import { writeMac } from './ethernet.js';

export const DHCPV6_CLIENT_PORT = 546;
export const DHCPV6_SERVER_PORT = 547;
export const DHCPV6_HEADER_LEN = 4;
export const DHCPV6_OPTION_HEADER_LEN = 4;
/** RFC 8415 §11.1: a 2-byte type and 1..128 bytes of identifier. */
export const DUID_MIN_LEN = 3;
export const DUID_MAX_LEN = 130;
/** DUID-LL with an Ethernet address: type, hardware type, MAC (§11.4). */
export const DUID_LL_ETHERNET_LEN = 10;

/** msg-type values (RFC 8415 §7.3). */
export const Dhcpv6MessageType = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;

/** Option codes (RFC 8415 §21, RFC 3646 for 23 and 24). */
export const Dhcpv6Option = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IA_TA: 4,
  IAADDR: 5,
  ORO: 6,
  PREFERENCE: 7,
  ELAPSED_TIME: 8,
  RELAY_MSG: 9,
  AUTH: 11,
  UNICAST: 12,
  STATUS_CODE: 13,
  RAPID_COMMIT: 14,
  USER_CLASS: 15,
  VENDOR_CLASS: 16,
  VENDOR_OPTS: 17,
  INTERFACE_ID: 18,
  RECONF_MSG: 19,
  RECONF_ACCEPT: 20,
  DNS_SERVERS: 23,
  DOMAIN_LIST: 24,
  IA_PD: 25,
  IAPREFIX: 26,
  INFORMATION_REFRESH_TIME: 32,
  SOL_MAX_RT: 82,
  INF_MAX_RT: 83,
} as const;

/** Status codes (RFC 8415 §21.13). */
export const Dhcpv6Status = {
  SUCCESS: 0,
  UNSPEC_FAIL: 1,
  NO_ADDRS_AVAIL: 2,
  NO_BINDING: 3,
  NOT_ON_LINK: 4,
  USE_MULTICAST: 5,
  NO_PREFIX_AVAIL: 6,
} as const;

/** DUID types (RFC 8415 §11.1, RFC 6355). */
export const DuidType = { LLT: 1, EN: 2, LL: 3, UUID: 4 } as const;
/** Hardware type of Ethernet (IANA ARP parameters), as DUID-LL/LLT carry it. */
export const DUID_HW_ETHERNET = 1;

export class Dhcpv6View {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  private clientIdAt = -1;
  private serverIdAt = -1;
  private oroAt = -1;
  private elapsedAt = -1;
  private rapidCommitAt = -1;
  private statusAt = -1;
  private dnsAt = -1;
  private domainsAt = -1;
  private refreshAt = -1;
  private iaNa = 0;
  private iaTa = 0;
  private iaPd = 0;

  /** Points the view at a DHCPv6 message (a UDP payload); no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Validates the header and every option (see the module comment), and notes where each known option is. */
  check(): WireCode {
    this.clientIdAt = this.serverIdAt = this.oroAt = this.elapsedAt = this.rapidCommitAt = -1;
    this.statusAt = this.dnsAt = this.domainsAt = this.refreshAt = -1;
    this.iaNa = this.iaTa = this.iaPd = 0;
    if (this.len < DHCPV6_HEADER_LEN) return Wire.TRUNCATED;
    const buf = this.buf;
    const type = buf[this.off];
    if (type === Dhcpv6MessageType.RELAY_FORW || type === Dhcpv6MessageType.RELAY_REPL) return Wire.UNSUPPORTED;
    const end = this.off + this.len;
    for (let p = this.off + DHCPV6_HEADER_LEN; p < end; ) {
      if (p + DHCPV6_OPTION_HEADER_LEN > end) return Wire.TRUNCATED;
      const code = readU16(buf, p);
      const n = readU16(buf, p + 2);
      const d = p + DHCPV6_OPTION_HEADER_LEN;
      if (d + n > end) return Wire.TRUNCATED;
      switch (code) {
        case Dhcpv6Option.CLIENTID:
          if (n < DUID_MIN_LEN || n > DUID_MAX_LEN) return Wire.BAD_OPTIONS;
          if (this.clientIdAt < 0) this.clientIdAt = p;
          break;
        case Dhcpv6Option.SERVERID:
          if (n < DUID_MIN_LEN || n > DUID_MAX_LEN) return Wire.BAD_OPTIONS;
          if (this.serverIdAt < 0) this.serverIdAt = p;
          break;
        case Dhcpv6Option.ORO:
          if ((n & 1) !== 0) return Wire.BAD_OPTIONS;
          if (this.oroAt < 0) this.oroAt = p;
          break;
        case Dhcpv6Option.ELAPSED_TIME:
          if (n !== 2) return Wire.BAD_OPTIONS;
          if (this.elapsedAt < 0) this.elapsedAt = p;
          break;
        case Dhcpv6Option.RAPID_COMMIT:
          if (n !== 0) return Wire.BAD_OPTIONS;
          if (this.rapidCommitAt < 0) this.rapidCommitAt = p;
          break;
        case Dhcpv6Option.IA_NA:
        case Dhcpv6Option.IA_PD:
          if (n < 12) return Wire.BAD_OPTIONS;
          if (code === Dhcpv6Option.IA_NA) this.iaNa++;
          else this.iaPd++;
          break;
        case Dhcpv6Option.IA_TA:
          if (n < 4) return Wire.BAD_OPTIONS;
          this.iaTa++;
          break;
        case Dhcpv6Option.STATUS_CODE:
          if (n < 2) return Wire.BAD_OPTIONS;
          if (this.statusAt < 0) this.statusAt = p;
          break;
        case Dhcpv6Option.DNS_SERVERS:
          if (n % 16 !== 0) return Wire.BAD_OPTIONS;
          if (this.dnsAt < 0) this.dnsAt = p;
          break;
        case Dhcpv6Option.DOMAIN_LIST:
          for (let q = d; q < d + n; ) {
            q = skipUncompressedDnsName(buf, q, d + n);
            if (q < 0) return Wire.BAD_OPTIONS;
          }
          if (this.domainsAt < 0) this.domainsAt = p;
          break;
        case Dhcpv6Option.INFORMATION_REFRESH_TIME:
          if (n !== 4) return Wire.BAD_OPTIONS;
          if (this.refreshAt < 0) this.refreshAt = p;
          break;
        default:
          break;
      }
      p = d + n;
    }
    return Wire.OK;
  }

  get msgType(): number {
    return this.buf[this.off];
  }
  get transactionId(): number {
    const b = this.buf;
    const o = this.off;
    return (b[o + 1] << 16) | readU16(b, o + 2);
  }
  get optionsOffset(): number {
    return this.off + DHCPV6_HEADER_LEN;
  }
  /** Offset of the first option, -1 when there is none; walk on with `nextOption`. */
  get firstOptionOffset(): number {
    return this.len > DHCPV6_HEADER_LEN ? this.off + DHCPV6_HEADER_LEN : -1;
  }
  /** Client Identifier: offset of the DUID, -1 when absent; and its length (0 when absent). */
  get clientIdOffset(): number {
    return dataAt(this.clientIdAt);
  }
  get clientIdLength(): number {
    return this.lengthAt(this.clientIdAt);
  }
  get serverIdOffset(): number {
    return dataAt(this.serverIdAt);
  }
  get serverIdLength(): number {
    return this.lengthAt(this.serverIdAt);
  }
  /** Option Request: offset of the list of 2-byte codes, -1 when absent. */
  get oroOffset(): number {
    return dataAt(this.oroAt);
  }
  get oroLength(): number {
    return this.lengthAt(this.oroAt);
  }
  /** Elapsed Time in hundredths of a second (§21.9), -1 when absent. */
  get elapsedTime(): number {
    const p = this.elapsedAt;
    return p < 0 ? -1 : readU16(this.buf, p + 4);
  }
  get rapidCommit(): boolean {
    return this.rapidCommitAt >= 0;
  }
  get iaNaCount(): number {
    return this.iaNa;
  }
  get iaTaCount(): number {
    return this.iaTa;
  }
  get iaPdCount(): number {
    return this.iaPd;
  }
  /** Any IA option (IA_NA, IA_TA, IA_PD). */
  get hasIa(): boolean {
    return this.iaNa + this.iaTa + this.iaPd > 0;
  }
  /** The top-level Status Code, -1 when absent (absent means Success, §21.13). */
  get statusCode(): number {
    const p = this.statusAt;
    return p < 0 ? -1 : readU16(this.buf, p + 4);
  }
  get statusMessageOffset(): number {
    return this.statusAt < 0 ? -1 : this.statusAt + 6;
  }
  get statusMessageLength(): number {
    return this.statusAt < 0 ? 0 : this.lengthAt(this.statusAt) - 2;
  }
  /** DNS Servers: offset of the 16-byte addresses, -1 when absent. */
  get dnsServersOffset(): number {
    return dataAt(this.dnsAt);
  }
  get dnsServersLength(): number {
    return this.lengthAt(this.dnsAt);
  }
  /** Domain List: offset of the names (uncompressed, one after the other), -1 when absent. */
  get domainListOffset(): number {
    return dataAt(this.domainsAt);
  }
  get domainListLength(): number {
    return this.lengthAt(this.domainsAt);
  }
  /** Information Refresh Time in seconds, -1 when absent. */
  get informationRefreshTime(): number {
    const p = this.refreshAt;
    return p < 0 ? -1 : readU32(this.buf, p + 4);
  }

  /** Whether the ORO lists `code` (§21.7). */
  requestsOption(code: number): boolean {
    const p = this.oroAt;
    if (p < 0) return false;
    const buf = this.buf;
    const end = p + 4 + this.lengthAt(p);
    for (let q = p + 4; q < end; q += 2) if (readU16(buf, q) === code) return true;
    return false;
  }

  /**
   * Offset of the option after the one at `p`, or -1 at the end; start from
   * `firstOptionOffset`. The option's code and length are
   * the two 16-bit words at its offset. Meaningful after `check` returned OK.
   */
  nextOption(p: number): number {
    const q = p + DHCPV6_OPTION_HEADER_LEN + readU16(this.buf, p + 2);
    return q + DHCPV6_OPTION_HEADER_LEN <= this.off + this.len ? q : -1;
  }

  private lengthAt(p: number): number {
    return p < 0 ? 0 : readU16(this.buf, p + 2);
  }
}

function dataAt(p: number): number {
  return p < 0 ? -1 : p + DHCPV6_OPTION_HEADER_LEN;
}

/** A DUID-LL for an Ethernet MAC (RFC 8415 §11.4): type 3, hardware type 1, the address. */
export function duidLl(mac: number): Uint8Array {
  const out = new Uint8Array(DUID_LL_ETHERNET_LEN);
  out[1] = DuidType.LL;
  out[3] = DUID_HW_ETHERNET;
  writeMac(out, 4, mac);
  return out;
}

/** An IA echoed in a reply with no addresses and a Status Code inside (§18.3.2, §18.3.4, §18.3.7, §18.3.8). */
export interface Dhcpv6IaStatus {
  /** IA_NA, IA_TA or IA_PD. */
  type: number;
  iaid: number;
  status: number;
  /** UTF-8 text for the user (§21.13). */
  message: Uint8Array;
}

/**
 * A server's message (Advertise or Reply). The Client ID is referenced where
 * it lies (usually the request: clientId = request buffer, clientIdOffset =
 * view.clientIdOffset) and copied by the emitter; clientIdLength 0 omits it.
 * `status` -1, a zero count or length, and `informationRefreshTime` -1 leave
 * their option out. `domainList` holds `domainListLength` bytes of
 * uncompressed names one after the other (encodeDnsNameList's output).
 */
export interface Dhcpv6ReplyRepr {
  msgType: number;
  transactionId: number;
  serverId: Uint8Array;
  clientId: Uint8Array;
  clientIdOffset: number;
  clientIdLength: number;
  ias: Dhcpv6IaStatus[];
  iaCount: number;
  status: number;
  statusMessage: Uint8Array;
  dnsServers: Uint8Array;
  dnsServerCount: number;
  domainList: Uint8Array;
  domainListLength: number;
  informationRefreshTime: number;
}

export function newDhcpv6ReplyRepr(): Dhcpv6ReplyRepr {
  return {
    msgType: Dhcpv6MessageType.REPLY,
    transactionId: 0,
    serverId: EMPTY,
    clientId: EMPTY,
    clientIdOffset: 0,
    clientIdLength: 0,
    ias: [],
    iaCount: 0,
    status: -1,
    statusMessage: EMPTY,
    dnsServers: EMPTY,
    dnsServerCount: 0,
    domainList: EMPTY,
    domainListLength: 0,
    informationRefreshTime: -1,
  };
}

/** IA_NA and IA_PD carry T1 and T2 after the IAID; IA_TA only the IAID (§21.4, §21.5, §21.21). */
function iaFixedLen(type: number): number {
  return type === Dhcpv6Option.IA_TA ? 4 : 12;
}

/** Bytes `emitDhcpv6Reply` writes for `repr`. */
export function dhcpv6ReplyLength(repr: Dhcpv6ReplyRepr): number {
  let n = DHCPV6_HEADER_LEN + 4 + repr.serverId.length;
  if (repr.clientIdLength > 0) n += 4 + repr.clientIdLength;
  for (let i = 0; i < repr.iaCount; i++) {
    const ia = repr.ias[i];
    n += 4 + iaFixedLen(ia.type) + 6 + ia.message.length;
  }
  if (repr.status >= 0) n += 6 + repr.statusMessage.length;
  if (repr.domainListLength > 0) n += 4 + repr.domainListLength;
  if (repr.dnsServerCount > 0) n += 4 + 16 * repr.dnsServerCount;
  if (repr.informationRefreshTime >= 0) n += 8;
  return n;
}

/**
 * Writes the message at `off`: header, then in this order (dnsmasq's) Client
 * ID, Server ID, the IAs, Status Code, Domain List, DNS Servers and
 * Information Refresh Time, each when present. Returns the bytes written
 * (`dhcpv6ReplyLength(repr)`). Throws RangeError when the buffer is too small
 * or an option would exceed 65535 bytes (caller bugs).
 */
export function emitDhcpv6Reply(repr: Dhcpv6ReplyRepr, buf: Uint8Array, off: number): number {
  const total = dhcpv6ReplyLength(repr);
  if (off < 0 || off + total > buf.length) throw new RangeError('emitDhcpv6Reply: buffer too small');
  if (repr.domainListLength > 0xffff || repr.dnsServerCount > 4095) throw new RangeError('emitDhcpv6Reply: option too long');
  buf[off] = repr.msgType;
  buf[off + 1] = (repr.transactionId >>> 16) & 0xff;
  buf[off + 2] = (repr.transactionId >>> 8) & 0xff;
  buf[off + 3] = repr.transactionId & 0xff;
  let p = off + DHCPV6_HEADER_LEN;
  if (repr.clientIdLength > 0) {
    p = putOption(Dhcpv6Option.CLIENTID, repr.clientId, repr.clientIdOffset, repr.clientIdLength, buf, p);
  }
  p = putOption(Dhcpv6Option.SERVERID, repr.serverId, 0, repr.serverId.length, buf, p);
  for (let i = 0; i < repr.iaCount; i++) {
    const ia = repr.ias[i];
    const fixed = iaFixedLen(ia.type);
    putOptionHead(ia.type, fixed + 6 + ia.message.length, buf, p);
    writeU32(buf, p + 4, ia.iaid);
    // T1 = T2 = 0: nothing is bound, so there is nothing to renew (§21.4).
    if (fixed === 12) buf.fill(0, p + 8, p + 16);
    p = putStatus(ia.status, ia.message, buf, p + 4 + fixed);
  }
  if (repr.status >= 0) p = putStatus(repr.status, repr.statusMessage, buf, p);
  if (repr.domainListLength > 0) p = putOption(Dhcpv6Option.DOMAIN_LIST, repr.domainList, 0, repr.domainListLength, buf, p);
  if (repr.dnsServerCount > 0) p = putOption(Dhcpv6Option.DNS_SERVERS, repr.dnsServers, 0, 16 * repr.dnsServerCount, buf, p);
  if (repr.informationRefreshTime >= 0) {
    putOptionHead(Dhcpv6Option.INFORMATION_REFRESH_TIME, 4, buf, p);
    writeU32(buf, p + 4, repr.informationRefreshTime);
    p += 8;
  }
  return p - off;
}

function putOptionHead(code: number, len: number, buf: Uint8Array, p: number): void {
  writeU16(buf, p, code);
  writeU16(buf, p + 2, len);
}

function putOption(code: number, data: Uint8Array, dataOff: number, len: number, buf: Uint8Array, p: number): number {
  putOptionHead(code, len, buf, p);
  for (let i = 0; i < len; i++) buf[p + 4 + i] = data[dataOff + i];
  return p + 4 + len;
}

function putStatus(status: number, message: Uint8Array, buf: Uint8Array, p: number): number {
  putOptionHead(Dhcpv6Option.STATUS_CODE, 2 + message.length, buf, p);
  writeU16(buf, p + 4, status);
  buf.set(message, p + 6);
  return p + 6 + message.length;
}

const EMPTY = new Uint8Array(0);
