/**
 * Predicates over connection states, written as explicit switches: the
 * numeric order of TcpState carries no meaning (a predicate that depends on enum
 * order breaks silently when a state is added).
 */
import { TcpState, type TcpStateValue } from './contract.js';

/** RFC 9293 §3.3.2: the states after the handshake, in which RFC 5961 applies. */
export function isSynchronized(state: TcpStateValue): boolean {
  switch (state) {
    case TcpState.ESTABLISHED:
    case TcpState.FIN_WAIT_1:
    case TcpState.FIN_WAIT_2:
    case TcpState.CLOSE_WAIT:
    case TcpState.CLOSING:
    case TcpState.LAST_ACK:
    case TcpState.TIME_WAIT:
      return true;
    default:
      return false;
  }
}

/** Our SYN is acknowledged and our FIN is not: data (and the FIN) may still be (re)transmitted. */
export function canSend(state: TcpStateValue): boolean {
  switch (state) {
    case TcpState.ESTABLISHED:
    case TcpState.CLOSE_WAIT:
    case TcpState.FIN_WAIT_1:
    case TcpState.CLOSING:
    case TcpState.LAST_ACK:
      return true;
    default:
      return false;
  }
}

/** RFC 9293 §3.10.7.4, seventh step: the states that accept segment text. */
export function canReceive(state: TcpStateValue): boolean {
  switch (state) {
    case TcpState.ESTABLISHED:
    case TcpState.FIN_WAIT_1:
    case TcpState.FIN_WAIT_2:
      return true;
    default:
      return false;
  }
}

