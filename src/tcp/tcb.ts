/**
 * The Transmission Control Block (RFC 9293 §3.3.1): the sequence variables of
 * one connection and the options negotiated in the handshake, with the two
 * pure tests of §3.10.7.4 that read nothing else. Everything that acts on
 * them lives in endpoint.ts; buffers, timers, the RTT estimator and
 * congestion control have files of their own.
 *
 * Names are RFC 9293's. Added beyond the RFC:
 *  - sndMax: the highest sequence number sent so far (BSD snd_max). After a
 *    retransmission timeout SND.NXT goes back to SND.UNA (go-back-N), but the
 *    guest may still acknowledge anything up to sndMax.
 *  - sndUnaOff / rcvNxtOff: SND.UNA and RCV.NXT as stream offsets (data bytes
 *    since the SYN, plain numbers that never wrap), for the bookkeeping of
 *    the SACK scoreboard, the reassembly store and the receive window.
 */
import { seqInWindow, seqLt, seqLe, seqAdd } from './seq.js';

export class Tcb {
  // Send sequence space.
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  sndMax = 0;
  /** SND.WND in bytes (the guest's field already shifted by sndShift). */
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** Largest window the guest ever offered (RFC 5961 §5.2 MAX.SND.WND). */
  maxSndWnd = 0;
  sndUnaOff = 0;

  // Receive sequence space.
  irs = 0;
  rcvNxt = 0;
  rcvNxtOff = 0;

  // Negotiated in the handshake.
  /** RFC 7323 §2.2: both SYNs carried the window-scale option. */
  wsOk = false;
  /** Shift applied to the guest's window field (Snd.Wind.Shift). */
  sndShift = 0;
  /** Shift applied to our window field (Rcv.Wind.Shift). */
  rcvShift = 0;
  /** The guest's MSS (536 if absent, RFC 9293 §3.7.1), clamped to ours. */
  sndMss = 536;
  /** RFC 7323 §3.2: both SYNs carried timestamps. */
  tsOk = false;
  /** RFC 7323 §4.3 TS.Recent, and when it was stored (for the 24-day PAWS rule). */
  tsRecent = 0;
  tsRecentMs = 0;
  /** RCV.NXT carried by the last ACK we sent (RFC 7323 §4.3 Last.ACK.sent). */
  lastAckSent = 0;
  /** RFC 2018 §2: both SYNs carried SACK-permitted. */
  sackOk = false;
}

/**
 * RFC 9293 §3.10.7.4, first check, the four cases:
 *
 *   Segment  Receive  Test
 *   Length   Window
 *   -------  -------  -------------------------------------------
 *      0        0     SEG.SEQ = RCV.NXT
 *      0       >0     RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
 *     >0        0     not acceptable
 *     >0       >0     RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
 *                  or RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND
 */
export function segmentAcceptable(seq: number, segLen: number, rcvNxt: number, rcvWnd: number): boolean {
  if (segLen === 0) {
    if (rcvWnd === 0) return seq === rcvNxt;
    return seqInWindow(seq, rcvNxt, rcvWnd);
  }
  if (rcvWnd === 0) return false;
  return seqInWindow(seq, rcvNxt, rcvWnd) || seqInWindow(seqAdd(seq, segLen - 1), rcvNxt, rcvWnd);
}

/**
 * RFC 9293 §3.10.7.4, fifth check (ESTABLISHED): the send window is updated
 * from a segment only if it is newer than the one that last set it:
 * SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK.
 */
export function windowUpdateAllowed(tcb: Tcb, seq: number, ack: number): boolean {
  return seqLt(tcb.sndWl1, seq) || (tcb.sndWl1 === seq && seqLe(tcb.sndWl2, ack));
}
