/**
 * DHCPv4 server for the guest, behaving like libslirp 4.7's (`src/bootp.c`)
 * unless a line below says otherwise.
 *
 * Theory of operation
 * -------------------
 * The pool is a fixed array of `poolSize` slots; slot i is the address
 * poolStart + i (10.0.2.15 .. 10.0.2.30 by default). A slot is free, or bound
 * to one client MAC until `expiresMs`. There is no other state: no pending
 * offers, no per-xid records, no timers. `handle()` consumes one request and
 * writes at most one reply.
 *
 *   DISCOVER  requested address (option 50) if it is in the pool and free or
 *             already this MAC's; else this MAC's slot; else the lowest free
 *             slot; else no reply (pool exhausted).                  -> OFFER
 *   REQUEST   with option 50, or else with ciaddr (a renewing client): that
 *             address if it is in the pool and free or this MAC's    -> ACK
 *             otherwise                                              -> NAK
 *             with neither: this MAC's slot, else the lowest free    -> ACK
 *             (libslirp: "windows fix because it remembers its address")
 *   no option 53 (plain BOOTP, with or without the cookie): as a REQUEST
 *             without option 50; ciaddr is not looked at, as in libslirp.
 *   DECLINE, RELEASE, INFORM, anything else: ignored, counted.
 *
 * An OFFER binds the slot already, like libslirp, so the REQUEST that follows
 * finds it; OFFER and ACK both (re)start the lease at `nowMs`.
 *
 * What the caller (the stack) does around it
 * ------------------------------------------
 * - Feed it UDP payloads sent to port 67 whose IP destination is the gateway
 *   or 255.255.255.255 (libslirp udp.c); the source port is not checked.
 * - Send each reply (handle() > 0) from gateway:67 to 255.255.255.255:68, in an
 *   Ethernet broadcast frame from the gateway MAC. libslirp always broadcasts,
 *   whatever the broadcast flag says, and so do we: the guest has no address
 *   yet, and the broadcast needs no ARP entry.
 * - Learn the guest from `lastReply`: after an OFFER or ACK, clientMac owns
 *   yiaddr (libslirp adds that ARP entry on both). After a NAK, yiaddr is 0.
 *
 * Where this differs from libslirp, and why
 * -----------------------------------------
 * - Leases expire `leaseTimeS` after the last OFFER/ACK (libslirp never frees
 *   a slot). A client renews at T1 = half the lease (RFC 2131 §4.4.5), which
 *   restarts it; a slot whose client went away is reusable after one lease.
 * - A MAC owns at most one slot: binding it to a new slot frees its old one.
 *   libslirp can leave a MAC holding several (a DISCOVER with option 50 for a
 *   second free address), which leaks slots.
 * - DISCOVER without option 50 looks for the MAC's own slot before taking the
 *   lowest free one. libslirp takes the first slot that is free *or* the
 *   MAC's, which can hand a returning client a different address.
 * - NAK: yiaddr and siaddr 0, and option 54 included (RFC 2131 §4.3.2 and
 *   Table 3). libslirp's NAK carries yiaddr 255.255.255.255 (its broadcast
 *   destination leaking into the header) and siaddr = gateway, without 54.
 * - Option 6 lists every configured DNS server (libslirp has one), and option
 *   26 (interface MTU) is sent when `mtu` is set; slirp4netns sends none.
 * - Replies are padded to 300 bytes (RFC 1542 §2.1); libslirp's are 548.
 * - Malformed requests (see wire/dhcp.ts: short header, bad op, non-Ethernet,
 *   bad option lengths, no end option) are dropped and counted. libslirp
 *   answers anything at least a BOOTP header long whose op is 1.
 * Same as libslirp: ACK/OFFER header has flags, ciaddr and giaddr 0 and
 * siaddr = gateway; options 53, 54, 1, 3, 6, 51 in that order; a REQUEST's
 * server id (54) is not compared with ours (there is no other server on the
 * link); RELEASE and DECLINE do not free anything.
 */
import {
  BootpOp,
  DHCP_MIN_LEN,
  DhcpError,
  DhcpMessageType,
  DhcpView,
  dhcpEmitLength,
  emitDhcp,
  newDhcpRepr,
  type DhcpRepr,
} from '../wire/dhcp.js';

export interface DhcpServerOptions {
  /** Network address, e.g. 10.0.2.0. */
  network: number;
  netmask: number;
  /** Router (option 3), server identifier (option 54) and siaddr: net+2. */
  gateway: number;
  /** Option 6, in order; empty omits the option. Default plan: [net+3]. */
  dns: readonly number[];
  /** First pool address: net+15. */
  poolStart: number;
  /** Number of pool addresses: 16 (libslirp NB_BOOTP_CLIENTS). */
  poolSize: number;
  /** Option 51: 86400 (libslirp LEASE_TIME). */
  leaseTimeS: number;
  /** Option 26 when not null. */
  mtu: number | null;
}

export interface DhcpLease {
  mac: number;
  ip: number;
  expiresMs: number;
}

/** What the last reply was about; overwritten by each handle() that returns > 0. */
export interface DhcpReplyInfo {
  /** OFFER, ACK or NAK. */
  messageType: number;
  clientMac: number;
  /** The address offered or acknowledged; 0 for a NAK. */
  yiaddr: number;
  xid: number;
}

/**
 * Every datagram handed to handle() bumps exactly one rx* or one of the
 * malformed drop counters (dropTruncated, dropBadOp, dropBadHtype,
 * dropBadOption, dropNotRequest). dropIgnoredType and dropPoolExhausted are
 * outcomes of messages already counted under rx*.
 */
export interface DhcpServerStats {
  rxDiscover: number;
  rxRequest: number;
  /** No option 53 (plain BOOTP); answered as a REQUEST. */
  rxBootp: number;
  rxDecline: number;
  rxRelease: number;
  rxInform: number;
  /** Any other option 53 value (OFFER/ACK/NAK sent to the server, unknown types). */
  rxOther: number;
  txOffer: number;
  txAck: number;
  txNak: number;
  dropTruncated: number;
  dropBadOp: number;
  dropBadHtype: number;
  dropBadOption: number;
  /** op is BOOTREPLY: another server's reply, not ours to answer. */
  dropNotRequest: number;
  /** DECLINE, RELEASE, INFORM and other types libslirp does not answer. */
  dropIgnoredType: number;
  /** Every slot is bound to another MAC. */
  dropPoolExhausted: number;
  leasesExpired: number;
}

const FREE = -1;
/** Shared and never written: emitDhcp only reads the list. */
const NO_DNS: number[] = [];

/** libslirp's NAK text (bootp.c), ASCII. */
const NAK_MESSAGE = Uint8Array.from('requested address not available', (c) => c.charCodeAt(0));

export class DhcpServer {
  readonly stats: DhcpServerStats = {
    rxDiscover: 0,
    rxRequest: 0,
    rxBootp: 0,
    rxDecline: 0,
    rxRelease: 0,
    rxInform: 0,
    rxOther: 0,
    txOffer: 0,
    txAck: 0,
    txNak: 0,
    dropTruncated: 0,
    dropBadOp: 0,
    dropBadHtype: 0,
    dropBadOption: 0,
    dropNotRequest: 0,
    dropIgnoredType: 0,
    dropPoolExhausted: 0,
    leasesExpired: 0,
  };
  readonly lastReply: DhcpReplyInfo = { messageType: 0, clientMac: 0, yiaddr: 0, xid: 0 };

  private readonly opts: DhcpServerOptions;
  private readonly dns: number[];
  /** Client MAC per slot, FREE when unbound. */
  private readonly slotMac: number[];
  private readonly slotExpiresMs: Float64Array;
  private readonly view = new DhcpView();
  private readonly reply: DhcpRepr = newDhcpRepr();
  private readonly replyLen: number;

  constructor(opts: DhcpServerOptions) {
    if (!Number.isInteger(opts.poolSize) || opts.poolSize < 1 || opts.poolSize > 65536) {
      throw new RangeError('DhcpServer: poolSize must be an integer in 1..65536');
    }
    const poolEnd = opts.poolStart + opts.poolSize - 1;
    if (
      ((opts.poolStart & opts.netmask) >>> 0) !== opts.network ||
      ((poolEnd & opts.netmask) >>> 0) !== opts.network ||
      poolEnd > 0xffff_ffff
    ) {
      throw new RangeError('DhcpServer: the pool must lie inside the network');
    }
    if (!(opts.leaseTimeS > 0 && opts.leaseTimeS <= 0xffff_ffff)) {
      throw new RangeError('DhcpServer: leaseTimeS must be in 1..2^32-1');
    }
    if (opts.mtu !== null && !(Number.isInteger(opts.mtu) && opts.mtu >= 68 && opts.mtu <= 65535)) {
      // RFC 2132 §5.1: 68 is the smallest legal MTU.
      throw new RangeError('DhcpServer: mtu must be null or an integer in 68..65535');
    }
    if (opts.dns.length > 63) throw new RangeError('DhcpServer: at most 63 DNS servers');
    this.opts = { ...opts };
    this.dns = [...opts.dns];
    this.slotMac = new Array<number>(opts.poolSize).fill(FREE);
    this.slotExpiresMs = new Float64Array(opts.poolSize);

    const r = this.reply;
    r.op = BootpOp.REPLY;
    r.subnetMask = opts.netmask;
    r.router = opts.gateway;
    r.dns = this.dns;
    r.leaseTimeS = opts.leaseTimeS;
    r.mtu = opts.mtu;
    r.serverId = opts.gateway;
    r.messageType = DhcpMessageType.ACK;
    const ackLen = dhcpEmitLength(r);
    r.subnetMask = r.router = r.leaseTimeS = r.mtu = null;
    r.dns = NO_DNS;
    r.message = NAK_MESSAGE;
    const nakLen = dhcpEmitLength(r);
    this.replyLen = Math.max(ackLen, nakLen, DHCP_MIN_LEN);
  }

  /** The most bytes one reply can take; `out` must have this much room at outOff. */
  get maxReplyLength(): number {
    return this.replyLen;
  }

  /**
   * Consumes one DHCP message (the UDP payload at buf[off, off+len)) and
   * writes the reply message into `out` at `outOff`. Returns the reply's
   * length, or 0 when there is nothing to send. Never throws on bad input;
   * throws RangeError if `out` has less than `maxReplyLength` bytes of room.
   */
  handle(buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, nowMs: number): number {
    if (outOff < 0 || outOff + this.replyLen > out.length) {
      throw new RangeError('DhcpServer.handle: output buffer too small');
    }
    this.expire(nowMs);
    const st = this.stats;
    const v = this.view.wrap(buf, off, len);
    const code = v.check();
    switch (code) {
      case DhcpError.OK:
      case DhcpError.NO_MESSAGE_TYPE:
      case DhcpError.BAD_MAGIC:
        break;
      case DhcpError.TRUNCATED:
        st.dropTruncated++;
        return 0;
      case DhcpError.BAD_OP:
        st.dropBadOp++;
        return 0;
      case DhcpError.BAD_HTYPE:
        st.dropBadHtype++;
        return 0;
      default:
        st.dropBadOption++;
        return 0;
    }
    // libslirp bootp_input(): only BOOTREQUEST is looked at.
    if (v.op !== BootpOp.REQUEST) {
      st.dropNotRequest++;
      return 0;
    }

    const type = code === DhcpError.OK ? v.messageType : 0;
    switch (type) {
      case 0:
        st.rxBootp++;
        break;
      case DhcpMessageType.DISCOVER:
        st.rxDiscover++;
        break;
      case DhcpMessageType.REQUEST:
        st.rxRequest++;
        break;
      case DhcpMessageType.DECLINE:
        st.rxDecline++;
        st.dropIgnoredType++;
        return 0;
      case DhcpMessageType.RELEASE:
        st.rxRelease++;
        st.dropIgnoredType++;
        return 0;
      case DhcpMessageType.INFORM:
        st.rxInform++;
        st.dropIgnoredType++;
        return 0;
      default:
        st.rxOther++;
        st.dropIgnoredType++;
        return 0;
    }

    const mac = v.chaddr;
    let requested = code === DhcpError.OK ? v.requestedIp : 0;
    // libslirp dhcp_decode(): a REQUEST without option 50 names its address in
    // ciaddr (RENEWING/REBINDING, RFC 2131 §4.3.2); only for a real option 53.
    if (requested === 0 && type === DhcpMessageType.REQUEST) requested = v.ciaddr;

    let slot: number;
    let replyType: number;
    if (type === DhcpMessageType.DISCOVER) {
      slot = requested !== 0 ? this.requestSlot(requested, mac) : -1;
      if (slot < 0) slot = this.newSlot(mac);
      replyType = DhcpMessageType.OFFER;
    } else if (requested !== 0) {
      slot = this.requestSlot(requested, mac);
      replyType = slot < 0 ? DhcpMessageType.NAK : DhcpMessageType.ACK;
    } else {
      // Plain BOOTP, or a REQUEST naming no address at all.
      slot = this.newSlot(mac);
      replyType = DhcpMessageType.ACK;
    }
    if (slot < 0 && replyType !== DhcpMessageType.NAK) {
      st.dropPoolExhausted++;
      return 0;
    }

    const r = this.reply;
    r.xid = v.xid;
    r.chaddr = mac;
    r.messageType = replyType;
    r.serverId = this.opts.gateway;
    if (replyType === DhcpMessageType.NAK) {
      r.yiaddr = 0;
      r.siaddr = 0;
      r.subnetMask = r.router = r.leaseTimeS = r.mtu = null;
      r.dns = NO_DNS;
      r.message = NAK_MESSAGE;
      st.txNak++;
    } else {
      this.bind(slot, mac, nowMs);
      r.yiaddr = (this.opts.poolStart + slot) >>> 0;
      r.siaddr = this.opts.gateway;
      r.subnetMask = this.opts.netmask;
      r.router = this.opts.gateway;
      r.dns = this.dns;
      r.leaseTimeS = this.opts.leaseTimeS;
      r.mtu = this.opts.mtu;
      r.message = null;
      if (replyType === DhcpMessageType.OFFER) st.txOffer++;
      else st.txAck++;
    }
    const last = this.lastReply;
    last.messageType = replyType;
    last.clientMac = mac;
    last.yiaddr = r.yiaddr;
    last.xid = r.xid;
    return emitDhcp(r, out, outOff);
  }

  /**
   * Bound slots in address order. With `nowMs`, leases that have expired by
   * then are left out (they are freed for real at the next handle()).
   */
  leases(nowMs?: number): DhcpLease[] {
    const out: DhcpLease[] = [];
    for (let i = 0; i < this.slotMac.length; i++) {
      const mac = this.slotMac[i];
      if (mac === FREE) continue;
      const expiresMs = this.slotExpiresMs[i];
      if (nowMs !== undefined && nowMs >= expiresMs) continue;
      out.push({ mac, ip: (this.opts.poolStart + i) >>> 0, expiresMs });
    }
    return out;
  }

  private expire(nowMs: number): void {
    for (let i = 0; i < this.slotMac.length; i++) {
      if (this.slotMac[i] !== FREE && nowMs >= this.slotExpiresMs[i]) {
        this.slotMac[i] = FREE;
        this.stats.leasesExpired++;
      }
    }
  }

  /** libslirp request_addr(): the slot of `ip` if it is in the pool and free or already `mac`'s. */
  private requestSlot(ip: number, mac: number): number {
    const i = ip - this.opts.poolStart;
    if (i < 0 || i >= this.slotMac.length) return -1;
    const owner = this.slotMac[i];
    return owner === FREE || owner === mac ? i : -1;
  }

  /** `mac`'s slot, else the lowest free one, else -1 (libslirp find_addr / get_new_addr). */
  private newSlot(mac: number): number {
    const own = this.slotMac.indexOf(mac);
    return own >= 0 ? own : this.slotMac.indexOf(FREE);
  }

  private bind(slot: number, mac: number, nowMs: number): void {
    const old = this.slotMac.indexOf(mac);
    if (old >= 0 && old !== slot) this.slotMac[old] = FREE;
    this.slotMac[slot] = mac;
    this.slotExpiresMs[slot] = nowMs + this.opts.leaseTimeS * 1000;
  }
}
