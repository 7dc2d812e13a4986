/**
 * Opening: passive open from the guest's SYN (the relay's forwarder path),
 * active open (inbound port forwards), option negotiation, SYN/SYN-ACK
 * retransmission.
 */
import { describe, expect, it } from 'vitest';
import { TcpState } from '../../src/tcp/contract.js';
import { ACK, FIN, GUEST_ISS, GUEST_SYN, GUEST_TS0, Harness, LOCAL_ISS, MSS, PSH, RECV, RST, SEND, SYN, T0, WND, pattern, toRepr, useLeakCheck } from './harness.js';

useLeakCheck();

const SYN_ACK = { flags: SYN | ACK, seq: LOCAL_ISS, ack: GUEST_ISS + 1, window: WND, mss: MSS };

describe('LISTEN → SYN-RECEIVED (acceptSyn)', () => {
  it('answers a SYN with only MSS with a SYN-ACK with only MSS (RFC 7323 §2.2, §3.2; RFC 2018 §2)', () => {
    const h = new Harness();
    h.ep.acceptSyn(toRepr(GUEST_SYN), h.now);
    h.expectSent(SYN_ACK);
    h.expectState(TcpState.SYN_RECEIVED);
    expect(h.ep.nextDeadline).toBe(T0 + 1000);
  });

  it('echoes window scale, SACK-permitted and timestamps when the guest offers them', () => {
    const h = new Harness({ options: true });
    h.ep.acceptSyn(toRepr(Harness.guestSyn({ options: true })), h.now);
    h.expectSent({ ...SYN_ACK, windowScale: 7, sackPermitted: true, ts: [T0, GUEST_TS0] });
  });

  it('a guest without window scaling gets none back, but timestamps still work', () => {
    const h = new Harness({ options: true });
    h.ep.acceptSyn(toRepr({ ...GUEST_SYN, ts: [GUEST_TS0, 0] }), h.now);
    h.expectSent({ ...SYN_ACK, ts: [T0, GUEST_TS0] });
  });

  it('a guest without timestamps gets none back', () => {
    const h = new Harness();
    h.ep.acceptSyn(toRepr({ ...GUEST_SYN, windowScale: 7, sackPermitted: true }), h.now);
    h.expectSent({ ...SYN_ACK, windowScale: 7, sackPermitted: true });
  });

  it('offers nothing the config disables, even if the guest offers it', () => {
    const h = new Harness({ config: { timestamps: false, sack: false, windowScale: -1 } });
    h.ep.acceptSyn(toRepr(Harness.guestSyn({ options: true })), h.now);
    h.expectSent(SYN_ACK);
  });

  it('the SYN-ACK window is never scaled and at most 65535 (RFC 7323 §2.2)', () => {
    const h = new Harness({ config: { rcvBufBytes: 4 << 20 } });
    h.ep.acceptSyn(toRepr(Harness.guestSyn({ options: true })), h.now);
    expect(h.takeSent()[0].window).toBe(65535);
  });

  it('SYN data is ignored: only the SYN is acknowledged (no TFO)', () => {
    const h = new Harness();
    h.ep.acceptSyn({ ...toRepr(GUEST_SYN), payloadLength: 10 }, h.now);
    h.expectSent(SYN_ACK);
  });

  it('throws when opened twice (API misuse)', () => {
    const h = Harness.synReceived();
    expect(() => h.ep.acceptSyn(toRepr(GUEST_SYN), h.now)).toThrow(/opened already/);
    expect(() => h.ep.connect(h.now)).toThrow(/opened already/);
  });
});

describe('SYN-RECEIVED', () => {
  it('an ACK of our SYN moves to ESTABLISHED and reports it once, sending nothing', () => {
    const h = Harness.synReceived();
    h.send(SEND);
    h.expectState(TcpState.ESTABLISHED);
    h.expectNothingSent();
    expect(h.established).toBe(1);
    expect(h.ep.nextDeadline).toBe(T0 + h.config.keepaliveIdleMs);
  });

  it('data on the handshake ACK is delivered and acknowledged', () => {
    const h = Harness.synReceived();
    h.send({ ...SEND, flags: ACK | PSH, payload: 'GET / HTTP/1.0\r\n\r\n' });
    expect(h.receivedText()).toBe('GET / HTTP/1.0\r\n\r\n');
    h.expectSent({ ...RECV, ack: GUEST_ISS + 1 + 18, window: WND - 18 });
  });

  it('an ACK below ISS+1 elicits <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.4)', () => {
    const h = Harness.synReceived();
    h.send({ ...SEND, ack: LOCAL_ISS });
    h.expectSent({ flags: RST, seq: LOCAL_ISS, ack: 0, window: 0 });
    h.expectState(TcpState.SYN_RECEIVED);
  });

  it('an ACK above SND.NXT elicits RST and the endpoint stays in SYN-RECEIVED', () => {
    const h = Harness.synReceived();
    h.send({ ...SEND, ack: LOCAL_ISS + 5 });
    h.expectSent({ flags: RST, seq: LOCAL_ISS + 5, ack: 0, window: 0 });
    h.expectState(TcpState.SYN_RECEIVED);
    h.send(SEND);
    h.expectState(TcpState.ESTABLISHED);
  });

  it('a segment without ACK is dropped', () => {
    const h = Harness.synReceived();
    h.send({ ...SEND, flags: PSH, payload: 'x' });
    h.expectNothingSent();
    h.expectState(TcpState.SYN_RECEIVED);
    expect(h.receivedBytes).toBe(0);
  });

  it('a retransmitted SYN gets the SYN-ACK again (Linux tcp_check_req)', () => {
    const h = Harness.synReceived();
    h.send(GUEST_SYN);
    h.expectSent(SYN_ACK);
    expect(h.ep.stats.retransmits).toBe(1);
  });

  it('a SYN with another ISN gets a challenge ACK (RFC 5961 §4 instead of returning to LISTEN)', () => {
    const h = Harness.synReceived();
    h.send({ ...GUEST_SYN, seq: GUEST_ISS + 100 });
    h.expectSent(RECV);
    h.expectState(TcpState.SYN_RECEIVED);
  });

  it('an exact RST closes the embryonic connection with onReset("rst")', () => {
    const h = Harness.synReceived();
    h.send({ ...SEND, flags: RST, ack: 0 });
    h.expectNothingSent();
    h.expectState(TcpState.CLOSED);
    expect(h.resets).toEqual(['rst']);
    expect(h.closed).toBe(1);
  });

  it('retransmits the SYN-ACK with exponential backoff (RFC 6298 §5.5)', () => {
    const h = Harness.synReceived();
    h.advance(999);
    h.expectNothingSent();
    h.advance(1);
    h.expectSent(SYN_ACK);
    h.advance(1999);
    h.expectNothingSent();
    h.advance(1);
    h.expectSent(SYN_ACK);
    expect(h.ep.stats.retransmits).toBe(2);
  });

  it('gives up after maxRetransmits SYN-ACKs: RST, onReset("timeout"), CLOSED', () => {
    const h = Harness.synReceived({ config: { maxRetransmits: 3 } });
    h.advance(1000 + 2000 + 4000);
    expect(h.takeSent().length).toBe(3);
    h.advance(8000);
    h.expectSent({ flags: RST | ACK, seq: LOCAL_ISS + 1, ack: GUEST_ISS + 1, window: 0 });
    expect(h.resets).toEqual(['timeout']);
    h.expectState(TcpState.CLOSED);
  });

  it('host data written before the guest ACKs is sent once ESTABLISHED, with the ACK', () => {
    const h = Harness.synReceived();
    h.ep.write(new TextEncoder().encode('220 ready\r\n'), h.now);
    h.expectNothingSent();
    h.send(SEND);
    h.expectSent({ ...RECV, flags: ACK | PSH, payload: '220 ready\r\n' });
  });

  it('close() before the handshake completes sends FIN right after it (FIN-WAIT-1)', () => {
    const h = Harness.synReceived();
    h.ep.write(new TextEncoder().encode('bye'), h.now);
    h.ep.close(h.now);
    h.expectNothingSent();
    h.send(SEND);
    h.expectState(TcpState.FIN_WAIT_1);
    h.expectSent({ ...RECV, flags: ACK | PSH | FIN, payload: 'bye' });
  });
});

describe('option negotiation', () => {
  it('MSS absent: we send at most 536 bytes per segment (RFC 9293 §3.7.1)', () => {
    const h = Harness.established({ syn: { mss: undefined } });
    h.ep.write(pattern(2000), h.now);
    expect(h.takeSent().map((s) => s.payload.length)).toEqual([536, 536, 536, 392]);
  });

  it('a guest MSS above ours is clamped to ours', () => {
    const h = Harness.established({ syn: { mss: 9000 } });
    h.ep.write(pattern(3000), h.now);
    expect(h.takeSent().map((s) => s.payload.length)).toEqual([1460, 1460, 80]);
  });

  it('a tiny guest MSS is raised to 48 (Linux tcp_min_snd_mss)', () => {
    const h = Harness.established({ syn: { mss: 8 } });
    h.ep.write(pattern(100), h.now);
    expect(h.takeSent().map((s) => s.payload.length)).toEqual([48, 48, 4]);
  });

  it('with timestamps the payload per segment is MSS − 12 (RFC 6691), also as gsoSize', () => {
    const h = Harness.established({ options: true, config: { maxSegmentPayload: 64240 } });
    h.ep.write(pattern(10000), h.now);
    const sent = h.takeSent();
    expect(sent.map((s) => s.payload.length)).toEqual([10000]);
    expect(sent[0].gsoSize).toBe(1448);
  });

  it("the guest's window is scaled by its shift after the handshake, never in the SYN (RFC 7323 §2.2)", () => {
    // SYN window 64240 unscaled; handshake ACK window 2 << 7 = 256 bytes.
    const h = Harness.synReceived({ options: true });
    h.send({ ...SEND, window: 2, ...h.tsFields() });
    h.ep.write(pattern(1000), h.now);
    expect(h.takeSent().map((s) => s.payload.length)).toEqual([256]);
  });

  it('a window-scale shift above 14 is treated as 14 (RFC 7323 §2.3)', () => {
    const h = Harness.synReceived({ syn: { windowScale: 20 } });
    h.send({ ...SEND, window: 1 });
    h.ep.write(pattern(20000), h.now);
    // 1 << 14 = 16384 bytes of window (IW 10·1460 = 14600 limits first).
    expect(h.takeSent().reduce((n, s) => n + s.payload.length, 0)).toBe(14600);
  });
});

describe('SYN-SENT (connect)', () => {
  const GUEST_SYN_ACK = { flags: SYN | ACK, seq: GUEST_ISS, ack: LOCAL_ISS + 1, window: 64240, mss: MSS };

  it('sends a SYN offering every option', () => {
    const h = new Harness();
    h.ep.connect(h.now);
    h.expectSent({ flags: SYN, seq: LOCAL_ISS, ack: 0, window: WND, mss: MSS, windowScale: 7, sackPermitted: true, ts: [T0, 0] });
    h.expectState(TcpState.SYN_SENT);
  });

  it('a SYN-ACK completes the handshake: ACK, ESTABLISHED, onEstablished', () => {
    const h = Harness.synSent();
    h.send(GUEST_SYN_ACK);
    h.expectSent(RECV);
    h.expectState(TcpState.ESTABLISHED);
    expect(h.established).toBe(1);
  });

  it('options come from the SYN-ACK (here: timestamps and SACK, no scaling)', () => {
    const h = Harness.synSent();
    h.send({ ...GUEST_SYN_ACK, sackPermitted: true, ts: [500, T0] });
    h.expectSent({ ...RECV, ts: [T0, 500] });
  });

  it('queued data goes out with the handshake ACK', () => {
    const h = Harness.synSent();
    h.ep.write(new TextEncoder().encode('hi'), h.now);
    h.send(GUEST_SYN_ACK);
    h.expectSent({ ...RECV, flags: ACK | PSH, payload: 'hi' });
  });

  it('a SYN-ACK acknowledging something else elicits <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.3)', () => {
    const h = Harness.synSent();
    h.send({ ...GUEST_SYN_ACK, ack: LOCAL_ISS + 7 });
    h.expectSent({ flags: RST, seq: LOCAL_ISS + 7, ack: 0, window: 0 });
    h.expectState(TcpState.SYN_SENT);
  });

  it('RST with an acceptable ACK: connection refused, CLOSED, onReset("rst")', () => {
    const h = Harness.synSent();
    h.send({ flags: RST | ACK, seq: 0, ack: LOCAL_ISS + 1, window: 0 });
    h.expectNothingSent();
    h.expectState(TcpState.CLOSED);
    expect(h.resets).toEqual(['rst']);
  });

  it('RST without ACK is ignored (RFC 9293 §3.10.7.3, RFC 5961 §3)', () => {
    const h = Harness.synSent();
    h.send({ flags: RST, seq: GUEST_ISS, ack: 0, window: 0 });
    h.expectNothingSent();
    h.expectState(TcpState.SYN_SENT);
  });

  it('RST with an unacceptable ACK is ignored', () => {
    const h = Harness.synSent();
    h.send({ flags: RST | ACK, seq: 0, ack: LOCAL_ISS + 9, window: 0 });
    h.expectNothingSent();
    h.expectState(TcpState.SYN_SENT);
  });

  it('a segment with neither SYN nor RST is dropped', () => {
    const h = Harness.synSent();
    h.send({ flags: ACK, seq: GUEST_ISS, ack: LOCAL_ISS + 1, window: 100 });
    h.expectNothingSent();
    h.expectState(TcpState.SYN_SENT);
  });

  it('simultaneous open: SYN → SYN-RECEIVED with SYN-ACK, then ACK → ESTABLISHED', () => {
    const h = Harness.synSent();
    h.send(GUEST_SYN);
    h.expectState(TcpState.SYN_RECEIVED);
    h.expectSent(SYN_ACK);
    h.send(SEND);
    h.expectState(TcpState.ESTABLISHED);
    expect(h.established).toBe(1);
  });

  it('retransmits the SYN, then gives up without RST (nothing is synchronized)', () => {
    const h = Harness.synSent({ config: { maxRetransmits: 2 } });
    h.advance(1000);
    expect(h.takeSent().map((s) => s.flags)).toEqual([SYN]);
    h.advance(2000);
    expect(h.takeSent().map((s) => s.flags)).toEqual([SYN]);
    h.advance(4000);
    h.expectNothingSent();
    h.expectState(TcpState.CLOSED);
    expect(h.resets).toEqual(['timeout']);
  });

  it('close() in SYN-SENT keeps the queued data and sends FIN after the handshake', () => {
    const h = Harness.synSent();
    h.ep.write(new TextEncoder().encode('x'), h.now);
    h.ep.close(h.now);
    h.send(GUEST_SYN_ACK);
    h.expectState(TcpState.FIN_WAIT_1);
    h.expectSent({ ...RECV, flags: ACK | PSH | FIN, payload: 'x' });
  });

  it('abort() in SYN-SENT sends nothing (RFC 9293 §3.10.5)', () => {
    const h = Harness.synSent();
    h.ep.abort(h.now);
    h.expectNothingSent();
    h.expectState(TcpState.CLOSED);
    expect(h.resets).toEqual([]);
  });
});
