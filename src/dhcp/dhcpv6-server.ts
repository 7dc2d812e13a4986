/**
 * Stateless DHCPv6 server for the guest (RFC 8415 §6.1, RFC 3646): it hands
 * out DNS servers and a domain search list, never addresses. Our RAs say
 * M=0 O=1, so a guest asks with Information-request; the other messages get
 * the answers RFC 8415 prescribes for a server that has no bindings.
 *
 * Theory of operation
 * -------------------
 * No state at all: `handle()` consumes one client message and writes at most
 * one reply. The Server ID is a DUID-LL (type 3, hardware type 1, §11.4) of
 * the router MAC: stable across restarts without storage, which is what
 * §11.2 asks of a DUID.
 *
 *   Information-request  Reply: Server ID, the client's Client ID if any, and
 *                        the configuration options (§18.3.6).
 *   Solicit              Advertise: Client ID, Server ID and a Status Code
 *                        NoAddrsAvail, and nothing else (§18.3.9: "includes
 *                        only" those). A client ignores such an Advertise
 *                        (§18.2.1) and, with O=1, gets its options by
 *                        Information-request. Rapid Commit is ignored: a server
 *                        not configured for it answers Advertise (§18.3.1).
 *   Request              Reply: each IA back with no addresses and a Status
 *                        Code NoAddrsAvail (NoPrefixAvail for IA_PD), plus the
 *                        configuration options (§18.3.2).
 *   Renew                Reply: each IA back with NoBinding, plus the
 *                        configuration options (§18.3.4).
 *   Rebind               nothing: with no binding and no address to call
 *                        inappropriate, §18.3.5 says the server discards it.
 *   Release, Decline     Reply: each IA back with NoBinding and a top-level
 *                        Status Code Success (§18.3.7, §18.3.8).
 *   Confirm              nothing: this server knows no on-link prefixes, and
 *                        a server "unable to perform this test ... MUST NOT
 *                        send a reply" (§18.3.3).
 *   Advertise, Reply, Reconfigure, Relay-*, unknown types: nothing (they are
 *                        not sent to servers, or need a relay agent).
 *
 * Discarded before any of that, as §16 says:
 *   Solicit, Confirm, Rebind with a Server ID, or without a Client ID
 *   (§16.2, §16.5, §16.7); Request, Renew, Release, Decline without a Server
 *   ID, with another server's, or without a Client ID (§16.4, §16.6, §16.8,
 *   §16.9); Information-request with a Server ID not ours or with any IA
 *   option (§16.12).
 *
 * The configuration options go out when the client's ORO asks for them, and
 * all of them when it sent no ORO (lenient, as dnsmasq: §21.7 makes the ORO
 * a MUST for the client, and an old client without one still wants DNS).
 *
 * What the caller (the stack) does around it
 * ------------------------------------------
 * - Feed it UDP payloads sent to port 547 at ff02::1:2 (All_DHCP_Relay_Agents
 *   _and_Servers) or at the router's link-local address.
 * - Send each reply (handle() > 0) from the router's link-local address,
 *   port 547, to the client's source address and port 546 (§7.2).
 * - The server never sends the Server Unicast option (§21.12), so a client
 *   has no reason to unicast; one that does anyway is answered all the same
 *   (RFC 8415's UseMulticast rule is for servers that check the destination).
 */
import {
  DUID_MAX_LEN,
  Dhcpv6MessageType,
  Dhcpv6Option,
  Dhcpv6Status,
  Dhcpv6View,
  dhcpv6ReplyLength,
  duidLl,
  emitDhcpv6Reply,
  newDhcpv6ReplyRepr,
  type Dhcpv6IaStatus,
  type Dhcpv6ReplyRepr,
} from '../wire/dhcpv6.js';
import { readU16, readU32 } from '../wire/bytes.js';
import { encodeDnsNameList } from '../wire/dns.js';
import { Wire } from '../wire/errors.js';

export interface Dhcpv6ServerOptions {
  /** The router's MAC: the Server ID is its DUID-LL. */
  routerMac: number;
  /** DNS Servers option (23), in order, 16 bytes each; empty omits the option. */
  dnsServers: readonly Uint8Array[];
  /** Domain List option (24), e.g. ['example.test']; empty omits the option. */
  domainSearch: readonly string[];
  /** Information Refresh Time (32, seconds) in replies to Information-request; null omits it (clients then use 86400, §21.23). */
  informationRefreshTimeS: number | null;
}

/**
 * Every message handed to handle() bumps exactly one rx* counter or
 * `malformed`; `discarded` and `unanswered` are outcomes of messages already
 * counted under rx*.
 */
export interface Dhcpv6ServerStats {
  rxSolicit: number;
  rxRequest: number;
  rxConfirm: number;
  rxRenew: number;
  rxRebind: number;
  rxRelease: number;
  rxDecline: number;
  rxInformationRequest: number;
  /** Server-to-client types, relay messages and unknown types. */
  rxOther: number;
  txAdvertise: number;
  txReply: number;
  /** Too short, an option running past the end, a known option of a wrong length. */
  malformed: number;
  /** Dropped by a §16 rule (Server ID / Client ID / IA presence). */
  discarded: number;
  /** Valid, but RFC 8415 has this server send nothing (Rebind, Confirm, rxOther). */
  unanswered: number;
}

/** At most this many IAs are echoed back; a client has one per interface, rarely more. */
export const DHCPV6_SERVER_MAX_IAS = 8;

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const MSG_NO_ADDRS = ascii('no addresses available');
const MSG_NO_PREFIX = ascii('no prefixes available');
const MSG_NO_BINDING = ascii('no binding');
const MSG_SUCCESS = ascii('success');

export class Dhcpv6Server {
  readonly stats: Dhcpv6ServerStats = {
    rxSolicit: 0,
    rxRequest: 0,
    rxConfirm: 0,
    rxRenew: 0,
    rxRebind: 0,
    rxRelease: 0,
    rxDecline: 0,
    rxInformationRequest: 0,
    rxOther: 0,
    txAdvertise: 0,
    txReply: 0,
    malformed: 0,
    discarded: 0,
    unanswered: 0,
  };
  readonly serverId: Uint8Array;

  private readonly view = new Dhcpv6View();
  private readonly reply: Dhcpv6ReplyRepr = newDhcpv6ReplyRepr();
  private readonly dnsServers: Uint8Array;
  private readonly domainList: Uint8Array;
  private readonly refreshS: number;
  private readonly replyLen: number;

  constructor(opts: Dhcpv6ServerOptions) {
    if (opts.dnsServers.some((a) => a.length !== 16)) throw new RangeError('Dhcpv6Server: DNS servers are 16-byte addresses');
    const domainList = encodeDnsNameList(opts.domainSearch);
    if (domainList === null) throw new RangeError('Dhcpv6Server: invalid domain name');
    const r = opts.informationRefreshTimeS;
    // §21.23: at least IRT_MINIMUM (600 s); 0xffffffff is infinity.
    if (r !== null && !(Number.isInteger(r) && r >= 600 && r <= 0xffff_ffff)) {
      throw new RangeError('Dhcpv6Server: informationRefreshTimeS must be null or an integer in 600..2^32-1');
    }
    this.serverId = duidLl(opts.routerMac);
    this.dnsServers = new Uint8Array(16 * opts.dnsServers.length);
    opts.dnsServers.forEach((a, i) => this.dnsServers.set(a, 16 * i));
    this.domainList = domainList;
    if (this.domainList.length > 0xffff || this.dnsServers.length > 0xffff) throw new RangeError('Dhcpv6Server: option too long');
    this.refreshS = r ?? -1;

    const rep = this.reply;
    rep.serverId = this.serverId;
    for (let i = 0; i < DHCPV6_SERVER_MAX_IAS; i++) {
      rep.ias.push({ type: Dhcpv6Option.IA_NA, iaid: 0, status: 0, message: MSG_NO_ADDRS });
    }
    // The longest reply: every option, the longest Client ID, every IA with the longest message.
    rep.clientIdLength = DUID_MAX_LEN;
    rep.iaCount = DHCPV6_SERVER_MAX_IAS;
    rep.status = Dhcpv6Status.NO_ADDRS_AVAIL;
    rep.statusMessage = MSG_NO_ADDRS;
    this.setConfig(true, true);
    rep.informationRefreshTime = this.refreshS;
    this.replyLen = dhcpv6ReplyLength(rep);
  }

  /** The most bytes one reply can take; `out` must have this much room at outOff. */
  get maxReplyLength(): number {
    return this.replyLen;
  }

  /**
   * Consumes one DHCPv6 message (the UDP payload at buf[off, off+len)) and
   * writes the reply into `out` at `outOff`. Returns the reply's length, or 0
   * when there is nothing to send. Never throws on bad input; throws
   * RangeError if `out` has less than `maxReplyLength` bytes of room. `out`
   * must not overlap the message: the Client ID is copied from it.
   * `nowMs` is unused (the server has no state); it keeps the shape of
   * DhcpServer.handle.
   */
  handle(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, nowMs: number): number {
    void nowMs;
    if (outOff < 0 || outOff + this.replyLen > out.length) {
      throw new RangeError('Dhcpv6Server.handle: output buffer too small');
    }
    const st = this.stats;
    const v = this.view.wrap(buf, off, len);
    const code = v.check();
    if (code === Wire.UNSUPPORTED) {
      // Relay-forward / Relay-reply: well-formed or not, not ours to read.
      st.rxOther++;
      st.unanswered++;
      return 0;
    }
    if (code !== Wire.OK) {
      st.malformed++;
      return 0;
    }
    const hasServerId = v.serverIdOffset >= 0;
    const ours = hasServerId && this.isOurId(v);
    const hasClientId = v.clientIdOffset >= 0;
    const T = Dhcpv6MessageType;
    switch (v.msgType) {
      case T.SOLICIT:
        st.rxSolicit++;
        // §16.2
        if (!hasClientId || hasServerId) return this.discard();
        return this.answer(T.ADVERTISE, Dhcpv6Status.NO_ADDRS_AVAIL, MSG_NO_ADDRS, -1, false, out, outOff);
      case T.INFORMATION_REQUEST:
        st.rxInformationRequest++;
        // §16.12
        if ((hasServerId && !ours) || v.hasIa) return this.discard();
        return this.answer(T.REPLY, -1, MSG_SUCCESS, -1, true, out, outOff);
      case T.REQUEST:
        st.rxRequest++;
        // §16.4
        if (!ours || !hasClientId) return this.discard();
        return this.answer(T.REPLY, -1, MSG_SUCCESS, Dhcpv6Status.NO_ADDRS_AVAIL, true, out, outOff);
      case T.RENEW:
        st.rxRenew++;
        // §16.6
        if (!ours || !hasClientId) return this.discard();
        return this.answer(T.REPLY, -1, MSG_SUCCESS, Dhcpv6Status.NO_BINDING, true, out, outOff);
      case T.RELEASE:
      case T.DECLINE:
        if (v.msgType === T.RELEASE) st.rxRelease++;
        else st.rxDecline++;
        // §16.8, §16.9
        if (!ours || !hasClientId) return this.discard();
        return this.answer(T.REPLY, Dhcpv6Status.SUCCESS, MSG_SUCCESS, Dhcpv6Status.NO_BINDING, false, out, outOff);
      case T.REBIND:
      case T.CONFIRM:
        if (v.msgType === T.REBIND) st.rxRebind++;
        else st.rxConfirm++;
        // §16.7, §16.5
        if (!hasClientId || hasServerId) return this.discard();
        // §18.3.5, §18.3.3: see the module comment.
        st.unanswered++;
        return 0;
      default:
        st.rxOther++;
        st.unanswered++;
        return 0;
    }
  }

  private discard(): number {
    this.stats.discarded++;
    return 0;
  }

  private isOurId(v: Dhcpv6View): boolean {
    const id = this.serverId;
    if (v.serverIdLength !== id.length) return false;
    const p = v.serverIdOffset;
    for (let i = 0; i < id.length; i++) if (v.buf[p + i] !== id[i]) return false;
    return true;
  }

  /**
   * Writes the reply to the message in `this.view`: `status` at the top level
   * (-1 none), each IA of the request echoed with `iaStatus` (-1: none echoed),
   * the configuration options when `config`.
   */
  private answer(
    msgType: number,
    status: number,
    statusMessage: Uint8Array,
    iaStatus: number,
    config: boolean,
    out: Uint8Array,
    outOff: number,
  ): number {
    const v = this.view;
    const r = this.reply;
    r.msgType = msgType;
    r.transactionId = v.transactionId;
    r.clientId = v.buf;
    r.clientIdOffset = v.clientIdOffset;
    r.clientIdLength = v.clientIdLength;
    r.status = status;
    r.statusMessage = statusMessage;
    r.iaCount = 0;
    if (iaStatus >= 0) {
      for (let p = v.firstOptionOffset; p >= 0 && r.iaCount < DHCPV6_SERVER_MAX_IAS; p = v.nextOption(p)) {
        const code = readU16(v.buf, p);
        if (code !== Dhcpv6Option.IA_NA && code !== Dhcpv6Option.IA_TA && code !== Dhcpv6Option.IA_PD) continue;
        const ia: Dhcpv6IaStatus = r.ias[r.iaCount++];
        ia.type = code;
        ia.iaid = readU32(v.buf, p + 4);
        // §18.3.2: an IA_PD that gets no prefix says NoPrefixAvail (§21.13).
        const noPrefix = iaStatus === Dhcpv6Status.NO_ADDRS_AVAIL && code === Dhcpv6Option.IA_PD;
        ia.status = noPrefix ? Dhcpv6Status.NO_PREFIX_AVAIL : iaStatus;
        ia.message = noPrefix ? MSG_NO_PREFIX : iaStatus === Dhcpv6Status.NO_BINDING ? MSG_NO_BINDING : MSG_NO_ADDRS;
      }
    }
    const noOro = v.oroOffset < 0;
    this.setConfig(config && (noOro || v.requestsOption(Dhcpv6Option.DNS_SERVERS)), config && (noOro || v.requestsOption(Dhcpv6Option.DOMAIN_LIST)));
    r.informationRefreshTime = msgType === Dhcpv6MessageType.REPLY && v.msgType === Dhcpv6MessageType.INFORMATION_REQUEST ? this.refreshS : -1;
    const n = emitDhcpv6Reply(r, out, outOff);
    if (msgType === Dhcpv6MessageType.ADVERTISE) this.stats.txAdvertise++;
    else this.stats.txReply++;
    return n;
  }

  private setConfig(dns: boolean, domains: boolean): void {
    const r = this.reply;
    r.dnsServers = this.dnsServers;
    r.dnsServerCount = dns ? this.dnsServers.length / 16 : 0;
    r.domainList = this.domainList;
    r.domainListLength = domains ? this.domainList.length : 0;
  }
}
