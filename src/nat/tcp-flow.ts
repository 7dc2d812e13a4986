/**
 * One relayed TCP connection (tcp-nat.ts has the theory of operation): the
 * guest-side endpoint, the host socket, and the events between them. The
 * flow is the endpoint's segment sink and event handler, and the timer
 * owner; what it needs from the NAT that owns it is TcpFlowOwner, so the
 * two modules do not import each other.
 */
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import type { TimerOwner, TimerQueue } from '../timer-queue.js';
import { tcpStateName, type SendBufferReader, type TcpEndpointEvents, type TcpEndpointIdentity, type TcpSegmentSink } from '../tcp/contract.js';
import type { TcpEndpoint } from '../tcp/endpoint.js';
import type { TcpRepr } from '../wire/tcp.js';
import type { HostStream } from './host.js';
import type { TcpBudget } from './tcp-budget.js';
import type { TcpOutput } from './tcp-output.js';

export interface TcpFlowInfo {
  proto: 'tcp';
  guest: string;
  remote: string;
  host: string;
  state: string;
  guestToHostBytes: number;
  hostToGuestBytes: number;
  ageMs: number;
}

/**
 * CONNECTING: outbound, the host connect is pending. RESOLVING: inbound, the
 * guest's MAC is being asked for. OPEN: the endpoint exists. RELEASED: gone.
 */
export const Phase = { CONNECTING: 0, OPEN: 1, RELEASED: 2, RESOLVING: 3 } as const;
export const NO_BYTES = new Uint8Array(0);

/** What a flow uses of the stack around it. */
export interface TcpFlowContext {
  readonly ids: Ipv6Ids;
  readonly timers: TimerQueue<TimerOwner>;
  readonly output: TcpOutput;
  /** Called after host-side events queued frames or changed deadlines: flush and re-arm. */
  kick(): void;
  readonly debug?: (message: string) => void;
}

/** The NAT a flow belongs to (TcpNat), as the flow sees it. */
export interface TcpFlowOwner {
  readonly context: TcpFlowContext;
  readonly budget: TcpBudget;
  /** Time for host-side events, which arrive outside any input batch. */
  readonly now: number;
  /** The host connect succeeded: create the endpoint and answer the SYN. */
  established(flow: TcpFlow, nowMs: number): void;
  /** The host connect failed: RST or ICMP to the guest. */
  connectFailed(flow: TcpFlow, code: string | undefined): void;
  /** An inbound flow's ARP retry is due. */
  resolve(flow: TcpFlow, nowMs: number): void;
  /** An inbound flow stops waiting for the guest's MAC. */
  forgetWaiting(flow: TcpFlow): void;
  timeWaitEntered(flow: TcpFlow): void;
  /** Forgets a released flow; `wasConnecting` when its host connect never completed. */
  remove(flow: TcpFlow, wasConnecting: boolean): void;
}

/** One guest connection and its host socket. Implements the endpoint's sink and events. */
export class TcpFlow implements TcpSegmentSink, TcpEndpointEvents, TimerOwner {
  timerDeadline = Infinity;
  phase: (typeof Phase)[keyof typeof Phase] = Phase.CONNECTING;
  endpoint: TcpEndpoint | null = null;
  socket: HostStream | null = null;
  /** The guest's SYN while the host connect is pending (outbound flows only). */
  syn: TcpRepr | null = null;
  synDatagram: Uint8Array = NO_BYTES;
  touched = false;
  readonly outerKey: number;
  readonly innerKey: number;
  private hostPaused = false;
  arpTries = 0;
  private hostText = '';
  guestToHostBytes = 0;
  hostToGuestBytes = 0;
  /** Bytes of the stack-wide budget this flow holds (last account()). */
  private heldBytes = 0;
  /** In the budget's held-back list (tcp-budget.ts). */
  heldBack = false;

  constructor(
    private readonly nat: TcpFlowOwner,
    readonly guestIp: number,
    readonly guestPort: number,
    readonly remoteIp: number,
    readonly remotePort: number,
    public guestMac: number,
    private readonly createdMs: number,
  ) {
    this.outerKey = remoteIp * 0x1_0000 + remotePort;
    this.innerKey = guestIp * 0x1_0000 + guestPort;
    if (guestIp < 0) {
      nat.context.ids.acquire(guestIp);
      nat.context.ids.acquire(remoteIp);
    }
  }

  /** Takes the host side: a connecting socket, or a DNS session; `hostText` names its peer (address:port). */
  attach(socket: HostStream, hostText: string): void {
    this.hostText = hostText;
    this.socket = socket;
    // on, not once: removing a listener deletes a property of the emitter's
    // listener table, which turns it into a dictionary (~300 bytes more per
    // connection, measured in heap snapshots). 'connect' comes at most once.
    socket.on('connect', () => {
      if (this.phase !== Phase.CONNECTING) return;
      this.phase = Phase.OPEN;
      this.nat.established(this, this.nat.now);
      this.nat.context.kick();
    });
    socket.on('data', (chunk: Buffer) => this.onHostData(chunk));
    socket.on('end', () => this.onHostEnd());
    socket.on('drain', () => this.onHostDrain());
    socket.on('error', (err: NodeJS.ErrnoException) => this.onHostError(err));
    socket.on('close', () => this.onHostClose());
  }

  // --- host socket events ----------------------------------------------------

  private onHostData(chunk: Buffer): void {
    const ep = this.endpoint;
    if (this.phase !== Phase.OPEN || ep === null) return;
    this.hostToGuestBytes += chunk.length;
    ep.write(chunk, this.nat.now);
    this.account();
    if (!this.hostPaused && (ep.sendBufferSpace <= 0 || this.nat.budget.overBudget)) {
      this.hostPaused = true;
      this.socket!.pause();
      if (ep.sendBufferSpace > 0) this.nat.budget.holdBack(this);
    }
    this.afterHostEvent();
  }

  private onHostEnd(): void {
    if (this.phase !== Phase.OPEN) return;
    this.endpoint!.close(this.nat.now);
    this.afterHostEvent();
  }

  private onHostDrain(): void {
    if (this.phase !== Phase.OPEN) return;
    this.reportBacklog(this.nat.now);
    this.account();
    this.afterHostEvent();
  }

  private onHostError(err: NodeJS.ErrnoException): void {
    if (this.phase === Phase.CONNECTING) {
      this.failConnect(err.code);
      this.nat.context.kick();
      return;
    }
    if (this.phase !== Phase.OPEN) return;
    // ECONNRESET, EPIPE, ETIMEDOUT from the host: the guest sees a reset.
    this.endpoint!.abort(this.nat.now);
    this.afterHostEvent();
  }

  private onHostClose(): void {
    if (this.phase === Phase.RESOLVING) {
      this.release();
      return;
    }
    if (this.phase === Phase.CONNECTING) {
      this.failConnect(undefined);
      this.nat.context.kick();
    }
  }

  /** The host connect failed: the guest gets RST or ICMP, and the flow goes. */
  private failConnect(code: string | undefined): void {
    this.nat.connectFailed(this, code);
    this.release();
  }

  private afterHostEvent(): void {
    if (this.phase === Phase.OPEN) this.nat.context.timers.schedule(this, this.endpoint!.nextDeadline);
    this.nat.context.kick();
  }

  reportBacklog(nowMs: number): void {
    const s = this.socket;
    const backlog = s === null || s.destroyed ? 0 : s.writableLength;
    const ep = this.endpoint!;
    const rcvBuf = ep.config.rcvBufBytes;
    const spare = this.nat.budget.spareBytes;
    if (spare >= rcvBuf) {
      ep.setReceiveBacklog(backlog, nowMs);
      return;
    }
    // Near the stack-wide budget: no flow is offered more window than what is left of it.
    ep.setReceiveBacklog(Math.max(backlog, rcvBuf - Math.max(0, spare)), nowMs);
    this.nat.budget.holdBack(this);
  }

  /** Brings the stack-wide count of this flow's buffered bytes up to date. */
  account(): void {
    const ep = this.endpoint;
    const s = this.socket;
    let bytes = 0;
    if (this.phase === Phase.OPEN && ep !== null) bytes = ep.config.sndBufBytes - ep.sendBufferSpace;
    if (s !== null && !s.destroyed) bytes += s.writableLength;
    if (bytes !== this.heldBytes) {
      const delta = bytes - this.heldBytes;
      this.heldBytes = bytes;
      this.nat.budget.account(delta);
    }
  }

  /** The budget recovered: read from the host again and report the real window. */
  budgetRecovered(nowMs: number): void {
    if (this.phase !== Phase.OPEN) return;
    const ep = this.endpoint!;
    if (this.hostPaused && ep.sendBufferSpace > 0) {
      this.hostPaused = false;
      this.socket?.resume();
    }
    this.reportBacklog(nowMs);
    this.nat.context.timers.schedule(this, ep.nextDeadline);
  }

  // --- TimerOwner --------------------------------------------------------------

  onTimer(nowMs: number): void {
    if (this.phase === Phase.RESOLVING) {
      this.nat.resolve(this, nowMs);
      return;
    }
    if (this.phase === Phase.CONNECTING) {
      // No answer from the host in time: the guest gets RST (docs/architecture.md, Forwarder pattern).
      this.failConnect('ETIMEDOUT');
      return;
    }
    if (this.phase !== Phase.OPEN) return;
    this.endpoint!.onTimer(nowMs);
    if (this.phase === Phase.OPEN) this.nat.context.timers.schedule(this, this.endpoint!.nextDeadline);
  }

  // --- TcpSegmentSink ------------------------------------------------------------

  transmit(endpoint: TcpEndpointIdentity, repr: TcpRepr, data: SendBufferReader | null, dataOffset: number, payloadLen: number, gsoSize: number): void {
    this.nat.context.output.segment(this.guestMac, endpoint.config, repr, data, dataOffset, payloadLen, gsoSize);
  }

  // --- TcpEndpointEvents -----------------------------------------------------------

  onEstablished(): void {}

  onData(buf: Uint8Array, off: number, len: number): void {
    const s = this.socket;
    if (s === null || s.destroyed || s.writableEnded) return;
    this.guestToHostBytes += len;
    // The bytes live in the link's reused read buffer: a stream that keeps
    // what it is given (net.Socket, the DNS session) gets its own copy; one
    // that copies only what it cannot send at once (NativeTcpStream) a view.
    s.write(s.copiesOnWrite === true ? buf.subarray(off, off + len) : Buffer.copyBytesFrom(buf, off, len));
  }

  onFin(): void {
    const s = this.socket;
    if (s !== null && !s.destroyed) s.end();
  }

  onSendSpace(): void {
    if (!this.hostPaused || this.endpoint!.sendBufferSpace <= 0) return;
    if (this.nat.budget.overBudget) {
      this.nat.budget.holdBack(this);
      return;
    }
    this.hostPaused = false;
    this.socket?.resume();
  }

  onReset(): void {
    const s = this.socket;
    if (s !== null && !s.destroyed) s.resetAndDestroy();
  }

  onClosed(): void {
    this.release();
  }

  onTimeWait(): void {
    this.nat.timeWaitEntered(this);
  }

  // --- lifetime ------------------------------------------------------------------------

  /** Resumes a host socket accepted paused (port forwards). */
  resumeHost(): void {
    if (!this.hostPaused) this.socket?.resume();
  }

  /** Destroys the host socket and forgets the flow. Idempotent. */
  release(): void {
    if (this.phase === Phase.RELEASED) return;
    this.nat.context.debug?.(
      `tcp ${this.describe()}: closed (${this.endpoint === null ? 'never opened' : tcpStateName[this.endpoint.state]}, ` +
        `${this.guestToHostBytes} bytes guest→host, ${this.hostToGuestBytes} host→guest)`,
    );
    if (this.phase === Phase.RESOLVING) this.nat.forgetWaiting(this);
    const wasConnecting = this.phase === Phase.CONNECTING;
    this.phase = Phase.RELEASED;
    if (this.heldBytes !== 0) {
      this.nat.budget.account(-this.heldBytes);
      this.heldBytes = 0;
    }
    this.nat.context.timers.schedule(this, Infinity);
    const s = this.socket;
    if (s !== null && !s.destroyed) s.destroy();
    this.nat.remove(this, wasConnecting);
    if (this.guestIp < 0) {
      this.nat.context.ids.release(this.guestIp);
      this.nat.context.ids.release(this.remoteIp);
    }
  }

  describe(): string {
    const ids = this.nat.context.ids;
    return `${ids.formatWithPort(this.guestIp, this.guestPort)} ↔ ${ids.formatWithPort(this.remoteIp, this.remotePort)}`;
  }

  info(nowMs: number): TcpFlowInfo {
    const state =
      this.phase === Phase.CONNECTING
        ? 'CONNECTING'
        : this.phase === Phase.RESOLVING
          ? 'RESOLVING'
          : this.endpoint === null
            ? 'CLOSED'
            : tcpStateName[this.endpoint.state];
    return {
      proto: 'tcp',
      guest: this.nat.context.ids.formatWithPort(this.guestIp, this.guestPort),
      remote: this.nat.context.ids.formatWithPort(this.remoteIp, this.remotePort),
      host: this.hostText,
      state,
      guestToHostBytes: this.guestToHostBytes,
      hostToGuestBytes: this.hostToGuestBytes,
      ageMs: nowMs - this.createdMs,
    };
  }
}
