/**
 * Two endpoints back to back (one active, one passive) over a simulated link
 * with seeded loss, duplication and reordering, on a manual clock (sim.ts).
 * Each run moves MBs both ways with a half-close (one side finishes and
 * closes while the other keeps sending), and must end with both endpoints
 * CLOSED (one through TIME-WAIT), every byte intact, no reset and no
 * deadline left armed.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NewReno } from '../../src/tcp/congestion.js';
import { DEFAULT_TCP_CONFIG, TcpState, type SendBufferReader, type TcpEndpointIdentity } from '../../src/tcp/contract.js';
import { TcpEndpoint } from '../../src/tcp/endpoint.js';
import { RttEstimator } from '../../src/tcp/rtt.js';
import type { TcpRepr } from '../../src/wire/tcp.js';
import { Side, Simulation, type LinkFaults, type SideSpec } from './sim.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const CLEAN: LinkFaults = { loss: 0, duplicate: 0, jitterMs: 0, delayMs: 0.05, bytesPerMs: 1_000_000, queueBytes: 4 << 20 };
const LOSSY: LinkFaults = { loss: 0.02, duplicate: 0.01, jitterMs: 0.3, delayMs: 0.05, bytesPerMs: 500_000, queueBytes: 1 << 20 };
const NASTY: LinkFaults = { loss: 0.05, duplicate: 0.03, jitterMs: 1, delayMs: 0.1, bytesPerMs: 300_000, queueBytes: 512 << 10 };
const MB = 1 << 20;

function check(sim: Simulation): void {
  const { a, b } = sim;
  const info = `steps=${sim.steps} A: sent=${a.segmentsSent} dropped=${a.dropped} stats=${JSON.stringify(a.ep?.stats)} B: sent=${b.segmentsSent} dropped=${b.dropped} stats=${JSON.stringify(b.ep?.stats)}`;
  expect(a.corrupt, info).toBe(false);
  expect(b.corrupt, info).toBe(false);
  expect(b.receivedOk, info).toBe(a.spec.sendBytes);
  expect(a.receivedOk, info).toBe(b.spec.sendBytes);
  expect(a.fin && b.fin, info).toBe(true);
  expect(a.resets, info).toEqual([]);
  expect(b.resets, info).toEqual([]);
  expect(a.established, info).toBe(1);
  expect(b.established, info).toBe(1);
  // Leak check: CLOSED, no deadline armed, onClosed exactly once.
  expect(a.ep!.state, info).toBe(TcpState.CLOSED);
  expect(b.ep!.state, info).toBe(TcpState.CLOSED);
  expect(a.ep!.nextDeadline).toBe(Infinity);
  expect(b.ep!.nextDeadline).toBe(Infinity);
  expect(a.closed).toBe(1);
  expect(b.closed).toBe(1);
}

describe('two endpoints back to back', () => {
  it('clean link: 4 MB and 3 MB both ways, B keeps sending after A half-closed', () => {
    const A: SideSpec = { iss: 1000, sendBytes: 4 * MB, readBytesPerMs: Infinity };
    const B: SideSpec = { iss: 2_000_000, sendBytes: 3 * MB, readBytesPerMs: Infinity, closeDelayMs: 5 };
    const sim = new Simulation(CLEAN, A, B, 1);
    sim.run(60_000);
    check(sim);
    expect(sim.a.ep!.stats.retransmits + sim.b.ep!.stats.retransmits).toBe(0);
  });

  it('the passive side half-closes first and the active side keeps sending', () => {
    const A: SideSpec = { iss: 5, sendBytes: 3 * MB, readBytesPerMs: Infinity, closeDelayMs: 20 };
    const B: SideSpec = { iss: 9, sendBytes: 64 * 1024, readBytesPerMs: Infinity };
    const sim = new Simulation(LOSSY, A, B, 5);
    sim.run(600_000);
    check(sim);
  });

  for (const seed of [42, 7, 1234]) {
    it(`lossy, duplicating, reordering link (seed ${seed})`, () => {
      const A: SideSpec = { iss: 77, sendBytes: 3 * MB, readBytesPerMs: Infinity };
      const B: SideSpec = { iss: 3_000_000_000, sendBytes: 2 * MB, readBytesPerMs: Infinity };
      const sim = new Simulation(LOSSY, A, B, seed);
      sim.run(600_000);
      check(sim);
      const s = sim.a.ep!.stats;
      expect(s.retransmits + sim.b.ep!.stats.retransmits).toBeGreaterThan(0);
    });
  }

  it('5% loss, 3% duplicates, 1 ms jitter, small queues', () => {
    const A: SideSpec = { iss: 123456, sendBytes: 2 * MB, readBytesPerMs: Infinity };
    const B: SideSpec = { iss: 654321, sendBytes: 2 * MB, readBytesPerMs: Infinity };
    const sim = new Simulation(NASTY, A, B, 99);
    sim.run(600_000);
    check(sim);
  });

  it('no options at all, GSO super-segments (one in flight: recovery is by timeout)', () => {
    const config = { timestamps: false, sack: false, windowScale: -1 };
    const A: SideSpec = { iss: 1, sendBytes: 2 * MB, readBytesPerMs: Infinity, config };
    const B: SideSpec = { iss: 2, sendBytes: 1 * MB, readBytesPerMs: Infinity, config };
    const sim = new Simulation(LOSSY, A, B, 8);
    sim.run(600_000);
    check(sim);
    expect(sim.a.ep!.stats.rtoTimeouts + sim.b.ep!.stats.rtoTimeouts).toBeGreaterThan(0);
  });

  it('no options at all (no timestamps, SACK or window scaling): Karn timing and NewReno', () => {
    // Every RTT sample, and what each input that took a partial ACK sent before returning.
    const samples: number[] = [];
    const sample = RttEstimator.prototype.sample;
    vi.spyOn(RttEstimator.prototype, 'sample').mockImplementation(function (this: RttEstimator, rttMs: number) {
      samples.push(rttMs);
      sample.call(this, rttMs);
    });
    let partialAcked = false;
    const onPartialAck = NewReno.prototype.onPartialAck;
    vi.spyOn(NewReno.prototype, 'onPartialAck').mockImplementation(function (this: NewReno, acked: number) {
      partialAcked = true;
      onPartialAck.call(this, acked);
    });
    let sentSeqs: number[] = [];
    const transmit = Side.prototype.transmit;
    vi.spyOn(Side.prototype, 'transmit').mockImplementation(function (this: Side, e: TcpEndpointIdentity, repr: TcpRepr, data: SendBufferReader | null, off: number, len: number) {
      if (len > 0) sentSeqs.push(repr.seq);
      transmit.call(this, e, repr, data, off, len);
    });
    const partialAcks: Array<{ ack: number; resent: boolean }> = [];
    const input = TcpEndpoint.prototype.input;
    vi.spyOn(TcpEndpoint.prototype, 'input').mockImplementation(function (this: TcpEndpoint, ...args: Parameters<TcpEndpoint['input']>) {
      partialAcked = false;
      sentSeqs = [];
      input.apply(this, args);
      if (partialAcked) partialAcks.push({ ack: args[0].ack, resent: sentSeqs.includes(args[0].ack) });
    });

    const config = { timestamps: false, sack: false, windowScale: -1 };
    const A: SideSpec = { iss: 1, sendBytes: 2 * MB, readBytesPerMs: Infinity, config };
    const B: SideSpec = { iss: 2, sendBytes: 1 * MB, readBytesPerMs: Infinity, config };
    // One MSS per segment: without window scaling the 64 KB window holds a single super-segment,
    // and no duplicate ACK, so no fast retransmit, could ever happen.
    const sim = new Simulation(LOSSY, A, B, 8, 1_000_000, 1460, 1460);
    sim.run(600_000);
    check(sim);

    // Karn (RFC 6298 §3): without timestamps, samples come from timed segments only, never from
    // one that was retransmitted; such a sample would include the RTO wait (at least rtoMin).
    const rto = sim.a.ep!.stats.rtoTimeouts + sim.b.ep!.stats.rtoTimeouts;
    expect(rto, 'the run had retransmission timeouts').toBeGreaterThan(0);
    expect(samples.length).toBeGreaterThan(10);
    expect(Math.max(...samples)).toBeLessThan(DEFAULT_TCP_CONFIG.rtoMinMs);
    // NewReno (RFC 6582 §3.2 step 5): a partial ACK retransmits the segment at SEG.ACK at once,
    // in the same input, not at the next timeout.
    expect(sim.a.ep!.stats.fastRetransmits + sim.b.ep!.stats.fastRetransmits).toBeGreaterThan(0);
    expect(partialAcks.length).toBeGreaterThan(0);
    expect(partialAcks.filter((p) => !p.resent)).toEqual([]);
  });

  it('without GSO (one MSS per segment)', () => {
    const A: SideSpec = { iss: 10, sendBytes: 1 * MB, readBytesPerMs: Infinity };
    const B: SideSpec = { iss: 20, sendBytes: 1 * MB, readBytesPerMs: Infinity };
    const sim = new Simulation(LOSSY, A, B, 17, 1_000_000, 1460, 1460);
    sim.run(600_000);
    check(sim);
  });

  it('slow readers: the window closes to the receive buffer and reopens (backpressure)', () => {
    const config = { rcvBufBytes: 256 * 1024 };
    const A: SideSpec = { iss: 3, sendBytes: 3 * MB, readBytesPerMs: 5_000, config };
    const B: SideSpec = { iss: 4, sendBytes: 2 * MB, readBytesPerMs: 2_000, config };
    const sim = new Simulation(LOSSY, A, B, 21);
    sim.run(600_000);
    check(sim);
    // Never more unread than the buffer (plus the rounding of the scaled window).
    expect(sim.a.maxBacklog).toBeLessThanOrEqual(256 * 1024 + 128);
    expect(sim.b.maxBacklog).toBeLessThanOrEqual(256 * 1024 + 128);
    expect(sim.a.ep!.stats.windowUpdates).toBeGreaterThan(0);
  });

  it('sequence numbers and timestamps wrap: ISS 2^32 − 1000 both ways, clock at 2^32 ms', () => {
    const A: SideSpec = { iss: 2 ** 32 - 1000, sendBytes: 3 * MB, readBytesPerMs: Infinity };
    const B: SideSpec = { iss: 2 ** 32 - 1000, sendBytes: 3 * MB, readBytesPerMs: Infinity };
    const sim = new Simulation(LOSSY, A, B, 2024, 2 ** 32 - 50);
    sim.run(600_000);
    check(sim);
  });
});
