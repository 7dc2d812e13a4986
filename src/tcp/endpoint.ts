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
 *   endpoint*.ts        the RFC 9293 §3.10 event processing that ties them:
 *     endpoint-base.ts       the shared state, constants, entering CLOSED and TIME-WAIT
 *     endpoint-send.ts       output, ACKs, retransmission, the timers
 *     endpoint-handshake.ts  SYN and SYN-ACK, option negotiation, SYN-SENT
 *     endpoint-receive.ts    a segment arrives: checks, ACK processing, data, FIN
 *     endpoint.ts            (this file) the relay's API, TcpEndpointControl
 *   The endpoint is one class in these layers (gVisor's split), each extending
 *   the one before; only TcpEndpoint is instantiated, so every endpoint has one
 *   shape and every call site stays monomorphic.
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
 * segments since the last ACK (RFC 5681 §4.2), no window update,
 * ESTABLISHED, or the guest's FIN that moved us to CLOSE-WAIT (Linux's
 * tcp_fin() delays that ACK too). Host data or our FIN sent meanwhile carries
 * it (a request/response exchange then costs one frame to the guest, not an
 * ACK and then the reply; a guest's close, one FIN-ACK, not an ACK and then
 * our FIN); otherwise the `ack` timer sends it (RFC 9293 §3.8.6.3 allows
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
import { TcpState, type TcpEndpointControl } from './contract.js';
import { TcpFlag, type TcpRepr } from '../wire/tcp.js';
import { seqAdd, seqGt, seqLt } from './seq.js';
import { canReceive } from './state.js';
import { TcpReceiver } from './endpoint-receive.js';

export { CHALLENGE_ACKS_PER_SECOND, DEFAULT_SEND_MSS, MAX_OUT_OF_ORDER_BLOCKS } from './endpoint-base.js';

const { FIN, SYN, RST, ACK } = TcpFlag;

export class TcpEndpoint extends TcpReceiver implements TcpEndpointControl {
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
}
