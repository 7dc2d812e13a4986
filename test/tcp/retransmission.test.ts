/**
 * Retransmission (RFC 6298), Karn's algorithm, giving up, fast retransmit
 * and fast recovery (RFC 5681, RFC 6582), and SACK-based recovery (RFC 2018,
 * a reduced RFC 6675).
 */
import { describe, expect, it } from 'vitest';
import { TcpState } from '../../src/tcp/contract.js';
import { ACK, GUEST_ISS, Harness, LOCAL_ISS, MSS, PSH, RECV, RST, SEND, pattern, useLeakCheck, type Sent } from './harness.js';

useLeakCheck();

const G = GUEST_ISS + 1;
const L = LOCAL_ISS + 1;
const seqs = (sent: Sent[]): number[][] => sent.map((s) => [s.seq - L, s.payload.length]);

describe('retransmission timeout (RFC 6298)', () => {
  it('the handshake gave an RTT sample: RTO = rtoMin; the segment is resent when it expires', () => {
    const h = Harness.established();
    expect(h.ep.rtoMs).toBe(200);
    h.ep.write(pattern(100), h.now);
    h.takeSent();
    h.advance(199);
    h.expectNothingSent();
    h.advance(1);
    h.expectSent({ ...RECV, flags: ACK | PSH, payload: pattern(100) });
    expect(h.ep.stats.retransmits).toBe(1);
    expect(h.ep.stats.rtoTimeouts).toBe(1);
  });

  it('backs off exponentially up to rtoMax (§5.5)', () => {
    const h = Harness.established({ config: { rtoMaxMs: 1000 } });
    h.ep.write(pattern(10), h.now);
    h.takeSent();
    const gaps: number[] = [];
    for (let i = 0; i < 6; i++) gaps.push(h.advanceUntilSent());
    expect(gaps).toEqual([200, 400, 800, 1000, 1000, 1000]);
  });

  it('go-back-N with a loss window of one MSS (RFC 5681 §3.1), then slow start', () => {
    const h = Harness.established();
    h.ep.write(pattern(5 * MSS), h.now);
    expect(h.takeSent().length).toBe(5);
    h.advance(200);
    expect(seqs(h.takeSent())).toEqual([[0, MSS]]);
    h.send({ ...SEND, ack: L + MSS });
    // cwnd 1 → 2 MSS.
    expect(seqs(h.takeSent())).toEqual([
      [MSS, MSS],
      [2 * MSS, MSS],
    ]);
  });

  it('an ACK beyond the resent range but within what was sent before is accepted (SND.MAX)', () => {
    const h = Harness.established();
    h.ep.write(pattern(5 * MSS), h.now);
    h.takeSent();
    h.advance(200);
    h.takeSent();
    h.send({ ...SEND, ack: L + 5 * MSS });
    h.expectNothingSent();
    expect(h.ep.sendQueued).toBe(0);
    expect(h.ep.nextDeadline).toBe(h.now + h.config.keepaliveIdleMs);
  });

  it("Karn's algorithm: no RTT sample from an ACK of retransmitted data (§3)", () => {
    const h = Harness.established();
    h.ep.write(pattern(10), h.now);
    h.takeSent();
    h.advance(200);
    h.advance(5);
    h.send({ ...SEND, ack: L + 10 });
    expect(h.ep.rtoMs).toBe(400); // still backed off: no sample
    h.ep.write(pattern(10), h.now);
    h.advance(30);
    h.send({ ...SEND, ack: L + 20 });
    // A fresh sample (30 ms) recomputes the RTO from SRTT/RTTVAR: 0 → 3.75 + 4·7.5... clamped to 200.
    expect(h.ep.rtoMs).toBe(200);
  });

  it('gives up after maxRetransmits: RST, onReset("timeout"), onClosed (RFC 9293 §3.8.3 R2)', () => {
    const h = Harness.established({ config: { maxRetransmits: 3 } });
    h.ep.write(pattern(10), h.now);
    h.takeSent();
    h.advance(200 + 400 + 800);
    expect(h.takeSent().length).toBe(3);
    h.advance(1600);
    h.expectSent({ flags: RST | ACK, seq: L + 10, ack: G, window: 0 });
    expect(h.resets).toEqual(['timeout']);
    expect(h.closed).toBe(1);
    h.expectState(TcpState.CLOSED);
  });

  it('progress resets the give-up count', () => {
    const h = Harness.established({ config: { maxRetransmits: 2 } });
    h.ep.write(pattern(3 * MSS), h.now);
    h.takeSent();
    h.advance(200 + 400);
    h.send({ ...SEND, ack: L + MSS });
    h.advance(60_000);
    // Two more retransmissions were allowed after the progress, then the give-up.
    expect(h.resets).toEqual(['timeout']);
    expect(h.ep.stats.rtoTimeouts).toBe(5);
  });

  it('a FIN alone is retransmitted too', () => {
    const h = Harness.finWait1();
    h.advance(200);
    h.expectSent({ ...RECV, flags: ACK | 1 });
  });

  it('no deadline is left once everything is acknowledged (apart from keepalive)', () => {
    const h = Harness.established({ config: { keepaliveIdleMs: 0 } });
    h.ep.write(pattern(10), h.now);
    h.send({ ...SEND, ack: L + 10 });
    expect(h.ep.nextDeadline).toBe(Infinity);
  });
});

describe('fast retransmit and NewReno fast recovery (RFC 5681 §3.2, RFC 6582)', () => {
  function tenSegmentsInFlight(): Harness {
    const h = Harness.established();
    h.ep.write(pattern(20 * MSS), h.now);
    expect(h.takeSent().length).toBe(10);
    return h;
  }

  it('the third duplicate ACK retransmits the first unacknowledged segment', () => {
    const h = tenSegmentsInFlight();
    h.send(SEND);
    h.send(SEND);
    h.expectNothingSent();
    h.send(SEND);
    expect(seqs(h.takeSent())).toEqual([[0, MSS]]);
    expect(h.ep.stats.fastRetransmits).toBe(1);
    expect(h.ep.stats.dupAcksIn).toBe(3);
    // ssthresh = FlightSize/2 = 5 MSS; cwnd = ssthresh + 3 MSS.
    expect(h.ep.congestionWindow).toBe(8 * MSS);
  });

  it('ACKs that update the window are not duplicates (RFC 5681 §2 (e))', () => {
    const h = tenSegmentsInFlight();
    h.send({ ...SEND, window: 60000 });
    h.send({ ...SEND, window: 60001 });
    h.send({ ...SEND, window: 60002 });
    h.expectNothingSent();
    expect(h.ep.stats.dupAcksIn).toBe(0);
  });

  it('ACKs carrying data are not duplicates (RFC 5681 §2 (b))', () => {
    const h = tenSegmentsInFlight();
    for (let i = 0; i < 3; i++) h.send({ ...SEND, seq: G + i, payload: 'x' });
    expect(h.ep.stats.fastRetransmits).toBe(0);
  });

  it('each further duplicate inflates cwnd and lets new data out; a partial ACK resends the next hole', () => {
    const h = tenSegmentsInFlight();
    for (let i = 0; i < 3; i++) h.send(SEND);
    h.takeSent();
    // cwnd 8 MSS, flight 10 MSS: the 4th..5th duplicates bring cwnd to 10 MSS, the 6th to 11 → one new segment.
    for (let i = 0; i < 3; i++) h.send(SEND);
    expect(seqs(h.takeSent())).toEqual([[10 * MSS, MSS]]);
    // Partial ACK: segment 1 arrived, segment 2 is lost too (RFC 6582 §3.2 step 5): it is
    // resent at once, not at the timeout, and the retransmission timer starts over.
    h.advance(50);
    h.expectNothingSent();
    h.send({ ...SEND, ack: L + 2 * MSS });
    expect(seqs(h.takeSent())[0]).toEqual([2 * MSS, MSS]);
    expect(h.ep.nextDeadline).toBe(h.now + h.ep.rtoMs);
    // Full ACK (everything up to `recover`, 10 MSS) ends recovery: cwnd = min(ssthresh, flight + MSS).
    h.send({ ...SEND, ack: L + 11 * MSS });
    expect(h.ep.congestionWindow).toBeLessThanOrEqual(5 * MSS);
  });

  it('after a timeout, duplicate ACKs of older data do not start fast retransmit (RFC 6582 §3.2 step 4)', () => {
    const h = tenSegmentsInFlight();
    h.advance(200);
    h.takeSent();
    for (let i = 0; i < 4; i++) h.send(SEND);
    expect(h.ep.stats.fastRetransmits).toBe(0);
  });
});

describe('SACK-based recovery (RFC 2018, RFC 6675)', () => {
  function sackHarness(): Harness {
    const h = Harness.established({ options: true, config: { maxSegmentPayload: 64240 } });
    h.ep.write(pattern(20 * MSS), h.now);
    h.takeSent();
    return h;
  }
  const M = MSS - 12;

  it('recovery starts as soon as more than 2 MSS above the hole are SACKed, and resends only the hole', () => {
    const h = sackHarness();
    // IW = 10·1448 in one GSO segment; the guest lost [0, 2M) and holds [2M, 5M).
    h.send({ ...SEND, sack: [L + 2 * M, L + 5 * M], ...h.tsFields() });
    expect(h.ep.stats.fastRetransmits).toBe(1);
    const sent = h.takeSent();
    expect(seqs(sent)[0]).toEqual([0, 2 * M]);
  });

  it('each further ACK repairs the next hole below the highest SACKed byte', () => {
    const h = sackHarness();
    h.send({ ...SEND, sack: [L + 2 * M, L + 5 * M], ...h.tsFields() });
    h.takeSent();
    h.send({ ...SEND, sack: [L + 6 * M, L + 8 * M, L + 2 * M, L + 5 * M], ...h.tsFields() });
    expect(seqs(h.takeSent())[0]).toEqual([5 * M, M]);
    // Nothing is known lost above the highest SACKed byte: no more retransmissions.
    h.send({ ...SEND, sack: [L + 6 * M, L + 9 * M, L + 2 * M, L + 5 * M], ...h.tsFields() });
    expect(h.takeSent().filter((s) => s.seq - L < 10 * M)).toEqual([]);
  });

  it('SACK blocks outside (SND.UNA, SND.MAX] are ignored', () => {
    const h = sackHarness();
    h.send({ ...SEND, sack: [L + 50 * M, L + 60 * M], ...h.tsFields() });
    h.send({ ...SEND, sack: [L - 100, L], ...h.tsFields() });
    expect(h.ep.stats.fastRetransmits).toBe(0);
  });

  it('a SACKed range is not released before the cumulative ACK (the guest may renege)', () => {
    const h = sackHarness();
    h.send({ ...SEND, sack: [L + 2 * M, L + 5 * M], ...h.tsFields() });
    expect(h.ep.sendQueued).toBe(20 * MSS);
  });
});

describe('send window', () => {
  it('never sends beyond SND.UNA + SND.WND (and holds a runt while data is in flight)', () => {
    const h = Harness.established();
    h.send({ ...SEND, window: 3000 });
    h.ep.write(pattern(10_000), h.now);
    expect(seqs(h.takeSent())).toEqual([
      [0, MSS],
      [MSS, MSS],
    ]);
    h.send({ ...SEND, ack: L + 2 * MSS, window: 3000 });
    expect(seqs(h.takeSent())).toEqual([
      [2 * MSS, MSS],
      [3 * MSS, MSS],
    ]);
  });

  it('a window update from an older segment is ignored (SND.WL1/WL2, RFC 9293 §3.10.7.4)', () => {
    const h = Harness.established();
    h.send({ ...SEND, seq: G, payload: 'ab', window: 100 });
    h.send({ ...SEND, seq: G, window: 60000 }); // older than the last window update
    h.ep.write(pattern(1000), h.now);
    expect(h.takeSent().filter((s) => s.payload.length > 0).map((s) => s.payload.length)).toEqual([100]);
  });

  it('sender SWS avoidance: a small window is not used while data is in flight', () => {
    const h = Harness.established();
    h.send({ ...SEND, window: MSS + 100 });
    h.ep.write(pattern(5000), h.now);
    expect(seqs(h.takeSent())).toEqual([[0, MSS]]);
    h.send({ ...SEND, ack: L + MSS, window: MSS + 100 });
    expect(seqs(h.takeSent())).toEqual([[MSS, MSS]]);
  });
});
