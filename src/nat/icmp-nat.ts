/**
 * ICMP echo to the outside, through unprivileged ping sockets
 * (SOCK_DGRAM/IPPROTO_ICMP).
 *
 * Theory of operation
 * -------------------
 * One ping socket per guest (address, echo identifier): the kernel gives each
 * socket an identifier of its own and rewrites every request with it, so
 * replies are told apart by socket, and the guest's identifier is put back
 * into each reply (with the checksum recomputed). Sequence numbers and
 * payloads pass through untouched. Replies from the host's loopback appear
 * to come from the gateway, the address the guest pinged.
 *
 * Ping sockets need the caller's gid in net.ipv4.ping_group_range. When they
 * are not permitted, that is said once through `log` and every echo towards
 * the outside is dropped and counted (libslirp falls back to raw sockets,
 * which need real root, and then to UDP port 7; we do neither).
 *
 * Mappings are bounded (LRU) and expire after 60 s without a request.
 *
 * ICMPv6 echo works the same way through ICMPv6 ping sockets (governed by
 * the same sysctl), keyed by the guest's IPv6 address id; replies from ::1
 * come from fd00::2, and their checksum is recomputed for the guest's
 * addresses (the kernel's covers the host's pseudo-header).
 */
import { Proto } from '../policy/rules.js';
import { LRUCache } from 'lru-cache';
import type { AddressPlan } from '../ip/address-plan.js';
import type { IcmpErrors } from '../ip/icmp-errors.js';
import type { Ipv4Output } from '../ip/ipv4-output.js';
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import type { Ipv6Output } from '../ip/ipv6-output.js';
import type { Ipv6Plan } from '../ip/ipv6-plan.js';
import { emitIcmpv6Echo, ICMPV6_HEADER_LEN, Icmpv6Type } from '../wire/icmpv6.js';
import { isLoopback6 } from '../wire/ipv6-address.js';
import { Drop, type DropCounters } from '../stats.js';
import type { TimerOwner, TimerQueue } from '../timer-queue.js';
import { emitIcmpv4Echo, Icmpv4Type, Icmpv4Unreach, ICMPV4_HEADER_LEN } from '../wire/icmpv4.js';
import { IpProtocol } from '../wire/ipv4.js';
import type { HostNetwork, HostPing6Socket, HostPingSocket } from './host.js';
import { Verdict, type AddressPolicy, type Destination } from './policy.js';

export interface IcmpNatOptions {
  plan: AddressPlan;
  policy: AddressPolicy;
  host: HostNetwork;
  ip: Ipv4Output;
  icmp: IcmpErrors;
  timers: TimerQueue<TimerOwner>;
  drops: DropCounters;
  now: () => number;
  kick: () => void;
  log: (message: string) => void;
  outboundAddress?: number;
  /** The IPv6 side, or null when IPv6 is off. */
  v6: { ids: Ipv6Ids; plan: Ipv6Plan; ip: Ipv6Output; outboundAddress: Uint8Array | null } | null;
  maxMappings?: number;
  idleTimeoutMs?: number;
}

export interface IcmpNatStats {
  mappings: number;
  requests: number;
  replies: number;
  sendErrors: number;
  notPermitted: number;
}

const EHOSTUNREACH = 113;
const ENETUNREACH = 101;

class EchoMapping implements TimerOwner {
  timerDeadline = Infinity;
  lastActiveMs: number;
  closed = false;

  constructor(
    readonly key: number,
    readonly guestIp: number,
    readonly guestIdent: number,
    public guestMac: number,
    readonly socket: HostPingSocket | HostPing6Socket,
    nowMs: number,
    private readonly nat: IcmpNat,
  ) {
    this.lastActiveMs = nowMs;
  }

  onTimer(nowMs: number): void {
    this.nat.checkIdle(this, nowMs);
  }
}

export class IcmpNat {
  private readonly table: LRUCache<number, EchoMapping>;
  private readonly dest: Destination = { verdict: Verdict.DROP, hostIp: 0, icmpCode: 0 };
  private readonly idleMs: number;
  /** Whether the last attempt to open a ping socket worked (null: none yet). */
  private permitted: boolean | null = null;
  private readonly counters = { requests: 0, replies: 0, sendErrors: 0, notPermitted: 0 };

  constructor(private readonly o: IcmpNatOptions) {
    this.idleMs = o.idleTimeoutMs ?? 60_000;
    this.table = new LRUCache<number, EchoMapping>({
      max: o.maxMappings ?? 1024,
      dispose: (m) => {
        m.closed = true;
        this.o.timers.schedule(m, Infinity);
        m.socket.close();
        if (m.guestIp < 0) this.o.v6!.ids.release(m.guestIp);
      },
    });
  }

  get stats(): IcmpNatStats {
    return { mappings: this.table.size, ...this.counters };
  }

  /** An ICMPv6 echo request (icmpv6-input.ts EchoRelay6): the same as echo(), for IPv6 ids. */
  echo6(buf: Uint8Array, ipOff: number, ipLen: number, off: number, len: number, src: number, dst: number, ident: number, srcMac: number, nowMs: number): void {
    this.echo(buf, ipOff, ipLen, off, len, src, dst, ident, srcMac, nowMs);
  }

  /** An echo request from the guest to `dst` (either family); `ipOff`/`ipLen` is the whole datagram, quoted in errors. */
  echo(buf: Uint8Array, ipOff: number, ipLen: number, off: number, len: number, src: number, dst: number, ident: number, srcMac: number, nowMs: number): void {
    const d = this.o.policy.resolve(dst, 0, this.dest, Proto.ICMP, nowMs);
    if (d.verdict === Verdict.DROP || d.verdict === Verdict.DNS) {
      this.o.drops.add(Drop.ICMP_UNHANDLED);
      return;
    }
    if (d.verdict === Verdict.REFUSE) {
      this.o.icmp.unreachable(d.icmpCode, buf, ipOff, ipLen, src, srcMac);
      return;
    }
    const v6 = src < 0;
    // Negative for IPv6 ids: the families' keys never meet.
    const key = src * 0x1_0000 + ident;
    let m = this.table.get(key);
    if (m === undefined) {
      // Tried for every new mapping (a failing socket() costs microseconds),
      // so a ping_group_range widened later takes effect; said only once.
      const opened = v6 ? this.o.host.openPing6Socket(this.o.v6!.outboundAddress) : this.o.host.openPingSocket(this.o.outboundAddress);
      if (typeof opened === 'string') {
        if (this.permitted !== false) this.o.log(`usernet: ${opened}; ICMP echo to the outside is dropped`);
        this.permitted = false;
        this.counters.notPermitted++;
        this.o.drops.add(Drop.ICMP_NOT_PERMITTED);
        return;
      }
      this.permitted = true;
      const mapping = new EchoMapping(key, src, ident, srcMac, opened, nowMs, this);
      if (v6) {
        this.o.v6!.ids.acquire(src);
        (opened as HostPing6Socket).onReply((from, rbuf, roff, rlen) => this.reply6(mapping, from, rbuf, roff, rlen));
      } else (opened as HostPingSocket).onReply((from, rbuf, roff, rlen) => this.reply(mapping, from, rbuf, roff, rlen));
      this.table.set(key, mapping);
      this.o.timers.schedule(mapping, nowMs + this.idleMs);
      m = mapping;
    }
    m.guestMac = srcMac;
    m.lastActiveMs = nowMs;
    this.counters.requests++;
    const err = v6 ? (m.socket as HostPing6Socket).send(this.o.v6!.ids.bytes(d.hostIp), 0, buf, off, len) : (m.socket as HostPingSocket).send(d.hostIp, buf, off, len);
    if (err !== 0) {
      this.counters.sendErrors++;
      if (err === EHOSTUNREACH || err === ENETUNREACH) {
        this.o.icmp.unreachable(err === EHOSTUNREACH ? Icmpv4Unreach.HOST : Icmpv4Unreach.NET, buf, ipOff, ipLen, src, srcMac);
      }
    }
  }

  checkIdle(m: EchoMapping, nowMs: number): void {
    if (m.closed) return;
    const idleAt = m.lastActiveMs + this.idleMs;
    if (idleAt > nowMs) this.o.timers.schedule(m, idleAt);
    else this.table.delete(m.key);
  }

  close(): void {
    this.table.clear();
  }

  private reply6(m: EchoMapping, from: Uint8Array, buf: Uint8Array, off: number, len: number): void {
    if (m.closed || len < ICMPV6_HEADER_LEN || buf[off] !== Icmpv6Type.ECHO_REPLY) return;
    const { ids, plan, ip } = this.o.v6!;
    this.counters.replies++;
    m.lastActiveMs = this.o.now();
    const src = isLoopback6(from, 0) ? plan.gateway : ids.id(from, 0);
    const seq = (buf[off + 6] << 8) | buf[off + 7];
    const at = ip.begin(len);
    emitIcmpv6Echo(Icmpv6Type.ECHO_REPLY, m.guestIdent, seq, buf, off + ICMPV6_HEADER_LEN, len - ICMPV6_HEADER_LEN, ip.buf, at, ids.addrSum(src, m.guestIp));
    ip.send(src, m.guestIp, IpProtocol.ICMPV6, 64, m.guestMac, len);
    this.o.kick();
  }

  private reply(m: EchoMapping, from: number, buf: Uint8Array, off: number, len: number): void {
    if (m.closed || len < ICMPV4_HEADER_LEN || buf[off] !== Icmpv4Type.ECHO_REPLY) return;
    this.counters.replies++;
    m.lastActiveMs = this.o.now();
    const seq = (buf[off + 6] << 8) | buf[off + 7];
    const ip = this.o.ip;
    const at = ip.begin(len);
    emitIcmpv4Echo(Icmpv4Type.ECHO_REPLY, m.guestIdent, seq, buf, off + ICMPV4_HEADER_LEN, len - ICMPV4_HEADER_LEN, ip.buf, at);
    const r = ip.repr;
    r.src = from >>> 24 === 127 ? this.o.plan.gateway : from;
    r.dst = m.guestIp;
    r.protocol = IpProtocol.ICMP;
    r.ttl = 64;
    r.tos = 0;
    r.dontFragment = false;
    ip.finish(m.guestMac, len);
    this.o.kick();
  }
}
