/**
 * Neighbor Discovery (RFC 4861) messages and options, with the DNS options of
 * RFC 8106: parsed from the ICMPv6 message (the view's buffer starts at the
 * ICMPv6 type byte), emitted with the ICMPv6 checksum.
 *
 * Size: one file on purpose. RS, RA, NS and NA and their options
 * share one option walker, one set of length rules and the checksum.
 *
 *   RS  133 | code | cksum | reserved (4)                                 | options
 *   RA  134 | code | cksum | hop limit | M O .. | router lifetime (2)
 *           | reachable time (4) | retrans timer (4)                     | options
 *   NS  135 | code | cksum | reserved (4) | target (16)                  | options
 *   NA  136 | code | cksum | R S O reserved (4) | target (16)            | options
 *   option: type (1) | length in units of 8 bytes (1) | data
 *
 * What the stack needs from the guest: RS (answered by an RA), NS (answered
 * by an NA, and for DAD), NA (to our own NS); the RA parser serves tests and
 * completeness.
 *
 * Validation (`NdpView.check`) is the part of RFC 4861 §6.1.1, §6.1.2,
 * §7.1.1 and §7.1.2 that a message's own bytes and its IP header decide; the
 * caller passes the IP hop limit and the address classes of the IP source and
 * destination (`ndpIpClasses`). The checksum is the caller's (Icmpv6View),
 * verified once for every ICMPv6 message before NDP is looked at.
 *
 * Options: an option of length 0, or one that runs past the end, makes the
 * whole message invalid (§4.6: "Nodes MUST silently discard an ND packet
 * that contains an option with length zero"; nothing can be read after it).
 * A link-layer address option that is not 8 bytes (RFC 2464 §6: Ethernet's
 * is 6 bytes in one unit) invalidates the message too, as in Linux
 * (ndisc_recv_ns/na drop it): the address is what the message is for. Other
 * options a receiver cannot read with their length are skipped like unknown
 * ones (§4.6 "ignore options they do not recognize"; RFC 8106 §5.3.1 for
 * RDNSS/DNSSL). A repeated option: the first one counts (Linux does the same).
 *
 * MACs are the project's 48-bit numbers (wire/ethernet.ts); NO_MAC (-1)
 * stands for an absent link-layer address option.
 */
import { readU16, readU32, writeU32 } from './bytes.js';
import { skipUncompressedDnsName } from './dns.js';
import { Wire, type WireCode } from './errors.js';
import { readMac, writeMac } from './ethernet.js';
import { ICMPV6_HEADER_LEN, Icmpv6Type, fillIcmpv6Checksum } from './icmpv6.js';
import { IPV6_ADDR_LEN, copyAddr } from './ipv6.js';
import { isLinkLocal6, isMulticast6, isUnspecified6 } from './ipv6-address.js';

/** RFC 4861 §6.1, §7.1: NDP messages arrive with hop limit 255, proof they were not routed. */
export const NDP_HOP_LIMIT = 255;
export const NDP_RS_LEN = 8;
export const NDP_RA_LEN = 16;
export const NDP_NS_LEN = 24;
export const NDP_NA_LEN = 24;
/** A link-layer address option for Ethernet: type, length 1, 6-byte MAC. */
export const NDP_LLA_OPTION_LEN = 8;
export const NDP_PREFIX_OPTION_LEN = 32;
export const NDP_MTU_OPTION_LEN = 8;
/** The option length field counts 8-byte units in one byte. */
export const NDP_MAX_OPTION_LEN = 255 * 8;
/** RFC 8106 §5.1: (255 − 1) / 2 addresses fit in one RDNSS option. */
export const NDP_MAX_RDNSS_PER_OPTION = 127;
/** What a parsed RA keeps; more prefixes or addresses than this are not stored. */
export const NDP_PARSE_MAX_PREFIXES = 8;
export const NDP_PARSE_MAX_RDNSS = 8;

export const NO_MAC = -1;

/** Option types (RFC 4861 §4.6, RFC 7527 §4, RFC 8106 §5). */
export const NdpOption = {
  SOURCE_LL_ADDR: 1,
  TARGET_LL_ADDR: 2,
  PREFIX_INFO: 3,
  REDIRECTED_HEADER: 4,
  MTU: 5,
  NONCE: 14,
  RDNSS: 25,
  DNSSL: 31,
} as const;

/** Bits of byte 4 of an NA (RFC 4861 §4.4). */
export const NaFlag = { ROUTER: 0x80, SOLICITED: 0x40, OVERRIDE: 0x20 } as const;
/** Bits of byte 5 of an RA (RFC 4861 §4.2). */
export const RaFlag = { MANAGED: 0x80, OTHER: 0x40 } as const;
/** Bits of a Prefix Information option's flags (RFC 4861 §4.6.2). */
export const PrefixFlag = { ON_LINK: 0x80, AUTONOMOUS: 0x40 } as const;

/** Classes of the IP addresses around an NDP message, for `NdpView.check`. */
export const NdpIp = {
  SRC_UNSPECIFIED: 1,
  SRC_LINK_LOCAL: 2,
  DST_MULTICAST: 4,
  DST_SOLICITED_NODE: 8,
} as const;

/** ff02::1:ff00:0/104 (RFC 4291 §2.7.1). */
export function isSolicitedNode6(b: Uint8Array, o: number): boolean {
  if (b[o] !== 0xff || b[o + 1] !== 0x02) return false;
  for (let i = 2; i < 11; i++) if (b[o + i] !== 0) return false;
  return b[o + 11] === 0x01 && b[o + 12] === 0xff;
}

/** The NdpIp bits of the IPv6 source at buf[srcOff] and destination at buf[dstOff]. */
export function ndpIpClasses(buf: Uint8Array, srcOff: number, dstOff: number): number {
  let c = 0;
  if (isUnspecified6(buf, srcOff)) c |= NdpIp.SRC_UNSPECIFIED;
  if (isLinkLocal6(buf, srcOff)) c |= NdpIp.SRC_LINK_LOCAL;
  if (isMulticast6(buf, dstOff)) c |= NdpIp.DST_MULTICAST;
  if (isSolicitedNode6(buf, dstOff)) c |= NdpIp.DST_SOLICITED_NODE;
  return c;
}

export interface RouterSolicitationRepr {
  sourceMac: number;
}

export interface NeighborSolicitationRepr {
  target: Uint8Array;
  sourceMac: number;
}

export interface NeighborAdvertisementRepr {
  router: boolean;
  solicited: boolean;
  override: boolean;
  target: Uint8Array;
  targetMac: number;
}

export interface NdpPrefix {
  prefixLength: number;
  onLink: boolean;
  autonomous: boolean;
  /** Seconds; 0xffffffff is infinity (RFC 4861 §4.6.2). */
  validLifetime: number;
  preferredLifetime: number;
  prefix: Uint8Array;
}

/**
 * An RA. For emitting, the arrays may be of any size: `prefixCount`
 * prefixes, `rdnssCount` addresses (16 bytes each) from `rdnss`, and
 * `dnsslLength` bytes of names from `dnssl`, in uncompressed DNS wire form
 * one after the other (encodeDnsNameList's output, built once at setup).
 * 0 for `mtu`, NO_MAC for `sourceMac`, and a zero count or length leave
 * their option out.
 */
export interface RouterAdvertisementRepr {
  curHopLimit: number;
  managed: boolean;
  other: boolean;
  /** Seconds; 0 = not a default router (RFC 4861 §4.2). */
  routerLifetime: number;
  reachableTimeMs: number;
  retransTimerMs: number;
  sourceMac: number;
  mtu: number;
  prefixes: NdpPrefix[];
  prefixCount: number;
  rdnssLifetime: number;
  rdnss: Uint8Array;
  rdnssCount: number;
  dnsslLifetime: number;
  dnssl: Uint8Array;
  dnsslLength: number;
}

export function newRouterSolicitationRepr(): RouterSolicitationRepr {
  return { sourceMac: NO_MAC };
}

export function newNeighborSolicitationRepr(): NeighborSolicitationRepr {
  return { target: new Uint8Array(IPV6_ADDR_LEN), sourceMac: NO_MAC };
}

export function newNeighborAdvertisementRepr(): NeighborAdvertisementRepr {
  return { router: false, solicited: false, override: false, target: new Uint8Array(IPV6_ADDR_LEN), targetMac: NO_MAC };
}

export function newNdpPrefix(): NdpPrefix {
  return { prefixLength: 0, onLink: false, autonomous: false, validLifetime: 0, preferredLifetime: 0, prefix: new Uint8Array(IPV6_ADDR_LEN) };
}

/** Room for what parseRouterAdvertisement keeps; emitting may use larger arrays. */
export function newRouterAdvertisementRepr(): RouterAdvertisementRepr {
  const prefixes: NdpPrefix[] = [];
  for (let i = 0; i < NDP_PARSE_MAX_PREFIXES; i++) prefixes.push(newNdpPrefix());
  return {
    curHopLimit: 0,
    managed: false,
    other: false,
    routerLifetime: 0,
    reachableTimeMs: 0,
    retransTimerMs: 0,
    sourceMac: NO_MAC,
    mtu: 0,
    prefixes,
    prefixCount: 0,
    rdnssLifetime: 0,
    rdnss: new Uint8Array(NDP_PARSE_MAX_RDNSS * IPV6_ADDR_LEN),
    rdnssCount: 0,
    dnsslLifetime: 0,
    dnssl: new Uint8Array(NDP_MAX_OPTION_LEN),
    dnsslLength: 0,
  };
}

/** Fixed part of each message type this module parses; 0 for the others. */
function fixedLen(type: number): number {
  switch (type) {
    case Icmpv6Type.ROUTER_SOLICITATION:
      return NDP_RS_LEN;
    case Icmpv6Type.ROUTER_ADVERTISEMENT:
      return NDP_RA_LEN;
    case Icmpv6Type.NEIGHBOR_SOLICITATION:
      return NDP_NS_LEN;
    case Icmpv6Type.NEIGHBOR_ADVERTISEMENT:
      return NDP_NA_LEN;
    default:
      return 0;
  }
}

export class NdpView {
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;

  /** Points the view at an ICMPv6 message of `len` bytes; no validation (call `check`). */
  wrap(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /**
   * OK iff the message is a valid RS, RA, NS or NA for the IP header it came
   * in: `hopLimit` and `ipClasses` (NdpIp bits, see ndpIpClasses). Other
   * types are UNSUPPORTED; a short message is TRUNCATED; a rule of RFC 4861
   * §6.1 / §7.1 broken is BAD_FIELD; a bad option is BAD_OPTIONS.
   */
  check(hopLimit: number = NDP_HOP_LIMIT, ipClasses = 0): WireCode {
    if (this.len < ICMPV6_HEADER_LEN) return Wire.TRUNCATED;
    const buf = this.buf;
    const o = this.off;
    const type = buf[o];
    const min = fixedLen(type);
    if (min === 0) return Wire.UNSUPPORTED;
    // §6.1.1, §6.1.2, §7.1.1, §7.1.2: "ICMP length (derived from the IP length) is N or more octets".
    if (this.len < min) return Wire.TRUNCATED;
    // Same sections: "The IP Hop Limit field has a value of 255" and "ICMP Code is 0".
    if (hopLimit !== NDP_HOP_LIMIT || buf[o + 1] !== 0) return Wire.BAD_FIELD;

    const end = o + this.len;
    let hasSlla = false;
    for (let p = o + min; p < end; ) {
      if (p + 2 > end) return Wire.BAD_OPTIONS;
      const optLen = buf[p + 1] << 3;
      if (optLen === 0 || p + optLen > end) return Wire.BAD_OPTIONS;
      const optType = buf[p];
      if (optType === NdpOption.SOURCE_LL_ADDR || optType === NdpOption.TARGET_LL_ADDR) {
        if (optLen !== NDP_LLA_OPTION_LEN) return Wire.BAD_OPTIONS;
        if (optType === NdpOption.SOURCE_LL_ADDR) hasSlla = true;
      }
      p += optLen;
    }

    const srcUnspecified = (ipClasses & NdpIp.SRC_UNSPECIFIED) !== 0;
    switch (type) {
      case Icmpv6Type.ROUTER_SOLICITATION:
        // §6.1.1: "If the IP source address is the unspecified address, there is no source link-layer address option".
        if (srcUnspecified && hasSlla) return Wire.BAD_FIELD;
        break;
      case Icmpv6Type.ROUTER_ADVERTISEMENT:
        // §6.1.2: "IP Source Address is a link-local address".
        if ((ipClasses & NdpIp.SRC_LINK_LOCAL) === 0) return Wire.BAD_FIELD;
        break;
      case Icmpv6Type.NEIGHBOR_SOLICITATION:
        // §7.1.1: "Target Address is not a multicast address"; from ::
        // (DAD), "the IP destination address is a solicited-node multicast
        // address" and "there is no source link-layer address option".
        if (isMulticast6(buf, o + 8)) return Wire.BAD_FIELD;
        if (srcUnspecified && ((ipClasses & NdpIp.DST_SOLICITED_NODE) === 0 || hasSlla)) return Wire.BAD_FIELD;
        break;
      default:
        // NA, §7.1.2: "Target Address is not a multicast address"; "If the IP
        // Destination Address is a multicast address the Solicited flag is zero".
        if (isMulticast6(buf, o + 8)) return Wire.BAD_FIELD;
        if ((ipClasses & NdpIp.DST_MULTICAST) !== 0 && (buf[o + 4] & NaFlag.SOLICITED) !== 0) return Wire.BAD_FIELD;
        break;
    }
    return Wire.OK;
  }

  get type(): number {
    return this.buf[this.off];
  }
  get code(): number {
    return this.buf[this.off + 1];
  }
  /** Where the options start (after the fixed part of the message's type). */
  get optionsOffset(): number {
    return this.off + fixedLen(this.buf[this.off]);
  }
  /** NS/NA: offset of the 16-byte target address. */
  get targetOffset(): number {
    return this.off + 8;
  }
  /** NA: the R, S and O bits (NaFlag). */
  get naFlags(): number {
    return this.buf[this.off + 4] & (NaFlag.ROUTER | NaFlag.SOLICITED | NaFlag.OVERRIDE);
  }
  get curHopLimit(): number {
    return this.buf[this.off + 4];
  }
  /** RA: the whole flags byte (M, O, and bits this module does not name). */
  get raFlags(): number {
    return this.buf[this.off + 5];
  }
  get routerLifetime(): number {
    return readU16(this.buf, this.off + 6);
  }
  /** RA only; 0 for a message too short to be one (an RS), so no getter reads past `len`. */
  get reachableTimeMs(): number {
    return this.len < NDP_RA_LEN ? 0 : readU32(this.buf, this.off + 8);
  }
  get retransTimerMs(): number {
    return this.len < NDP_RA_LEN ? 0 : readU32(this.buf, this.off + 12);
  }
  /** The first Source Link-Layer Address option's MAC, or NO_MAC. */
  get sourceMac(): number {
    const p = this.findOption(NdpOption.SOURCE_LL_ADDR);
    return p < 0 ? NO_MAC : readMac(this.buf, p + 2);
  }
  /** The first Target Link-Layer Address option's MAC, or NO_MAC. */
  get targetMac(): number {
    const p = this.findOption(NdpOption.TARGET_LL_ADDR);
    return p < 0 ? NO_MAC : readMac(this.buf, p + 2);
  }

  /**
   * Offset of the first option of `type` at or after `from` (an option
   * boundary; the start of the options by default), or -1. Its length in
   * bytes is `buf[result + 1] * 8`. Bounded by `len` on its own, meaningful
   * after `check` returned OK.
   */
  findOption(type: number, from = -1): number {
    const buf = this.buf;
    const end = this.off + this.len;
    let p = from < 0 ? this.optionsOffset : from;
    while (p + 2 <= end) {
      const optLen = buf[p + 1] << 3;
      if (optLen === 0 || p + optLen > end) return -1;
      if (buf[p] === type) return p;
      p += optLen;
    }
    return -1;
  }
}

function expectType(view: NdpView, type: number, hopLimit: number, ipClasses: number): WireCode {
  const code = view.check(hopLimit, ipClasses);
  if (code !== Wire.OK) return code;
  return view.type === type ? Wire.OK : Wire.UNSUPPORTED;
}

/** Fills `repr` from an RS that passes `check(hopLimit, ipClasses)`; otherwise returns the code and leaves it. */
export function parseRouterSolicitation(
  view: NdpView,
  hopLimit: number,
  ipClasses: number,
  repr: RouterSolicitationRepr,
): WireCode {
  const code = expectType(view, Icmpv6Type.ROUTER_SOLICITATION, hopLimit, ipClasses);
  if (code !== Wire.OK) return code;
  repr.sourceMac = view.sourceMac;
  return Wire.OK;
}

export function parseNeighborSolicitation(
  view: NdpView,
  hopLimit: number,
  ipClasses: number,
  repr: NeighborSolicitationRepr,
): WireCode {
  const code = expectType(view, Icmpv6Type.NEIGHBOR_SOLICITATION, hopLimit, ipClasses);
  if (code !== Wire.OK) return code;
  copyAddr(view.buf, view.targetOffset, repr.target, 0);
  repr.sourceMac = view.sourceMac;
  return Wire.OK;
}

export function parseNeighborAdvertisement(
  view: NdpView,
  hopLimit: number,
  ipClasses: number,
  repr: NeighborAdvertisementRepr,
): WireCode {
  const code = expectType(view, Icmpv6Type.NEIGHBOR_ADVERTISEMENT, hopLimit, ipClasses);
  if (code !== Wire.OK) return code;
  const flags = view.naFlags;
  repr.router = (flags & NaFlag.ROUTER) !== 0;
  repr.solicited = (flags & NaFlag.SOLICITED) !== 0;
  repr.override = (flags & NaFlag.OVERRIDE) !== 0;
  copyAddr(view.buf, view.targetOffset, repr.target, 0);
  repr.targetMac = view.targetMac;
  return Wire.OK;
}

/**
 * Fills `repr` (from newRouterAdvertisementRepr) from a valid RA: the fixed
 * fields, the first SLLA and MTU options, up to `repr.prefixes.length`
 * Prefix Information options, and the first valid RDNSS (up to
 * `repr.rdnss.length / 16` addresses) and DNSSL options (names without the
 * padding). Invalid options of these kinds are skipped (see the module
 * comment).
 */
export function parseRouterAdvertisement(
  view: NdpView,
  hopLimit: number,
  ipClasses: number,
  repr: RouterAdvertisementRepr,
): WireCode {
  const code = expectType(view, Icmpv6Type.ROUTER_ADVERTISEMENT, hopLimit, ipClasses);
  if (code !== Wire.OK) return code;
  const buf = view.buf;
  repr.curHopLimit = view.curHopLimit;
  const flags = view.raFlags;
  repr.managed = (flags & RaFlag.MANAGED) !== 0;
  repr.other = (flags & RaFlag.OTHER) !== 0;
  repr.routerLifetime = view.routerLifetime;
  repr.reachableTimeMs = view.reachableTimeMs;
  repr.retransTimerMs = view.retransTimerMs;
  repr.sourceMac = view.sourceMac;
  repr.mtu = 0;
  repr.prefixCount = 0;
  repr.rdnssLifetime = 0;
  repr.rdnssCount = 0;
  repr.dnsslLifetime = 0;
  repr.dnsslLength = 0;
  let seenMtu = false;
  let seenRdnss = false;
  let seenDnssl = false;
  const end = view.off + view.len;
  // check() has proven every option lies inside the message with a nonzero length.
  for (let p = view.optionsOffset; p < end; p += buf[p + 1] << 3) {
    const optLen = buf[p + 1] << 3;
    switch (buf[p]) {
      case NdpOption.MTU:
        if (!seenMtu && optLen === NDP_MTU_OPTION_LEN) {
          repr.mtu = readU32(buf, p + 4);
          seenMtu = true;
        }
        break;
      case NdpOption.PREFIX_INFO:
        if (optLen === NDP_PREFIX_OPTION_LEN && repr.prefixCount < repr.prefixes.length) {
          const px = repr.prefixes[repr.prefixCount++];
          px.prefixLength = buf[p + 2];
          px.onLink = (buf[p + 3] & PrefixFlag.ON_LINK) !== 0;
          px.autonomous = (buf[p + 3] & PrefixFlag.AUTONOMOUS) !== 0;
          px.validLifetime = readU32(buf, p + 4);
          px.preferredLifetime = readU32(buf, p + 8);
          copyAddr(buf, p + 16, px.prefix, 0);
        }
        break;
      case NdpOption.RDNSS:
        // RFC 8106 §5.3.1: valid iff Length ≥ 3 and (Length − 1) is even.
        if (!seenRdnss && optLen >= 24 && (optLen - 8) % 16 === 0) {
          seenRdnss = true;
          repr.rdnssLifetime = readU32(buf, p + 4);
          const room = (repr.rdnss.length / IPV6_ADDR_LEN) | 0;
          for (let a = p + 8; a < p + optLen && repr.rdnssCount < room; a += IPV6_ADDR_LEN) {
            copyAddr(buf, a, repr.rdnss, repr.rdnssCount++ * IPV6_ADDR_LEN);
          }
        }
        break;
      case NdpOption.DNSSL: {
        if (seenDnssl) break;
        const namesEnd = dnsslNamesEnd(buf, p, optLen);
        if (namesEnd < 0 || namesEnd - (p + 8) > repr.dnssl.length) break;
        seenDnssl = true;
        repr.dnsslLifetime = readU32(buf, p + 4);
        repr.dnsslLength = namesEnd - (p + 8);
        for (let i = 0; i < repr.dnsslLength; i++) repr.dnssl[i] = buf[p + 8 + i];
        break;
      }
      default:
        break;
    }
  }
  return Wire.OK;
}

/**
 * End of the names of the DNSSL option at `p`, or -1 when it is invalid:
 * RFC 8106 §5.3.1 (Length ≥ 2), §5.2 (one or more uncompressed names, then
 * zero padding to the end of the option).
 */
function dnsslNamesEnd(buf: Uint8Array, p: number, optLen: number): number {
  if (optLen < 16) return -1;
  const optEnd = p + optLen;
  let q = p + 8;
  while (q < optEnd && buf[q] !== 0) {
    q = skipUncompressedDnsName(buf, q, optEnd);
    if (q < 0) return -1;
  }
  if (q === p + 8) return -1;
  for (let i = q; i < optEnd; i++) if (buf[i] !== 0) return -1;
  return q;
}

/** Writes an 8-byte Ethernet link-layer address option; returns the offset after it. */
function putLla(type: number, mac: number, buf: Uint8Array, p: number): number {
  buf[p] = type;
  buf[p + 1] = 1;
  writeMac(buf, p + 2, mac);
  return p + NDP_LLA_OPTION_LEN;
}

/** The 4 bytes after the checksum, and the 16-byte target; the NS/NA fixed part. */
function putTargetHead(type: number, flags: number, target: Uint8Array, targetOff: number, buf: Uint8Array, off: number): void {
  buf[off] = type;
  buf[off + 1] = 0;
  buf[off + 4] = flags;
  buf[off + 5] = 0;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  copyAddr(target, targetOff, buf, off + 8);
}

/**
 * Writes an RS (RFC 4861 §4.1), with an SLLA option unless `sourceMac` is
 * NO_MAC (§6.3.7: none when the source is ::). Returns its length.
 */
export function emitRouterSolicitation(sourceMac: number, buf: Uint8Array, off: number, addrSum: number): number {
  buf[off] = Icmpv6Type.ROUTER_SOLICITATION;
  buf[off + 1] = 0;
  buf[off + 4] = 0;
  buf[off + 5] = 0;
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  const end = sourceMac === NO_MAC ? off + NDP_RS_LEN : putLla(NdpOption.SOURCE_LL_ADDR, sourceMac, buf, off + NDP_RS_LEN);
  fillIcmpv6Checksum(buf, off, end - off, addrSum);
  return end - off;
}

/**
 * Writes an NS for the target at target[targetOff] (RFC 4861 §4.3), with an
 * SLLA option unless `sourceMac` is NO_MAC (DAD from ::, §7.2.2 otherwise
 * SHOULD include it). Returns its length.
 */
export function emitNeighborSolicitation(
  target: Uint8Array,
  targetOff: number,
  sourceMac: number,
  buf: Uint8Array,
  off: number,
  addrSum: number,
): number {
  putTargetHead(Icmpv6Type.NEIGHBOR_SOLICITATION, 0, target, targetOff, buf, off);
  const end = sourceMac === NO_MAC ? off + NDP_NS_LEN : putLla(NdpOption.SOURCE_LL_ADDR, sourceMac, buf, off + NDP_NS_LEN);
  fillIcmpv6Checksum(buf, off, end - off, addrSum);
  return end - off;
}

/**
 * Writes an NA (RFC 4861 §4.4) with `flags` (NaFlag bits) for the target at
 * target[targetOff], with a TLLA option unless `targetMac` is NO_MAC (§7.2.4:
 * it MUST be there in answer to a multicast NS). Returns its length.
 */
export function emitNeighborAdvertisement(
  flags: number,
  target: Uint8Array,
  targetOff: number,
  targetMac: number,
  buf: Uint8Array,
  off: number,
  addrSum: number,
): number {
  putTargetHead(Icmpv6Type.NEIGHBOR_ADVERTISEMENT, flags & 0xe0, target, targetOff, buf, off);
  const end = targetMac === NO_MAC ? off + NDP_NA_LEN : putLla(NdpOption.TARGET_LL_ADDR, targetMac, buf, off + NDP_NA_LEN);
  fillIcmpv6Checksum(buf, off, end - off, addrSum);
  return end - off;
}

/** Bytes of the DNSSL option for `namesLen` bytes of names: header + names, zero-padded to 8 (RFC 8106 §5.2). */
function dnsslOptionLen(namesLen: number): number {
  return (8 + namesLen + 7) & ~7;
}

/** Bytes `emitRouterAdvertisement` writes for `repr`. */
export function routerAdvertisementLength(repr: RouterAdvertisementRepr): number {
  let n = NDP_RA_LEN + repr.prefixCount * NDP_PREFIX_OPTION_LEN;
  if (repr.mtu !== 0) n += NDP_MTU_OPTION_LEN;
  if (repr.sourceMac !== NO_MAC) n += NDP_LLA_OPTION_LEN;
  if (repr.dnsslLength > 0) n += dnsslOptionLen(repr.dnsslLength);
  if (repr.rdnssCount > 0) n += 8 + repr.rdnssCount * IPV6_ADDR_LEN;
  return n;
}

/**
 * Writes an RA (RFC 4861 §4.2) with, in this order (dnsmasq's), the Prefix
 * Information options, MTU, SLLA, DNSSL and RDNSS (RFC 8106 §5), each when
 * present in `repr`. Prefix bits past each prefix length are written as zero
 * (§4.6.2). Returns the length (`routerAdvertisementLength(repr)`). Throws
 * RangeError for more RDNSS addresses or DNSSL bytes than one option holds
 * (a caller bug).
 */
export function emitRouterAdvertisement(repr: RouterAdvertisementRepr, buf: Uint8Array, off: number, addrSum: number): number {
  if (repr.rdnssCount > NDP_MAX_RDNSS_PER_OPTION) throw new RangeError('emitRouterAdvertisement: too many RDNSS addresses');
  if (dnsslOptionLen(repr.dnsslLength) > NDP_MAX_OPTION_LEN) throw new RangeError('emitRouterAdvertisement: DNSSL too long');
  buf[off] = Icmpv6Type.ROUTER_ADVERTISEMENT;
  buf[off + 1] = 0;
  buf[off + 4] = repr.curHopLimit;
  buf[off + 5] = (repr.managed ? RaFlag.MANAGED : 0) | (repr.other ? RaFlag.OTHER : 0);
  buf[off + 6] = repr.routerLifetime >>> 8;
  buf[off + 7] = repr.routerLifetime & 0xff;
  writeU32(buf, off + 8, repr.reachableTimeMs);
  writeU32(buf, off + 12, repr.retransTimerMs);
  let p = off + NDP_RA_LEN;
  for (let i = 0; i < repr.prefixCount; i++) {
    const px = repr.prefixes[i];
    buf[p] = NdpOption.PREFIX_INFO;
    buf[p + 1] = NDP_PREFIX_OPTION_LEN >>> 3;
    buf[p + 2] = px.prefixLength;
    buf[p + 3] = (px.onLink ? PrefixFlag.ON_LINK : 0) | (px.autonomous ? PrefixFlag.AUTONOMOUS : 0);
    writeU32(buf, p + 4, px.validLifetime);
    writeU32(buf, p + 8, px.preferredLifetime);
    writeU32(buf, p + 12, 0);
    for (let b = 0; b < IPV6_ADDR_LEN; b++) {
      const keep = px.prefixLength - 8 * b;
      buf[p + 16 + b] = keep >= 8 ? px.prefix[b] : keep <= 0 ? 0 : px.prefix[b] & (0xff << (8 - keep));
    }
    p += NDP_PREFIX_OPTION_LEN;
  }
  if (repr.mtu !== 0) {
    buf[p] = NdpOption.MTU;
    buf[p + 1] = 1;
    buf[p + 2] = 0;
    buf[p + 3] = 0;
    writeU32(buf, p + 4, repr.mtu);
    p += NDP_MTU_OPTION_LEN;
  }
  if (repr.sourceMac !== NO_MAC) p = putLla(NdpOption.SOURCE_LL_ADDR, repr.sourceMac, buf, p);
  if (repr.dnsslLength > 0) {
    const optLen = dnsslOptionLen(repr.dnsslLength);
    putDnsOptionHead(NdpOption.DNSSL, optLen, repr.dnsslLifetime, buf, p);
    for (let i = 0; i < repr.dnsslLength; i++) buf[p + 8 + i] = repr.dnssl[i];
    buf.fill(0, p + 8 + repr.dnsslLength, p + optLen);
    p += optLen;
  }
  if (repr.rdnssCount > 0) {
    const optLen = 8 + repr.rdnssCount * IPV6_ADDR_LEN;
    putDnsOptionHead(NdpOption.RDNSS, optLen, repr.rdnssLifetime, buf, p);
    for (let i = 0; i < repr.rdnssCount; i++) copyAddr(repr.rdnss, i * IPV6_ADDR_LEN, buf, p + 8 + i * IPV6_ADDR_LEN);
    p += optLen;
  }
  fillIcmpv6Checksum(buf, off, p - off, addrSum);
  return p - off;
}

/** Type, length, 2 reserved bytes and the lifetime: the head of RDNSS and DNSSL (RFC 8106 §5.1, §5.2). */
function putDnsOptionHead(type: number, optLen: number, lifetime: number, buf: Uint8Array, p: number): void {
  buf[p] = type;
  buf[p + 1] = optLen >>> 3;
  buf[p + 2] = 0;
  buf[p + 3] = 0;
  writeU32(buf, p + 4, lifetime);
}

const EMPTY = new Uint8Array(0);
