/**
 * The RFC rules usernet's TCP endpoint claims to follow, one row each, in the
 * style of gVisor's packetimpact tables: a state to start from (a harness
 * fixture), one segment from the guest, and what we must answer and where
 * we must end up. The fixtures' sequence numbers are fixed:
 *
 *   state          RCV.NXT   SND.UNA   SND.NXT
 *   SYN-SENT          —      ISS       ISS+1
 *   SYN-RECEIVED     G       ISS       L
 *   ESTABLISHED      G       L         L
 *   FIN-WAIT-1       G       L         L+1      (our FIN is L)
 *   FIN-WAIT-2       G       L+1       L+1
 *   CLOSE-WAIT       G+1     L         L        (the guest's FIN was G)
 *   CLOSING          G+1     L         L+1
 *   LAST-ACK         G+1     L         L+1
 *   TIME-WAIT        G+1     L+1       L+1
 *
 * with G = GUEST_ISS+1 and L = LOCAL_ISS+1. RCV.WND is 65535 (WND), except
 * in "ESTABLISHED, zero window", where the guest has filled it.
 */
import { describe, expect, it } from 'vitest';
import { TcpState, tcpStateName, type TcpStateValue } from '../../src/tcp/contract.js';
import { ACK, FIN, GUEST_ISS, GUEST_SYN, Harness, LOCAL_ISS, MSS, RST, SYN, T0, WND, WND_SCALED, pattern, useLeakCheck, type Seg } from './harness.js';

useLeakCheck();

const G = GUEST_ISS + 1;
const L = LOCAL_ISS + 1;

const FIXTURES = {
  'SYN-SENT': () => Harness.synSent(),
  'SYN-RECEIVED': () => Harness.synReceived(),
  ESTABLISHED: () => Harness.established(),
  'ESTABLISHED, timestamps': () => Harness.established({ options: true }),
  'ESTABLISHED, zero window': () => {
    const h = Harness.established({ autoConsume: false });
    h.send({ flags: ACK, seq: G, ack: L, window: 65535, payload: pattern(WND) });
    h.takeSent();
    return h;
  },
  'FIN-WAIT-1': () => Harness.finWait1(),
  'FIN-WAIT-2': () => Harness.finWait2(),
  'CLOSE-WAIT': () => Harness.closeWait(),
  CLOSING: () => Harness.closing(),
  'LAST-ACK': () => Harness.lastAck(),
  'TIME-WAIT': () => Harness.timeWait(),
} as const;

type Fixture = keyof typeof FIXTURES;

interface Rule {
  rfc: string;
  state: Fixture;
  segment: Seg;
  expect: { sent: Seg[]; state: TcpStateValue; reset?: 'rst'; delivered?: string };
}

/** A guest segment at RCV.NXT acknowledging SND.NXT of the fixture. */
const seg = (seq: number, ack: number, flags: number = ACK, more: Partial<Seg> = {}): Seg => ({ flags, seq, ack, window: 65535, ...more });
/** Our pure ACK <SEQ=SND.NXT><ACK=RCV.NXT>. */
const ackOf = (seq: number, ack: number, window = WND, more: Partial<Seg> = {}): Seg => ({ flags: ACK, seq, ack, window, ...more });

const S = TcpState;

const RULES: Rule[] = [
  // ── SYN-SENT (RFC 9293 §3.10.7.3) ──
  { rfc: 'RFC 9293 §3.10.7.3: SYN-SENT, ACK outside (ISS, SND.NXT] → <SEQ=SEG.ACK><CTL=RST>', state: 'SYN-SENT', segment: seg(GUEST_ISS, L + 5), expect: { sent: [{ flags: RST, seq: L + 5, ack: 0, window: 0 }], state: S.SYN_SENT } },
  { rfc: 'RFC 9293 §3.10.7.3: SYN-SENT, RST with acceptable ACK → connection reset, CLOSED', state: 'SYN-SENT', segment: seg(0, L, RST | ACK), expect: { sent: [], state: S.CLOSED, reset: 'rst' } },
  { rfc: 'RFC 9293 §3.10.7.3: SYN-SENT, RST without ACK → drop', state: 'SYN-SENT', segment: seg(GUEST_ISS, 0, RST), expect: { sent: [], state: S.SYN_SENT } },
  { rfc: 'RFC 9293 §3.10.7.3: SYN-SENT, SYN,ACK acknowledging our SYN → ESTABLISHED, ACK', state: 'SYN-SENT', segment: seg(GUEST_ISS, L, SYN | ACK, { mss: MSS }), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.3: SYN-SENT, SYN without ACK (simultaneous open) → SYN-RECEIVED, SYN,ACK', state: 'SYN-SENT', segment: { ...GUEST_SYN }, expect: { sent: [{ flags: SYN | ACK, seq: LOCAL_ISS, ack: G, window: WND, mss: MSS }], state: S.SYN_RECEIVED } },
  { rfc: 'RFC 9293 §3.10.7.3: SYN-SENT, neither SYN nor RST → drop', state: 'SYN-SENT', segment: seg(GUEST_ISS, L), expect: { sent: [], state: S.SYN_SENT } },

  // ── SYN-RECEIVED ──
  { rfc: 'RFC 9293 §3.10.7.4 fifth check: SYN-RECEIVED, SND.UNA < SEG.ACK =< SND.NXT → ESTABLISHED', state: 'SYN-RECEIVED', segment: seg(G, L), expect: { sent: [], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4 fifth check: SYN-RECEIVED, unacceptable ACK → <SEQ=SEG.ACK><CTL=RST>', state: 'SYN-RECEIVED', segment: seg(G, L + 1), expect: { sent: [{ flags: RST, seq: L + 1, ack: 0, window: 0 }], state: S.SYN_RECEIVED } },
  { rfc: 'RFC 9293 §3.10.7.4 second check: SYN-RECEIVED, RST at RCV.NXT → CLOSED (no listener to return to)', state: 'SYN-RECEIVED', segment: seg(G, 0, RST), expect: { sent: [], state: S.CLOSED, reset: 'rst' } },
  { rfc: 'RFC 5961 §3.2: SYN-RECEIVED, RST in window but not at RCV.NXT → challenge ACK', state: 'SYN-RECEIVED', segment: seg(G + 10, 0, RST), expect: { sent: [ackOf(L, G)], state: S.SYN_RECEIVED } },
  { rfc: 'Linux tcp_check_req: SYN-RECEIVED, the same SYN again → SYN,ACK again', state: 'SYN-RECEIVED', segment: { ...GUEST_SYN }, expect: { sent: [{ flags: SYN | ACK, seq: LOCAL_ISS, ack: G, window: WND, mss: MSS }], state: S.SYN_RECEIVED } },
  { rfc: 'RFC 9293 §3.10.7.4 first check: SYN-RECEIVED, data outside the window → ACK, drop', state: 'SYN-RECEIVED', segment: seg(G + WND, L, ACK, { payload: 'x' }), expect: { sent: [ackOf(L, G)], state: S.SYN_RECEIVED } },

  // ── ESTABLISHED: first check, sequence number ──
  { rfc: 'RFC 9293 §3.10.7.4 first check: len>0, wnd>0, RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND → accept', state: 'ESTABLISHED', segment: seg(G, L, ACK, { payload: 'data' }), expect: { sent: [ackOf(L, G + 4, WND - 4)], state: S.ESTABLISHED, delivered: 'data' } },
  { rfc: 'RFC 9293 §3.10.7.4 first check: len=0, wnd>0, SEG.SEQ = RCV.NXT+RCV.WND → not acceptable, ACK', state: 'ESTABLISHED', segment: seg(G + WND, L), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4 first check: len=0, SEG.SEQ = RCV.NXT−1 → not acceptable, ACK', state: 'ESTABLISHED', segment: seg(G - 1, L), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4 first check: len>0 ending inside the window → acceptable, old part trimmed', state: 'ESTABLISHED', segment: seg(G - 2, L, ACK, { payload: 'xxnew' }), expect: { sent: [ackOf(L, G + 3, WND - 3)], state: S.ESTABLISHED, delivered: 'new' } },
  { rfc: 'RFC 9293 §3.10.7.4 first check: len>0 entirely before RCV.NXT → not acceptable, ACK', state: 'ESTABLISHED', segment: seg(G - 5, L, ACK, { payload: 'old' }), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4 first check: len>0 starting past the window → not acceptable, ACK', state: 'ESTABLISHED', segment: seg(G + WND, L, ACK, { payload: 'far' }), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4 first check: len>0, wnd=0 → not acceptable, but the ACK is processed and answered', state: 'ESTABLISHED, zero window', segment: seg(G + WND, L, ACK, { payload: 'p' }), expect: { sent: [ackOf(L, G + WND, 0)], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4 first check: len=0, wnd=0, SEG.SEQ = RCV.NXT → acceptable (no reply to an ACK)', state: 'ESTABLISHED, zero window', segment: seg(G + WND, L), expect: { sent: [], state: S.ESTABLISHED } },

  // ── ESTABLISHED: second check, RST (RFC 5961 §3) ──
  { rfc: 'RFC 5961 §3.2 / RFC 9293 §3.10.7.4: RST with SEG.SEQ = RCV.NXT → reset, CLOSED', state: 'ESTABLISHED', segment: seg(G, 0, RST), expect: { sent: [], state: S.CLOSED, reset: 'rst' } },
  { rfc: 'RFC 5961 §3.2: RST in window, SEG.SEQ ≠ RCV.NXT → challenge ACK', state: 'ESTABLISHED', segment: seg(G + 1, 0, RST), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 5961 §3.2: RST outside the window → silently dropped', state: 'ESTABLISHED', segment: seg(G + WND, 0, RST), expect: { sent: [], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4: RST with zero window at RCV.NXT → reset', state: 'ESTABLISHED, zero window', segment: seg(G + WND, 0, RST), expect: { sent: [], state: S.CLOSED, reset: 'rst' } },

  // ── ESTABLISHED: fourth check, SYN (RFC 5961 §4) ──
  { rfc: 'RFC 5961 §4 / RFC 9293 §3.10.7.4 fourth check: SYN in window → challenge ACK', state: 'ESTABLISHED', segment: { ...GUEST_SYN, seq: G + 100 }, expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 5961 §4: SYN outside the window → challenge ACK (irrespective of the sequence number)', state: 'ESTABLISHED', segment: { ...GUEST_SYN, seq: G + 1_000_000 }, expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },

  // ── ESTABLISHED: fifth check, ACK (RFC 5961 §5) ──
  { rfc: 'RFC 9293 §3.10.7.4 fifth check: ACK bit off → drop the segment', state: 'ESTABLISHED', segment: seg(G, 0, 0, { payload: 'noack' }), expect: { sent: [], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4 / RFC 5961 §5.2: SEG.ACK > SND.NXT → ACK, drop', state: 'ESTABLISHED', segment: seg(G, L + 1, ACK, { payload: 'x' }), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 5961 §5.2: SEG.ACK < SND.UNA − MAX.SND.WND → challenge ACK, drop', state: 'ESTABLISHED', segment: seg(G, L - 70000, ACK, { payload: 'x' }), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4: an acceptable pure ACK is never acknowledged', state: 'ESTABLISHED', segment: seg(G, L), expect: { sent: [], state: S.ESTABLISHED } },

  // ── ESTABLISHED: seventh and eighth, text and FIN ──
  { rfc: 'RFC 5681 §4.2: out-of-order data → immediate duplicate ACK', state: 'ESTABLISHED', segment: seg(G + 10, L, ACK, { payload: 'later' }), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'RFC 9293 §3.10.7.4 eighth check: FIN → CLOSE-WAIT, ACK', state: 'ESTABLISHED', segment: seg(G, L, ACK | FIN), expect: { sent: [ackOf(L, G + 1)], state: S.CLOSE_WAIT } },
  { rfc: 'RFC 9293 §3.10.7.4 eighth check: a FIN past a hole waits → duplicate ACK only', state: 'ESTABLISHED', segment: seg(G + 5, L, ACK | FIN), expect: { sent: [ackOf(L, G)], state: S.ESTABLISHED } },
  { rfc: 'usernet (lenient): a FIN at RCV.NXT is accepted even with a zero window', state: 'ESTABLISHED, zero window', segment: seg(G + WND, L, ACK | FIN), expect: { sent: [ackOf(L, G + WND + 1, 0)], state: S.CLOSE_WAIT } },

  // ── PAWS (RFC 7323 §5) ──
  { rfc: 'RFC 7323 §5.3 R1: SEG.TSval < TS.Recent → not acceptable, ACK, drop', state: 'ESTABLISHED, timestamps', segment: seg(G, L, ACK, { payload: 'old', ts: [1, T0] }), expect: { sent: [ackOf(L, G, WND_SCALED, { ts: [T0, 777000] })], state: S.ESTABLISHED } },
  { rfc: 'RFC 7323 §5.3 R1: an RST is not subject to PAWS', state: 'ESTABLISHED, timestamps', segment: seg(G, 0, RST, { ts: [1, 0] }), expect: { sent: [], state: S.CLOSED, reset: 'rst' } },

  // ── FIN-WAIT-1, FIN-WAIT-2 ──
  { rfc: 'RFC 9293 §3.10.7.4 fifth check: FIN-WAIT-1, our FIN acknowledged → FIN-WAIT-2', state: 'FIN-WAIT-1', segment: seg(G, L + 1), expect: { sent: [], state: S.FIN_WAIT_2 } },
  { rfc: 'RFC 9293 §3.10.7.4 eighth check: FIN-WAIT-1, FIN not acknowledging ours → CLOSING, ACK', state: 'FIN-WAIT-1', segment: seg(G, L, ACK | FIN), expect: { sent: [ackOf(L + 1, G + 1)], state: S.CLOSING } },
  { rfc: 'RFC 9293 §3.10.7.4 eighth check: FIN-WAIT-1, FIN acknowledging ours → TIME-WAIT, ACK', state: 'FIN-WAIT-1', segment: seg(G, L + 1, ACK | FIN), expect: { sent: [ackOf(L + 1, G + 1)], state: S.TIME_WAIT } },
  { rfc: 'RFC 9293 §3.10.7.4 seventh check: FIN-WAIT-1 still accepts data (half-close)', state: 'FIN-WAIT-1', segment: seg(G, L, ACK, { payload: 'more' }), expect: { sent: [ackOf(L + 1, G + 4, WND - 4)], state: S.FIN_WAIT_1, delivered: 'more' } },
  { rfc: 'RFC 9293 §3.10.7.4 seventh check: FIN-WAIT-2 still accepts data (half-close)', state: 'FIN-WAIT-2', segment: seg(G, L + 1, ACK, { payload: 'more' }), expect: { sent: [ackOf(L + 1, G + 4, WND - 4)], state: S.FIN_WAIT_2, delivered: 'more' } },
  { rfc: 'RFC 9293 §3.10.7.4 eighth check: FIN-WAIT-2, FIN → TIME-WAIT, ACK', state: 'FIN-WAIT-2', segment: seg(G, L + 1, ACK | FIN), expect: { sent: [ackOf(L + 1, G + 1)], state: S.TIME_WAIT } },

  // ── CLOSE-WAIT, CLOSING, LAST-ACK ──
  { rfc: 'RFC 9293 §3.10.7.4 seventh check: CLOSE-WAIT, segment text is ignored', state: 'CLOSE-WAIT', segment: seg(G + 1, L, ACK, { payload: 'late' }), expect: { sent: [], state: S.CLOSE_WAIT } },
  { rfc: 'RFC 9293 §3.10.7.4 second check: CLOSE-WAIT, RST at RCV.NXT → reset', state: 'CLOSE-WAIT', segment: seg(G + 1, 0, RST), expect: { sent: [], state: S.CLOSED, reset: 'rst' } },
  { rfc: 'RFC 9293 §3.10.7.4 fifth check: CLOSING, our FIN acknowledged → TIME-WAIT', state: 'CLOSING', segment: seg(G + 1, L + 1), expect: { sent: [], state: S.TIME_WAIT } },
  { rfc: 'RFC 9293 §3.10.7.4 fifth check: CLOSING, ACK not covering our FIN → ignore', state: 'CLOSING', segment: seg(G + 1, L), expect: { sent: [], state: S.CLOSING } },
  { rfc: 'RFC 9293 §3.10.7.4 fifth check: LAST-ACK, our FIN acknowledged → CLOSED', state: 'LAST-ACK', segment: seg(G + 1, L + 1), expect: { sent: [], state: S.CLOSED } },
  { rfc: 'RFC 9293 §3.10.7.4 second check: LAST-ACK, RST at RCV.NXT → CLOSED without a reset signal', state: 'LAST-ACK', segment: seg(G + 1, 0, RST), expect: { sent: [], state: S.CLOSED } },

  // ── TIME-WAIT ──
  { rfc: 'RFC 9293 §3.10.7.4: TIME-WAIT, retransmitted FIN → ACK, restart 2 MSL', state: 'TIME-WAIT', segment: seg(G, L + 1, ACK | FIN), expect: { sent: [ackOf(L + 1, G + 1)], state: S.TIME_WAIT } },
  { rfc: 'RFC 5961 §4: TIME-WAIT, SYN → challenge ACK (the relay decides on reuse, timeWaitAcceptsSyn)', state: 'TIME-WAIT', segment: { ...GUEST_SYN, seq: G + 5000 }, expect: { sent: [ackOf(L + 1, G + 1)], state: S.TIME_WAIT } },
  { rfc: 'RFC 9293 §3.10.7.4 second check: TIME-WAIT, RST at RCV.NXT → CLOSED', state: 'TIME-WAIT', segment: seg(G + 1, 0, RST), expect: { sent: [], state: S.CLOSED } },
];

describe('RFC rules', () => {
  it(`the table (${RULES.length} rows) starts from every fixture, cites a source in each row, and names each row once`, () => {
    expect(new Set(RULES.map((r) => r.state))).toEqual(new Set(Object.keys(FIXTURES)));
    for (const r of RULES) expect(r.rfc, r.rfc).toMatch(/^(RFC \d+ §\d+(\.\d+)*|Linux \w+|usernet \(lenient\))[ :/]/);
    const titles = RULES.map((r) => `${r.rfc} [${r.state}]`);
    expect(titles.filter((t, i) => titles.indexOf(t) !== i)).toEqual([]);
  });

  for (const rule of RULES) {
    it(`${rule.rfc} [${rule.state}]`, () => {
      const h = FIXTURES[rule.state]();
      const receivedBefore = h.receivedBytes;
      const resetsBefore = h.resets.length;
      h.send(rule.segment);
      h.expectSent(...rule.expect.sent);
      expect(tcpStateName[h.ep.state]).toBe(tcpStateName[rule.expect.state]);
      expect(h.resets.slice(resetsBefore)).toEqual(rule.expect.reset === undefined ? [] : [rule.expect.reset]);
      const delivered = new TextDecoder().decode(h.receivedData().subarray(receivedBefore));
      expect(delivered).toBe(rule.expect.delivered ?? '');
    });
  }
});
