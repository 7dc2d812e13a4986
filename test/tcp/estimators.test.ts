/** Unit tests of the pieces the endpoint delegates to: RTO, congestion control, receive window, SACK scoreboard. */
import { describe, expect, it } from 'vitest';
import { initialWindow, NewReno } from '../../src/tcp/congestion.js';
import { ReceiveWindow } from '../../src/tcp/receive-window.js';
import { RttEstimator } from '../../src/tcp/rtt.js';
import { SackScoreboard } from '../../src/tcp/sack-scoreboard.js';

describe('RttEstimator (RFC 6298)', () => {
  it('starts at the initial RTO (§2.1)', () => {
    expect(new RttEstimator(200, 120_000, 1000).rtoMs).toBe(1000);
  });

  it('first sample: SRTT = R, RTTVAR = R/2 (§2.2); later samples smooth (§2.3)', () => {
    const r = new RttEstimator(1, 120_000, 1000);
    r.sample(100);
    expect([r.srttMs, r.rttvarMs, r.rtoMs]).toEqual([100, 50, 300]);
    r.sample(200);
    expect(r.rttvarMs).toBe(0.75 * 50 + 0.25 * 100);
    expect(r.srttMs).toBe(0.875 * 100 + 0.125 * 200);
    expect(r.rtoMs).toBe(r.srttMs + 4 * r.rttvarMs);
  });

  it('clamps to [min, max] (§2.4, §2.5) and backs off by doubling (§5.5)', () => {
    const r = new RttEstimator(200, 1000, 1000);
    r.sample(1);
    expect(r.rtoMs).toBe(200);
    r.backoff();
    r.backoff();
    expect(r.rtoMs).toBe(800);
    r.backoff();
    expect(r.rtoMs).toBe(1000);
    r.sample(5000);
    expect(r.rtoMs).toBe(1000);
  });

  it("Karn timing: one segment at a time, cancelled by a retransmission", () => {
    const r = new RttEstimator(1, 120_000, 1000);
    r.startTiming(100, 0);
    r.startTiming(200, 5); // ignored: already timing
    expect(r.timedEnd).toBe(100);
    r.cancelTiming();
    r.finishTiming(50);
    expect(r.hasSample).toBe(false);
    r.startTiming(300, 10);
    r.finishTiming(40);
    expect(r.srttMs).toBe(30);
  });
});

describe('NewReno (RFC 5681, RFC 6582, RFC 6928)', () => {
  it('IW = min(10·MSS, max(2·MSS, 14600))', () => {
    expect(initialWindow(1460)).toBe(14600);
    expect(initialWindow(536)).toBe(5360);
    expect(initialWindow(9000)).toBe(18000);
  });

  it('slow start counts every acknowledged byte, up to ssthresh; then one MSS per window', () => {
    const c = new NewReno(1000, 0);
    c.ssthresh = 15000;
    c.onAck(4000, true);
    expect(c.cwnd).toBe(14000);
    c.onAck(4000, true); // 1000 to reach ssthresh, 3000 in avoidance
    expect(c.cwnd).toBe(15000);
    c.onAck(12000, true); // 3000 + 12000 = one window of 15000
    expect(c.cwnd).toBe(16000);
  });

  it('does not grow when not cwnd-limited', () => {
    const c = new NewReno(1000, 0);
    c.onAck(5000, false);
    expect(c.cwnd).toBe(10000);
  });

  it('fast recovery: ssthresh = flight/2, cwnd = ssthresh + 3 MSS, inflate, deflate, exit', () => {
    const c = new NewReno(1000, 0);
    expect(c.mayEnterRecovery(5)).toBe(true);
    c.enterRecovery(20000, 1000);
    expect([c.ssthresh, c.cwnd, c.inRecovery]).toEqual([10000, 13000, true]);
    expect(c.mayEnterRecovery(2000)).toBe(false);
    c.onDupAckInRecovery();
    expect(c.cwnd).toBe(14000);
    c.onPartialAck(3000);
    expect(c.cwnd).toBe(12000);
    expect(c.isFullAck(999)).toBe(false);
    expect(c.isFullAck(1000)).toBe(true);
    c.exitRecovery(4000);
    expect([c.cwnd, c.inRecovery]).toEqual([5000, false]);
  });

  it('timeout: loss window of one MSS and recover = highest sent (RFC 6582 §3.2 step 4)', () => {
    const c = new NewReno(1000, 0);
    c.onTimeout(8000, 5000);
    expect([c.ssthresh, c.cwnd]).toEqual([4000, 1000]);
    expect(c.mayEnterRecovery(4000)).toBe(false);
    expect(c.mayEnterRecovery(5000)).toBe(true);
  });

  it('recover compares modulo 2^32', () => {
    const c = new NewReno(1000, 0xfffffff0);
    expect(c.mayEnterRecovery(5)).toBe(true);
  });
});

describe('ReceiveWindow', () => {
  it('advertises free space, never retracting the edge', () => {
    const w = new ReceiveWindow(10000, 1000);
    w.edgeOff = 10000;
    w.backlog = 4000;
    expect(w.field(4000)).toBe(6000); // edge stays at 10000
    w.backlog = 9000;
    expect(w.field(5000)).toBe(5000); // would be 1000: keep the edge
  });

  it('moves the edge only by at least min(buf/2, MSS) (RFC 9293 §3.8.6.2.2)', () => {
    const w = new ReceiveWindow(10000, 1000);
    w.edgeOff = 10000;
    w.backlog = 9500;
    expect(w.compute(10000)).toBe(0);
    w.backlog = 9100;
    expect(w.compute(10000)).toBe(0);
    w.backlog = 9000;
    expect(w.compute(10000)).toBe(1000);
  });

  it('scaled fields round down, or up when down would retract', () => {
    const w = new ReceiveWindow(1 << 20, 1460);
    w.shift = 7;
    w.edgeOff = 65535;
    expect(w.field(0)).toBe((1 << 20) >> 7);
    const w2 = new ReceiveWindow(65535, 1460);
    w2.shift = 7;
    w2.edgeOff = 65535;
    expect(w2.field(0)).toBe(512);
    expect(w2.edgeOff).toBe(65536);
  });

  it('caps at 65535 << shift', () => {
    const w = new ReceiveWindow(1 << 20, 1460);
    expect(w.field(0)).toBe(65535);
  });

  it('window updates follow Linux: remaining ≤ buf/2 and the new window ≥ twice it', () => {
    const w = new ReceiveWindow(10000, 1000);
    w.edgeOff = 10000;
    w.backlog = 10000;
    expect(w.updateWorthSending(10000)).toBe(false);
    w.backlog = 8000;
    expect(w.updateWorthSending(10000)).toBe(true);
    w.edgeOff = 16000; // 6000 remaining: more than half
    w.backlog = 0;
    expect(w.updateWorthSending(10000)).toBe(false);
  });
});

describe('SackScoreboard', () => {
  it('merges touching ranges and prunes below the cumulative ACK', () => {
    const s = new SackScoreboard();
    s.add(10, 20);
    s.add(30, 40);
    s.add(20, 25);
    expect(s.rangeCount).toBe(2);
    expect(s.sackedBytes).toBe(25);
    s.add(22, 35);
    expect(s.rangeCount).toBe(1);
    expect(s.highest).toBe(40);
    s.pruneBelow(15);
    expect(s.sackedBytes).toBe(25);
    s.pruneBelow(50);
    expect(s.isEmpty).toBe(true);
  });

  it('finds holes', () => {
    const s = new SackScoreboard();
    s.add(10, 20);
    s.add(30, 40);
    expect(s.nextUnsacked(0)).toBe(0);
    expect(s.nextUnsacked(10)).toBe(20);
    expect(s.nextUnsacked(35)).toBe(40);
    expect(s.nextSacked(0)).toBe(10);
    expect(s.nextSacked(20)).toBe(30);
    expect(s.nextSacked(30)).toBe(Infinity);
  });

  it('keeps at most 16 ranges', () => {
    const s = new SackScoreboard();
    for (let i = 0; i < 20; i++) s.add(i * 10, i * 10 + 5);
    expect(s.rangeCount).toBe(16);
  });
});
