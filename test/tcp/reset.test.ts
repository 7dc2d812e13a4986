/**
 * Resets and blind-attack defences: RST processing (RFC 9293 §3.10.7.4 with
 * RFC 5961 §3), SYN in synchronized states (RFC 5961 §4), ACK acceptability
 * (RFC 5961 §5), the challenge-ACK rate limit (§7), out-of-window replies,
 * and PAWS (RFC 7323 §5).
 */
import { describe, expect, it } from 'vitest';
import { TcpState } from '../../src/tcp/contract.js';
import { CHALLENGE_ACKS_PER_SECOND } from '../../src/tcp/endpoint.js';
import { ACK, FIN, GUEST_ISS, GUEST_SYN, Harness, LOCAL_ISS, RECV, RST, SEND, SYN, T0, WND, WND_SCALED, pattern, useLeakCheck } from './harness.js';

useLeakCheck();

const G = GUEST_ISS + 1;
const L = LOCAL_ISS + 1;

describe('RST (RFC 9293 §3.10.7.4 second check, RFC 5961 §3.2)', () => {
  it('an RST at exactly RCV.NXT resets: CLOSED, onReset("rst"), onClosed, nothing sent', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: RST, ack: 0 });
    h.expectNothingSent();
    h.expectState(TcpState.CLOSED);
    expect(h.resets).toEqual(['rst']);
    expect(h.closed).toBe(1);
  });

  it('RST|ACK at RCV.NXT resets too', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: RST | ACK });
    h.expectState(TcpState.CLOSED);
  });

  it('an RST inside the window but not at RCV.NXT gets a challenge ACK', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: RST, seq: G + 1000, ack: 0 });
    h.expectSent(RECV);
    h.expectState(TcpState.ESTABLISHED);
    expect(h.ep.stats.challengeAcks).toBe(1);
  });

  it('an RST outside the window is dropped silently', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: RST, seq: G + WND + 10, ack: 0 });
    h.send({ ...SEND, flags: RST, seq: G - 1, ack: 0 });
    h.expectNothingSent();
    h.expectState(TcpState.ESTABLISHED);
  });

  it('with a zero window an RST at RCV.NXT still resets', () => {
    const h = Harness.established({ autoConsume: false });
    h.send({ ...SEND, payload: pattern(WND) });
    h.takeSent();
    h.send({ ...SEND, flags: RST, seq: G + WND, ack: 0 });
    h.expectState(TcpState.CLOSED);
  });

  for (const [name, make, signal] of [
    ['FIN-WAIT-1', Harness.finWait1, true],
    ['FIN-WAIT-2', Harness.finWait2, true],
    ['CLOSE-WAIT', Harness.closeWait, true],
    ['CLOSING', Harness.closing, false],
    ['LAST-ACK', Harness.lastAck, false],
  ] as const) {
    it(`${name}: an exact RST closes ${signal ? 'with' : 'without'} onReset`, () => {
      const h = make();
      const closedFin = name === 'CLOSE-WAIT' || name === 'CLOSING' || name === 'LAST-ACK';
      h.send({ ...SEND, flags: RST, seq: closedFin ? G + 1 : G, ack: 0 });
      h.expectState(TcpState.CLOSED);
      expect(h.resets).toEqual(signal ? ['rst'] : []);
    });
  }

  it('an abort() from inside onReset sends nothing (the state is CLOSED already)', () => {
    const h = Harness.established();
    h.onResetHook = (hh) => hh.ep.abort(hh.now);
    h.send({ ...SEND, flags: RST, ack: 0 });
    h.expectNothingSent();
    expect(h.closed).toBe(1);
  });

  it('a reset endpoint sends nothing and ignores later segments', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: RST, ack: 0 });
    h.send({ ...SEND, payload: 'x' });
    h.expectNothingSent();
    expect(h.receivedBytes).toBe(0);
  });
});

describe('SYN in a synchronized state (RFC 5961 §4)', () => {
  it('an in-window SYN gets a challenge ACK, the connection stays', () => {
    const h = Harness.established();
    h.send({ ...GUEST_SYN, seq: G + 10 });
    h.expectSent(RECV);
    h.expectState(TcpState.ESTABLISHED);
  });

  it('an out-of-window SYN gets a challenge ACK too, irrespective of its sequence number', () => {
    const h = Harness.established();
    h.send({ ...GUEST_SYN, seq: GUEST_ISS - 1_000_000 });
    h.expectSent(RECV);
  });

  it('SYN|ACK in ESTABLISHED: challenge ACK', () => {
    const h = Harness.established();
    h.send({ ...SEND, flags: SYN | ACK });
    h.expectSent(RECV);
    h.expectState(TcpState.ESTABLISHED);
  });
});

describe('challenge ACK rate limit (RFC 5961 §7)', () => {
  it(`at most ${CHALLENGE_ACKS_PER_SECOND} per second`, () => {
    const h = Harness.established();
    for (let i = 0; i < 25; i++) h.send({ ...SEND, flags: RST, seq: G + 100 + i, ack: 0 });
    expect(h.takeSent().length).toBe(CHALLENGE_ACKS_PER_SECOND);
    expect(h.ep.stats.acksRateLimited).toBe(25 - CHALLENGE_ACKS_PER_SECOND);
    h.advance(1000);
    h.send({ ...SEND, flags: RST, seq: G + 100, ack: 0 });
    h.expectSent(RECV);
  });
});

describe('ACK acceptability (RFC 5961 §5.2)', () => {
  it('an ACK older than SND.UNA − MAX.SND.WND gets a challenge ACK, and its data is dropped', () => {
    const h = Harness.established();
    // MAX.SND.WND: the largest window the guest offered, 65535 on its handshake ACK.
    h.send({ ...SEND, ack: L - 65536, payload: 'evil' });
    h.expectSent(RECV);
    expect(h.receivedBytes).toBe(0);
    expect(h.ep.stats.challengeAcks).toBe(1);
  });

  it('an ACK just within MAX.SND.WND below SND.UNA is fine', () => {
    const h = Harness.established();
    h.send({ ...SEND, ack: L - 65535, payload: 'ok' });
    expect(h.receivedText()).toBe('ok');
  });
});

describe('out-of-window segments (RFC 9293 §3.10.7.4 first check)', () => {
  it('data beyond the window is answered with an ACK (never rate-limited) and dropped', () => {
    const h = Harness.established();
    for (let i = 0; i < 3; i++) {
      h.send({ ...SEND, seq: G + WND + 100, payload: 'far' });
      h.expectSent(RECV);
    }
    expect(h.receivedBytes).toBe(0);
    expect(h.ep.stats.outOfWindow).toBe(3);
  });

  it('pure ACKs out of the window: at most one reply per 500 ms (Linux tcp_invalid_ratelimit)', () => {
    const h = Harness.established();
    h.send({ ...SEND, seq: G + WND + 100 });
    h.expectSent(RECV);
    h.send({ ...SEND, seq: G + WND + 100 });
    h.expectNothingSent();
    h.advance(500);
    h.send({ ...SEND, seq: G + WND + 100 });
    h.expectSent(RECV);
  });

  it("the guest's keepalive (SEQ = RCV.NXT − 1, no data) is answered", () => {
    const h = Harness.established();
    h.send({ ...SEND, seq: G - 1 });
    h.expectSent(RECV);
  });
});

describe('PAWS (RFC 7323 §5)', () => {
  it('a segment with an older TSval is dropped and ACKed', () => {
    const h = Harness.established({ options: true });
    h.now += 10;
    h.send({ ...SEND, payload: 'new', ...h.tsFields() });
    const tsRecent = h.guestTsVal;
    h.takeSent();
    h.send({ ...SEND, seq: G + 3, payload: 'old', ts: [tsRecent - 5, 0] });
    h.expectSent({ ...RECV, ack: G + 3, window: WND_SCALED, ts: [T0 + 10, tsRecent] });
    expect(h.receivedText()).toBe('new');
    expect(h.ep.stats.pawsRejected).toBe(1);
  });

  it('an RST is not subject to PAWS', () => {
    const h = Harness.established({ options: true });
    h.send({ ...SEND, flags: RST, ack: 0, ts: [1, 0] });
    h.expectState(TcpState.CLOSED);
  });

  it('TSval wraps: 2^32 − 2 → 5 is newer, not older', () => {
    const h = Harness.synReceived({ options: true, syn: { ts: [0xfffffff0, 0] } });
    h.send({ ...SEND, ts: [0xfffffffe, T0] });
    h.send({ ...SEND, payload: 'a', ts: [5, T0] });
    expect(h.receivedText()).toBe('a');
    expect(h.ep.stats.pawsRejected).toBe(0);
    expect(h.takeSent().pop()!.ts).toEqual([T0, 5]);
  });

  it('TS.Recent follows in-sequence segments only: an out-of-order TSval is not echoed (RFC 7323 §4.3)', () => {
    const h = Harness.established({ options: true });
    const before = h.guestTsVal;
    h.send({ ...SEND, seq: G + 10, payload: 'later', ts: [before + 100, T0] });
    expect(h.takeSent()[0].ts).toEqual([T0, before]);
  });

  it('after 24 days of silence TS.Recent is stale and an old TSval passes (RFC 7323 §5.5)', () => {
    const h = Harness.established({ options: true, config: { keepaliveIdleMs: 0 } });
    h.now += 25 * 24 * 3600 * 1000;
    h.send({ ...SEND, payload: 'x', ts: [1, 0] });
    expect(h.receivedText()).toBe('x');
  });

  it('segments without timestamps are accepted once negotiated (as Linux does, not RFC 7323 §3.2 SHOULD drop)', () => {
    const h = Harness.established({ options: true });
    h.send({ ...SEND, payload: 'plain' });
    expect(h.receivedText()).toBe('plain');
  });

  it('FIN with an old TSval is rejected too', () => {
    const h = Harness.established({ options: true });
    h.send({ ...SEND, flags: ACK | FIN, ts: [h.guestTsVal - 1, 0] });
    expect(h.fins).toBe(0);
    h.expectState(TcpState.ESTABLISHED);
  });
});
