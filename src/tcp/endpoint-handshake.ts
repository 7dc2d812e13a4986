/**
 * Opening a connection (RFC 9293 §3.10.1, §3.10.7.2–3): our SYN or SYN-ACK,
 * the options both SYNs agree on, SYN-SENT, and entering ESTABLISHED.
 */
import { TcpState } from './contract.js';
import { TCP_MAX_WINDOW_SCALE, TcpFlag, type TcpRepr } from '../wire/tcp.js';
import { seqAdd, seqGt, seqLt } from './seq.js';
import { RtxMode } from './timers.js';
import { DEFAULT_SEND_MSS, MIN_SEND_MSS, tsClock } from './endpoint-base.js';
import { TcpSender } from './endpoint-send.js';

const { FIN, SYN, RST, ACK } = TcpFlag;

export abstract class TcpHandshake extends TcpSender {
  protected claim(what: string): void {
    if (this.used) throw new Error(`TcpEndpoint.${what}: the endpoint was opened already`);
    this.used = true;
  }

  protected initSend(): void {
    const tcb = this.tcb;
    tcb.iss = this.config.iss >>> 0;
    tcb.sndUna = tcb.iss;
    tcb.sndNxt = tcb.iss;
    tcb.sndMax = tcb.iss;
    this.cc.recover = tcb.iss;
  }

  /** Options from the guest's SYN or SYN-ACK (we offer all of ours in a SYN). */
  protected negotiate(syn: TcpRepr, nowMs: number): void {
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
  protected emitSyn(nowMs: number, retransmission: boolean): void {
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

  /** RFC 9293 §3.10.7.3: SYN-SENT STATE. */
  protected synSentArrives(seg: TcpRepr, nowMs: number): void {
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
  protected establish(nowMs: number): void {
    this.st = this.finQueued ? TcpState.FIN_WAIT_1 : TcpState.ESTABLISHED;
    this.touchIdle(nowMs);
    this.outputWanted = true;
    this.events.onEstablished();
  }
}
