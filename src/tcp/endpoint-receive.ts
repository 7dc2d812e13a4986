/**
 * A segment arrives in a synchronized state (RFC 9293 §3.10.7.4): the
 * acceptability and PAWS checks, RST and SYN, the ACK field (RFC 5961,
 * RFC 5681/6582/6675 loss detection), the text and the FIN.
 */
import { TcpState } from './contract.js';
import { TcpFlag, type TcpRepr } from '../wire/tcp.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqInRange, seqLe, seqLt, seqSub } from './seq.js';
import { canReceive, isSynchronized } from './state.js';
import { segmentAcceptable, windowUpdateAllowed } from './tcb.js';
import { RtxMode } from './timers.js';
import { DUP_THRESH, MAX_OUT_OF_ORDER_BLOCKS, PAWS_IDLE_LIMIT_MS } from './endpoint-base.js';
import { TcpHandshake } from './endpoint-handshake.js';

const { FIN, SYN, RST, ACK } = TcpFlag;

export abstract class TcpReceiver extends TcpHandshake {
  /** RFC 9293 §3.10.7.4: every state from SYN-RECEIVED on. */
  protected segmentArrives(seg: TcpRepr, buf: Uint8Array, payloadOff: number, payloadLen: number, nowMs: number): void {
    const flags = seg.flags;
    if (!this.sequenceAcceptable(seg, payloadLen, nowMs)) return;
    this.trimToWindow(seg, payloadOff, payloadLen);

    // Second, check the RST bit (RFC 5961 §3.2).
    if ((flags & RST) !== 0) {
      if (seg.seq >>> 0 === this.tcb.rcvNxt) this.resetByGuest();
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
    if (!this.ackFieldArrives(seg, payloadLen, nowMs)) return;

    // Sixth, the URG bit: ignored (RFC 6093: urgent bytes are delivered inline).
    this.textArrives(buf, nowMs);
  }

  /**
   * Everything before the RST check: a retransmitted SYN in SYN-RECEIVED,
   * PAWS, the sequence-number test (RFC 9293's first check), then the idle
   * clock and TS.Recent. False when the segment was answered or dropped.
   */
  private sequenceAcceptable(seg: TcpRepr, payloadLen: number, nowMs: number): boolean {
    const tcb = this.tcb;
    const flags = seg.flags;
    const seq = seg.seq >>> 0;

    // Linux tcp_check_req(): the guest retransmitted its SYN because our
    // SYN-ACK was lost; answer with the SYN-ACK again (RFC 9293 would only ACK).
    if (this.st === TcpState.SYN_RECEIVED && (flags & (SYN | ACK | RST)) === SYN && seq === tcb.irs) {
      this.emitSyn(nowMs, true);
      return false;
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
      return false;
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
        return false;
      }
    }
    this.touchIdle(nowMs);

    // RFC 7323 §4.3: remember TSval if the segment covers Last.ACK.sent.
    if (tcb.tsOk && seg.hasTimestamps && seqLe(seq, tcb.lastAckSent) && seqGe(seg.tsVal, tcb.tsRecent)) {
      tcb.tsRecent = seg.tsVal >>> 0;
      tcb.tsRecentMs = nowMs;
    }
    return true;
  }

  /**
   * Trims the segment's text to the window into `rx*`: old bytes off the
   * front, bytes past RCV.NXT+RCV.WND off the back (a FIN past the window
   * goes with them).
   */
  private trimToWindow(seg: TcpRepr, payloadOff: number, payloadLen: number): void {
    const tcb = this.tcb;
    const flags = seg.flags;
    const seq = seg.seq >>> 0;
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
      const room = this.rwnd.remaining(tcb.rcvNxtOff) - seqSub(dataSeq, tcb.rcvNxt);
      if (dataLen > room) {
        dataLen = room > 0 ? room : 0;
        fin = false;
        trimmedRight = true;
      }
    }
    this.rxSeq = dataSeq;
    this.rxOff = dataOff;
    this.rxLen = dataLen;
    this.rxFin = fin;
    this.rxTrimmed = trimmedRight;
  }

  /**
   * RFC 9293 §3.10.7.4 fifth check, an ACK in any synchronized state:
   * SYN-RECEIVED → ESTABLISHED, the RFC 5961 §5.2 range, processAck, and the
   * closing states' transitions. False when processing of the segment ends.
   */
  private ackFieldArrives(seg: TcpRepr, payloadLen: number, nowMs: number): boolean {
    const tcb = this.tcb;
    const ack = seg.ack >>> 0;
    if (this.st === TcpState.SYN_RECEIVED) {
      // RFC 9293: SND.UNA < SEG.ACK =< SND.NXT moves to ESTABLISHED, else RST.
      if (!(seqGt(ack, tcb.sndUna) && seqInRange(ack, tcb.sndUna, tcb.sndMax))) {
        this.sendRst(ack, 0, false, nowMs);
        return false;
      }
      this.takeRttSample(seg, ack, nowMs);
      tcb.sndUna = seqAdd(tcb.iss, 1);
      tcb.sndWnd = seg.window << tcb.sndShift;
      if (tcb.sndWnd > tcb.maxSndWnd) tcb.maxSndWnd = tcb.sndWnd;
      tcb.sndWl1 = seg.seq >>> 0;
      tcb.sndWl2 = ack;
      this.timers.stopRtx();
      this.rtoCount = 0;
      this.establish(nowMs);
      if (this.isClosed()) return false;
    }
    // RFC 5961 §5.2: acceptable iff SND.UNA − MAX.SND.WND =< SEG.ACK =< SND.NXT
    // (SND.MAX here: after go-back-N the guest may ACK what we sent before).
    // RFC 9293: "If the ACK acks something not yet sent ... send an ACK, drop the segment".
    if (seqGt(ack, tcb.sndMax) || seqLt(ack, seqAdd(tcb.sndUna, -tcb.maxSndWnd))) {
      this.challengeAck(nowMs);
      return false;
    }
    this.processAck(seg, ack, payloadLen, nowMs);
    if (this.isClosed()) return false;

    switch (this.st) {
      case TcpState.FIN_WAIT_1:
        if (this.finAcked) {
          this.st = TcpState.FIN_WAIT_2;
          this.touchIdle(nowMs);
        }
        return true;
      case TcpState.CLOSING:
        // "if the ACK acknowledges our FIN, enter TIME-WAIT, otherwise ignore the segment"
        if (this.finAcked) this.enterTimeWait(nowMs);
        return false;
      case TcpState.LAST_ACK:
        if (this.finAcked) this.closeNow(null);
        return false;
      case TcpState.TIME_WAIT:
        // "The only thing that can arrive in this state is a retransmission of
        // the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
        if (this.rxFin) this.restartTimeWait(nowMs);
        return false;
      default:
        return true;
    }
  }

  /** RFC 9293 §3.10.7.4 seventh and eighth steps: the text trimmed into `rx*`, then the FIN. */
  private textArrives(buf: Uint8Array, nowMs: number): void {
    const tcb = this.tcb;
    const dataSeq = this.rxSeq;
    const dataLen = this.rxLen;
    if (dataLen > 0 && canReceive(this.st)) {
      this.receiveData(dataSeq, buf, this.rxOff, dataLen);
      if (this.isClosed()) return;
    }
    if (this.rxTrimmed) this.ackNow = true;

    // The FIN counts only once everything before it arrived; an early one
    // waits in the reassembly store like data.
    if (!canReceive(this.st)) return;
    if (this.rxFin) {
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
  protected notAcceptable(seg: TcpRepr, seq: number, payloadLen: number, nowMs: number): void {
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
  protected replyOutOfWindow(flags: number, payloadLen: number, nowMs: number): void {
    if (payloadLen === 0 && (flags & FIN) === 0 && !this.outOfWindowBudget.take(nowMs)) {
      this.stats.acksRateLimited++;
      return;
    }
    this.sendAck(nowMs);
  }

  /** RFC 9293 §3.10.7.4 second check, an exact RST: the guest reset the connection. */
  protected resetByGuest(): void {
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
  protected challengeAck(nowMs: number): void {
    if (!this.challengeBudget.take(nowMs)) {
      this.stats.acksRateLimited++;
      return;
    }
    this.stats.challengeAcks++;
    this.sendAck(nowMs);
  }

  /** RFC 9293 §3.10.7.4 fifth check, for an ACK that passed RFC 5961 §5.2. */
  protected processAck(seg: TcpRepr, ack: number, payloadLen: number, nowMs: number): void {
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
  protected newAck(seg: TcpRepr, ack: number, acked: number, nowMs: number): void {
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

  protected dupAck(nowMs: number): void {
    this.dupAcks++;
    this.stats.dupAcksIn++;
    if (!this.cc.inRecovery) return;
    // RFC 5681 §3.2 step 4: inflate; RFC 6675-lite: repair the next hole.
    this.cc.onDupAckInRecovery();
    if (this.tcb.sackOk) this.retransmitHole(nowMs, false);
    this.outputWanted = true;
  }

  /** RFC 5681 §3.2 steps 2–3, RFC 6582 §3.2 step 2: fast retransmit. */
  protected enterRecovery(nowMs: number): void {
    const tcb = this.tcb;
    this.stats.fastRetransmits++;
    this.cc.enterRecovery(seqSub(tcb.sndMax, tcb.sndUna), tcb.sndMax);
    this.highRxtOff = tcb.sndUnaOff;
    this.rtt.cancelTiming(); // Karn: the timed segment may be the one we resend
    this.retransmitHole(nowMs, true);
  }

  /** RFC 2018 §4 blocks from the guest, checked against (SND.UNA, SND.MAX]. */
  protected takeSackBlocks(seg: TcpRepr): void {
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

  /** RFC 9293 §3.10.7.4 seventh step, for data already trimmed to the window. */
  protected receiveData(dataSeq: number, buf: Uint8Array, off: number, len: number): void {
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
  protected deliver(buf: Uint8Array, off: number, len: number): void {
    const tcb = this.tcb;
    tcb.rcvNxt = seqAdd(tcb.rcvNxt, len);
    tcb.rcvNxtOff += len;
    this.rwnd.backlog += len;
    this.stats.bytesIn += len;
    this.events.onData(buf, off, len);
  }

  protected pullReassembled(): void {
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
  protected finArrives(nowMs: number): void {
    const tcb = this.tcb;
    tcb.rcvNxt = seqAdd(tcb.rcvNxt, 1);
    this.ackPending = true;
    // The guest closed first (ESTABLISHED → CLOSE-WAIT): its FIN's ACK may wait
    // the delayed-ACK time for the host's own close to carry it on our FIN, as
    // Linux's tcp_fin() enters pingpong mode; a one-request connection then
    // costs the guest one frame less. In every other state it goes at once.
    this.ackUrgent = this.st !== TcpState.ESTABLISHED;
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

  protected restartTimeWait(nowMs: number): void {
    this.timers.lingerAt = nowMs + this.config.timeWaitMs;
    this.sendAck(nowMs);
  }
}
