/**
 * The send side of the guest-side TCP endpoint (endpoint.ts has the theory
 * of operation): segments out as far as window, cwnd and the segment cap
 * allow, the ACKs we owe, loss repair, and the retransmission, persist,
 * keepalive and delayed-ACK timers.
 */
import { TcpState } from './contract.js';
import { clearTcpOptions, TcpFlag, tcpOptionsLength, type TcpRepr } from '../wire/tcp.js';
import { seqAdd, seqGe, seqGt, seqLt, seqSub } from './seq.js';
import { canSend, isSynchronized } from './state.js';
import { RtxMode } from './timers.js';
import { SACK_SCRATCH, tsClock, TcpEndpointBase } from './endpoint-base.js';

const { FIN, SYN, RST, PSH, ACK } = TcpFlag;

export abstract class TcpSender extends TcpEndpointBase {
  /** Sends (or resends) our SYN or SYN-ACK (endpoint-handshake.ts). */
  protected abstract emitSyn(nowMs: number, retransmission: boolean): void;

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
  protected mayDelayAck(): boolean {
    const st = this.st;
    return this.config.delayedAckMs > 0 && !this.ackUrgent && (st === TcpState.ESTABLISHED || st === TcpState.CLOSE_WAIT) && this.bytesSinceAck < 2 * this.config.mss;
  }

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
  protected retransmitTimeout(nowMs: number): void {
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
  protected persistTimeout(nowMs: number): void {
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

  protected armPersist(nowMs: number): void {
    const delay = Math.min(this.rtt.rtoMs * 2 ** this.probeBackoff, this.config.rtoMaxMs);
    this.timers.armRtx(RtxMode.PERSIST, nowMs + delay);
  }

  /** Keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6) or the FIN-WAIT-2 timeout. */
  protected idleTimeout(nowMs: number): void {
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
   * Retransmissions, probes or keepalives ran out (RFC 9293 §3.8.3 R2): RST
   * so a guest that is still there learns of it, onReset('timeout'), CLOSED.
   */
  protected giveUp(nowMs: number): void {
    if (this.st !== TcpState.SYN_SENT) this.sendRst(this.tcb.sndMax, this.tcb.rcvNxt, true, nowMs);
    this.closeNow('timeout');
  }

  /**
   * Retransmits one hole: from SND.UNA (`fromUna`, NewReno) or from where
   * recovery got to (SACK), up to the next SACKed byte or one super-frame.
   * With SACK, only holes below the highest SACKed byte count as lost.
   */
  protected retransmitHole(nowMs: number, fromUna: boolean, maxLen = Infinity): void {
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

  /** RFC 7323 §4.1 with timestamps, else RFC 6298 §3 Karn timing of one segment. */
  protected takeRttSample(seg: TcpRepr, ack: number, nowMs: number): void {
    if (this.tcb.tsOk && seg.hasTimestamps && seg.tsEcr !== 0) {
      const rtt = seqSub(tsClock(nowMs), seg.tsEcr);
      if (rtt <= this.config.rtoMaxMs) this.rtt.sample(rtt);
      this.rtt.cancelTiming();
    } else if (this.rtt.isTiming && seqGe(ack, this.rtt.timedEnd)) {
      this.rtt.finishTiming(nowMs);
    }
  }

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
  protected output(nowMs: number): void {
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

  protected hasUnsent(): boolean {
    const off = seqSub(this.tcb.sndNxt, this.tcb.sndUna);
    const unsent = this.sndBuf.length - off;
    return unsent > 0 || (unsent === 0 && this.finQueued);
  }

  /** Payload per wire segment: the guest's MSS less our options (RFC 6691). */
  protected effectiveMss(optionsLen: number): number {
    const m = this.tcb.sndMss - optionsLen;
    return m > 1 ? m : 1;
  }

  /** Largest payload of one transmit(): a whole number of MSS up to maxSegmentPayload with GSO. */
  protected segmentCap(mss: number): number {
    const max = this.config.maxSegmentPayload;
    if (max <= this.config.mss) return mss;
    const cap = max - (max % mss);
    return cap > mss ? cap : mss;
  }

  /** Fills the options of a non-SYN segment; returns their length in bytes. */
  protected prepareOptions(nowMs: number): number {
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

  /** Emits a non-SYN, non-RST segment with the options prepareOptions() set. */
  protected transmitSegment(flags: number, seq: number, dataOffset: number, len: number, gsoSize: number): void {
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
  protected sendAck(nowMs: number): void {
    const mss = this.effectiveMss(this.prepareOptions(nowMs));
    this.stats.acksOut++;
    this.transmitSegment(ACK, this.tcb.sndNxt, 0, 0, mss);
  }

  /** Zero-window probe and keepalive: <SEQ=SND.UNA−1><ACK=RCV.NXT><CTL=ACK>, no data. */
  protected sendProbe(nowMs: number): void {
    const mss = this.effectiveMss(this.prepareOptions(nowMs));
    this.transmitSegment(ACK, seqAdd(this.tcb.sndUna, -1), 0, 0, mss);
  }

  /** An RST: no options, window 0. */
  protected sendRst(seq: number, ack: number, withAck: boolean, _nowMs: number): void {
    const o = this.out;
    o.flags = withAck ? RST | ACK : RST;
    o.seq = seq >>> 0;
    o.ack = withAck ? ack >>> 0 : 0;
    o.window = 0;
    o.urgent = 0;
    clearTcpOptions(o);
    this.stats.segmentsOut++;
    this.sink.transmit(this, o, null, 0, 0, 0);
  }
}
