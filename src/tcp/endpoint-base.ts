/**
 * The state every layer of the guest-side TCP endpoint shares: the TCB and
 * its helpers, the flags that carry work from one event to the next, the
 * getters the relay reads, and entering CLOSED and TIME-WAIT. endpoint.ts
 * has the theory of operation and lists the layers.
 */
import { TcpState, type TcpEndpointConfig, type TcpEndpointEvents, type TcpEndpointStats, type TcpSegmentSink, type TcpStateValue } from './contract.js';
import { newTcpRepr, type TcpRepr } from '../wire/tcp.js';
import { NewReno } from './congestion.js';
import { AckBudget } from './rate-limit.js';
import { Reassembly } from './reassembly.js';
import { ReceiveWindow } from './receive-window.js';
import { RttEstimator } from './rtt.js';
import { SackScoreboard } from './sack-scoreboard.js';
import { SendBuffer } from './send-buffer.js';
import { Tcb } from './tcb.js';
import { TcpTimers } from './timers.js';

/** RFC 9293 §3.7.1: the send MSS when the SYN carries no MSS option. */
export const DEFAULT_SEND_MSS = 536;
/** Linux net.ipv4.tcp_min_snd_mss (CVE-2019-11479): a tiny announced MSS is raised to this. */
export const MIN_SEND_MSS = 48;
/** RFC 5681 §3.2 DupThresh. */
export const DUP_THRESH = 3;
/** Challenge ACKs per second and connection (rate-limit.ts). */
export const CHALLENGE_ACKS_PER_SECOND = 10;
/** Linux net.ipv4.tcp_invalid_ratelimit. */
export const OUT_OF_WINDOW_ACK_INTERVAL_MS = 500;
/** Reassembly store block limit (reassembly.ts). */
export const MAX_OUT_OF_ORDER_BLOCKS = 256;
/** RFC 7323 §5.5: TS.Recent older than 24 days is invalid for PAWS. */
export const PAWS_IDLE_LIMIT_MS = 24 * 24 * 3600 * 1000;

/** SACK ranges while building one segment's options; shared, as options are built and emitted synchronously. */
export const SACK_SCRATCH = new Float64Array(8);

export function newStats(): TcpEndpointStats {
  return {
    segmentsIn: 0,
    segmentsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    retransmits: 0,
    rtoTimeouts: 0,
    fastRetransmits: 0,
    dupAcksIn: 0,
    challengeAcks: 0,
    acksRateLimited: 0,
    outOfWindow: 0,
    pawsRejected: 0,
    ooSegments: 0,
    ooDropped: 0,
    windowProbes: 0,
    keepaliveProbes: 0,
    windowUpdates: 0,
    acksOut: 0,
  };
}

/** Our TSval clock: milliseconds (RFC 7323 §5.4 allows 1 ms to 1 s per tick). */
export function tsClock(nowMs: number): number {
  return Math.floor(nowMs) >>> 0;
}

export abstract class TcpEndpointBase {
  readonly stats: TcpEndpointStats = newStats();
  protected st: TcpStateValue = TcpState.CLOSED;
  protected used = false;
  protected activeOpen = false;
  protected readonly tcb = new Tcb();
  protected readonly sndBuf = new SendBuffer();
  protected readonly rtt: RttEstimator;
  protected readonly cc: NewReno;
  protected readonly rwnd: ReceiveWindow;
  protected readonly reasm = new Reassembly(MAX_OUT_OF_ORDER_BLOCKS);
  protected readonly scoreboard = new SackScoreboard();
  protected readonly timers = new TcpTimers();
  protected readonly challengeBudget = new AckBudget(CHALLENGE_ACKS_PER_SECOND, 1000);
  protected readonly outOfWindowBudget = new AckBudget(1, OUT_OF_WINDOW_ACK_INTERVAL_MS);
  /** The one output repr, refilled for every segment. */
  protected readonly out: TcpRepr = newTcpRepr();


  /** close() was called: a FIN follows the queued data. */
  protected finQueued = false;
  protected finAcked = false;
  /** An ACK is owed to the guest; flush() or the next segment sends it. */
  protected ackPending = false;
  /** The owed ACK is for more than a little in-order data (FIN, window update, handshake): no delaying it. */
  protected ackUrgent = false;
  /** In-order payload bytes received since the last segment we sent (each carries an ACK). */
  protected bytesSinceAck = 0;
  /** An ACK is owed at the end of this segment's processing (out of order, gap filled, trimmed). */
  protected ackNow = false;
  /** ACKs or writes during input() may have made data sendable; flush() sends it. */
  protected outputWanted = false;
  protected inInput = false;
  protected dupAcks = 0;
  /** Consecutive retransmission timeouts without progress (RFC 9293 §3.8.3 R2). */
  protected rtoCount = 0;
  /** Zero-window probes without any answer, and the probe backoff exponent. */
  protected probeCount = 0;
  protected probeBackoff = 0;
  protected keepalivesSent = 0;
  /** Last time the guest sent an acceptable ACK (zero-window retransmission give-up). */
  protected lastAckMs = 0;
  /** Stream offset up to which recovery has retransmitted (RFC 6675 HighRxt). */
  protected highRxtOff = 0;
  /** The relay filled the send buffer: tell it when space frees (onSendSpace). */
  protected sendSpaceWanted = false;
  /** The arriving segment's text after trimming to the window (endpoint-receive.ts). */
  protected rxSeq = 0;
  protected rxOff = 0;
  protected rxLen = 0;
  protected rxFin = false;
  /** Bytes past the window were cut off: the guest gets an ACK at once. */
  protected rxTrimmed = false;

  constructor(
    readonly config: TcpEndpointConfig,
    protected readonly sink: TcpSegmentSink,
    protected readonly events: TcpEndpointEvents,
  ) {
    this.rtt = new RttEstimator(config.rtoMinMs, config.rtoMaxMs, config.rtoInitialMs);
    this.cc = new NewReno(config.mss, config.iss >>> 0);
    this.rwnd = new ReceiveWindow(config.rcvBufBytes, config.mss);
  }

  get state(): TcpStateValue {
    return this.st;
  }

  /** A method, not a comparison, so the compiler does not narrow `st` across event callbacks. */
  protected isClosed(): boolean {
    return this.st === TcpState.CLOSED;
  }

  get nextDeadline(): number {
    return this.st === TcpState.CLOSED ? Infinity : this.timers.next;
  }

  get sendBufferSpace(): number {
    return this.config.sndBufBytes - this.sndBuf.length;
  }

  /** Bytes queued towards the guest and not yet acknowledged (sent or not). */
  get sendQueued(): number {
    return this.sndBuf.length;
  }

  /** The current congestion window in bytes (for stats and tests). */
  get congestionWindow(): number {
    return this.cc.cwnd;
  }

  /** The current retransmission timeout in ms (for stats and tests). */
  get rtoMs(): number {
    return this.rtt.rtoMs;
  }

  /** Out-of-order guest bytes held (for stats and tests). */
  get outOfOrderBytes(): number {
    return this.reasm.bytes;
  }

  /** Nothing is owed any more: the segment just built carries RCV.NXT. */
  protected ackSent(): void {
    this.ackPending = false;
    this.ackUrgent = false;
    this.bytesSinceAck = 0;
    this.timers.ackAt = Infinity;
  }

  /**
   * Restarts the idle clock: any segment from the guest shows it is alive.
   * FIN-WAIT-2 uses it as its timeout, the synchronized states for keepalive.
   *
   * FIN-WAIT-2: Linux applies tcp_fin_timeout only to orphaned sockets; the
   * relay cannot know whether the host application still reads (shutdown()
   * or close()), so the timeout here counts from the guest's last segment: a
   * half-closed flow that keeps sending lives on, a silent one goes.
   */
  protected touchIdle(nowMs: number): void {
    const cfg = this.config;
    this.keepalivesSent = 0;
    switch (this.st) {
      case TcpState.FIN_WAIT_2:
        this.timers.idleAt = nowMs + cfg.finWait2TimeoutMs;
        break;
      case TcpState.ESTABLISHED:
      case TcpState.CLOSE_WAIT:
      case TcpState.FIN_WAIT_1:
      case TcpState.CLOSING:
      case TcpState.LAST_ACK:
        this.timers.idleAt = cfg.keepaliveIdleMs > 0 ? nowMs + cfg.keepaliveIdleMs : Infinity;
        break;
      default:
        this.timers.idleAt = Infinity;
        break;
    }
  }

  protected enterTimeWait(nowMs: number): void {
    this.st = TcpState.TIME_WAIT;
    this.timers.stopRtx();
    this.timers.idleAt = Infinity;
    this.timers.lingerAt = nowMs + this.config.timeWaitMs;
    this.reasm.clear();
    this.sndBuf.clear();
    this.events.onTimeWait?.();
  }

  /**
   * Enters CLOSED and tells the relay: onReset first (if `reset`), then
   * onClosed. The state is CLOSED before either runs, so an abort() from
   * inside them is a no-op and cannot answer a guest's RST with ours.
   */
  protected closeNow(reset: 'rst' | 'timeout' | null): void {
    if (this.isClosed()) return;
    this.st = TcpState.CLOSED;
    this.timers.clear();
    this.reasm.clear();
    this.sndBuf.clear();
    this.scoreboard.clear();
    this.ackSent();
    this.ackNow = false;
    this.outputWanted = false;
    if (reset !== null) this.events.onReset(reset);
    this.events.onClosed();
  }
}
