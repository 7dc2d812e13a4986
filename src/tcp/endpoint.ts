/**
 * The guest-side TCP endpoint: one RFC 9293 connection with the guest,
 * terminated here and relayed by src/nat onto a host socket.
 *
 * Heads up! Read RFC 9293 §3.3 (sequence space) and §3.10 (event
 * processing) before changing this file, then RFC 5961 (blind attacks),
 * RFC 6298 (RTO), RFC 5681 + 6582 (congestion control), RFC 7323 (window
 * scaling, timestamps, PAWS) and RFC 2018 (SACK).
 *
 * Theory of Operation
 * ===================
 *
 * What it does. A pure state machine (contract.ts): segments come in through
 * input() as parsed TcpReprs, bytes from the host through write(); segments
 * go out through the sink, guest bytes and connection events through the
 * events. It never reads a clock or arms a timer: every call carries nowMs
 * and `nextDeadline` says when onTimer() must run next (timers.ts).
 *
 * Who does what:
 *   tcb.ts              sequence variables, acceptability test, window-update rule
 *   send-buffer.ts      host→guest bytes from SND.UNA on (owned chunks, no copy)
 *   reassembly.ts       out-of-order guest bytes (copies), SACK blocks we send
 *   sack-scoreboard.ts  SACK blocks the guest sends us: the holes to repair
 *   receive-window.ts   the window we advertise: backpressure from the host socket
 *   rtt.ts              RFC 6298 RTO
 *   congestion.ts       RFC 5681/6582 cwnd and ssthresh
 *   timers.ts           deadlines; rate-limit.ts: challenge/out-of-window ACK budgets
 *   endpoint.ts         (this file) the RFC 9293 §3.10 event processing that ties them
 *
 * Send sequence space (RFC 9293 §3.3.1, Figure 3, plus BSD's snd_max):
 *
 *            1          2          3          4
 *       ----------|----------|----------|----------
 *              SND.UNA    SND.NXT    SND.UNA
 *                                   +SND.WND
 *                        (≤ SND.MAX)
 *   1 - old sequence numbers that have been acknowledged
 *   2 - sequence numbers of unacknowledged data       ┐ the SendBuffer holds 2 and 3
 *   3 - sequence numbers allowed for new data transmission ┘ (and whatever the
 *   4 - future sequence numbers that are not yet allowed     relay queued beyond)
 *
 * SND.MAX is the highest sequence number ever sent: after a retransmission
 * timeout SND.NXT falls back to SND.UNA and the window is sent again
 * (go-back-N), but ACKs up to SND.MAX stay acceptable. Our FIN takes the
 * sequence number after the last queued byte, once close() was called.
 *
 * Receive sequence space (Figure 4):
 *
 *                1          2          3
 *            ----------|----------|----------
 *                   RCV.NXT    RCV.NXT
 *                             +RCV.WND
 *   1 - old sequence numbers that have been acknowledged
 *   2 - sequence numbers allowed for new reception
 *   3 - future sequence numbers that are not yet allowed
 *
 * In-order bytes go straight from the caller's buffer to onData() (no copy
 * here; the relay copies for its socket). Bytes inside 2 but past a hole are
 * copied into the reassembly store and delivered when the hole fills.
 * RCV.WND is what receive-window.ts advertised, shrinking as backlog the host
 * socket has not taken grows: that is the guest→host backpressure path.
 *
 * Segments, TSO and GSO. The guest's kernel sends super-segments of up to
 * 64 KB (docs/architecture.md, Measured techniques): each is one segment here, delivered with
 * one onData and acknowledged once. We send the same way: one transmit() of
 * up to `maxSegmentPayload` bytes, with gsoSize = the effective MSS (the
 * guest's MSS minus our options, RFC 6691), which the NAT layer turns into a
 * GSO super-frame. Sequence accounting, RTT timing and retransmission work on
 * byte ranges, so a super-frame is simply a large segment.
 *
 * ACK policy. Every in-order data segment and every FIN is acknowledged, but
 * not at once: input() sets `ackPending` and the relay's flush() after the
 * whole input batch sends one cumulative ACK (or piggybacks it on the data
 * the batch's ACKs made sendable). So a batch of TSO segments costs one ACK.
 * With `delayedAckMs` > 0 (the NAT uses a couple of ms) flush() holds the
 * ACK longer when it only covers a little in-order data: less than two full
 * segments since the last ACK (RFC 5681 §4.2), no FIN, no window update,
 * ESTABLISHED. Host data sent meanwhile carries it (a request/response
 * exchange then costs one frame to the guest, not an ACK and then the
 * reply); otherwise the `ack` timer sends it (RFC 9293 §3.8.6.3 allows
 * 0.5 s). Out-of-order data, gap fills, out-of-window
 * segments and challenge ACKs are answered immediately (RFC 5681 §4.2,
 * RFC 5961): the guest's loss recovery counts them. A pure ACK is never
 * acknowledged.
 *
 * Loss recovery. Fast retransmit after three duplicate ACKs, or as soon as
 * SACK shows more than two MSS received above a hole (RFC 6675 §4 IsLost),
 * then NewReno fast recovery (RFC 6582); with SACK each further ACK in
 * recovery repairs the next hole below the highest SACKed byte (a reduced
 * RFC 6675: no pipe estimate, one hole per ACK). A retransmission covers up
 * to one super-frame of the hole, since a full TAP queue drops whole
 * super-frames. The retransmission timer (RFC 6298) falls back to go-back-N
 * from SND.UNA with cwnd = 1 MSS.
 *
 * Deliberately not done: urgent data (RFC 9293 §3.8.5 / RFC 6093: the
 * pointer is ignored, the bytes are delivered inline as Linux does by
 * default); Nagle (we relay what the host gives and set PSH on the last
 * segment of each burst); D-SACK (RFC 2883);
 * RACK/TLP (a lost tail waits for the RTO); ECN; TCP Fast Open (data on a
 * SYN is ignored and acknowledged only as the SYN, as Linux does without
 * TFO); IPv4 options; the RFC 6298 §5.7 3-second RTO after a lost SYN.
 *
 * Re-entrancy. Events run synchronously and may call back into the endpoint
 * (the relay's onData may hit a dead socket and abort(); onReset may close).
 * After every event the code re-checks `state` and stops once CLOSED; the
 * sequence variables are updated before an event fires, so a transmit from
 * inside a callback carries the right numbers.
 */
import {
  TcpState,
  type TcpEndpointConfig,
  type TcpEndpointControl,
  type TcpEndpointEvents,
  type TcpEndpointStats,
  type TcpSegmentSink,
  type TcpStateValue,
} from './contract.js';
import { newTcpRepr, TCP_MAX_WINDOW_SCALE, TcpFlag, tcpOptionsLength, type TcpRepr } from '../wire/tcp.js';
import { NewReno } from './congestion.js';
import { AckBudget } from './rate-limit.js';
import { Reassembly } from './reassembly.js';
import { ReceiveWindow } from './receive-window.js';
import { RttEstimator } from './rtt.js';
import { SackScoreboard } from './sack-scoreboard.js';
import { SendBuffer } from './send-buffer.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, seqSub } from './seq.js';
import { canReceive, canSend, isSynchronized } from './state.js';
import { segmentAcceptable, Tcb, windowUpdateAllowed } from './tcb.js';
import { RtxMode, TcpTimers } from './timers.js';

/** RFC 9293 §3.7.1: the send MSS when the SYN carries no MSS option. */
export const DEFAULT_SEND_MSS = 536;
/** Linux net.ipv4.tcp_min_snd_mss (CVE-2019-11479): a tiny announced MSS is raised to this. */
const MIN_SEND_MSS = 48;
/** RFC 5681 §3.2 DupThresh. */
const DUP_THRESH = 3;
/** Challenge ACKs per second and connection (rate-limit.ts). */
export const CHALLENGE_ACKS_PER_SECOND = 10;
/** Linux net.ipv4.tcp_invalid_ratelimit. */
const OUT_OF_WINDOW_ACK_INTERVAL_MS = 500;
/** Reassembly store block limit (reassembly.ts). */
export const MAX_OUT_OF_ORDER_BLOCKS = 256;
/** RFC 7323 §5.5: TS.Recent older than 24 days is invalid for PAWS. */
const PAWS_IDLE_LIMIT_MS = 24 * 24 * 3600 * 1000;

const { FIN, SYN, RST, PSH, ACK } = TcpFlag;
/** SACK ranges while building one segment's options; shared, as options are built and emitted synchronously. */
const SACK_SCRATCH = new Float64Array(8);

function newStats(): TcpEndpointStats {
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
function tsClock(nowMs: number): number {
  return Math.floor(nowMs) >>> 0;
}

export class TcpEndpoint implements TcpEndpointControl {
  readonly stats: TcpEndpointStats = newStats();
  private st: TcpStateValue = TcpState.CLOSED;
  private used = false;
  private activeOpen = false;
  private readonly tcb = new Tcb();
  private readonly sndBuf = new SendBuffer();
  private readonly rtt: RttEstimator;
  private readonly cc: NewReno;
  private readonly rwnd: ReceiveWindow;
  private readonly reasm = new Reassembly(MAX_OUT_OF_ORDER_BLOCKS);
  private readonly scoreboard = new SackScoreboard();
  private readonly timers = new TcpTimers();
  private readonly challengeBudget = new AckBudget(CHALLENGE_ACKS_PER_SECOND, 1000);
  private readonly outOfWindowBudget = new AckBudget(1, OUT_OF_WINDOW_ACK_INTERVAL_MS);
  /** The one output repr, refilled for every segment. */
  private readonly out: TcpRepr = newTcpRepr();


  /** close() was called: a FIN follows the queued data. */
  private finQueued = false;
  private finAcked = false;
  /** An ACK is owed to the guest; flush() or the next segment sends it. */
  private ackPending = false;
  /** The owed ACK is for more than a little in-order data (FIN, window update, handshake): no delaying it. */
  private ackUrgent = false;
  /** In-order payload bytes received since the last segment we sent (each carries an ACK). */
  private bytesSinceAck = 0;
  /** An ACK is owed at the end of this segment's processing (out of order, gap filled, trimmed). */
  private ackNow = false;
  /** ACKs or writes during input() may have made data sendable; flush() sends it. */
  private outputWanted = false;
  private inInput = false;
  private dupAcks = 0;
  /** Consecutive retransmission timeouts without progress (RFC 9293 §3.8.3 R2). */
  private rtoCount = 0;
  /** Zero-window probes without any answer, and the probe backoff exponent. */
  private probeCount = 0;
  private probeBackoff = 0;
  private keepalivesSent = 0;
  /** Last time the guest sent an acceptable ACK (zero-window retransmission give-up). */
  private lastAckMs = 0;
  /** Stream offset up to which recovery has retransmitted (RFC 6675 HighRxt). */
  private highRxtOff = 0;
  /** The relay filled the send buffer: tell it when space frees (onSendSpace). */
  private sendSpaceWanted = false;

  constructor(
    readonly config: TcpEndpointConfig,
    private readonly sink: TcpSegmentSink,
    private readonly events: TcpEndpointEvents,
  ) {
    this.rtt = new RttEstimator(config.rtoMinMs, config.rtoMaxMs, config.rtoInitialMs);
    this.cc = new NewReno(config.mss, config.iss >>> 0);
    this.rwnd = new ReceiveWindow(config.rcvBufBytes, config.mss);
  }

  get state(): TcpStateValue {
    return this.st;
  }

  /** A method, not a comparison, so the compiler does not narrow `st` across event callbacks. */
  private isClosed(): boolean {
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

  // ─── opening ──────────────────────────────────────────────────────────────

  /**
   * Passive open from the guest's SYN (RFC 9293 §3.10.7.2, LISTEN), called
   * by the relay once its host connect succeeded: negotiate the options,
   * enter SYN-RECEIVED and send SYN-ACK.
   */
  acceptSyn(syn: TcpRepr, nowMs: number): void {
    this.claim('acceptSyn');
    const tcb = this.tcb;
    tcb.irs = syn.seq >>> 0;
    tcb.rcvNxt = seqAdd(syn.seq, 1);
    this.initSend();
    this.negotiate(syn, nowMs);
    // RFC 7323 §2.2: the window field of a SYN is never scaled.
    tcb.sndWnd = syn.window;
    tcb.maxSndWnd = syn.window;
    tcb.sndWl1 = tcb.irs;
    tcb.sndWl2 = tcb.iss;
    this.st = TcpState.SYN_RECEIVED;
    this.lastAckMs = nowMs;
    this.emitSyn(nowMs, false);
  }

  /** Active open (RFC 9293 §3.10.1): SYN-SENT, send SYN with every option we support. */
  connect(nowMs: number): void {
    this.claim('connect');
    this.activeOpen = true;
    this.initSend();
    this.st = TcpState.SYN_SENT;
    this.lastAckMs = nowMs;
    this.emitSyn(nowMs, false);
  }

  private claim(what: string): void {
    if (this.used) throw new Error(`TcpEndpoint.${what}: the endpoint was opened already`);
    this.used = true;
  }

  private initSend(): void {
    const tcb = this.tcb;
    tcb.iss = this.config.iss >>> 0;
    tcb.sndUna = tcb.iss;
    tcb.sndNxt = tcb.iss;
    tcb.sndMax = tcb.iss;
    this.cc.recover = tcb.iss;
  }

  /** Options from the guest's SYN or SYN-ACK (we offer all of ours in a SYN). */
  private negotiate(syn: TcpRepr, nowMs: number): void {
    const tcb = this.tcb;
    const cfg = this.config;
    // RFC 7323 §2.2: scaling only if both SYNs carry the option; §2.3: clamp to 14.
    tcb.wsOk = cfg.windowScale >= 0 && syn.windowScale >= 0;
    tcb.sndShift = tcb.wsOk ? Math.min(syn.windowScale, TCP_MAX_WINDOW_SCALE) : 0;
    tcb.rcvShift = tcb.wsOk ? Math.min(cfg.windowScale, TCP_MAX_WINDOW_SCALE) : 0;
    this.rwnd.shift = tcb.rcvShift;
    // RFC 9293 §3.7.1: 536 when absent; never more than our own MSS.
    tcb.sndMss = Math.max(MIN_SEND_MSS, Math.min(syn.mss > 0 ? syn.mss : DEFAULT_SEND_MSS, cfg.mss));
    // RFC 7323 §3.2: timestamps only if both sides sent TSopt in their SYN.
    tcb.tsOk = cfg.timestamps && syn.hasTimestamps;
    if (tcb.tsOk) {
      tcb.tsRecent = syn.tsVal >>> 0;
      tcb.tsRecentMs = nowMs;
    }
    // RFC 2018 §2: SACK only if both SYNs carry SACK-permitted.
    tcb.sackOk = cfg.sack && syn.sackPermitted;
    this.cc.setMss(Math.max(1, tcb.sndMss - (tcb.tsOk ? 12 : 0)));
  }

  /** Sends (or resends) our SYN or SYN-ACK, and (re)arms the retransmission timer. */
  private emitSyn(nowMs: number, retransmission: boolean): void {
    const tcb = this.tcb;
    const cfg = this.config;
    const o = this.out;
    const synAck = this.st === TcpState.SYN_RECEIVED;
    const wnd = Math.min(cfg.rcvBufBytes, 65535);
    o.seq = tcb.iss;
    o.ack = synAck ? tcb.rcvNxt : 0;
    o.flags = synAck ? SYN | ACK : SYN;
    o.window = wnd;
    o.urgent = 0;
    o.mss = cfg.mss;
    if (synAck) {
      // RFC 7323 §2.2 / §3.2, RFC 2018 §2: answer only what the guest offered.
      o.windowScale = tcb.wsOk ? tcb.rcvShift : -1;
      o.sackPermitted = tcb.sackOk;
      o.hasTimestamps = tcb.tsOk;
      o.tsEcr = tcb.tsRecent;
    } else {
      o.windowScale = cfg.windowScale >= 0 ? Math.min(cfg.windowScale, TCP_MAX_WINDOW_SCALE) : -1;
      o.sackPermitted = cfg.sack;
      o.hasTimestamps = cfg.timestamps;
      o.tsEcr = 0;
    }
    o.tsVal = tsClock(nowMs);
    o.sackCount = 0;
    this.rwnd.edgeOff = tcb.rcvNxtOff + wnd;
    tcb.sndNxt = seqAdd(tcb.iss, 1);
    tcb.sndMax = tcb.sndNxt;
    if (retransmission) {
      this.stats.retransmits++;
      this.rtt.cancelTiming(); // Karn
    } else {
      this.rtt.startTiming(tcb.sndNxt, nowMs);
    }
    if (synAck) {
      this.ackSent();
      tcb.lastAckSent = tcb.rcvNxt;
    }
    this.stats.segmentsOut++;
    this.sink.transmit(this, o, null, 0, 0, 0);
    this.timers.armRtx(RtxMode.RETRANSMIT, nowMs + this.rtt.rtoMs);
  }

  // ─── segment arrives ───────────────────────────────────────────────────────

  /**
   * One segment from the guest (RFC 9293 §3.10.7). `payloadOff`/`payloadLen`
   * locate its data in `buf`, valid only during the call. Segments for a
   * CLOSED endpoint are ignored: the relay answers those (§3.10.7.1).
   */
  input(seg: TcpRepr, buf: Uint8Array, payloadOff: number, payloadLen: number, nowMs: number): void {
    this.stats.segmentsIn++;
    if (this.st === TcpState.CLOSED || this.st === TcpState.LISTEN) return;
    this.inInput = true;
    try {
      if (this.st === TcpState.SYN_SENT) this.synSentArrives(seg, nowMs);
      else this.segmentArrives(seg, buf, payloadOff, payloadLen, nowMs);
    } finally {
      this.inInput = false;
    }
    if (this.ackNow) {
      this.ackNow = false;
      if (!this.isClosed()) this.sendAck(nowMs);
    }
    if (!this.isClosed() && (this.ackPending || this.outputWanted)) this.timers.flushAt = nowMs;
  }

  /** RFC 9293 §3.10.7.3: SYN-SENT STATE. */
  private synSentArrives(seg: TcpRepr, nowMs: number): void {
    const tcb = this.tcb;
    const flags = seg.flags;
    // First, check the ACK bit: it must acknowledge our SYN and nothing beyond.
    if ((flags & ACK) !== 0 && (seqLt(seg.ack, seqAdd(tcb.iss, 1)) || seqGt(seg.ack, tcb.sndMax))) {
      if ((flags & RST) === 0) this.sendRst(seg.ack, 0, false, nowMs);
      return;
    }
    // Second, the RST bit: valid only with an acceptable ACK (RFC 5961 §3 in SYN-SENT).
    if ((flags & RST) !== 0) {
      if ((flags & ACK) === 0) return;
      this.closeNow('rst');
      return;
    }
    // Fourth, the SYN bit (the security/precedence check is not applicable).
    if ((flags & SYN) === 0) return;
    tcb.irs = seg.seq >>> 0;
    tcb.rcvNxt = seqAdd(seg.seq, 1);
    this.negotiate(seg, nowMs);
    if ((flags & ACK) !== 0) {
      // Our SYN is acknowledged: ESTABLISHED. SND.WND from the (unscaled) SYN-ACK.
      this.takeRttSample(seg, seg.ack, nowMs);
      tcb.sndUna = seg.ack >>> 0;
      tcb.sndWnd = seg.window;
      tcb.maxSndWnd = seg.window;
      tcb.sndWl1 = tcb.irs;
      tcb.sndWl2 = tcb.sndUna;
      this.timers.stopRtx();
      this.establish(nowMs);
      if (this.isClosed()) return;
      this.ackPending = true;
      this.ackUrgent = true;
      this.output(nowMs);
      if (this.ackPending) this.sendAck(nowMs);
      return;
    }
    // Simultaneous open: SYN-RECEIVED, send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
    tcb.sndWnd = seg.window;
    tcb.maxSndWnd = seg.window;
    tcb.sndWl1 = tcb.irs;
    tcb.sndWl2 = tcb.iss;
    this.st = TcpState.SYN_RECEIVED;
    this.emitSyn(nowMs, false);
  }

  /** ESTABLISHED (with the FIN that close() queued meanwhile: FIN-WAIT-1). */
  private establish(nowMs: number): void {
    this.st = this.finQueued ? TcpState.FIN_WAIT_1 : TcpState.ESTABLISHED;
    this.touchIdle(nowMs);
    this.outputWanted = true;
    this.events.onEstablished();
  }

  /** RFC 9293 §3.10.7.4: every state from SYN-RECEIVED on. */
  private segmentArrives(seg: TcpRepr, buf: Uint8Array, payloadOff: number, payloadLen: number, nowMs: number): void {
    const tcb = this.tcb;
    const flags = seg.flags;
    const seq = seg.seq >>> 0;

    // Linux tcp_check_req(): the guest retransmitted its SYN because our
    // SYN-ACK was lost; answer with the SYN-ACK again (RFC 9293 would only ACK).
    if (this.st === TcpState.SYN_RECEIVED && (flags & (SYN | ACK | RST)) === SYN && seq === tcb.irs) {
      this.emitSyn(nowMs, true);
      return;
    }

    // RFC 7323 §5.3 R1, PAWS: an older TSval than TS.Recent marks an old duplicate.
    if (
      tcb.tsOk &&
      seg.hasTimestamps &&
      (flags & RST) === 0 &&
      seqLt(seg.tsVal, tcb.tsRecent) &&
      nowMs - tcb.tsRecentMs < PAWS_IDLE_LIMIT_MS
    ) {
      this.stats.pawsRejected++;
      this.replyOutOfWindow(flags, payloadLen, nowMs);
      return;
    }

    // First, check the sequence number (RFC 9293 §3.10.7.4, the four cases).
    const segLen = payloadLen + ((flags & SYN) !== 0 ? 1 : 0) + ((flags & FIN) !== 0 ? 1 : 0);
    const rcvWnd = this.rwnd.remaining(tcb.rcvNxtOff);
    if (!segmentAcceptable(seq, segLen, tcb.rcvNxt, rcvWnd)) {
      // RFC 9293 §3.10.7.4: "If the RCV.WND is zero, no segments will be
      // acceptable, but special allowance should be made to accept valid
      // ACKs, URGs, and RSTs." A segment at exactly RCV.NXT (the guest's
      // zero-window probe) goes on; its data is trimmed off below and
      // answered with an ACK, as Linux's tcp_sequence() lets it through.
      if (!(rcvWnd === 0 && seq === tcb.rcvNxt)) {
        this.notAcceptable(seg, seq, payloadLen, nowMs);
        return;
      }
    }
    this.touchIdle(nowMs);

    // RFC 7323 §4.3: remember TSval if the segment covers Last.ACK.sent.
    if (tcb.tsOk && seg.hasTimestamps && seqLe(seq, tcb.lastAckSent) && seqGe(seg.tsVal, tcb.tsRecent)) {
      tcb.tsRecent = seg.tsVal >>> 0;
      tcb.tsRecentMs = nowMs;
    }

    // Trim to the window: old bytes off the front, bytes past RCV.NXT+RCV.WND
    // off the back (a FIN past the window goes with them).
    let dataSeq = (flags & SYN) !== 0 ? seqAdd(seq, 1) : seq;
    let dataOff = payloadOff;
    let dataLen = payloadLen;
    let fin = (flags & FIN) !== 0;
    if (seqLt(dataSeq, tcb.rcvNxt)) {
      const dup = seqSub(tcb.rcvNxt, dataSeq);
      if (dup > dataLen) {
        fin = false; // the FIN too is a duplicate
        dataLen = 0;
      } else {
        dataOff += dup;
        dataLen -= dup;
      }
      dataSeq = tcb.rcvNxt;
    }
    let trimmedRight = false;
    if (dataLen > 0) {
      const room = rcvWnd - seqSub(dataSeq, tcb.rcvNxt);
      if (dataLen > room) {
        dataLen = room > 0 ? room : 0;
        fin = false;
        trimmedRight = true;
      }
    }

    // Second, check the RST bit (RFC 5961 §3.2).
    if ((flags & RST) !== 0) {
      if (seq === tcb.rcvNxt) this.resetByGuest();
      else this.challengeAck(nowMs);
      return;
    }

    // Fourth, check the SYN bit (RFC 5961 §4; RFC 9293 §3.10.7.4). In
    // SYN-RECEIVED after a passive open RFC 9293 returns to LISTEN; a relayed
    // flow has no listener to return to, so it gets the challenge ACK too: a
    // guest that really starts over answers it with an exact RST.
    if ((flags & SYN) !== 0) {
      this.challengeAck(nowMs);
      return;
    }

    // Fifth, check the ACK field.
    if ((flags & ACK) === 0) return;
    const ack = seg.ack >>> 0;
    if (this.st === TcpState.SYN_RECEIVED) {
      // RFC 9293: SND.UNA < SEG.ACK =< SND.NXT moves to ESTABLISHED, else RST.
      if (!(seqGt(ack, tcb.sndUna) && seqInRange(ack, tcb.sndUna, tcb.sndMax))) {
        this.sendRst(ack, 0, false, nowMs);
        return;
      }
      this.takeRttSample(seg, ack, nowMs);
      tcb.sndUna = seqAdd(tcb.iss, 1);
      tcb.sndWnd = seg.window << tcb.sndShift;
      if (tcb.sndWnd > tcb.maxSndWnd) tcb.maxSndWnd = tcb.sndWnd;
      tcb.sndWl1 = seq;
      tcb.sndWl2 = ack;
      this.timers.stopRtx();
      this.rtoCount = 0;
      this.establish(nowMs);
      if (this.isClosed()) return;
    }
    // RFC 5961 §5.2: acceptable iff SND.UNA − MAX.SND.WND =< SEG.ACK =< SND.NXT
    // (SND.MAX here: after go-back-N the guest may ACK what we sent before).
    if (seqGt(ack, tcb.sndMax)) {
      // RFC 9293: "If the ACK acks something not yet sent ... send an ACK, drop the segment".
      this.challengeAck(nowMs);
      return;
    }
    if (seqLt(ack, seqAdd(tcb.sndUna, -tcb.maxSndWnd))) {
      this.challengeAck(nowMs);
      return;
    }
    this.processAck(seg, ack, payloadLen, nowMs);
    if (this.isClosed()) return;

    switch (this.st) {
      case TcpState.FIN_WAIT_1:
        if (this.finAcked) {
          this.st = TcpState.FIN_WAIT_2;
          this.touchIdle(nowMs);
        }
        break;
      case TcpState.CLOSING:
        // "if the ACK acknowledges our FIN, enter TIME-WAIT, otherwise ignore the segment"
        if (this.finAcked) this.enterTimeWait(nowMs);
        return;
      case TcpState.LAST_ACK:
        if (this.finAcked) this.closeNow(null);
        return;
      case TcpState.TIME_WAIT:
        // "The only thing that can arrive in this state is a retransmission of
        // the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
        if (fin) this.restartTimeWait(nowMs);
        return;
      default:
        break;
    }

    // Sixth, the URG bit: ignored (RFC 6093: urgent bytes are delivered inline).

    // Seventh, process the segment text.
    if (dataLen > 0 && canReceive(this.st)) {
      this.receiveData(dataSeq, buf, dataOff, dataLen);
      if (this.isClosed()) return;
    }
    if (trimmedRight) this.ackNow = true;

    // Eighth, check the FIN bit: it counts only once everything before it
    // arrived; an early one waits in the reassembly store like data.
    if (!canReceive(this.st)) return;
    if (fin) {
      const finSeq = seqAdd(dataSeq, dataLen);
      if (finSeq === tcb.rcvNxt) {
        this.finArrives(nowMs);
        return;
      }
      this.reasm.finOffset = tcb.rcvNxtOff + seqSub(finSeq, tcb.rcvNxt);
      if (dataLen === 0) this.ackNow = true; // out of order: a duplicate ACK at once
    }
    if (this.reasm.finOffset >= 0 && this.reasm.finOffset === tcb.rcvNxtOff) this.finArrives(nowMs);
  }

  /** A segment failed the acceptability test. */
  private notAcceptable(seg: TcpRepr, seq: number, payloadLen: number, nowMs: number): void {
    const flags = seg.flags;
    const tcb = this.tcb;
    this.stats.outOfWindow++;
    // RFC 5961 §3.2: an RST outside the window is silently dropped.
    if ((flags & RST) !== 0) return;
    // TIME-WAIT: the guest retransmitted its FIN (our ACK was lost): ACK and restart 2·MSL.
    if (this.st === TcpState.TIME_WAIT && (flags & FIN) !== 0 && seqAdd(seq, payloadLen + 1) === tcb.rcvNxt) {
      this.restartTimeWait(nowMs);
      return;
    }
    // RFC 5961 §4 (RFC 9293 fourth check): a SYN in a synchronized state gets a
    // challenge ACK irrespective of its sequence number.
    if ((flags & SYN) !== 0 && isSynchronized(this.st)) {
      this.challengeAck(nowMs);
      return;
    }
    this.replyOutOfWindow(flags, payloadLen, nowMs);
  }

  /**
   * RFC 9293 §3.10.7.4: "If an incoming segment is not acceptable, an
   * acknowledgment should be sent in reply". Linux tcp_oow_rate_limited():
   * replies to segments without data are limited, because only those can be
   * one half of an ACK loop between two confused endpoints.
   */
  private replyOutOfWindow(flags: number, payloadLen: number, nowMs: number): void {
    if (payloadLen === 0 && (flags & FIN) === 0 && !this.outOfWindowBudget.take(nowMs)) {
      this.stats.acksRateLimited++;
      return;
    }
    this.sendAck(nowMs);
  }

  /** RFC 9293 §3.10.7.4 second check, an exact RST: the guest reset the connection. */
  private resetByGuest(): void {
    switch (this.st) {
      case TcpState.SYN_RECEIVED:
      case TcpState.ESTABLISHED:
      case TcpState.FIN_WAIT_1:
      case TcpState.FIN_WAIT_2:
      case TcpState.CLOSE_WAIT:
        // "users should also receive an unsolicited general 'connection reset' signal"
        this.closeNow('rst');
        break;
      default:
        // CLOSING, LAST-ACK, TIME-WAIT: "enter the CLOSED state, delete the TCB, and return".
        this.closeNow(null);
        break;
    }
  }

  /** RFC 5961 §3.2, §4, §5.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate-limited (§7). */
  private challengeAck(nowMs: number): void {
    if (!this.challengeBudget.take(nowMs)) {
      this.stats.acksRateLimited++;
      return;
    }
    this.stats.challengeAcks++;
    this.sendAck(nowMs);
  }

  // ─── acknowledgments from the guest ────────────────────────────────────────

  /** RFC 9293 §3.10.7.4 fifth check, for an ACK that passed RFC 5961 §5.2. */
  private processAck(seg: TcpRepr, ack: number, payloadLen: number, nowMs: number): void {
    const tcb = this.tcb;
    const acked = seqDiff(ack, tcb.sndUna);
    // "If the ACK is a duplicate (SEG.ACK < SND.UNA), it can be ignored."
    if (acked < 0) return;
    this.lastAckMs = nowMs;
    this.probeCount = 0;
    const newWnd = seg.window << tcb.sndShift;
    const hadOutstanding = tcb.sndMax !== tcb.sndUna;
    if (tcb.sackOk && seg.sackCount > 0) this.takeSackBlocks(seg);

    if (acked > 0) {
      this.newAck(seg, ack, acked, nowMs);
      if (this.isClosed()) return;
    } else if (
      // RFC 5681 §2, DUPLICATE ACKNOWLEDGMENT (a)–(e); with SACK the window may
      // change (Linux counts SACK-bearing ACKs too).
      hadOutstanding &&
      payloadLen === 0 &&
      (seg.flags & (SYN | FIN)) === 0 &&
      (newWnd === tcb.sndWnd || seg.sackCount > 0)
    ) {
      this.dupAck(nowMs);
    }

    // RFC 9293: "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated"
    // when the segment is newer than the one that last set it (SND.WL1/WL2).
    if (windowUpdateAllowed(tcb, seg.seq, ack)) {
      if (newWnd !== tcb.sndWnd) {
        this.outputWanted = true;
        if (newWnd > 0) this.probeBackoff = 0;
      }
      tcb.sndWnd = newWnd;
      tcb.sndWl1 = seg.seq >>> 0;
      tcb.sndWl2 = ack;
      if (newWnd > tcb.maxSndWnd) tcb.maxSndWnd = newWnd;
    }

    // RFC 5681 §3.2 / RFC 6675 §5: enter loss recovery.
    if (
      tcb.sndUna !== tcb.sndMax &&
      (this.dupAcks >= DUP_THRESH || (tcb.sackOk && this.scoreboard.sackedBytes > 2 * this.cc.mss)) &&
      this.cc.mayEnterRecovery(ack)
    ) {
      this.enterRecovery(nowMs);
    }
  }

  /** SND.UNA advances by `acked` (data, plus our FIN if it is covered). */
  private newAck(seg: TcpRepr, ack: number, acked: number, nowMs: number): void {
    const tcb = this.tcb;
    const cfg = this.config;
    const flightBefore = seqSub(tcb.sndNxt, tcb.sndUna);
    let dataAcked = acked;
    const queued = this.sndBuf.length;
    if (acked > queued) {
      // Only our FIN lies beyond the queued data.
      dataAcked = queued;
      this.finAcked = true;
    }
    this.takeRttSample(seg, ack, nowMs);
    this.sndBuf.release(dataAcked);
    tcb.sndUnaOff += dataAcked;
    tcb.sndUna = ack;
    if (seqLt(tcb.sndNxt, ack)) tcb.sndNxt = ack;
    this.scoreboard.pruneBelow(tcb.sndUnaOff);
    if (this.highRxtOff < tcb.sndUnaOff) this.highRxtOff = tcb.sndUnaOff;
    this.rtoCount = 0;
    this.outputWanted = true;

    if (this.cc.inRecovery) {
      if (this.cc.isFullAck(ack)) {
        this.cc.exitRecovery(seqSub(tcb.sndMax, tcb.sndUna));
        this.dupAcks = 0;
      } else {
        // RFC 6582 §3.2 step 5: a partial ACK; the next hole is lost too.
        this.cc.onPartialAck(dataAcked);
        this.retransmitHole(nowMs, true);
      }
    } else {
      this.dupAcks = 0;
      this.cc.onAck(dataAcked, 2 * flightBefore > this.cc.cwnd);
    }

    // RFC 6298 §5.2 / §5.3.
    if (tcb.sndUna === tcb.sndMax) this.timers.stopRtx();
    else this.timers.armRtx(RtxMode.RETRANSMIT, nowMs + this.rtt.rtoMs);

    if (this.sendSpaceWanted && this.sendBufferSpace >= cfg.sndBufBytes / 4) {
      this.sendSpaceWanted = false;
      this.events.onSendSpace();
    }
  }

  private dupAck(nowMs: number): void {
    this.dupAcks++;
    this.stats.dupAcksIn++;
    if (!this.cc.inRecovery) return;
    // RFC 5681 §3.2 step 4: inflate; RFC 6675-lite: repair the next hole.
    this.cc.onDupAckInRecovery();
    if (this.tcb.sackOk) this.retransmitHole(nowMs, false);
    this.outputWanted = true;
  }

  /** RFC 5681 §3.2 steps 2–3, RFC 6582 §3.2 step 2: fast retransmit. */
  private enterRecovery(nowMs: number): void {
    const tcb = this.tcb;
    this.stats.fastRetransmits++;
    this.cc.enterRecovery(seqSub(tcb.sndMax, tcb.sndUna), tcb.sndMax);
    this.highRxtOff = tcb.sndUnaOff;
    this.rtt.cancelTiming(); // Karn: the timed segment may be the one we resend
    this.retransmitHole(nowMs, true);
  }

  /**
   * Retransmits one hole: from SND.UNA (`fromUna`, NewReno) or from where
   * recovery got to (SACK), up to the next SACKed byte or one super-frame.
   * With SACK, only holes below the highest SACKed byte count as lost.
   */
  private retransmitHole(nowMs: number, fromUna: boolean, maxLen = Infinity): void {
    const tcb = this.tcb;
    const sentEnd = tcb.sndUnaOff + seqSub(tcb.sndMax, tcb.sndUna);
    const queuedEnd = tcb.sndUnaOff + this.sndBuf.length;
    // Only what was sent before (a FIN takes the sequence number after the data).
    const dataEnd = sentEnd > queuedEnd ? queuedEnd : sentEnd;
    let start = fromUna ? tcb.sndUnaOff : Math.max(tcb.sndUnaOff, this.highRxtOff);
    if (tcb.sackOk) start = this.scoreboard.nextUnsacked(start);
    if (start >= sentEnd) return;
    if (!fromUna && !(start < this.scoreboard.highest)) return;
    const mss = this.effectiveMss(this.prepareOptions(nowMs));
    let end = Math.min(start + Math.min(this.segmentCap(mss), maxLen), dataEnd);
    if (tcb.sackOk) end = Math.min(end, this.scoreboard.nextSacked(start));
    const len = end > start ? end - start : 0;
    const fin = this.finQueued && start + len === dataEnd && sentEnd === queuedEnd + 1;
    if (len === 0 && !fin) return;
    let flags = ACK;
    if (fin) flags |= FIN;
    if (len > 0 && start + len === queuedEnd) flags |= PSH;
    this.stats.retransmits++;
    this.transmitSegment(flags, seqAdd(tcb.sndUna, start - tcb.sndUnaOff), start - tcb.sndUnaOff, len, mss);
    this.highRxtOff = start + len + (fin ? 1 : 0);
  }

  /** RFC 2018 §4 blocks from the guest, checked against (SND.UNA, SND.MAX]. */
  private takeSackBlocks(seg: TcpRepr): void {
    const tcb = this.tcb;
    const inFlight = seqSub(tcb.sndMax, tcb.sndUna);
    const blocks = seg.sackBlocks;
    for (let i = 0; i < seg.sackCount; i++) {
      const left = seqSub(blocks[2 * i], tcb.sndUna);
      const right = seqSub(blocks[2 * i + 1], tcb.sndUna);
      // Blocks below SND.UNA (D-SACK, RFC 2883) or beyond what we sent are ignored.
      if (left === 0 || left >= right || right > inFlight) continue;
      this.scoreboard.add(tcb.sndUnaOff + left, tcb.sndUnaOff + right);
    }
  }

  /** RFC 7323 §4.1 with timestamps, else RFC 6298 §3 Karn timing of one segment. */
  private takeRttSample(seg: TcpRepr, ack: number, nowMs: number): void {
    if (this.tcb.tsOk && seg.hasTimestamps && seg.tsEcr !== 0) {
      const rtt = seqSub(tsClock(nowMs), seg.tsEcr);
      if (rtt <= this.config.rtoMaxMs) this.rtt.sample(rtt);
      this.rtt.cancelTiming();
    } else if (this.rtt.isTiming && seqGe(ack, this.rtt.timedEnd)) {
      this.rtt.finishTiming(nowMs);
    }
  }

  // ─── data and FIN from the guest ───────────────────────────────────────────

  /** RFC 9293 §3.10.7.4 seventh step, for data already trimmed to the window. */
  private receiveData(dataSeq: number, buf: Uint8Array, off: number, len: number): void {
    const tcb = this.tcb;
    if (dataSeq !== tcb.rcvNxt) {
      // Out of order: hold a copy, and send a duplicate ACK (with SACK) at once (RFC 5681 §4.2).
      this.stats.ooSegments++;
      const at = tcb.rcvNxtOff + seqSub(dataSeq, tcb.rcvNxt);
      const stored = this.reasm.insert(at, buf, off, len);
      if (stored === 0 && this.reasm.blockCount >= MAX_OUT_OF_ORDER_BLOCKS) this.stats.ooDropped++;
      this.ackNow = true;
      return;
    }
    const filledGap = !this.reasm.isEmpty;
    this.deliver(buf, off, len);
    if (this.isClosed()) return;
    if (filledGap) {
      this.pullReassembled();
      if (this.isClosed()) return;
      // RFC 5681 §4.2: a segment that fills (part of) a gap is ACKed at once.
      this.ackNow = true;
      return;
    }
    this.ackPending = true;
    this.bytesSinceAck += len;
  }

  /** Hands in-order bytes to the relay; RCV.NXT moves first (see Re-entrancy). */
  private deliver(buf: Uint8Array, off: number, len: number): void {
    const tcb = this.tcb;
    tcb.rcvNxt = seqAdd(tcb.rcvNxt, len);
    tcb.rcvNxtOff += len;
    this.rwnd.backlog += len;
    this.stats.bytesIn += len;
    this.events.onData(buf, off, len);
  }

  private pullReassembled(): void {
    const reasm = this.reasm;
    const tcb = this.tcb;
    while (!reasm.isEmpty && reasm.firstStart <= tcb.rcvNxtOff) {
      const start = reasm.firstStart;
      const data = reasm.firstData;
      reasm.dropFirst();
      const end = start + data.length;
      if (end <= tcb.rcvNxtOff) continue;
      const skip = tcb.rcvNxtOff - start;
      this.deliver(data, skip, data.length - skip);
      if (this.isClosed()) return;
    }
  }

  /** RFC 9293 §3.10.7.4 eighth step: the guest's FIN, in sequence. */
  private finArrives(nowMs: number): void {
    const tcb = this.tcb;
    tcb.rcvNxt = seqAdd(tcb.rcvNxt, 1);
    this.ackPending = true;
    this.ackUrgent = true;
    this.reasm.clear();
    switch (this.st) {
      case TcpState.SYN_RECEIVED:
      case TcpState.ESTABLISHED:
        this.st = TcpState.CLOSE_WAIT;
        break;
      case TcpState.FIN_WAIT_1:
        // Our FIN is not acknowledged yet (or we would be in FIN-WAIT-2).
        this.st = TcpState.CLOSING;
        break;
      case TcpState.FIN_WAIT_2:
        this.enterTimeWait(nowMs);
        break;
      default:
        break;
    }
    this.events.onFin();
  }

  private enterTimeWait(nowMs: number): void {
    this.st = TcpState.TIME_WAIT;
    this.timers.stopRtx();
    this.timers.idleAt = Infinity;
    this.timers.lingerAt = nowMs + this.config.timeWaitMs;
    this.reasm.clear();
    this.sndBuf.clear();
    this.events.onTimeWait?.();
  }

  private restartTimeWait(nowMs: number): void {
    this.timers.lingerAt = nowMs + this.config.timeWaitMs;
    this.sendAck(nowMs);
  }

  // ─── the relay's side ──────────────────────────────────────────────────────

  /** Sends what input() held back: one ACK for the batch, or data carrying it. */
  flush(nowMs: number): void {
    this.timers.flushAt = Infinity;
    this.outputWanted = false;
    if (this.isClosed()) return;
    this.output(nowMs);
    if (!this.ackPending) return;
    if (this.mayDelayAck()) {
      if (this.timers.ackAt === Infinity) this.timers.ackAt = nowMs + this.config.delayedAckMs;
      return;
    }
    this.sendAck(nowMs);
  }

  /** Whether the owed ACK may wait for host data to carry it (see ACK policy). */
  private mayDelayAck(): boolean {
    return this.config.delayedAckMs > 0 && !this.ackUrgent && this.st === TcpState.ESTABLISHED && this.bytesSinceAck < 2 * this.config.mss;
  }

  /**
   * Queues host bytes for the guest; the buffer owns `chunk` from now on.
   * Ignored once close() was called or the connection is gone.
   */
  write(chunk: Uint8Array, nowMs: number): void {
    switch (this.st) {
      case TcpState.SYN_SENT:
      case TcpState.SYN_RECEIVED:
      case TcpState.ESTABLISHED:
      case TcpState.CLOSE_WAIT:
        break;
      default:
        return;
    }
    if (this.finQueued) return;
    this.sndBuf.push(chunk);
    if (this.sendBufferSpace <= 0) this.sendSpaceWanted = true;
    if (this.inInput) this.outputWanted = true;
    else this.output(nowMs);
  }

  /** See TcpEndpointControl.setReceiveBacklog and receive-window.ts. */
  setReceiveBacklog(bytes: number, nowMs: number): void {
    this.rwnd.backlog = bytes > 0 ? bytes : 0;
    if (!canReceive(this.st)) return;
    if (!this.rwnd.updateWorthSending(this.tcb.rcvNxtOff)) return;
    // RFC 9293 §3.8.6.2.2 / Linux __tcp_cleanup_rbuf(): a window update.
    this.stats.windowUpdates++;
    // A guest that still has a few segments of window is not waiting for the
    // update: with delayed ACKs it rides on the next segment or the delayed
    // ACK (after the handshake the window jumps from the SYN-ACK's unscaled
    // 64 KB to the whole buffer; that alone is worth no frame).
    const urgent = this.config.delayedAckMs === 0 || this.rwnd.remaining(this.tcb.rcvNxtOff) < 4 * this.config.mss;
    if (this.inInput) {
      this.ackPending = true;
      if (urgent) this.ackUrgent = true;
    } else if (urgent) {
      this.sendAck(nowMs);
    } else {
      this.ackPending = true;
      if (this.timers.ackAt === Infinity) this.timers.ackAt = nowMs + this.config.delayedAckMs;
    }
  }

  /**
   * The host finished sending (RFC 9293 §3.10.4 CLOSE): FIN after the queued
   * data. Before the handshake completes the FIN waits for it: RFC 9293 would
   * drop queued data in SYN-SENT, but a relay must not lose what the host
   * client wrote before it half-closed.
   */
  close(nowMs: number): void {
    switch (this.st) {
      case TcpState.SYN_SENT:
      case TcpState.SYN_RECEIVED:
        this.finQueued = true;
        return;
      case TcpState.ESTABLISHED:
        this.finQueued = true;
        this.st = TcpState.FIN_WAIT_1;
        break;
      case TcpState.CLOSE_WAIT:
        this.finQueued = true;
        this.st = TcpState.LAST_ACK;
        break;
      default:
        return;
    }
    if (this.inInput) this.outputWanted = true;
    else this.output(nowMs);
  }

  /**
   * RFC 9293 §3.10.5 ABORT: RST in SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1/2
   * and CLOSE-WAIT (with ACK, as Linux tcp_send_active_reset() does), then
   * CLOSED and onClosed. No onReset: the relay asked for it.
   */
  abort(nowMs: number): void {
    switch (this.st) {
      case TcpState.CLOSED:
        return;
      case TcpState.SYN_RECEIVED:
      case TcpState.ESTABLISHED:
      case TcpState.FIN_WAIT_1:
      case TcpState.FIN_WAIT_2:
      case TcpState.CLOSE_WAIT:
        this.sendRst(this.tcb.sndMax, this.tcb.rcvNxt, true, nowMs);
        break;
      default:
        break;
    }
    this.closeNow(null);
  }

  timeWaitAcceptsSyn(syn: TcpRepr): boolean {
    if (this.st !== TcpState.TIME_WAIT || (syn.flags & (SYN | ACK | RST)) !== SYN) return false;
    const tcb = this.tcb;
    if (tcb.tsOk && syn.hasTimestamps) {
      if (seqLt(syn.tsVal, tcb.tsRecent)) return false; // PAWS
      if (seqGt(syn.tsVal, tcb.tsRecent)) return true;
    }
    return seqGt(syn.seq, tcb.rcvNxt);
  }

  // ─── timers ──────────────────────────────────────────────────────────────

  /** Runs whatever is due at `nowMs` (call when nowMs ≥ nextDeadline). */
  onTimer(nowMs: number): void {
    if (this.isClosed()) return;
    const t = this.timers;
    if (t.flushAt <= nowMs) this.flush(nowMs);
    if (t.ackAt <= nowMs) {
      t.ackAt = Infinity;
      if (this.ackPending) this.sendAck(nowMs);
      if (this.isClosed()) return;
    }
    if (t.rtxAt <= nowMs) {
      if (t.rtxMode === RtxMode.PERSIST) this.persistTimeout(nowMs);
      else this.retransmitTimeout(nowMs);
      if (this.isClosed()) return;
    }
    if (t.idleAt <= nowMs) {
      this.idleTimeout(nowMs);
      if (this.isClosed()) return;
    }
    // RFC 9293 §3.10.8: "If the time-wait timeout expires on a connection, delete the TCB".
    if (t.lingerAt <= nowMs) this.closeNow(null);
  }

  /** RFC 6298 §5.4–5.6, RFC 5681 §3.1 loss window, go-back-N from SND.UNA. */
  private retransmitTimeout(nowMs: number): void {
    const tcb = this.tcb;
    const cfg = this.config;
    this.stats.rtoTimeouts++;
    // A guest that keeps its window closed but answers is not dead: count
    // only while it is silent (Linux tcp_retransmit_timer(), zero window).
    const zeroWindow = tcb.sndWnd === 0 && isSynchronized(this.st);
    if (!zeroWindow) this.rtoCount++;
    if (this.rtoCount > cfg.maxRetransmits || (zeroWindow && nowMs - this.lastAckMs > cfg.rtoMaxMs)) {
      this.giveUp(nowMs);
      return;
    }
    this.rtt.backoff();
    this.rtt.cancelTiming();
    if (this.st === TcpState.SYN_SENT || this.st === TcpState.SYN_RECEIVED) {
      this.emitSyn(nowMs, true);
      return;
    }
    if (!canSend(this.st) || tcb.sndUna === tcb.sndMax) {
      this.timers.stopRtx();
      return;
    }
    this.cc.onTimeout(seqSub(tcb.sndMax, tcb.sndUna), tcb.sndMax);
    this.dupAcks = 0;
    this.scoreboard.clear();
    tcb.sndNxt = tcb.sndUna;
    this.highRxtOff = tcb.sndUnaOff;
    this.timers.stopRtx();
    this.output(nowMs);
    if (tcb.sndNxt === tcb.sndUna) {
      // The window closed under data in flight: resend one MSS anyway, as a probe.
      this.retransmitHole(nowMs, true, this.cc.mss);
    }
    this.timers.armRtx(RtxMode.RETRANSMIT, nowMs + this.rtt.rtoMs);
  }

  /**
   * RFC 9293 §3.8.6.1 zero-window probe. Like Linux tcp_xmit_probe_skb(), a
   * segment with no data and SEQ = SND.UNA − 1: it falls left of the guest's
   * window, so the guest must answer with an ACK carrying its window, and it
   * needs no sequence space of its own. Probing goes on as long as the guest
   * answers; only `maxRetransmits` probes in a row without any ACK give up.
   */
  private persistTimeout(nowMs: number): void {
    this.probeCount++;
    if (this.probeCount > this.config.maxRetransmits) {
      this.giveUp(nowMs);
      return;
    }
    this.stats.windowProbes++;
    this.sendProbe(nowMs);
    this.probeBackoff++;
    this.armPersist(nowMs);
  }

  private armPersist(nowMs: number): void {
    const delay = Math.min(this.rtt.rtoMs * 2 ** this.probeBackoff, this.config.rtoMaxMs);
    this.timers.armRtx(RtxMode.PERSIST, nowMs + delay);
  }

  /** Keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6) or the FIN-WAIT-2 timeout. */
  private idleTimeout(nowMs: number): void {
    const cfg = this.config;
    if (this.st === TcpState.FIN_WAIT_2) {
      this.giveUp(nowMs);
      return;
    }
    if (this.timers.rtxMode !== RtxMode.OFF) {
      // Retransmissions or probes are running and have their own give-up rule.
      this.timers.idleAt = nowMs + cfg.keepaliveIdleMs;
      return;
    }
    if (this.keepalivesSent >= cfg.keepaliveProbes) {
      this.giveUp(nowMs);
      return;
    }
    this.keepalivesSent++;
    this.stats.keepaliveProbes++;
    // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT − 1 (= SND.UNA − 1, nothing is in flight), no data.
    this.sendProbe(nowMs);
    this.timers.idleAt = nowMs + cfg.keepaliveIntervalMs;
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
  private touchIdle(nowMs: number): void {
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

  /**
   * Retransmissions, probes or keepalives ran out (RFC 9293 §3.8.3 R2): RST
   * so a guest that is still there learns of it, onReset('timeout'), CLOSED.
   */
  private giveUp(nowMs: number): void {
    if (this.st !== TcpState.SYN_SENT) this.sendRst(this.tcb.sndMax, this.tcb.rcvNxt, true, nowMs);
    this.closeNow('timeout');
  }

  /**
   * Enters CLOSED and tells the relay: onReset first (if `reset`), then
   * onClosed. The state is CLOSED before either runs, so an abort() from
   * inside them is a no-op and cannot answer a guest's RST with ours.
   */
  private closeNow(reset: 'rst' | 'timeout' | null): void {
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

  // ─── output ──────────────────────────────────────────────────────────────

  /**
   * Sends queued data (and the FIN) as far as the guest's window, cwnd and
   * the segment cap allow, each segment as large as possible.
   *
   *   SND.UNA            SND.NXT          SND.UNA+SND.WND
   *      |---- in flight ----|==== may send ====|
   *      |<--------------- cwnd --------------------->|
   *                          |<- unsent (SendBuffer) ->|
   *
   * RFC 9293 §3.8.6.2.1 sender SWS avoidance without the override timer: a
   * segment smaller than both the MSS and what is queued waits while data is
   * in flight (its ACK will reopen the window); with nothing in flight it
   * goes, or the persist timer takes over when the window is zero.
   */
  private output(nowMs: number): void {
    if (!canSend(this.st)) return;
    const tcb = this.tcb;
    for (;;) {
      const off = seqSub(tcb.sndNxt, tcb.sndUna);
      const unsent = this.sndBuf.length - off;
      if (unsent < 0 || (unsent === 0 && !this.finQueued)) break;
      const mss = this.effectiveMss(this.prepareOptions(nowMs));
      const wndRoom = tcb.sndWnd - off;
      const cwndRoom = this.cc.cwnd - off;
      let len = Math.min(unsent, wndRoom, cwndRoom, this.segmentCap(mss));
      if (len < 0) len = 0;
      if (len < unsent && len < mss && off > 0) break;
      // The FIN needs one unit of window: Linux drops a FIN at a zero window.
      const fin = this.finQueued && len === unsent && wndRoom > len;
      if (len === 0 && !fin) break;
      let flags = ACK;
      if (len > 0 && len === unsent) flags |= PSH;
      if (fin) flags |= FIN;
      const seq = tcb.sndNxt;
      const resend = seqLt(seq, tcb.sndMax);
      if (resend) this.stats.retransmits++;
      this.transmitSegment(flags, seq, off, len, mss);
      tcb.sndNxt = seqAdd(seq, len + (fin ? 1 : 0));
      if (seqGt(tcb.sndNxt, tcb.sndMax)) {
        tcb.sndMax = tcb.sndNxt;
        if (!resend) this.rtt.startTiming(tcb.sndNxt, nowMs);
      }
      // RFC 6298 §5.1: start the timer if it is not running (persist gives way).
      if (this.timers.rtxMode !== RtxMode.RETRANSMIT) this.timers.armRtx(RtxMode.RETRANSMIT, nowMs + this.rtt.rtoMs);
      if (fin) break;
    }
    // Nothing in flight, something to send, no window: RFC 9293 §3.8.6.1 probing.
    if (tcb.sndUna === tcb.sndMax && this.timers.rtxMode === RtxMode.OFF && this.hasUnsent()) this.armPersist(nowMs);
  }

  private hasUnsent(): boolean {
    const off = seqSub(this.tcb.sndNxt, this.tcb.sndUna);
    const unsent = this.sndBuf.length - off;
    return unsent > 0 || (unsent === 0 && this.finQueued);
  }

  /** Payload per wire segment: the guest's MSS less our options (RFC 6691). */
  private effectiveMss(optionsLen: number): number {
    const m = this.tcb.sndMss - optionsLen;
    return m > 1 ? m : 1;
  }

  /** Largest payload of one transmit(): a whole number of MSS up to maxSegmentPayload with GSO. */
  private segmentCap(mss: number): number {
    const max = this.config.maxSegmentPayload;
    if (max <= this.config.mss) return mss;
    const cap = max - (max % mss);
    return cap > mss ? cap : mss;
  }

  /** Fills the options of a non-SYN segment; returns their length in bytes. */
  private prepareOptions(nowMs: number): number {
    const tcb = this.tcb;
    const o = this.out;
    o.mss = 0;
    o.windowScale = -1;
    o.sackPermitted = false;
    o.hasTimestamps = tcb.tsOk;
    if (tcb.tsOk) {
      o.tsVal = tsClock(nowMs);
      o.tsEcr = tcb.tsRecent;
    }
    o.sackCount = 0;
    if (tcb.sackOk && !this.reasm.isEmpty) {
      const ranges = SACK_SCRATCH;
      const n = this.reasm.sackRanges(ranges, 4, tcb.rcvNxtOff);
      const blocks = o.sackBlocks;
      for (let i = 0; i < n; i++) {
        blocks[2 * i] = seqAdd(tcb.rcvNxt, ranges[2 * i] - tcb.rcvNxtOff);
        blocks[2 * i + 1] = seqAdd(tcb.rcvNxt, ranges[2 * i + 1] - tcb.rcvNxtOff);
      }
      o.sackCount = n;
    }
    return tcpOptionsLength(o);
  }

  /** Nothing is owed any more: the segment just built carries RCV.NXT. */
  private ackSent(): void {
    this.ackPending = false;
    this.ackUrgent = false;
    this.bytesSinceAck = 0;
    this.timers.ackAt = Infinity;
  }

  /** Emits a non-SYN, non-RST segment with the options prepareOptions() set. */
  private transmitSegment(flags: number, seq: number, dataOffset: number, len: number, gsoSize: number): void {
    const tcb = this.tcb;
    const o = this.out;
    o.flags = flags;
    o.seq = seq;
    o.ack = tcb.rcvNxt;
    o.window = this.rwnd.field(tcb.rcvNxtOff);
    o.urgent = 0;
    this.ackSent();
    tcb.lastAckSent = tcb.rcvNxt;
    this.stats.segmentsOut++;
    this.stats.bytesOut += len;
    this.sink.transmit(this, o, len > 0 ? this.sndBuf : null, dataOffset, len, gsoSize);
  }

  /** <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> with our options. */
  private sendAck(nowMs: number): void {
    const mss = this.effectiveMss(this.prepareOptions(nowMs));
    this.stats.acksOut++;
    this.transmitSegment(ACK, this.tcb.sndNxt, 0, 0, mss);
  }

  /** Zero-window probe and keepalive: <SEQ=SND.UNA−1><ACK=RCV.NXT><CTL=ACK>, no data. */
  private sendProbe(nowMs: number): void {
    const mss = this.effectiveMss(this.prepareOptions(nowMs));
    this.transmitSegment(ACK, seqAdd(this.tcb.sndUna, -1), 0, 0, mss);
  }

  /** An RST: no options, window 0. */
  private sendRst(seq: number, ack: number, withAck: boolean, _nowMs: number): void {
    const o = this.out;
    o.flags = withAck ? RST | ACK : RST;
    o.seq = seq >>> 0;
    o.ack = withAck ? ack >>> 0 : 0;
    o.window = 0;
    o.urgent = 0;
    o.mss = 0;
    o.windowScale = -1;
    o.sackPermitted = false;
    o.hasTimestamps = false;
    o.sackCount = 0;
    this.stats.segmentsOut++;
    this.sink.transmit(this, o, null, 0, 0, 0);
  }
}
