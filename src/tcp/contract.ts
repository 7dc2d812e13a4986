/**
 * The contract between the guest-side TCP endpoint (src/tcp/endpoint.ts) and
 * the NAT relay that owns it (src/nat/tcp-nat.ts). The endpoint is a pure
 * state machine: it never reads a clock, never arms a timer and never touches
 * a socket or a frame buffer. Time comes in as `nowMs` on every call; what it
 * wants sent goes out through a TcpSegmentSink; what it has to tell the relay
 * goes through TcpEndpointEvents; when it next needs to run is `nextDeadline`.
 *
 *   guest ──frames──▶ stack ──TcpRepr──▶ endpoint.input()  ──events──▶ relay ──▶ host socket
 *   guest ◀──frames── sink  ◀──segments── endpoint.write()  ◀──────────  relay ◀── host socket
 *
 * Naming is RFC 9293's (sndUna, sndNxt, rcvNxt, iss, irs) for the TCB, and
 * side-explicit elsewhere: "guest" is the peer behind the TAP, "local" is us.
 */
import type { TcpRepr } from '../wire/tcp.js';

export const TcpState = {
  CLOSED: 0,
  LISTEN: 1,
  SYN_SENT: 2,
  SYN_RECEIVED: 3,
  ESTABLISHED: 4,
  FIN_WAIT_1: 5,
  FIN_WAIT_2: 6,
  CLOSE_WAIT: 7,
  CLOSING: 8,
  LAST_ACK: 9,
  TIME_WAIT: 10,
} as const;

export type TcpStateValue = (typeof TcpState)[keyof typeof TcpState];

export const tcpStateName: readonly string[] = [
  'CLOSED',
  'LISTEN',
  'SYN-SENT',
  'SYN-RECEIVED',
  'ESTABLISHED',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'CLOSE-WAIT',
  'CLOSING',
  'LAST-ACK',
  'TIME-WAIT',
];

/**
 * Stream bytes queued towards the guest: written by the relay, read (copied)
 * by the sink when it builds a segment, released when the guest ACKs them.
 */
export interface SendBufferReader {
  /** Copies `len` bytes starting `offset` bytes after the oldest unacknowledged byte. */
  copyOut(offset: number, len: number, dst: Uint8Array, dstOff: number): void;
  /**
   * When the `len` bytes from `offset` lie in one run of memory (the chunks
   * holding them are adjacent views of one ArrayBuffer, as consecutive reads
   * into the relay's read slab are), points `out` at them, `out.bytes` a
   * view of that whole ArrayBuffer, and returns true; else false. Queued
   * bytes never change, so a frame may be sent from there instead of a copy.
   */
  viewOf(offset: number, len: number, out: PayloadView): boolean;
}

/** Where viewOf found a payload: bytes[off, off + len). */
export interface PayloadView {
  bytes: Uint8Array;
  off: number;
}

/**
 * Builds and queues one segment towards the guest. The NAT layer implements
 * it: IPv4 + TCP headers (and the virtio-net header with NEEDS_CSUM and, when
 * `payloadLen > gsoSize`, GSO TCPV4 with gso_size = `gsoSize`), addresses and
 * ports taken from the endpoint's config (`local*` → source, `guest*` → dest).
 * `repr` (flags, seq, ack, window as it goes on the wire — already scaled —
 * and options) is only valid during the call. Payload bytes are copied from
 * `data` at `dataOffset` (relative to sndUna), or sent from where they are
 * (viewOf) when the frame can carry them as a second slice.
 */
export interface TcpSegmentSink {
  transmit(endpoint: TcpEndpointIdentity, repr: TcpRepr, data: SendBufferReader | null, dataOffset: number, payloadLen: number, gsoSize: number): void;
}

export interface TcpEndpointIdentity {
  readonly config: TcpEndpointConfig;
}

export interface TcpEndpointEvents {
  /** The three-way handshake completed (SYN-RECEIVED/SYN-SENT → ESTABLISHED). */
  onEstablished(): void;
  /** In-order guest data; the bytes are valid only during the call (copy them). */
  onData(buf: Uint8Array, off: number, len: number): void;
  /** The guest sent FIN: no more data will arrive (half-close; we may still send). */
  onFin(): void;
  /**
   * Guest ACKs freed send-buffer space: the relay may resume reading the host.
   * Fired once after a write() left sendBufferSpace ≤ 0, when at least a
   * quarter of sndBufBytes is free again (hysteresis, so a paused socket is
   * not resumed for a few bytes at a time).
   */
  onSendSpace(): void;
  /**
   * The connection was reset: a valid RST from the guest, or retransmissions/
   * keepalives/the FIN-WAIT-2 timeout gave up. The endpoint is already CLOSED
   * when this runs (abort() inside it is a no-op); onClosed follows at once.
   */
  onReset(reason: 'rst' | 'timeout'): void;
  /** The endpoint reached CLOSED (after TIME-WAIT, LAST-ACK, a reset or abort): release the flow. */
  onClosed(): void;
  /**
   * The endpoint entered TIME-WAIT: nothing more will be exchanged, it only
   * lingers (timeWaitMs) to absorb old duplicates. Optional.
   */
  onTimeWait?(): void;
}

export interface TcpEndpointConfig {
  /** Our side: the address and port the guest connected to (or, for inbound forwards, the client's). */
  localIp: number;
  localPort: number;
  guestIp: number;
  guestPort: number;
  /** Initial send sequence number (the relay picks it; tests pass fixed ones). */
  iss: number;
  /** MSS we announce: link MTU − 40. */
  mss: number;
  /** Receive buffer: the most guest→host bytes we accept beyond what the relay has consumed. */
  rcvBufBytes: number;
  /** Send buffer: the most host→guest bytes held (unacknowledged + unsent). */
  sndBufBytes: number;
  /** Our window-scale shift (RFC 7323 §2.2), used only if the guest's SYN carries the option. */
  windowScale: number;
  /** Offer/accept timestamps (RFC 7323 §3) and SACK-permitted (RFC 2018). */
  timestamps: boolean;
  sack: boolean;
  /** Largest payload per transmit() call: 65535 − headers with GSO, else the MSS. */
  maxSegmentPayload: number;
  /** TIME-WAIT duration (2·MSL; Linux uses 60 s). */
  timeWaitMs: number;
  /** FIN-WAIT-2 timeout once we have sent FIN (Linux tcp_fin_timeout, 60 s). */
  finWait2TimeoutMs: number;
  /** Keepalive towards an idle guest: first probe after idle, then every interval, abort after `keepaliveProbes`. */
  keepaliveIdleMs: number;
  keepaliveIntervalMs: number;
  keepaliveProbes: number;
  /** RTO bounds (RFC 6298 §2.4: min 1 s; Linux uses 200 ms), initial RTO, and retransmissions before giving up. */
  rtoMinMs: number;
  rtoMaxMs: number;
  rtoInitialMs: number;
  maxRetransmits: number;
  /**
   * How long flush() may hold the ACK of a little in-order data (less than
   * two full segments, no FIN, no window news) waiting for host data to carry
   * it (RFC 9293 §3.8.6.3 allows up to 500 ms; RFC 5681 §4.2 wants every
   * second full segment ACKed at once). 0: ACK at every flush.
   */
  delayedAckMs: number;
}

/**
 * Counters of one endpoint (added by the endpoint work; all monotonic).
 * Payload bytes only; retransmitted bytes are counted in `bytesOut` too.
 */
export interface TcpEndpointStats {
  segmentsIn: number;
  segmentsOut: number;
  /** Guest data bytes delivered in order through onData. */
  bytesIn: number;
  /** Payload bytes transmitted (first transmissions and retransmissions). */
  bytesOut: number;
  /** Segments retransmitted (timeout, fast retransmit, SYN/SYN-ACK). */
  retransmits: number;
  /** Retransmission timer expiries (RFC 6298 §5.4). */
  rtoTimeouts: number;
  fastRetransmits: number;
  /** Duplicate ACKs from the guest (RFC 5681 §2 definition). */
  dupAcksIn: number;
  challengeAcks: number;
  /** Challenge ACKs and out-of-window ACKs suppressed by the rate limits. */
  acksRateLimited: number;
  /** Segments failing the RFC 9293 §3.10.7.4 acceptability test. */
  outOfWindow: number;
  /** Segments dropped by PAWS (RFC 7323 §5). */
  pawsRejected: number;
  /** Out-of-order data segments received (held or not). */
  ooSegments: number;
  /** Out-of-order segments not stored because the reassembly limit was reached. */
  ooDropped: number;
  windowProbes: number;
  keepaliveProbes: number;
  /** Window-update ACKs sent because the receive window reopened. */
  windowUpdates: number;
  /** Pure ACKs sent (any reason). */
  acksOut: number;
}

/**
 * The endpoint's API, as the relay uses it (implemented by TcpEndpoint in
 * endpoint.ts; added by the endpoint work). All methods take `nowMs`, never
 * throw for protocol events, and may call TcpEndpointEvents and the sink
 * synchronously; events may re-enter (write, close, abort, setReceiveBacklog)
 * from inside a callback.
 *
 * ACK policy (flush): input() answers at once only what must not wait
 * (duplicate ACKs for out-of-order data, challenge ACKs, RSTs, SYN-ACK
 * retransmissions, ACKs of out-of-window segments). ACKs for in-order data
 * and FINs, and new data the ACKs in the batch made sendable, are held until
 * flush(): the relay calls it once after each input batch, so a batch of
 * segments gets one cumulative ACK, piggybacked on data when there is some.
 * With `delayedAckMs` > 0, flush() may hold the ACK of a little in-order
 * data a while longer, for the host's reply to carry it (request/response
 * then costs the guest one frame per reply instead of two).
 * As a safety net, input() makes `nextDeadline` = now while something is held,
 * so a relay that forgot flush() still sends it on its next timer turn.
 * write(), close(), abort(), setReceiveBacklog() outside input() and onTimer()
 * transmit at once.
 */
export interface TcpEndpointControl extends TcpEndpointIdentity {
  readonly state: TcpStateValue;
  readonly stats: TcpEndpointStats;
  /** sndBufBytes − queued bytes; the relay pauses its socket while ≤ 0. */
  readonly sendBufferSpace: number;
  /** Earliest time onTimer must run (Infinity when nothing is armed). */
  readonly nextDeadline: number;
  acceptSyn(syn: TcpRepr, nowMs: number): void;
  connect(nowMs: number): void;
  input(seg: TcpRepr, buf: Uint8Array, payloadOff: number, payloadLen: number, nowMs: number): void;
  flush(nowMs: number): void;
  write(chunk: Uint8Array, nowMs: number): void;
  /**
   * Bytes delivered through onData that the host has not consumed yet
   * (socket.writableLength). Every delivered byte counts as backlog until
   * reported otherwise, so call it after writing a batch and on 'drain'.
   */
  setReceiveBacklog(bytes: number, nowMs: number): void;
  close(nowMs: number): void;
  abort(nowMs: number): void;
  onTimer(nowMs: number): void;
  /**
   * For a SYN arriving in TIME-WAIT: true iff Linux would accept it as a new
   * connection (tcp_timewait_state_process: a higher sequence number, or a
   * newer timestamp). The relay may then drop this endpoint (abort() sends
   * nothing in TIME-WAIT) and open a new flow; input() itself answers such a
   * SYN with a challenge ACK (RFC 5961 §4).
   */
  timeWaitAcceptsSyn(syn: TcpRepr): boolean;
}

export const DEFAULT_TCP_CONFIG = {
  rcvBufBytes: 4 << 20,
  sndBufBytes: 4 << 20,
  windowScale: 7,
  timestamps: true,
  sack: true,
  timeWaitMs: 60_000,
  finWait2TimeoutMs: 60_000,
  keepaliveIdleMs: 600_000,
  keepaliveIntervalMs: 75_000,
  keepaliveProbes: 9,
  rtoMinMs: 200,
  rtoMaxMs: 120_000,
  rtoInitialMs: 1000,
  maxRetransmits: 15,
  delayedAckMs: 0,
} as const satisfies Partial<TcpEndpointConfig>;
