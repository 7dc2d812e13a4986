import { describe, expect, it } from 'vitest';
import { ACK, FIN, GUEST_ISS, Harness, LOCAL_ISS, PSH, RECV, SEND, SYN, WND, useLeakCheck } from './harness.js';
import { TcpState } from '../../src/tcp/contract.js';

useLeakCheck();

describe('smoke', () => {
  it('handshake, data both ways, close', () => {
    const h = Harness.established();
    h.expectState(TcpState.ESTABLISHED);
    h.send({ ...SEND, payload: 'hello' });
    h.expectSent({ ...RECV, ack: GUEST_ISS + 6, window: WND - 5 });
    expect(h.receivedText()).toBe('hello');
    h.ep.write(new TextEncoder().encode('world'), h.now);
    h.expectSent({ ...RECV, flags: ACK | PSH, ack: GUEST_ISS + 6, window: WND - 5, payload: 'world' });
    h.send({ ...SEND, seq: GUEST_ISS + 6, ack: LOCAL_ISS + 6, flags: ACK | FIN });
    h.expectState(TcpState.CLOSE_WAIT);
    h.expectSent({ ...RECV, seq: LOCAL_ISS + 6, ack: GUEST_ISS + 7, window: WND - 5 });
    h.ep.close(h.now);
    h.expectSent({ ...RECV, flags: ACK | FIN, seq: LOCAL_ISS + 6, ack: GUEST_ISS + 7, window: WND - 5 });
    h.send({ ...SEND, seq: GUEST_ISS + 7, ack: LOCAL_ISS + 7 });
    h.expectState(TcpState.CLOSED);
    void SYN;
  });
});
