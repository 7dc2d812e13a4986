/**
 * Windows both ways: the window we advertise as backpressure from the host
 * socket (never retracted, receiver SWS avoidance, window updates), window
 * scaling, and the guest's zero window (persist probes, RFC 9293 §3.8.6.1).
 */
import { describe, expect, it } from 'vitest';
import { TcpState } from '../../src/tcp/contract.js';
import { ACK, FIN, GUEST_ISS, Harness, LOCAL_ISS, MSS, PSH, RECV, RST, SEND, WND, pattern, useLeakCheck } from './harness.js';

useLeakCheck();

const G = GUEST_ISS + 1;
const L = LOCAL_ISS + 1;

describe('the window we advertise (backpressure)', () => {
  it('shrinks by what the host has not consumed, down to zero', () => {
    const h = Harness.established({ autoConsume: false });
    h.send({ ...SEND, payload: pattern(30000) });
    h.expectSent({ ...RECV, ack: G + 30000, window: WND - 30000 });
    h.send({ ...SEND, seq: G + 30000, payload: pattern(WND - 30000) });
    h.expectSent({ ...RECV, ack: G + WND, window: 0 });
    expect(h.receivedBytes).toBe(WND);
  });

  it('every delivered byte counts as backlog until the relay reports otherwise', () => {
    const h = Harness.established({ autoConsume: false });
    h.send({ ...SEND, payload: pattern(1000) });
    h.takeSent();
    h.ep.setReceiveBacklog(0, h.now);
    h.expectNothingSent(); // 1000 bytes: not worth an update on its own
    h.send({ ...SEND, seq: G + 1000, payload: 'x' });
    // Receiver SWS avoidance: the edge moves only by at least one MSS; 1001 bytes is less.
    expect(h.takeSent()[0].window).toBe(WND - 1001);
    h.send({ ...SEND, seq: G + 1001, payload: pattern(500) });
    h.ep.setReceiveBacklog(0, h.now);
    h.send({ ...SEND, seq: G + 1501, payload: 'y' });
    // Now it may move by 1501 bytes: the whole buffer is free again but for the byte just sent.
    expect(h.takeSent().pop()!.window).toBe(WND - 1);
  });

  it("a zero window holds the guest's data; its probe is answered with the window and dropped", () => {
    const h = Harness.established({ autoConsume: false });
    h.send({ ...SEND, payload: pattern(WND) });
    h.takeSent();
    // The guest's probe: one byte at RCV.NXT (RFC 9293 §3.8.6.1).
    h.send({ ...SEND, seq: G + WND, payload: 'p' });
    h.expectSent({ ...RECV, ack: G + WND, window: 0 });
    expect(h.receivedBytes).toBe(WND);
  });

  it('when the host drains, a window update goes out at once (outside input)', () => {
    const h = Harness.established({ autoConsume: false });
    h.send({ ...SEND, payload: pattern(WND) });
    h.takeSent();
    h.ep.setReceiveBacklog(WND - 100, h.now);
    h.expectNothingSent(); // 100 bytes: receiver SWS avoidance (RFC 9293 §3.8.6.2.2)
    h.ep.setReceiveBacklog(WND - 2000, h.now);
    h.expectSent({ ...RECV, ack: G + WND, window: 2000 });
    expect(h.ep.stats.windowUpdates).toBe(1);
    h.ep.setReceiveBacklog(0, h.now);
    h.expectSent({ ...RECV, ack: G + WND, window: WND });
  });

  it('no update while plenty of window remains (Linux __tcp_cleanup_rbuf rule)', () => {
    const h = Harness.established({ autoConsume: false });
    h.send({ ...SEND, payload: pattern(10000) });
    h.takeSent();
    h.ep.setReceiveBacklog(0, h.now);
    h.expectNothingSent();
  });

  it('the right edge is never retracted (RFC 9293 §3.8.6.2.1, RFC 7323 §2.4)', () => {
    const h = Harness.established({ autoConsume: false });
    h.ep.setReceiveBacklog(60000, h.now); // the host suddenly reports a large backlog
    h.send({ ...SEND, payload: pattern(1000) });
    // 65535 − 60000 would retract the edge: we advertise what remains of it.
    h.expectSent({ ...RECV, ack: G + 1000, window: WND - 1000 });
    h.send({ ...SEND, seq: G + 1000, payload: pattern(WND - 1000) });
    expect(h.receivedBytes).toBe(WND);
  });

  it('with window scaling the field is the window >> our shift (RFC 7323 §2.3)', () => {
    const h = Harness.established({ options: true, config: { rcvBufBytes: 1 << 20 }, autoConsume: false });
    // The SYN-ACK offered 65535; the first ACK opens the window to the whole buffer.
    h.send({ ...SEND, payload: pattern(1000), ...h.tsFields() });
    expect(h.takeSent()[0].window).toBe(((1 << 20) - 1000) >> 7);
    h.send({ ...SEND, seq: G + 1000, payload: pattern(100_000), ...h.tsFields() });
    // 101000 bytes backlog: (1 MB − 101000) / 128 = 7402.8 would retract the edge: rounded up.
    expect(h.takeSent()[0].window).toBe(Math.ceil(((1 << 20) - 1000 - 100_000) / 128));
  });

  it('a 64 KB segment beyond an unscaled 64 KB window is trimmed to it', () => {
    const h = Harness.established({ autoConsume: false });
    h.send({ ...SEND, payload: pattern(70000) });
    expect(h.receivedBytes).toBe(WND);
  });
});

describe("the guest's zero window (persist, RFC 9293 §3.8.6.1)", () => {
  function zeroWindow(opts = {}): Harness {
    const h = Harness.established(opts);
    h.send({ ...SEND, window: 0 });
    h.ep.write(pattern(5000), h.now);
    h.expectNothingSent();
    return h;
  }

  it('probes with SEQ = SND.UNA − 1 and no data (as Linux), backing off', () => {
    const h = zeroWindow();
    const gaps: number[] = [];
    for (let i = 0; i < 4; i++) {
      gaps.push(h.advanceUntilSent());
      h.expectSent({ ...RECV, seq: L - 1 });
    }
    expect(gaps).toEqual([200, 400, 800, 1600]);
    expect(h.ep.stats.windowProbes).toBe(4);
  });

  it('keeps probing while the guest answers, however long the window stays closed', () => {
    const h = zeroWindow({ config: { maxRetransmits: 3, rtoMaxMs: 2000 } });
    for (let i = 0; i < 20; i++) {
      h.advanceUntilSent();
      h.takeSent();
      h.send({ ...SEND, window: 0 });
    }
    h.expectState(TcpState.ESTABLISHED);
    expect(h.resets).toEqual([]);
  });

  it('gives up when maxRetransmits probes in a row get no answer', () => {
    const h = zeroWindow({ config: { maxRetransmits: 3, rtoMaxMs: 2000 } });
    h.advance(200 + 400 + 800 + 1600);
    const sent = h.takeSent();
    expect(sent.map((s) => s.flags)).toEqual([ACK, ACK, ACK, RST | ACK]);
    expect(h.resets).toEqual(['timeout']);
    h.expectState(TcpState.CLOSED);
  });

  it('the window reopening sends the data and stops probing', () => {
    const h = zeroWindow();
    h.advanceUntilSent();
    h.takeSent();
    h.send({ ...SEND, window: 10000 });
    expect(h.takeSent().map((s) => s.payload.length)).toEqual([MSS, MSS, MSS, 620]);
    expect(h.ep.nextDeadline).toBe(h.now + 200); // the retransmission timer, not the persist timer
  });

  it('a window closed under data in flight: retransmissions do not give up while the guest answers', () => {
    const h = Harness.established({ config: { maxRetransmits: 2 } });
    h.ep.write(pattern(2 * MSS), h.now);
    h.takeSent();
    h.send({ ...SEND, ack: L + MSS, window: 0 });
    for (let i = 0; i < 8; i++) {
      h.advanceUntilSent();
      const s = h.takeSent();
      expect(s.map((x) => [x.seq - L, x.payload.length])).toEqual([[MSS, MSS]]);
      h.send({ ...SEND, ack: L + MSS, window: 0 });
    }
    h.expectState(TcpState.ESTABLISHED);
    h.send({ ...SEND, ack: L + 2 * MSS, window: 1000 });
    expect(h.ep.sendQueued).toBe(0);
  });

  it('our FIN also waits for the window (Linux drops a FIN at a zero window)', () => {
    const h = Harness.established();
    h.send({ ...SEND, window: 0 });
    h.ep.close(h.now);
    h.expectNothingSent();
    h.expectState(TcpState.FIN_WAIT_1);
    h.advanceUntilSent();
    h.expectSent({ ...RECV, seq: L - 1 });
    h.send({ ...SEND, window: 100 });
    h.expectSent({ ...RECV, flags: ACK | FIN });
  });

  it('PSH/len sanity: the first segment after the window opened carries PSH when it empties the queue', () => {
    const h = Harness.established();
    h.send({ ...SEND, window: 0 });
    h.ep.write(pattern(10), h.now);
    h.send({ ...SEND, window: 100 });
    h.expectSent({ ...RECV, flags: ACK | PSH, payload: pattern(10) });
  });
});
