/**
 * Closing in every order (RFC 9293 §3.6): active, passive, simultaneous,
 * half-close both ways; TIME-WAIT; the FIN-WAIT-2 timeout; keepalive; abort.
 */
import { describe, expect, it } from 'vitest';
import { TcpState } from '../../src/tcp/contract.js';
import { ACK, FIN, GUEST_ISS, GUEST_SYN, Harness, LOCAL_ISS, PSH, RECV, RST, SEND, SYN, WND, bytes, pattern, toRepr, useLeakCheck } from './harness.js';

useLeakCheck();

const G = GUEST_ISS + 1;
const L = LOCAL_ISS + 1;

describe('active close (we close first)', () => {
  it('ESTABLISHED → FIN-WAIT-1 → FIN-WAIT-2 → TIME-WAIT → CLOSED', () => {
    const h = Harness.established();
    h.ep.close(h.now);
    h.expectSent({ ...RECV, flags: ACK | FIN });
    h.expectState(TcpState.FIN_WAIT_1);
    h.send({ ...SEND, ack: L + 1 });
    h.expectNothingSent();
    h.expectState(TcpState.FIN_WAIT_2);
    h.send({ ...SEND, flags: ACK | FIN, ack: L + 1 });
    h.expectSent({ ...RECV, seq: L + 1, ack: G + 1 });
    h.expectState(TcpState.TIME_WAIT);
    expect(h.fins).toBe(1);
    h.advance(h.config.timeWaitMs - 1);
    h.expectState(TcpState.TIME_WAIT);
    h.advance(1);
    h.expectState(TcpState.CLOSED);
    expect(h.closed).toBe(1);
    expect(h.resets).toEqual([]);
  });

  it('the FIN rides on the last data segment when both are queued', () => {
    const h = Harness.established();
    h.send({ ...SEND, window: 0 });
    h.ep.write(bytes('last words'), h.now);
    h.ep.close(h.now);
    h.expectNothingSent();
    h.send({ ...SEND, window: 1000 });
    h.expectSent({ ...RECV, flags: ACK | PSH | FIN, payload: 'last words' });
  });

  it('with the data already in flight the FIN goes alone, after it', () => {
    const h = Harness.established();
    h.ep.write(bytes('last words'), h.now);
    h.takeSent();
    h.ep.close(h.now);
    h.expectSent({ ...RECV, seq: L + 10, flags: ACK | FIN });
  });

  it('the FIN waits for data that cwnd holds back', () => {
    const h = Harness.established();
    h.ep.write(pattern(20 * 1460), h.now);
    h.ep.close(h.now);
    const sent = h.takeSent();
    expect(sent.length).toBe(10);
    expect(sent.some((s) => (s.flags & FIN) !== 0)).toBe(false);
  });

  it('FIN-WAIT-1: a FIN that also ACKs ours goes straight to TIME-WAIT', () => {
    const h = Harness.finWait1();
    h.send({ ...SEND, flags: ACK | FIN, ack: L + 1 });
    h.expectState(TcpState.TIME_WAIT);
    h.expectSent({ ...RECV, seq: L + 1, ack: G + 1 });
  });

  it('half-close: the guest keeps sending in FIN-WAIT-1 and FIN-WAIT-2', () => {
    const h = Harness.finWait1();
    h.send({ ...SEND, payload: 'still ' });
    h.expectSent({ ...RECV, seq: L + 1, ack: G + 6, window: WND - 6 });
    h.send({ ...SEND, seq: G + 6, ack: L + 1, payload: 'talking' });
    h.expectState(TcpState.FIN_WAIT_2);
    h.expectSent({ ...RECV, seq: L + 1, ack: G + 13, window: WND - 13 });
    expect(h.receivedText()).toBe('still talking');
  });

  it('close() twice is a no-op', () => {
    const h = Harness.finWait1();
    h.ep.close(h.now);
    h.expectNothingSent();
  });
});

describe('passive close (the guest closes first)', () => {
  it('ESTABLISHED → CLOSE-WAIT → LAST-ACK → CLOSED', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: ACK | FIN });
    h.expectSent({ ...RECV, ack: G + 1 });
    h.expectState(TcpState.CLOSE_WAIT);
    expect(h.fins).toBe(1);
    h.ep.close(h.now);
    h.expectSent({ ...RECV, flags: ACK | FIN, ack: G + 1 });
    h.expectState(TcpState.LAST_ACK);
    h.send({ ...SEND, seq: G + 1, ack: L + 1 });
    h.expectNothingSent();
    h.expectState(TcpState.CLOSED);
    expect(h.closed).toBe(1);
  });

  it('half-close: we keep sending in CLOSE-WAIT', () => {
    const h = Harness.closeWait();
    h.ep.write(bytes('response'), h.now);
    h.expectSent({ ...RECV, flags: ACK | PSH, ack: G + 1, payload: 'response' });
    h.send({ ...SEND, seq: G + 1, ack: L + 8 });
    expect(h.ep.sendQueued).toBe(0);
  });

  it('FIN with data: the data is delivered before onFin', () => {
    const h = Harness.established();
    const order: string[] = [];
    h.onDataHook = () => order.push('data');
    h.send({ ...SEND, flags: ACK | FIN | PSH, payload: 'bye' });
    order.push(h.fins === 1 ? 'fin' : 'no fin');
    expect(order).toEqual(['data', 'fin']);
    h.expectSent({ ...RECV, ack: G + 4, window: WND - 3 });
  });

  it('a retransmitted FIN in CLOSE-WAIT is ACKed again', () => {
    const h = Harness.closeWait();
    h.send({ ...SEND, flags: ACK | FIN });
    h.expectSent({ ...RECV, ack: G + 1 });
    h.expectState(TcpState.CLOSE_WAIT);
    expect(h.fins).toBe(0);
  });

  it('LAST-ACK retransmits the FIN until it is acknowledged', () => {
    const h = Harness.lastAck();
    h.advance(200);
    h.expectSent({ ...RECV, flags: ACK | FIN, ack: G + 1 });
    h.send({ ...SEND, seq: G + 1, ack: L + 1 });
    h.expectState(TcpState.CLOSED);
  });
});

describe('simultaneous close', () => {
  it('FIN-WAIT-1 + FIN → CLOSING; the ACK of our FIN → TIME-WAIT', () => {
    const h = Harness.finWait1();
    h.send({ ...SEND, flags: ACK | FIN });
    h.expectState(TcpState.CLOSING);
    h.expectSent({ ...RECV, seq: L + 1, ack: G + 1 });
    h.send({ ...SEND, seq: G + 1, ack: L + 1 });
    h.expectState(TcpState.TIME_WAIT);
    h.expectNothingSent();
  });

  it('CLOSING retransmits our FIN', () => {
    const h = Harness.closing();
    h.advance(200);
    h.expectSent({ ...RECV, flags: ACK | FIN, ack: G + 1 });
  });
});

describe('TIME-WAIT', () => {
  it('a retransmitted FIN is ACKed and restarts the 2·MSL timer (RFC 9293 §3.10.7.4)', () => {
    const h = Harness.timeWait();
    h.advance(h.config.timeWaitMs - 10);
    h.send({ ...SEND, flags: ACK | FIN, ack: L + 1 });
    h.expectSent({ ...RECV, seq: L + 1, ack: G + 1 });
    h.advance(h.config.timeWaitMs - 1);
    h.expectState(TcpState.TIME_WAIT);
    h.advance(1);
    h.expectState(TcpState.CLOSED);
  });

  it('a SYN gets a challenge ACK (RFC 5961 §4); timeWaitAcceptsSyn tells the relay if Linux would reuse', () => {
    const h = Harness.timeWait();
    const newer = { ...GUEST_SYN, seq: GUEST_ISS + 100_000 };
    expect(h.ep.timeWaitAcceptsSyn(toRepr(newer))).toBe(true);
    expect(h.ep.timeWaitAcceptsSyn(toRepr({ ...GUEST_SYN, seq: GUEST_ISS - 5 }))).toBe(false);
    expect(h.ep.timeWaitAcceptsSyn(toRepr({ ...newer, flags: SYN | ACK }))).toBe(false);
    h.send(newer);
    h.expectSent({ ...RECV, seq: L + 1, ack: G + 1 });
    h.expectState(TcpState.TIME_WAIT);
  });

  it('with timestamps a newer TSval makes the SYN acceptable, an older one not (PAWS)', () => {
    const h = Harness.timeWait({ options: true });
    const ts = h.guestTsVal;
    expect(h.ep.timeWaitAcceptsSyn(toRepr({ ...GUEST_SYN, seq: GUEST_ISS - 5, ts: [ts + 1, 0] }))).toBe(true);
    expect(h.ep.timeWaitAcceptsSyn(toRepr({ ...GUEST_SYN, seq: GUEST_ISS + 100_000, ts: [ts - 1, 0] }))).toBe(false);
  });

  it('an exact RST closes it without onReset (RFC 9293: CLOSING, LAST-ACK, TIME-WAIT)', () => {
    const h = Harness.timeWait();
    h.send({ ...SEND, flags: RST, seq: G + 1, ack: 0 });
    h.expectState(TcpState.CLOSED);
    expect(h.resets).toEqual([]);
    expect(h.closed).toBe(1);
  });

  it('abort() in TIME-WAIT sends nothing', () => {
    const h = Harness.timeWait();
    h.ep.abort(h.now);
    h.expectNothingSent();
    h.expectState(TcpState.CLOSED);
  });
});

describe('FIN-WAIT-2 timeout', () => {
  it('a silent guest is dropped after finWait2TimeoutMs: RST, onReset("timeout")', () => {
    const h = Harness.finWait2();
    h.advance(h.config.finWait2TimeoutMs - 1);
    h.expectState(TcpState.FIN_WAIT_2);
    h.advance(1);
    h.expectSent({ flags: RST | ACK, seq: L + 1, ack: G, window: 0 });
    expect(h.resets).toEqual(['timeout']);
    h.expectState(TcpState.CLOSED);
  });

  it('a half-closed guest that keeps sending is not dropped', () => {
    const h = Harness.finWait2();
    for (let i = 0; i < 5; i++) {
      h.advance(h.config.finWait2TimeoutMs - 1000);
      h.send({ ...SEND, seq: G + i, ack: L + 1, payload: 'k' });
    }
    h.expectState(TcpState.FIN_WAIT_2);
    expect(h.receivedBytes).toBe(5);
  });
});

describe('keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6)', () => {
  it('probes an idle guest with SEQ = SND.NXT − 1 and no data', () => {
    const h = Harness.established();
    h.advance(h.config.keepaliveIdleMs - 1);
    h.expectNothingSent();
    h.advance(1);
    h.expectSent({ ...RECV, seq: L - 1 });
    expect(h.ep.stats.keepaliveProbes).toBe(1);
  });

  it('an answer resets the idle clock', () => {
    const h = Harness.established();
    h.advance(h.config.keepaliveIdleMs);
    h.takeSent();
    h.send(SEND);
    h.advance(h.config.keepaliveIdleMs - 1);
    h.expectNothingSent();
    h.advance(1);
    h.expectSent({ ...RECV, seq: L - 1 });
  });

  it('a vanished guest is aborted after keepaliveProbes unanswered probes', () => {
    const h = Harness.established({ config: { keepaliveIdleMs: 1000, keepaliveIntervalMs: 100, keepaliveProbes: 3 } });
    h.advance(1000 + 3 * 100);
    const sent = h.takeSent();
    expect(sent.map((s) => s.flags)).toEqual([ACK, ACK, ACK, RST | ACK]);
    expect(h.resets).toEqual(['timeout']);
    h.expectState(TcpState.CLOSED);
  });

  it('waits while retransmissions are running (they have their own limit)', () => {
    const h = Harness.established({ config: { keepaliveIdleMs: 1000, keepaliveIntervalMs: 100, keepaliveProbes: 1, maxRetransmits: 100, rtoMaxMs: 400 } });
    h.ep.write(pattern(10), h.now);
    h.takeSent();
    h.advance(3000);
    expect(h.ep.stats.keepaliveProbes).toBe(0);
    h.expectState(TcpState.ESTABLISHED);
  });

  it('keepaliveIdleMs = 0 disables it', () => {
    const h = Harness.established({ config: { keepaliveIdleMs: 0 } });
    expect(h.ep.nextDeadline).toBe(Infinity);
  });
});

describe('abort() (RFC 9293 §3.10.5)', () => {
  it('ESTABLISHED: RST|ACK with SEQ = the highest sent, CLOSED, onClosed without onReset', () => {
    const h = Harness.established();
    h.ep.write(bytes('abc'), h.now);
    h.takeSent();
    h.ep.abort(h.now);
    h.expectSent({ flags: RST | ACK, seq: L + 3, ack: G, window: 0 });
    h.expectState(TcpState.CLOSED);
    expect(h.resets).toEqual([]);
    expect(h.closed).toBe(1);
  });

  for (const [name, make, rst] of [
    ['SYN-RECEIVED', Harness.synReceived, true],
    ['FIN-WAIT-1', Harness.finWait1, true],
    ['FIN-WAIT-2', Harness.finWait2, true],
    ['CLOSE-WAIT', Harness.closeWait, true],
    ['CLOSING', Harness.closing, false],
    ['LAST-ACK', Harness.lastAck, false],
  ] as const) {
    it(`${name}: ${rst ? 'RST' : 'no RST'}`, () => {
      const h = make();
      h.ep.abort(h.now);
      const sent = h.takeSent();
      expect(sent.map((s) => s.flags)).toEqual(rst ? [RST | ACK] : []);
      h.expectState(TcpState.CLOSED);
    });
  }

  it('abort() twice: onClosed once', () => {
    const h = Harness.established();
    h.ep.abort(h.now);
    h.ep.abort(h.now);
    expect(h.closed).toBe(1);
  });

  it('after CLOSED nothing is sent and input is ignored', () => {
    const h = Harness.established();
    h.ep.abort(h.now);
    h.takeSent();
    h.send({ ...SEND, payload: 'x' });
    h.ep.write(bytes('y'), h.now);
    h.ep.close(h.now);
    h.ep.setReceiveBacklog(0, h.now);
    h.ep.onTimer(h.now + 1e9);
    h.expectNothingSent();
    expect(h.receivedBytes).toBe(0);
  });
});
