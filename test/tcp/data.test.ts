/**
 * ESTABLISHED: data both ways, the ACK policy (flush), out-of-order
 * reassembly and the SACK blocks we send, TSO super-segments in and GSO
 * super-segments out.
 */
import { describe, expect, it } from 'vitest';
import { TcpState } from '../../src/tcp/contract.js';
import { MAX_OUT_OF_ORDER_BLOCKS } from '../../src/tcp/endpoint.js';
import { ACK, FIN, GUEST_ISS, Harness, LOCAL_ISS, MSS, PSH, RECV, RST, SEND, T0, WND, WND_SCALED, bytes, pattern, useLeakCheck } from './harness.js';

useLeakCheck();

const G = GUEST_ISS + 1;
const L = LOCAL_ISS + 1;

describe('ESTABLISHED: guest → host data', () => {
  it('delivers in-order data and ACKs it at flush', () => {
    const h = Harness.established();
    h.send({ ...SEND, payload: 'abcdef' }, { flush: false });
    expect(h.receivedText()).toBe('abcdef');
    h.expectNothingSent();
    h.ep.flush(h.now);
    h.expectSent({ ...RECV, ack: G + 6, window: WND - 6 });
  });

  it('one cumulative ACK per input batch (flush after several segments)', () => {
    const h = Harness.established();
    h.send({ ...SEND, payload: 'abc' }, { flush: false });
    h.send({ ...SEND, seq: G + 3, payload: 'def' }, { flush: false });
    h.send({ ...SEND, seq: G + 6, payload: 'ghi' }, { flush: false });
    h.expectNothingSent();
    h.ep.flush(h.now);
    h.expectSent({ ...RECV, ack: G + 9, window: WND - 9 });
    expect(h.receivedText()).toBe('abcdefghi');
  });

  it('without flush the pending ACK is due at once: nextDeadline = now, onTimer sends it', () => {
    const h = Harness.established();
    h.send({ ...SEND, payload: 'abc' }, { flush: false });
    expect(h.ep.nextDeadline).toBe(h.now);
    h.ep.onTimer(h.now);
    h.expectSent({ ...RECV, ack: G + 3, window: WND - 3 });
    expect(h.ep.nextDeadline).toBeGreaterThan(h.now);
  });

  it('the ACK rides on data written during the batch (piggyback), and flush sends nothing more', () => {
    const h = Harness.established();
    h.onDataHook = (hh) => hh.ep.write(bytes('pong'), hh.now);
    h.send({ ...SEND, payload: 'ping' });
    h.expectSent({ ...RECV, flags: ACK | PSH, ack: G + 4, window: WND - 4, payload: 'pong' });
  });

  describe('delayed ACK (delayedAckMs > 0)', () => {
    const delayed = { config: { delayedAckMs: 5 } };

    it('holds the ACK of a little data and sends it when the timer fires', () => {
      const h = Harness.established(delayed);
      h.send({ ...SEND, payload: 'abc' });
      h.expectNothingSent();
      expect(h.ep.nextDeadline).toBe(h.now + 5);
      h.advance(4);
      h.expectNothingSent();
      h.advance(1);
      h.expectSent({ ...RECV, ack: G + 3, window: WND - 3 });
    });

    it('host data written before the timer carries the ACK: one segment, no pure ACK later', () => {
      const h = Harness.established(delayed);
      h.send({ ...SEND, payload: 'ping' });
      h.expectNothingSent();
      h.advance(2);
      h.ep.write(bytes('pong'), h.now);
      h.expectSent({ ...RECV, flags: ACK | PSH, ack: G + 4, window: WND - 4, payload: 'pong' });
      h.advance(10);
      h.expectNothingSent();
    });

    it('later data does not push the deadline back', () => {
      const h = Harness.established(delayed);
      h.send({ ...SEND, payload: 'a' });
      h.advance(3);
      h.send({ ...SEND, seq: G + 1, payload: 'b' });
      h.expectNothingSent();
      h.advance(2);
      h.expectSent({ ...RECV, ack: G + 2, window: WND - 2 });
    });

    it('two full segments since the last ACK are ACKed at flush (RFC 5681 §4.2)', () => {
      // The host does not consume: no window update can be what sends the ACK.
      const h = Harness.established({ ...delayed, autoConsume: false });
      h.send({ ...SEND, payload: pattern(MSS) });
      h.expectNothingSent();
      h.send({ ...SEND, seq: G + MSS, payload: pattern(MSS, MSS) });
      h.expectSent({ ...RECV, ack: G + 2 * MSS, window: WND - 2 * MSS });
    });

    it("the guest's FIN (to CLOSE-WAIT) waits like data, and our FIN carries its ACK in one segment", () => {
      const h = Harness.established(delayed);
      h.send({ ...SEND, payload: 'abc' });
      h.expectNothingSent();
      h.send({ ...SEND, flags: ACK | FIN, seq: G + 3 });
      h.expectNothingSent();
      expect(h.ep.state).toBe(TcpState.CLOSE_WAIT);
      h.advance(2);
      h.ep.close(h.now);
      h.expectSent({ ...RECV, flags: ACK | FIN, ack: G + 4, window: WND - 3 });
      expect(h.ep.state).toBe(TcpState.LAST_ACK);
    });

    it("the guest's FIN is ACKed alone once the delayed-ACK time passes without our FIN", () => {
      const h = Harness.established(delayed);
      h.send({ ...SEND, payload: 'abc' });
      h.send({ ...SEND, flags: ACK | FIN, seq: G + 3 });
      h.advance(4);
      h.expectNothingSent();
      h.advance(1);
      h.expectSent({ ...RECV, ack: G + 4, window: WND - 3 });
    });

    it("a FIN that arrives while our FIN is out (FIN-WAIT) is ACKed at once", () => {
      const h = Harness.established(delayed);
      h.ep.close(h.now);
      h.takeSent();
      h.send({ ...SEND, flags: ACK | FIN });
      expect(h.takeSent().length).toBe(1);
    });

    it('out-of-order data is still answered at once', () => {
      const h = Harness.established(delayed);
      h.send({ ...SEND, seq: G + 3, payload: 'def' }, { flush: false });
      const sent = h.takeSent();
      expect(sent.length).toBe(1);
      expect(sent[0].ack).toBe(G);
    });

    it("the first small request after the handshake waits too: the window's jump to the whole buffer rides along", () => {
      const h = Harness.synReceived({ config: { delayedAckMs: 5, rcvBufBytes: 4 << 20 }, options: true });
      h.send({ ...SEND, ...h.tsFields() }, { flush: false });
      h.send({ ...SEND, ...h.tsFields(), payload: 'GET /' });
      h.expectNothingSent();
      h.advance(5);
      const [ack] = h.takeSent();
      expect(ack.ack).toBe(G + 5);
      expect(ack.window).toBe(32768); // 4 MiB >> 7
    });

    it('a window update the guest may be waiting for goes at once (under four segments of window left)', () => {
      const h = Harness.established({ config: { delayedAckMs: 5, rcvBufBytes: 6 * MSS }, autoConsume: false });
      h.send({ ...SEND, payload: pattern(MSS) });
      h.advance(5);
      h.takeSent();
      h.send({ ...SEND, seq: G + MSS, payload: pattern(MSS, MSS) });
      h.send({ ...SEND, seq: G + 2 * MSS, payload: pattern(MSS, 2 * MSS) });
      h.takeSent(); // two full segments: ACKed at once, 3 MSS of window left
      h.ep.setReceiveBacklog(0, h.now);
      const [update] = h.takeSent();
      expect(update.ack).toBe(G + 3 * MSS);
      expect(update.window).toBe(6 * MSS);
    });

    it('with delayedAckMs 0 (the default) the ACK goes at flush', () => {
      const h = Harness.established();
      h.send({ ...SEND, payload: 'abc' });
      h.expectSent({ ...RECV, ack: G + 3, window: WND - 3 });
    });
  });

  it('never ACKs a pure ACK', () => {
    const h = Harness.established();
    h.send(SEND);
    h.send(SEND);
    h.expectNothingSent();
  });

  it('an old duplicate data segment is ACKed at once (RFC 9293 §3.10.7.4)', () => {
    const h = Harness.established();
    h.send({ ...SEND, payload: 'abc' });
    h.takeSent();
    h.send({ ...SEND, payload: 'abc' });
    h.expectSent({ ...RECV, ack: G + 3, window: WND - 3 });
    expect(h.receivedText()).toBe('abc');
  });

  it('a partly old segment delivers only its new bytes', () => {
    const h = Harness.established();
    h.send({ ...SEND, payload: 'abc' });
    h.send({ ...SEND, payload: 'abcdef' });
    expect(h.receivedText()).toBe('abcdef');
  });

  it('a 64 KB TSO super-segment is one delivery and one ACK', () => {
    const h = Harness.established({ options: true, config: { rcvBufBytes: 1 << 20 } });
    const data = pattern(65160);
    h.send({ ...SEND, payload: data, ...h.tsFields() });
    expect(h.received.length).toBe(1);
    expect(Buffer.compare(h.receivedData(), data)).toBe(0);
    const sent = h.takeSent();
    expect(sent.length).toBe(1);
    expect(sent[0].ack).toBe((G + 65160) >>> 0);
  });

  it('data past the window is trimmed and the rest ACKed at once', () => {
    const h = Harness.established({ config: { rcvBufBytes: 1000 }, autoConsume: false });
    // The SYN-ACK offered 1000 bytes.
    h.send({ ...SEND, payload: pattern(1500) });
    expect(h.receivedBytes).toBe(1000);
    h.expectSent({ ...RECV, ack: G + 1000, window: 0 });
  });

  it('onData may abort(): processing stops, only the RST goes out', () => {
    const h = Harness.established();
    h.onDataHook = (hh) => hh.ep.abort(hh.now);
    h.send({ ...SEND, flags: ACK | FIN, payload: 'x' });
    h.expectSent({ flags: RST | ACK, seq: L, ack: G + 1, window: 0 });
    expect(h.fins).toBe(0);
    h.expectState(TcpState.CLOSED);
  });
});

describe('ESTABLISHED: out of order (RFC 9293 §3.10.7.4 seventh step, RFC 2018)', () => {
  it('holds an out-of-order segment and sends a duplicate ACK at once', () => {
    const h = Harness.established();
    h.send({ ...SEND, seq: G + 3, payload: 'def' }, { flush: false });
    h.expectSent(RECV);
    expect(h.receivedBytes).toBe(0);
    expect(h.ep.outOfOrderBytes).toBe(3);
    h.send({ ...SEND, payload: 'abc' });
    expect(h.receivedText()).toBe('abcdef');
    h.expectSent({ ...RECV, ack: G + 6, window: WND - 6 });
    expect(h.ep.outOfOrderBytes).toBe(0);
  });

  it('with SACK the duplicate ACK carries the block', () => {
    const h = Harness.established({ options: true });
    h.send({ ...SEND, seq: G + 3, payload: 'def', ...h.tsFields() });
    h.expectSent({ ...RECV, window: WND_SCALED, ...h.ourTs(), sack: [G + 3, G + 6] });
  });

  it('SACK blocks: the newest first, then the most recent others (RFC 2018 §4), 3 with timestamps', () => {
    const h = Harness.established({ options: true });
    for (const at of [10, 20, 30, 40]) {
      h.send({ ...SEND, seq: G + at, payload: 'xx', ...h.tsFields() });
    }
    const last = h.takeSent().pop()!;
    expect(last.sack).toEqual([G + 40, G + 42, G + 30, G + 32, G + 20, G + 22]);
  });

  it('without timestamps four SACK blocks fit', () => {
    const h = Harness.established({ syn: { sackPermitted: true } });
    for (const at of [10, 20, 30, 40, 50]) h.send({ ...SEND, seq: G + at, payload: 'xx' });
    const last = h.takeSent().pop()!;
    expect(last.sack).toEqual([G + 50, G + 52, G + 40, G + 42, G + 30, G + 32, G + 20, G + 22]);
  });

  it('adjacent held segments are reported as one block', () => {
    const h = Harness.established({ syn: { sackPermitted: true } });
    h.send({ ...SEND, seq: G + 10, payload: 'aa' });
    h.send({ ...SEND, seq: G + 12, payload: 'bb' });
    expect(h.takeSent().pop()!.sack).toEqual([G + 10, G + 14]);
  });

  it('overlapping and duplicated out-of-order segments reassemble exactly', () => {
    const h = Harness.established({ syn: { sackPermitted: true } });
    const data = pattern(100);
    const seg = (from: number, to: number): void => h.send({ ...SEND, seq: G + from, payload: data.slice(from, to) });
    seg(50, 60);
    seg(55, 70);
    seg(40, 52);
    seg(50, 60);
    seg(80, 100);
    seg(65, 85);
    expect(h.ep.outOfOrderBytes).toBe(60);
    seg(0, 45);
    expect(h.receivedData()).toEqual(data);
    expect(h.ep.outOfOrderBytes).toBe(0);
    expect(h.takeSent().pop()!).toMatchObject({ ack: G + 100, sack: [] });
  });

  it('the store is bounded: beyond the block limit new holes are dropped, not stored', () => {
    const h = Harness.established({ config: { rcvBufBytes: 1 << 20 }, syn: { windowScale: 7 } });
    for (let i = 0; i < MAX_OUT_OF_ORDER_BLOCKS + 10; i++) h.send({ ...SEND, seq: G + 2 + 2 * i, payload: 'x' });
    expect(h.ep.stats.ooDropped).toBe(10);
    expect(h.ep.outOfOrderBytes).toBe(MAX_OUT_OF_ORDER_BLOCKS);
    // Filling the first hole delivers every held byte up to the next gap.
    h.send({ ...SEND, payload: 'yy' });
    expect(h.receivedBytes).toBe(3);
  });

  it('out-of-order data beyond the window is not stored', () => {
    const h = Harness.established({ config: { rcvBufBytes: 100 } });
    h.send({ ...SEND, seq: G + 90, payload: pattern(50) });
    expect(h.ep.outOfOrderBytes).toBe(10);
    h.send({ ...SEND, seq: G + 150, payload: 'x' });
    expect(h.ep.outOfOrderBytes).toBe(10);
  });

  it('a FIN after a hole waits for the hole to fill', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: ACK | FIN, seq: G + 3, payload: 'def' });
    h.expectSent(RECV);
    expect(h.fins).toBe(0);
    h.expectState(TcpState.ESTABLISHED);
    h.send({ ...SEND, payload: 'abc' });
    expect(h.fins).toBe(1);
    h.expectState(TcpState.CLOSE_WAIT);
    expect(h.receivedText()).toBe('abcdef');
    h.expectSent({ ...RECV, ack: G + 7, window: WND - 6 });
  });

  it('a bare FIN after a hole also waits', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: ACK | FIN, seq: G + 3 });
    h.expectSent(RECV);
    h.send({ ...SEND, payload: 'abc' });
    expect(h.fins).toBe(1);
    h.expectSent({ ...RECV, ack: G + 4, window: WND - 3 });
  });
});

describe('ESTABLISHED: host → guest data', () => {
  it('sends up to the initial window of 10 MSS (RFC 6928), PSH on the last segment', () => {
    const h = Harness.established();
    h.ep.write(pattern(20000), h.now);
    const sent = h.takeSent();
    expect(sent.map((s) => s.payload.length)).toEqual(Array(10).fill(MSS));
    expect(sent.map((s) => s.flags)).toEqual(Array(10).fill(ACK));
    expect(h.ep.sendQueued).toBe(20000);
  });

  it('PSH marks the segment that empties the queue', () => {
    const h = Harness.established();
    h.ep.write(pattern(2000), h.now);
    expect(h.takeSent().map((s) => s.flags)).toEqual([ACK, ACK | PSH]);
  });

  it('with GSO one transmit carries the whole burst, gsoSize = MSS', () => {
    const h = Harness.established({ config: { maxSegmentPayload: 64240 } });
    h.ep.write(pattern(100_000), h.now);
    const sent = h.takeSent();
    expect(sent.map((s) => [s.payload.length, s.gsoSize])).toEqual([[14600, MSS]]);
  });

  it('GSO segments are whole multiples of the MSS up to maxSegmentPayload', () => {
    const h = Harness.established({ config: { maxSegmentPayload: 64240, rcvBufBytes: 1 << 20 }, syn: { windowScale: 7 } });
    h.ep.write(pattern(300_000), h.now);
    h.takeSent();
    h.send({ ...SEND, ack: L + 14600, window: 4096 });
    // Slow start: cwnd 14600 → 29200 → 58400 → 116800; 64240 = 44·MSS per transmit.
    expect(h.takeSent().map((s) => s.payload.length)).toEqual([29200]);
    h.send({ ...SEND, ack: L + 14600 + 29200, window: 4096 });
    expect(h.takeSent().map((s) => s.payload.length)).toEqual([58400]);
    h.send({ ...SEND, ack: L + 14600 + 29200 + 58400, window: 4096 });
    expect(h.takeSent().map((s) => s.payload.length)).toEqual([64240, 116800 - 64240]);
  });

  it('the payload is copied from the written chunks in order, across chunk boundaries', () => {
    const h = Harness.established();
    const data = pattern(5000, 0, 3);
    h.ep.write(data.slice(0, 100), h.now);
    h.ep.write(data.slice(100, 3100), h.now);
    h.ep.write(data.slice(3100), h.now);
    const sent = h.takeSent();
    const got = new Uint8Array(5000);
    let o = 0;
    for (const s of sent) {
      got.set(s.payload, o);
      o += s.payload.length;
    }
    expect(o).toBe(5000);
    expect(got).toEqual(data);
  });

  it('an ACK releases the buffer, grows cwnd by the bytes acked (slow start) and sends more', () => {
    const h = Harness.established();
    h.ep.write(pattern(50_000), h.now);
    h.takeSent();
    const cwnd = h.ep.congestionWindow;
    h.send({ ...SEND, ack: L + 2 * MSS });
    expect(h.ep.congestionWindow).toBe(cwnd + 2 * MSS);
    expect(h.ep.sendQueued).toBe(50_000 - 2 * MSS);
    expect(h.takeSent().length).toBe(4);
  });

  it('does not grow cwnd when the sender is not using it (RFC 7661)', () => {
    const h = Harness.established();
    h.ep.write(pattern(100), h.now);
    h.takeSent();
    const cwnd = h.ep.congestionWindow;
    h.send({ ...SEND, ack: L + 100 });
    expect(h.ep.congestionWindow).toBe(cwnd);
  });

  it('sendBufferSpace and onSendSpace: reported once a quarter of the buffer is free again', () => {
    const h = Harness.established({ config: { sndBufBytes: 40_000 } });
    h.ep.write(pattern(30_000), h.now);
    expect(h.ep.sendBufferSpace).toBe(10_000);
    h.ep.write(pattern(15_000), h.now);
    expect(h.ep.sendBufferSpace).toBe(-5_000);
    h.takeSent();
    h.send({ ...SEND, ack: L + 10_000 });
    expect(h.sendSpace).toBe(0); // 5 000 free: not yet a quarter
    h.send({ ...SEND, ack: L + 20_000 });
    expect(h.sendSpace).toBe(1);
    h.send({ ...SEND, ack: L + 25_000 });
    expect(h.sendSpace).toBe(1);
  });

  it('an ACK for data never sent gets an ACK and is dropped (RFC 9293, RFC 5961 §5.2)', () => {
    const h = Harness.established();
    h.ep.write(pattern(100), h.now);
    h.takeSent();
    h.send({ ...SEND, ack: L + 200, payload: 'zz' });
    h.expectSent({ ...RECV, seq: L + 100 });
    expect(h.receivedBytes).toBe(0);
    expect(h.ep.sendQueued).toBe(100);
  });

  it('an old ACK (below SND.UNA but within MAX.SND.WND) is ignored, its data accepted', () => {
    const h = Harness.established();
    h.ep.write(pattern(100), h.now);
    h.takeSent();
    h.send({ ...SEND, ack: L + 100 });
    h.send({ ...SEND, ack: L + 50, payload: 'ok' });
    expect(h.receivedText()).toBe('ok');
    h.expectSent({ ...RECV, seq: L + 100, ack: G + 2, window: WND - 2 });
  });

  it('RTT samples from timestamps update the RTO (RFC 7323 §4, RFC 6298 §2)', () => {
    // The handshake ACK gave the first sample, R = 0: SRTT 0, RTTVAR 0, RTO = rtoMin.
    const h = Harness.established({ options: true });
    expect(h.ep.rtoMs).toBe(200);
    h.ep.write(pattern(100), h.now);
    h.takeSent();
    h.now += 400;
    h.send({ ...SEND, ack: L + 100, ...h.tsFields() });
    // R = 400: RTTVAR = 3/4·0 + 1/4·400 = 100, SRTT = 7/8·0 + 1/8·400 = 50, RTO = 50 + 4·100.
    expect(h.ep.rtoMs).toBe(450);
    expect(h.ep.nextDeadline).toBe(T0 + 400 + h.config.keepaliveIdleMs);
  });

  it('write() after close() is ignored', () => {
    const h = Harness.established();
    h.ep.close(h.now);
    h.takeSent();
    h.ep.write(bytes('late'), h.now);
    h.expectNothingSent();
    expect(h.ep.sendQueued).toBe(0);
  });
});
