/**
 * UDP NAT: one host datagram socket per guest (address, port).
 *
 * Theory of operation
 * -------------------
 * The first datagram from a guest (address, port) creates a mapping with its
 * own unconnected host socket; every later datagram from that guest port,
 * to any destination, leaves through the same socket and source port
 * (endpoint-independent mapping, RFC 4787 REQ-1), and whatever any remote
 * sends to that port reaches the guest (endpoint-independent filtering), as
 * libslirp does. Replies from the host's loopback appear to come from the
 * gateway, the address the guest used to reach it.
 *
 * Mappings expire after 240 s without traffic in either direction, or 10 s
 * when the guest only spoke to port 53 (DNS clients use a fresh port per
 * query; libslirp does the same). Expiry runs from the stack's one timer: a
 * mapping is checked when its deadline passes and re-armed if it was used
 * since. The table is an LRU bounded by `maxMappings`; the least recently
 * used mapping is closed to make room.
 *
 * The host sockets are the addon's (native-udp.ts), not Node's dgram: a
 * guest datagram is sent synchronously straight from the link's read buffer
 * (the kernel copies it), and replies arrive with numeric source addresses
 * in a shared receive buffer, copied once into the output frame. ICMP errors
 * about our datagrams (port unreachable, ...) come back through the socket's
 * error queue (IP_RECVERR) and are relayed to the guest, quoting a rebuilt
 * copy of the datagram it sent.
 *
 * IPv6 works the same way with the guest's IPv6 (address, port) as the key
 * (addresses are numbers either way, src/ip/ipv6-ids.ts) and an IPv6 host
 * socket per mapping (IPV6_V6ONLY: it can never reach the host's IPv4
 * loopback through a mapped address). Replies from ::1 come from fd00::2.
 */
import { Proto } from '../policy/rules.js';
import { constants as osConstants } from 'node:os';
import { LRUCache } from 'lru-cache';
import type { AddressPlan } from '../ip/address-plan.js';
import type { IcmpErrors } from '../ip/icmp-errors.js';
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import type { Ipv6Plan } from '../ip/ipv6-plan.js';
import { Drop, type DropCounters } from '../stats.js';
import type { TimerOwner, TimerQueue } from '../timer-queue.js';
import type { UdpOutput } from '../udp/udp-output.js';
import type { HostNetwork, HostUdp6Socket, HostUdpSocket } from './host.js';
import { emitIpv4, IPV4_HEADER_LEN, IpProtocol, newIpv4Repr } from '../wire/ipv4.js';
import { emitIpv6, IPV6_HEADER_LEN, newIpv6Repr } from '../wire/ipv6.js';
import { isLoopback6 } from '../wire/ipv6-address.js';
import { emitUdpHeader, UDP_HEADER_LEN } from '../wire/udp.js';
import { Icmpv6Type } from '../wire/icmpv6.js';
import { Icmpv4Type, Icmpv4Unreach } from '../wire/icmpv4.js';
import { Verdict, type AddressPolicy, type Destination } from './policy.js';

const { EAFNOSUPPORT } = osConstants.errno;

export interface UdpNatOptions {
  plan: AddressPlan;
  policy: AddressPolicy;
  host: HostNetwork;
  output: UdpOutput;
  icmp: IcmpErrors;
  timers: TimerQueue<TimerOwner>;
  drops: DropCounters;
  now: () => number;
  kick: () => void;
  neighbourMac: (ip: number) => number | undefined;
  requestMac: (ip: number) => void;
  /** Per-mapping events for --debug / USERNET_DEBUG. */
  debug?: (message: string) => void;
  outboundAddress?: string;
  /** --outbound-addr6: local address of the IPv6 host sockets. */
  outboundAddress6?: string;
  ids: Ipv6Ids;
  /** The IPv6 plan, or null when IPv6 is off. */
  plan6: Ipv6Plan | null;
  /** Mappings at once (default 4096); the least recently used is closed to make room. */
  maxMappings?: number;
  idleTimeoutMs?: number;
  dnsIdleTimeoutMs?: number;
}

export interface UdpNatStats {
  mappings: number;
  created: number;
  expired: number;
  evicted: number;
  datagramsOut: number;
  datagramsIn: number;
  sendErrors: number;
  /** New mappings refused because no host socket could be opened (EMFILE, ...). */
  openErrors: number;
  /** ICMP unreachable errors from the host network passed on to the guest. */
  unreachableFromHost: number;
}

export interface UdpMappingInfo {
  proto: 'udp';
  guest: string;
  /** Any remote: the mapping is endpoint-independent. */
  remote: '*';
  /** The host socket's local address and port. */
  host: string;
  state: 'ACTIVE';
  guestToHostBytes: number;
  hostToGuestBytes: number;
  guestToHostDatagrams: number;
  hostToGuestDatagrams: number;
  ageMs: number;
}

class UdpMapping implements TimerOwner {
  timerDeadline = Infinity;
  lastActiveMs: number;
  /** Until a datagram goes to a port other than 53, the short DNS timeout applies. */
  dnsOnly = true;
  guestToHost = 0;
  hostToGuest = 0;
  guestToHostBytes = 0;
  hostToGuestBytes = 0;
  closed = false;

  constructor(
    private readonly nat: UdpNat,
    readonly key: number,
    readonly guestIp: number,
    readonly guestPort: number,
    public guestMac: number,
    readonly socket: HostUdpSocket | HostUdp6Socket,
    readonly createdMs: number,
  ) {
    this.lastActiveMs = createdMs;
  }

  onTimer(nowMs: number): void {
    this.nat.checkIdle(this, nowMs);
  }
}

export class UdpNat {
  private readonly table: LRUCache<number, UdpMapping>;
  private readonly dest: Destination = { verdict: Verdict.DROP, hostIp: 0, icmpCode: 0 };
  private readonly idleMs: number;
  private readonly dnsIdleMs: number;
  /** Client ↔ guest pairs of UDP port forwards, by reverseKey(guest, client). */
  private readonly reverse = new LRUCache<string, { sendBack: (payload: Buffer) => void; lastActiveMs: number; clientIp: number }>({
    max: 4096,
    // An IPv6 client's id is held while its pair lives.
    dispose: (r) => {
      if (r.clientIp < 0) this.o.ids.release(r.clientIp);
    },
  });
  private readonly counters = { created: 0, expired: 0, evicted: 0, datagramsOut: 0, datagramsIn: 0, sendErrors: 0, openErrors: 0, unreachableFromHost: 0 };
  private readonly quoted = new Uint8Array(IPV6_HEADER_LEN + UDP_HEADER_LEN);
  private readonly quotedIp6 = { ...newIpv6Repr(), nextHeader: IpProtocol.UDP };
  private readonly quotedIp = { ...newIpv4Repr(), protocol: IpProtocol.UDP, ttl: 64 };
  private readonly quotedUdp = { srcPort: 0, dstPort: 0, payloadLength: 0 };

  constructor(private readonly o: UdpNatOptions) {
    this.idleMs = o.idleTimeoutMs ?? 240_000;
    this.dnsIdleMs = o.dnsIdleTimeoutMs ?? 10_000;
    this.table = new LRUCache<number, UdpMapping>({
      max: o.maxMappings ?? 4096,
      dispose: (m, _key, reason) => {
        if (reason === 'evict') this.counters.evicted++;
        this.closeMapping(m);
      },
    });
  }

  get stats(): UdpNatStats {
    return { mappings: this.table.size, ...this.counters };
  }

  /**
   * A datagram from the guest, either family; `ip`/`ipOff`/`ipLen` is the
   * whole IP datagram, quoted if the destination is refused.
   */
  input(
    payload: Uint8Array,
    off: number,
    len: number,
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    srcMac: number,
    ipOff: number,
    ipLen: number,
    nowMs: number,
  ): void {
    if (this.reverse.size > 0) {
      // A reply to a client of a UDP port forward goes back through the forward's socket.
      const r = this.reverse.get(reverseKey(src, srcPort, dst, dstPort));
      if (r !== undefined && nowMs - r.lastActiveMs < this.idleMs) {
        r.lastActiveMs = nowMs;
        this.counters.datagramsOut++;
        r.sendBack(Buffer.copyBytesFrom(payload, off, len));
        return;
      }
    }
    const d = this.o.policy.resolve(dst, dstPort, this.dest, Proto.UDP, nowMs);
    // DNS datagrams never get here (udp-input.ts serves them); with DNS disabled net+3 is refused.
    if (d.verdict === Verdict.DROP || d.verdict === Verdict.DNS) {
      this.o.drops.add(Drop.UDP_NO_ROUTE);
      return;
    }
    if (d.verdict === Verdict.REFUSE) {
      this.o.icmp.unreachable(d.icmpCode, payload, ipOff, ipLen, src, srcMac);
      return;
    }
    // Negative for IPv6 ids: the families' keys never meet.
    const key = src * 0x1_0000 + srcPort;
    let m = this.table.get(key);
    if (m === undefined) {
      const opened = this.open(key, src, srcPort, srcMac, nowMs);
      if (typeof opened === 'number') {
        this.o.drops.add(Drop.UDP_NO_SOCKET);
        // A host without IPv6 cannot carry it anywhere: say so at once, as TCP does.
        if (opened === EAFNOSUPPORT) this.o.icmp.unreachable(Icmpv4Unreach.NET, payload, ipOff, ipLen, src, srcMac);
        return;
      }
      m = opened;
    }
    m.guestMac = srcMac;
    m.lastActiveMs = nowMs;
    if (dstPort !== 53) m.dnsOnly = false;
    m.guestToHost++;
    m.guestToHostBytes += len;
    this.counters.datagramsOut++;
    // Synchronous: the kernel has copied the payload out of the link's read
    // buffer when send returns. EAGAIN/ENOBUFS drop the datagram.
    const e = d.hostIp >= 0 ? (m.socket as HostUdpSocket).send(d.hostIp, dstPort, payload, off, len) : (m.socket as HostUdp6Socket).send6(this.o.ids.bytes(d.hostIp), 0, dstPort, payload, off, len);
    if (e !== 0) this.counters.sendErrors++;
  }

  /**
   * A datagram from a client of a UDP port forward, to the guest from the
   * client's address (`clientIp`, already mapped: loopback clients appear as
   * the gateway). The guest's replies to that address and port go back
   * through `sendBack` while the pair is active (same idle timeout as
   * outbound mappings). Returns false when the guest's MAC is not known yet
   * (an ARP request went out; the datagram is dropped, as a router would).
   */
  forwardToGuest(clientIp: number, clientPort: number, guestIp: number, guestPort: number, msg: Uint8Array, sendBack: (payload: Buffer) => void): boolean {
    const now = this.o.now();
    const mac = this.o.neighbourMac(guestIp);
    if (mac === undefined) {
      this.o.requestMac(guestIp);
      this.o.kick();
      return false;
    }
    const key = reverseKey(guestIp, guestPort, clientIp, clientPort);
    const r = this.reverse.get(key);
    if (r === undefined) {
      if (clientIp < 0) this.o.ids.acquire(clientIp);
      this.reverse.set(key, { sendBack, lastActiveMs: now, clientIp });
    }
    else {
      r.sendBack = sendBack;
      r.lastActiveMs = now;
    }
    this.counters.datagramsIn++;
    this.o.output.send(clientIp, clientPort, guestIp, guestPort, mac, msg, 0, msg.length);
    this.o.kick();
    return true;
  }

  list(nowMs: number): UdpMappingInfo[] {
    const out: UdpMappingInfo[] = [];
    for (const m of this.table.values()) {
      out.push({
        proto: 'udp',
        guest: this.o.ids.formatWithPort(m.guestIp, m.guestPort),
        remote: '*',
        host: m.guestIp >= 0 ? `${this.o.outboundAddress ?? '0.0.0.0'}:${m.closed ? 0 : m.socket.localPort}` : `[${this.o.outboundAddress6 ?? '::'}]:${m.closed ? 0 : m.socket.localPort}`,
        state: 'ACTIVE',
        guestToHostBytes: m.guestToHostBytes,
        hostToGuestBytes: m.hostToGuestBytes,
        guestToHostDatagrams: m.guestToHost,
        hostToGuestDatagrams: m.hostToGuest,
        ageMs: nowMs - m.createdMs,
      });
    }
    return out;
  }

  close(): void {
    this.table.clear();
    this.reverse.clear();
  }

  checkIdle(m: UdpMapping, nowMs: number): void {
    if (m.closed) return;
    const idleAt = m.lastActiveMs + (m.dnsOnly ? this.dnsIdleMs : this.idleMs);
    if (idleAt > nowMs) {
      this.o.timers.schedule(m, idleAt);
      return;
    }
    this.counters.expired++;
    this.o.debug?.(`udp ${this.o.ids.formatWithPort(m.guestIp, m.guestPort)}: expired after ${nowMs - m.lastActiveMs | 0} ms idle`);
    this.table.delete(m.key);
  }

  /** A new mapping and its host socket, or the errno of the host socket that could not be opened. */
  private open(key: number, guestIp: number, guestPort: number, guestMac: number, nowMs: number): UdpMapping | number {
    const v6 = guestIp < 0;
    const socket = v6 ? this.o.host.createUdp6Socket(this.o.outboundAddress6) : this.o.host.createUdpSocket(this.o.outboundAddress);
    if (typeof socket === 'number') {
      this.counters.openErrors++;
      this.o.debug?.(`udp ${this.o.ids.formatWithPort(guestIp, guestPort)}: no host socket (errno ${socket})`);
      return socket;
    }
    const m = new UdpMapping(this, key, guestIp, guestPort, guestMac, socket, nowMs);
    if (v6) {
      this.o.ids.acquire(guestIp);
      const s6 = socket as HostUdp6Socket;
      s6.onMessage6((src, srcPort, buf, off, len) => this.fromHost(m, this.hostSource6(src), srcPort, buf, off, len));
      s6.onIcmpError6((dst, dstPort, _errno, icmpType, icmpCode) => this.errorFromHost6(m, dst, dstPort, icmpType, icmpCode));
    } else {
      const s4 = socket as HostUdpSocket;
      s4.onMessage((src, srcPort, buf, off, len) => this.fromHost(m, src, srcPort, buf, off, len));
      s4.onIcmpError((dst, dstPort, _errno, icmpType, icmpCode) => this.errorFromHost(m, dst, dstPort, icmpType, icmpCode));
    }
    this.table.set(key, m);
    this.counters.created++;
    this.o.debug?.(`udp ${this.o.ids.formatWithPort(guestIp, guestPort)}: new mapping`);
    this.o.timers.schedule(m, nowMs + this.dnsIdleMs);
    return m;
  }

  /** A datagram for the guest; buf[off, off+len) is valid only during the call (the socket's receive buffer). */
  private fromHost(m: UdpMapping, src: number, srcPort: number, buf: Uint8Array, off: number, len: number): void {
    if (m.closed) return;
    // Replies from the host's loopback come from the gateway the guest addressed.
    if (src >= 0 && src >>> 24 === 127) src = this.o.plan.gateway;
    m.lastActiveMs = this.o.now();
    m.hostToGuest++;
    m.hostToGuestBytes += len;
    this.counters.datagramsIn++;
    this.o.output.send(src, srcPort, m.guestIp, m.guestPort, m.guestMac, buf, off, len);
    this.o.kick();
  }

  /**
   * The host got an ICMP destination unreachable for a datagram this mapping
   * sent: the guest gets the same, quoting the datagram as it sent it (the
   * error queue keeps no payload, so the IP and UDP headers are rebuilt).
   */
  private errorFromHost(m: UdpMapping, dst: number, dstPort: number, icmpType: number, icmpCode: number): void {
    if (m.closed || icmpType !== Icmpv4Type.DEST_UNREACHABLE) return;
    this.counters.unreachableFromHost++;
    const guestDst = dst >>> 24 === 127 ? this.o.plan.gateway : dst;
    const q = this.quoted;
    this.quotedIp.src = m.guestIp;
    this.quotedIp.dst = guestDst;
    this.quotedIp.payloadLength = UDP_HEADER_LEN;
    emitIpv4(this.quotedIp, q, 0);
    this.quotedUdp.srcPort = m.guestPort;
    this.quotedUdp.dstPort = dstPort;
    this.quotedUdp.payloadLength = 0;
    emitUdpHeader(this.quotedUdp, q, IPV4_HEADER_LEN);
    this.o.icmp.unreachable(icmpCode, q, 0, IPV4_HEADER_LEN + UDP_HEADER_LEN, m.guestIp, m.guestMac);
    this.o.kick();
  }

  /** The guest-visible source of a reply from the host's IPv6 address `src` (valid during the call): ::1 is fd00::2. */
  private hostSource6(src: Uint8Array): number {
    return isLoopback6(src, 0) ? this.o.plan6!.gateway : this.o.ids.id(src, 0);
  }

  /** errorFromHost for IPv6: Destination Unreachable from the host network, passed on with its code. */
  private errorFromHost6(m: UdpMapping, dst: Uint8Array, dstPort: number, icmpType: number, icmpCode: number): void {
    if (m.closed || icmpType !== Icmpv6Type.DEST_UNREACHABLE) return;
    this.counters.unreachableFromHost++;
    const ids = this.o.ids;
    const q = this.quoted;
    const r = this.quotedIp6;
    r.payloadLength = UDP_HEADER_LEN;
    const guestDst = this.hostSource6(dst);
    emitIpv6(r, ids.bytes(m.guestIp), 0, ids.bytes(guestDst), 0, q, 0);
    this.quotedUdp.srcPort = m.guestPort;
    this.quotedUdp.dstPort = dstPort;
    this.quotedUdp.payloadLength = 0;
    emitUdpHeader(this.quotedUdp, q, IPV6_HEADER_LEN);
    this.o.icmp.error6(Icmpv6Type.DEST_UNREACHABLE, icmpCode, 0, q, 0, IPV6_HEADER_LEN + UDP_HEADER_LEN, m.guestIp, m.guestMac);
    this.o.kick();
  }

  private closeMapping(m: UdpMapping): void {
    if (m.guestIp < 0 && !m.closed) this.o.ids.release(m.guestIp);
    m.closed = true;
    this.o.timers.schedule(m, Infinity);
    m.socket.close();
  }
}

/** Port forwards are rare, so their reverse lookups may build a string key. */
function reverseKey(guestIp: number, guestPort: number, remoteIp: number, remotePort: number): string {
  return `${guestIp}:${guestPort}>${remoteIp}:${remotePort}`;
}
