/**
 * TCP NAT: every guest connection is terminated by our own endpoint
 * (src/tcp) and relayed onto a host socket.
 *
 * Theory of operation
 * -------------------
 * The forwarder pattern (gVisor's tcp.Forwarder, libslirp's tcp_fconnect):
 *
 *   guest                     usernet                              host
 *   SYN ───────────────▶ flow CONNECTING ── connect() ───────────▶ listener
 *   (SYN retransmits are ignored while the host connect is pending)
 *                          ◀─ 'connect' ─────────────────────────
 *   ◀────────── SYN-ACK  endpoint.acceptSyn()             ECONNREFUSED → RST
 *   ACK, data ─────────▶ endpoint ── onData → socket.write() ───▶   EHOSTUNREACH → ICMP host unreachable
 *   ◀──────────── data   endpoint.write() ◀── 'data' ──────────    other errors → ICMP net unreachable
 *                                                                  no answer → RST after connectTimeoutMs
 *
 * The guest learns that a port is closed exactly as on a real network,
 * because the SYN-ACK waits for the host's answer.
 *
 * Backpressure, both ways, so nothing queues without bound:
 *  - guest → host: bytes delivered in order are written to the socket at
 *    once; what the socket has not flushed yet (`writableLength`) is reported
 *    to the endpoint as backlog and subtracted from the receive window we
 *    advertise. A slow host reader closes the window; 'drain' reopens it.
 *  - host → guest: socket data goes into the endpoint's send buffer; when
 *    the buffer is full the socket is paused, and resumed when guest ACKs
 *    free space (onSendSpace).
 *
 * A stack-wide byte budget (`bufferBytes`, default 256 MiB) caps what all
 * flows together hold: bytes in the endpoints' send buffers (host → guest,
 * unacknowledged) plus bytes host sockets have not flushed (guest → host).
 * Each flow's share is counted as it changes (TcpFlow.account). Over the
 * budget, a flow that receives host data pauses its socket (so it holds at
 * most one host read, ≤ 256 KiB, beyond its share); and no flow is
 * offered more receive window than what is left of the budget (the guest may
 * still send what earlier windows allowed: the overshoot is bounded by them).
 * Below three quarters of it, every flow held back that way resumes and
 * reports its window again.
 *
 * Closing mirrors each direction on its own: a guest FIN ends the socket's
 * writable side, the socket's 'end' makes the endpoint send FIN; RSTs map to
 * resetAndDestroy() and abort(). A flow is released when its endpoint
 * reaches CLOSED (after TIME-WAIT, a reset or an abort).
 *
 * Flows are found by two numeric keys (no strings on the data path):
 * (remote address, remote port) and (guest address, guest port), each
 * `address * 0x1_0000 + port`. IPv6 connections use the same table: their
 * addresses are negative ids (src/ip/ipv6-ids.ts), which each flow holds
 * (acquire/release) for its lifetime, so their keys are negative and never
 * meet an IPv4 key. What differs per family is only the MSS (MTU − 60 over
 * IPv6), the headers (tcp-output.ts) and the ICMP errors (icmp-errors.ts).
 *
 * Files: this one has the flow table, outbound opens and the inbound side
 * (port-forward connections towards the guest, waiting for its MAC);
 * tcp-flow.ts one connection (host socket events, endpoint sink and events);
 * tcp-budget.ts the stack-wide buffer budget.
 */
import { Proto } from '../policy/rules.js';
import { randomInt } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { IcmpErrors } from '../ip/icmp-errors.js';
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import { Drop, type DropCounters } from '../stats.js';
import type { TimerOwner, TimerQueue } from '../timer-queue.js';
import { DEFAULT_TCP_CONFIG, TcpState, type TcpEndpointConfig } from '../tcp/contract.js';
import { TcpEndpoint } from '../tcp/endpoint.js';
import { Wire } from '../wire/errors.js';
import { copyTcpRepr, newTcpRepr, parseTcp, TcpFlag, TcpView, type TcpRepr } from '../wire/tcp.js';
import type { HostNetwork, HostStream } from './host.js';
import { AddressPolicy, Verdict, type Destination } from './policy.js';
import type { TcpOutput } from './tcp-output.js';
import { TcpBudget } from './tcp-budget.js';
import { NO_BYTES, Phase, TcpFlow, type TcpFlowContext, type TcpFlowInfo, type TcpFlowOwner } from './tcp-flow.js';

import { Icmpv4Unreach } from '../wire/icmpv4.js';

export type { TcpFlowInfo } from './tcp-flow.js';

export interface TcpNatLimits {
  /** Connections at once, in any state (default 16384). */
  maxFlows?: number;
  /** Connections whose host connect is still pending (default 1024). */
  maxConnecting?: number;
  /** How long a host connect may take before the guest gets RST (default 20 s). */
  connectTimeoutMs?: number;
  /** Bytes all connections together may hold in buffers, both directions (default 256 MiB). */
  bufferBytes?: number;
}

export interface TcpNatOptions extends TcpNatLimits {
  mtu: number;
  policy: AddressPolicy;
  host: HostNetwork;
  output: TcpOutput;
  icmp: IcmpErrors;
  timers: TimerQueue<TimerOwner>;
  drops: DropCounters;
  /** Called after host-side events queued frames or changed deadlines: flush and re-arm. */
  kick: () => void;
  clock: Clock;
  /** --outbound-addr: local address for host sockets. */
  outboundAddress?: string;
  /** --outbound-addr6: local address for IPv6 host sockets. */
  outboundAddress6?: string;
  ids: Ipv6Ids;
  /** Per-flow events for --debug / USERNET_DEBUG; absent: nothing is formatted. */
  debug?: (message: string) => void;
  /** Opens a DNS-over-TCP session for a guest connection to net+3:53. */
  dnsSession?: () => HostStream;
  /** The guest-side MAC of `ip` if known (for connections we open towards the guest). */
  neighbourMac: (ip: number) => number | undefined;
  /** Sends an ARP request for `ip`. */
  requestMac: (ip: number) => void;
  /** Overrides of the endpoint defaults (tests, tuning). */
  endpoint?: Partial<TcpEndpointConfig>;
  /** Initial sequence numbers; random by default. */
  iss?: () => number;
}

export interface TcpNatStats {
  flows: number;
  connecting: number;
  opened: number;
  refused: number;
  unreachable: number;
  timedOut: number;
  rejectedByLimit: number;
  resetsToGuest: number;
  /** Connections opened towards the guest for port forwards. */
  inbound: number;
  /** Port-forward connections reset because the guest's MAC could not be resolved. */
  unresolved: number;
  /** Connections in TIME-WAIT dropped early to make room for new ones at the flow limit. */
  timeWaitRecycled: number;
  /** Bytes held in buffers now, both directions (see bufferBytes). */
  bufferedBytes: number;
  /** Times a flow was held back because the stack-wide buffer budget was used up. */
  budgetHolds: number;
}

/** Inbound flows: ARP tries for the guest's MAC, a second apart. */
const ARP_TRIES = 3;
const ARP_RETRY_MS = 1000;
/**
 * Delayed ACK towards the guest (endpoint.ts, ACK policy). Local services
 * answer well within it; a guest whose Nagle waits for the ACK of a small
 * segment loses at most this much (Linux peers delay 40 ms or more).
 */
const DELAYED_ACK_MS = 1;

export class TcpNat implements TcpFlowOwner {
  private readonly flows = new Map<number, Map<number, TcpFlow>>();
  private count = 0;
  private connecting = 0;
  private readonly view = new TcpView();
  private readonly seg = newTcpRepr();
  private readonly scratch = newTcpRepr();
  private readonly dest: Destination = { verdict: Verdict.DROP, hostIp: 0, icmpCode: 0 };
  private readonly touched: TcpFlow[] = [];
  readonly maxFlows: number;
  readonly maxConnecting: number;
  readonly connectTimeoutMs: number;
  readonly bufferBytes: number;
  readonly budget: TcpBudget;
  /** What flows use of the stack (TcpFlowContext): the options themselves. */
  readonly context: TcpFlowContext;
  readonly counters: Omit<TcpNatStats, 'flows' | 'connecting' | 'bufferedBytes' | 'budgetHolds'> = {
    opened: 0,
    refused: 0,
    unreachable: 0,
    timedOut: 0,
    rejectedByLimit: 0,
    resetsToGuest: 0,
    inbound: 0,
    unresolved: 0,
    timeWaitRecycled: 0,
  };
  private readonly awaitingMac = new Map<number, TcpFlow[]>();
  /** Flows in TIME-WAIT, oldest first: at the flow limit they make room (as Linux does when its TIME-WAIT table is full). */
  private readonly timeWait = new Set<TcpFlow>();

  /** Endpoint settings every flow shares (endpointConfig adds each flow's addresses and ISS). */
  private readonly tuning: Omit<TcpEndpointConfig, 'localIp' | 'localPort' | 'guestIp' | 'guestPort' | 'iss'>;
  /** The MSS and segment size of IPv6 flows (20 bytes more of header). */
  private readonly mss6: number;
  private readonly maxSegmentPayload6: number;

  constructor(readonly options: TcpNatOptions) {
    this.maxFlows = options.maxFlows ?? 16384;
    this.maxConnecting = options.maxConnecting ?? 1024;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
    this.bufferBytes = options.bufferBytes ?? 256 << 20;
    this.budget = new TcpBudget(this.bufferBytes, () => this.now, options.kick);
    this.context = options;
    const mss = options.mtu - 40;
    this.tuning = {
      ...DEFAULT_TCP_CONFIG,
      mss,
      maxSegmentPayload: options.output.maxSegmentPayload(mss),
      // The host closed first and the guest acknowledged our FIN: the guest may
      // still send for as long as it likes (half-close), and its silence is not
      // an orphan's (Linux's tcp_fin_timeout only applies to those). Wait as
      // long as keepalive would before calling the guest gone.
      finWait2TimeoutMs: DEFAULT_TCP_CONFIG.keepaliveIdleMs + DEFAULT_TCP_CONFIG.keepaliveProbes * DEFAULT_TCP_CONFIG.keepaliveIntervalMs,
      // A request's ACK waits up to this long for the host's reply to carry it.
      delayedAckMs: DELAYED_ACK_MS,
      ...options.endpoint,
    };
    this.mss6 = this.tuning.mss - 20;
    this.maxSegmentPayload6 = options.endpoint?.maxSegmentPayload ?? options.output.maxSegmentPayload(this.mss6, true);
  }

  get stats(): TcpNatStats {
    return { flows: this.count, connecting: this.connecting, bufferedBytes: this.budget.bytes, ...this.counters, budgetHolds: this.budget.holds };
  }

  /** One TCP segment from the guest: the IPv4 datagram at `ipOff` with its L4 part at `l4Off`. */
  input(buf: Uint8Array, ipOff: number, l4Off: number, l4Len: number, src: number, dst: number, srcMac: number, checksumPartial: boolean, nowMs: number): void {
    const view = this.view.wrap(buf, l4Off, l4Len);
    const seg = this.seg;
    if (parseTcp(view, seg) !== Wire.OK) {
      this.options.drops.add(Drop.TCP_MALFORMED);
      return;
    }
    if (!checksumPartial && !view.verifyChecksum(this.options.ids.addrSum(src, dst))) {
      this.options.drops.add(Drop.TCP_BAD_CHECKSUM);
      return;
    }
    let flow = this.lookup(dst, seg.dstPort, src, seg.srcPort);
    const syn = (seg.flags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.SYN;
    if (flow !== undefined && syn && flow.endpoint !== null && flow.endpoint.state === TcpState.TIME_WAIT && flow.endpoint.timeWaitAcceptsSyn(seg)) {
      // The guest reuses the port of a connection we hold in TIME-WAIT with a
      // SYN Linux would accept as a new incarnation (higher sequence number
      // or newer timestamp, RFC 6191): start over with a new flow.
      flow.release();
      flow = undefined;
    }
    if (flow === undefined) {
      if (syn) this.open(buf, ipOff, l4Off + l4Len - ipOff, src, dst, srcMac, nowMs);
      else if ((seg.flags & TcpFlag.RST) === 0) this.resetUnknown(srcMac, src, dst, seg);
      return;
    }
    if (flow.phase === Phase.CONNECTING) {
      // Retransmitted SYNs while the host connect is pending; anything else
      // (a stray ACK or RST) cannot be answered before the SYN-ACK either.
      if ((seg.flags & TcpFlag.RST) !== 0) flow.release();
      return;
    }
    const ep = flow.endpoint!;
    flow.guestMac = srcMac;
    ep.input(seg, buf, seg.payloadOffset, seg.payloadLength, nowMs);
    if (flow.phase === Phase.OPEN) {
      flow.reportBacklog(nowMs);
      flow.account();
      this.touch(flow);
    }
  }

  /** After a whole input batch: send what the endpoints held back and re-arm their timers. */
  flush(nowMs: number): void {
    for (const flow of this.touched) {
      flow.touched = false;
      if (flow.phase !== Phase.OPEN) continue;
      flow.endpoint!.flush(nowMs);
      this.options.timers.schedule(flow, flow.endpoint!.nextDeadline);
    }
    this.touched.length = 0;
  }

  list(nowMs: number): TcpFlowInfo[] {
    const out: TcpFlowInfo[] = [];
    for (const inner of this.flows.values()) for (const f of inner.values()) out.push(f.info(nowMs));
    return out;
  }

  /** Destroys every host socket and forgets every flow (stack shutdown). */
  close(): void {
    for (const inner of [...this.flows.values()]) for (const f of [...inner.values()]) f.release();
  }

  touch(flow: TcpFlow): void {
    if (flow.touched) return;
    flow.touched = true;
    this.touched.push(flow);
  }

  private open(buf: Uint8Array, ipOff: number, ipLen: number, src: number, dst: number, srcMac: number, nowMs: number): void {
    const seg = this.seg;
    const o = this.options;
    const d = o.policy.resolve(dst, seg.dstPort, this.dest, Proto.TCP, nowMs);
    if (d.verdict === Verdict.DROP) {
      o.drops.add(Drop.TCP_NO_ROUTE);
      return;
    }
    if (d.verdict === Verdict.REFUSE) {
      this.counters.unreachable++;
      o.debug?.(`tcp SYN to ${o.ids.formatWithPort(dst, seg.dstPort)} from port ${seg.srcPort}: refused, ICMP unreachable code ${d.icmpCode}`);
      o.icmp.unreachable(d.icmpCode, buf, ipOff, ipLen, src, srcMac);
      return;
    }
    if ((this.count >= this.maxFlows && !this.recycleTimeWait()) || this.connecting >= this.maxConnecting) {
      this.counters.rejectedByLimit++;
      o.drops.add(Drop.TCP_FLOW_LIMIT);
      this.resetUnknown(srcMac, src, dst, seg);
      return;
    }
    const flow = new TcpFlow(this, src, seg.srcPort, dst, seg.dstPort, srcMac, nowMs);
    flow.syn = newTcpRepr();
    copyTcpRepr(seg, flow.syn);
    // Keep the SYN's IP header and the start of its TCP header to quote in an ICMP error later.
    flow.synDatagram = buf.slice(ipOff, ipOff + Math.min(ipLen, 60 + 28));
    this.insert(flow);
    this.connecting++;
    const host = d.verdict === Verdict.DNS ? '' : o.ids.format(d.hostIp);
    o.debug?.(`tcp ${flow.describe()}: SYN from the guest, connecting to ${d.verdict === Verdict.DNS ? 'the DNS forwarder' : host}`);
    if (d.verdict === Verdict.DNS && o.dnsSession !== undefined) flow.attach(o.dnsSession(), `dns:${seg.dstPort}`);
    else {
      const socket = o.host.connectTcp({ host, port: seg.dstPort, localAddress: d.hostIp >= 0 ? o.outboundAddress : o.outboundAddress6 });
      flow.attach(socket, o.ids.formatWithPort(d.hostIp, seg.dstPort));
    }
    o.timers.schedule(flow, nowMs + this.connectTimeoutMs);
  }

  /** Called by a flow whose host connect succeeded. */
  established(flow: TcpFlow, nowMs: number): void {
    this.connecting--;
    this.counters.opened++;
    this.options.debug?.(`tcp ${flow.describe()}: host connected`);
    const o = this.options;
    flow.endpoint = new TcpEndpoint(this.endpointConfig(flow), flow, flow);
    flow.endpoint.acceptSyn(flow.syn!, nowMs);
    // Both only serve errors before the SYN-ACK.
    flow.syn = null;
    flow.synDatagram = NO_BYTES;
    o.timers.schedule(flow, flow.endpoint.nextDeadline);
  }

  private endpointConfig(flow: TcpFlow): TcpEndpointConfig {
    const o = this.options;
    const t = this.tuning;
    // One literal with every field: a spread of the ~20 shared fields made a
    // dictionary-mode object (its own hidden class) per connection.
    const v6 = flow.guestIp < 0;
    return {
      localIp: flow.remoteIp,
      localPort: flow.remotePort,
      guestIp: flow.guestIp,
      guestPort: flow.guestPort,
      iss: o.iss ? o.iss() : randomInt(0, 0x1_0000_0000),
      mss: v6 ? this.mss6 : t.mss,
      rcvBufBytes: t.rcvBufBytes,
      sndBufBytes: t.sndBufBytes,
      windowScale: t.windowScale,
      timestamps: t.timestamps,
      sack: t.sack,
      maxSegmentPayload: v6 ? this.maxSegmentPayload6 : t.maxSegmentPayload,
      timeWaitMs: t.timeWaitMs,
      finWait2TimeoutMs: t.finWait2TimeoutMs,
      keepaliveIdleMs: t.keepaliveIdleMs,
      keepaliveIntervalMs: t.keepaliveIntervalMs,
      keepaliveProbes: t.keepaliveProbes,
      rtoMinMs: t.rtoMinMs,
      rtoMaxMs: t.rtoMaxMs,
      rtoInitialMs: t.rtoInitialMs,
      maxRetransmits: t.maxRetransmits,
      delayedAckMs: t.delayedAckMs,
    };
  }

  // --- inbound: port forwards -------------------------------------------------------

  /**
   * A host client connected to a port forward: open a connection to
   * `guestIp:guestPort` whose source is the client (`clientIp` is already
   * mapped: loopback clients appear as the gateway). The socket must have
   * been accepted paused (pauseOnConnect); it resumes once the endpoint
   * exists. If the guest's MAC is unknown we ask ARP first, as libslirp does.
   */
  accept(socket: HostStream, clientIp: number, clientPort: number, clientText: string, guestIp: number, guestPort: number): void {
    const o = this.options;
    if (this.count >= this.maxFlows && !this.recycleTimeWait()) {
      this.counters.rejectedByLimit++;
      socket.resetAndDestroy();
      return;
    }
    let port = clientPort;
    // Two clients may map to the same (address, port) as seen by the guest
    // (127.0.0.1:p and 127.0.0.2:p both appear as the gateway): pick another port.
    for (let tries = 0; this.lookup(clientIp, port, guestIp, guestPort) !== undefined; tries++) {
      if (tries === 64) {
        socket.resetAndDestroy();
        return;
      }
      port = 32768 + randomInt(0, 28232);
    }
    const now = o.clock.now();
    const mac = o.neighbourMac(guestIp);
    const flow = new TcpFlow(this, guestIp, guestPort, clientIp, port, mac ?? 0, now);
    flow.phase = Phase.RESOLVING;
    this.insert(flow);
    this.counters.inbound++;
    o.debug?.(`tcp ${flow.describe()}: forwarded connection from ${clientText}`);
    flow.attach(socket, clientText);
    if (mac !== undefined) this.startInbound(flow, now);
    else this.resolve(flow, now);
  }

  /** The stack learned `ip`'s MAC: flows waiting for it start. */
  neighbourLearned(ip: number, mac: number): void {
    const waiting = this.awaitingMac.get(ip);
    if (waiting === undefined) return;
    this.awaitingMac.delete(ip);
    const now = this.options.clock.now();
    for (const flow of waiting) {
      if (flow.phase !== Phase.RESOLVING) continue;
      flow.guestMac = mac;
      this.startInbound(flow, now);
    }
    this.options.kick();
  }

  /** ARP for the guest, retried each second; after 3 tries the host client is reset. */
  resolve(flow: TcpFlow, nowMs: number): void {
    if (flow.arpTries >= ARP_TRIES) {
      this.counters.unresolved++;
      flow.socket?.resetAndDestroy();
      flow.release();
      return;
    }
    flow.arpTries++;
    let waiting = this.awaitingMac.get(flow.guestIp);
    if (waiting === undefined) {
      waiting = [];
      this.awaitingMac.set(flow.guestIp, waiting);
    }
    if (!waiting.includes(flow)) waiting.push(flow);
    this.options.requestMac(flow.guestIp);
    this.options.timers.schedule(flow, nowMs + ARP_RETRY_MS);
  }

  forgetWaiting(flow: TcpFlow): void {
    const waiting = this.awaitingMac.get(flow.guestIp);
    if (waiting === undefined) return;
    const i = waiting.indexOf(flow);
    if (i >= 0) waiting.splice(i, 1);
    if (waiting.length === 0) this.awaitingMac.delete(flow.guestIp);
  }

  private startInbound(flow: TcpFlow, nowMs: number): void {
    const o = this.options;
    flow.phase = Phase.OPEN;
    flow.endpoint = new TcpEndpoint(this.endpointConfig(flow), flow, flow);
    flow.endpoint.connect(nowMs);
    o.timers.schedule(flow, flow.endpoint.nextDeadline);
    flow.resumeHost();
  }

  /** Tells the guest that the host connect failed (before any SYN-ACK). */
  connectFailed(flow: TcpFlow, code: string | undefined): void {
    const o = this.options;
    o.debug?.(`tcp ${flow.describe()}: host connect failed (${code ?? 'closed'})`);
    if (code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === undefined) {
      if (code === 'ECONNREFUSED') this.counters.refused++;
      else this.counters.timedOut++;
      this.counters.resetsToGuest++;
      const s = flow.syn!;
      o.output.reset(flow.guestMac, flow.remoteIp, flow.remotePort, flow.guestIp, flow.guestPort, s, 1 + s.payloadLength, this.scratch);
    } else {
      this.counters.unreachable++;
      const icmpCode = code === 'EHOSTUNREACH' ? Icmpv4Unreach.HOST : Icmpv4Unreach.NET;
      o.icmp.unreachable(icmpCode, flow.synDatagram, 0, flow.synDatagram.length, flow.guestIp, flow.guestMac);
    }
  }

  timeWaitEntered(flow: TcpFlow): void {
    this.timeWait.add(flow);
  }

  /** Releases the oldest flow in TIME-WAIT, if any; true when a slot was freed. */
  private recycleTimeWait(): boolean {
    for (const flow of this.timeWait) {
      this.counters.timeWaitRecycled++;
      flow.release();
      return true;
    }
    return false;
  }

  /** Forgets a released flow; `wasConnecting` when its host connect never completed. */
  remove(flow: TcpFlow, wasConnecting: boolean): void {
    if (wasConnecting) this.connecting--;
    this.timeWait.delete(flow);
    const inner = this.flows.get(flow.outerKey);
    if (inner === undefined || inner.get(flow.innerKey) !== flow) return;
    inner.delete(flow.innerKey);
    if (inner.size === 0) this.flows.delete(flow.outerKey);
    this.count--;
  }

  /** Time for host-side events, which arrive outside any input batch. */
  get now(): number {
    return this.options.clock.now();
  }

  private resetUnknown(mac: number, guestIp: number, localIp: number, seg: TcpRepr): void {
    this.counters.resetsToGuest++;
    const len = seg.payloadLength + ((seg.flags & TcpFlag.SYN) !== 0 ? 1 : 0) + ((seg.flags & TcpFlag.FIN) !== 0 ? 1 : 0);
    this.options.output.reset(mac, localIp, seg.dstPort, guestIp, seg.srcPort, seg, len, this.scratch);
  }

  private lookup(remoteIp: number, remotePort: number, guestIp: number, guestPort: number): TcpFlow | undefined {
    const inner = this.flows.get(remoteIp * 0x1_0000 + remotePort);
    return inner === undefined ? undefined : inner.get(guestIp * 0x1_0000 + guestPort);
  }

  private insert(flow: TcpFlow): void {
    let inner = this.flows.get(flow.outerKey);
    if (inner === undefined) {
      inner = new Map();
      this.flows.set(flow.outerKey, inner);
    }
    inner.set(flow.innerKey, flow);
    this.count++;
  }
}
