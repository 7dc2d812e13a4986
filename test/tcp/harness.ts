/**
 * Test harness for the TCP endpoint, after smoltcp's socket tests: a fake
 * sink that records every segment (repr fields copied, payload copied out of
 * the send buffer), fake events that record every call, a manual clock, and
 * fixtures that jump straight to any state with deterministic ISNs.
 *
 *   const h = Harness.established();
 *   h.send({ ...SEND, payload: 'abc' });
 *   h.expectSent({ ...RECV, ack: GUEST_ISS + 1 + 3, window: WND - 3 });
 *
 * SEND is a guest segment, RECV what we should transmit; override fields
 * with object spread. expectSent() checks the exact list of segments sent
 * since the last check (and nothing else); expectNothingSent() checks none.
 */
import { afterEach, expect } from 'vitest';
import { DEFAULT_TCP_CONFIG, TcpState, tcpStateName, type SendBufferReader, type TcpEndpointConfig, type TcpEndpointEvents, type TcpEndpointIdentity, type TcpSegmentSink } from '../../src/tcp/contract.js';
import { TcpEndpoint } from '../../src/tcp/endpoint.js';
import { newTcpRepr, TcpFlag, tcpEmittedSackCount, tcpFlagsToString, type TcpRepr } from '../../src/wire/tcp.js';

export const { FIN, SYN, RST, PSH, ACK } = TcpFlag;

export const LOCAL_ISS = 10000;
export const GUEST_ISS = 5000;
export const LOCAL_IP = 0x0a000202; // 10.0.2.2
export const GUEST_IP = 0x0a000264; // 10.0.2.100
export const LOCAL_PORT = 80;
export const GUEST_PORT = 49152;
/** Start of the manual clock; also our first TSval. */
export const T0 = 1_000_000;
/** The guest's TSval at T0 in timestamp tests. */
export const GUEST_TS0 = 777_000;
/** Receive buffer of the default config: the unscaled window we advertise. */
export const WND = 65535;
export const MSS = 1460;
/**
 * Our window field with the guest's options (shift 7): 65535 >> 7 rounded up
 * to 512, so as not to retract the edge the SYN-ACK's 65535 set.
 */
export const WND_SCALED = 512;

/** A segment as tests write it: absent options are absent. */
export interface Seg {
  flags: number;
  seq: number;
  ack: number;
  window: number;
  payload?: Uint8Array | string;
  mss?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  /** [TSval, TSecr]. */
  ts?: readonly [number, number];
  /** SACK blocks as [left0, right0, left1, right1, ...]. */
  sack?: readonly number[];
}

/** A guest segment in ESTABLISHED with nothing exchanged yet. */
export const SEND: Seg = { flags: ACK, seq: GUEST_ISS + 1, ack: LOCAL_ISS + 1, window: 65535 };
/** What we send in ESTABLISHED with nothing exchanged yet. */
export const RECV: Seg = { flags: ACK, seq: LOCAL_ISS + 1, ack: GUEST_ISS + 1, window: WND };
/** The guest's SYN of the default fixtures: MSS only (no window scaling, timestamps or SACK). */
export const GUEST_SYN: Seg = { flags: SYN, seq: GUEST_ISS, ack: 0, window: 64240, mss: MSS };

/** A segment as the sink saw it. */
export interface Sent {
  flags: number;
  seq: number;
  ack: number;
  window: number;
  mss: number;
  windowScale: number;
  sackPermitted: boolean;
  ts: readonly [number, number] | null;
  sack: number[];
  payload: Uint8Array;
  gsoSize: number;
}

export interface HarnessOptions {
  config?: Partial<TcpEndpointConfig>;
  /** Overrides of the guest's SYN (passive fixtures) or SYN-ACK (active fixtures). */
  syn?: Partial<Seg>;
  /** Guest options in one word: timestamps, SACK-permitted and window scale 7. */
  options?: boolean;
  /** After each send(), report a zero backlog (a host socket that takes everything). Default true. */
  autoConsume?: boolean;
}

export function bytes(s: string | Uint8Array): Uint8Array {
  return typeof s === 'string' ? new TextEncoder().encode(s) : s;
}

/** Deterministic test pattern: byte i of a stream is a function of i and `seed`. */
export function pattern(len: number, start = 0, seed = 0): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    const x = start + i;
    out[i] = (x * 31 + (x >>> 8) * 7 + seed) & 0xff;
  }
  return out;
}

export const u32 = (n: number): number => n >>> 0;

const live: Harness[] = [];

/**
 * Installs the leak check (lwIP style) in the calling test file: after each
 * test every harness's endpoint is aborted if still open, and must then be
 * CLOSED, with no deadline armed, onClosed called exactly once, and nothing
 * transmitted after it closed.
 */
export function useLeakCheck(): void {
  afterEach(() => {
    const all = live.splice(0);
    for (const h of all) h.teardown();
  });
}

export class Harness implements TcpSegmentSink, TcpEndpointEvents {
  now = T0;
  readonly ep: TcpEndpoint;
  readonly config: TcpEndpointConfig;
  private sent: Sent[] = [];
  /** Every segment ever sent, for tests that look at the history. */
  readonly history: Sent[] = [];
  readonly received: Uint8Array[] = [];
  receivedBytes = 0;
  established = 0;
  fins = 0;
  sendSpace = 0;
  resets: string[] = [];
  closed = 0;
  sentAfterClose = 0;
  autoConsume: boolean;
  /** Called from onData and onReset (tests of re-entrancy). */
  onDataHook: ((h: Harness) => void) | null = null;
  onResetHook: ((h: Harness) => void) | null = null;
  readonly guestTs: boolean;

  constructor(opts: HarnessOptions = {}) {
    this.config = {
      ...DEFAULT_TCP_CONFIG,
      localIp: LOCAL_IP,
      localPort: LOCAL_PORT,
      guestIp: GUEST_IP,
      guestPort: GUEST_PORT,
      iss: LOCAL_ISS,
      mss: MSS,
      rcvBufBytes: WND,
      sndBufBytes: 256 * 1024,
      maxSegmentPayload: MSS,
      ...opts.config,
    };
    this.autoConsume = opts.autoConsume ?? true;
    this.guestTs = opts.options === true || opts.syn?.ts !== undefined;
    this.ep = new TcpEndpoint(this.config, this, this);
    live.push(this);
  }

  // ─── fixtures ──────────────────────────────────────────────────────────────

  static guestSyn(opts: HarnessOptions = {}): Seg {
    const base: Seg = opts.options ? { ...GUEST_SYN, windowScale: 7, sackPermitted: true, ts: [GUEST_TS0, 0] } : GUEST_SYN;
    return { ...base, ...opts.syn };
  }

  /** SYN-RECEIVED: acceptSyn() done, SYN-ACK consumed. */
  static synReceived(opts: HarnessOptions = {}): Harness {
    const h = new Harness(opts);
    const syn = Harness.guestSyn(opts);
    if (syn.ts !== undefined) h.guestTsVal = syn.ts[0];
    h.ep.acceptSyn(toRepr(syn), h.now);
    h.takeSent();
    return h;
  }

  /** ESTABLISHED: the guest ACKed our SYN-ACK. */
  static established(opts: HarnessOptions = {}): Harness {
    const h = Harness.synReceived(opts);
    h.send({ ...SEND, ...h.tsFields() });
    h.takeSent();
    h.established = 0;
    return h;
  }

  /** SYN-SENT: connect() done, SYN consumed. */
  static synSent(opts: HarnessOptions = {}): Harness {
    const h = new Harness(opts);
    h.ep.connect(h.now);
    h.takeSent();
    return h;
  }

  /** FIN-WAIT-1: we closed; our FIN (seq LOCAL_ISS+1) is unacknowledged. */
  static finWait1(opts: HarnessOptions = {}): Harness {
    const h = Harness.established(opts);
    h.ep.close(h.now);
    h.takeSent();
    return h;
  }

  /** FIN-WAIT-2: our FIN is acknowledged. */
  static finWait2(opts: HarnessOptions = {}): Harness {
    const h = Harness.finWait1(opts);
    h.send({ ...SEND, ack: LOCAL_ISS + 2, ...h.tsFields() });
    h.takeSent();
    return h;
  }

  /** CLOSE-WAIT: the guest's FIN (seq GUEST_ISS+1) arrived and was ACKed. */
  static closeWait(opts: HarnessOptions = {}): Harness {
    const h = Harness.established(opts);
    h.send({ ...SEND, flags: FIN | ACK, ...h.tsFields() });
    h.takeSent();
    h.fins = 0;
    return h;
  }

  /** LAST-ACK: CLOSE-WAIT, then we closed; our FIN is unacknowledged. */
  static lastAck(opts: HarnessOptions = {}): Harness {
    const h = Harness.closeWait(opts);
    h.ep.close(h.now);
    h.takeSent();
    return h;
  }

  /** CLOSING: FIN-WAIT-1, then the guest's FIN arrived without acknowledging ours. */
  static closing(opts: HarnessOptions = {}): Harness {
    const h = Harness.finWait1(opts);
    h.send({ ...SEND, flags: FIN | ACK, ...h.tsFields() });
    h.takeSent();
    h.fins = 0;
    return h;
  }

  /** TIME-WAIT: FIN-WAIT-2, then the guest's FIN. */
  static timeWait(opts: HarnessOptions = {}): Harness {
    const h = Harness.finWait2(opts);
    h.send({ ...SEND, flags: FIN | ACK, ack: LOCAL_ISS + 2, ...h.tsFields() });
    h.takeSent();
    h.fins = 0;
    return h;
  }

  // ─── driving ───────────────────────────────────────────────────────────────

  /** Timestamps for a guest segment now (empty without timestamps). */
  tsFields(): { ts?: readonly [number, number] } {
    return this.guestTs ? { ts: [GUEST_TS0 + (this.now - T0), this.lastTsVal()] } : {};
  }

  /** Our latest TSval (what the guest would echo). */
  lastTsVal(): number {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const t = this.history[i].ts;
      if (t !== null) return t[0];
    }
    return 0;
  }

  /** The guest's TSval most recently sent (what our TSecr echoes). */
  guestTsVal = 0;

  /** Timestamps our next segment carries (empty without timestamps). */
  ourTs(): { ts?: readonly [number, number] } {
    return this.guestTs ? { ts: [Math.floor(this.now) >>> 0, this.guestTsVal] } : {};
  }

  /** One guest segment, then (like the relay) the backlog report and flush(). */
  send(seg: Seg, opts: { flush?: boolean } = {}): void {
    if (seg.ts !== undefined && (seg.flags & TcpFlag.RST) === 0 && ((seg.ts[0] - this.guestTsVal) | 0) > 0) this.guestTsVal = seg.ts[0] >>> 0;
    const payload = seg.payload === undefined ? EMPTY : bytes(seg.payload);
    const repr = toRepr(seg);
    // The payload sits at an odd offset of a buffer filled with 0xa5 around it.
    const buf = new Uint8Array(payload.length + 32).fill(0xa5);
    buf.set(payload, 13);
    repr.payloadOffset = 13;
    repr.payloadLength = payload.length;
    this.ep.input(repr, buf, 13, payload.length, this.now);
    buf.fill(0x5a); // the endpoint must not keep views of the input buffer
    if (this.autoConsume) this.ep.setReceiveBacklog(0, this.now);
    if (opts.flush !== false) this.ep.flush(this.now);
  }

  /** Advances the clock by `ms`, running every deadline on the way at its time. */
  advance(ms: number): void {
    const target = this.now + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      const d = this.ep.nextDeadline;
      if (!(d <= target)) break;
      if (d > this.now) this.now = d;
      this.ep.onTimer(this.now);
    }
    this.now = target;
  }

  /** Runs timers until the next segment is sent (or `limitMs` passes); returns the time spent. */
  advanceUntilSent(limitMs = 600_000): number {
    const start = this.now;
    const before = this.sent.length;
    while (this.sent.length === before && this.now - start < limitMs) {
      const d = this.ep.nextDeadline;
      if (!(d <= start + limitMs)) break;
      if (d > this.now) this.now = d;
      this.ep.onTimer(this.now);
    }
    return this.now - start;
  }

  takeSent(): Sent[] {
    const s = this.sent;
    this.sent = [];
    return s;
  }

  /** Asserts that exactly these segments were sent since the last check, in order. */
  expectSent(...segs: Seg[]): void {
    const got = this.takeSent().map(describeSent);
    expect(got).toEqual(segs.map(describeSeg));
  }

  expectNothingSent(): void {
    expect(this.takeSent().map(describeSent)).toEqual([]);
  }

  expectState(state: number): void {
    expect(tcpStateName[this.ep.state]).toBe(tcpStateName[state]);
  }

  /** All bytes delivered through onData, concatenated. */
  receivedData(): Uint8Array {
    const out = new Uint8Array(this.receivedBytes);
    let o = 0;
    for (const c of this.received) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  receivedText(): string {
    return new TextDecoder().decode(this.receivedData());
  }

  teardown(): void {
    if (this.ep.state !== TcpState.CLOSED) this.ep.abort(this.now);
    expect(this.ep.state, 'endpoint CLOSED after teardown').toBe(TcpState.CLOSED);
    expect(this.ep.nextDeadline, 'no deadline armed once CLOSED').toBe(Infinity);
    expect(this.closed, 'onClosed called exactly once').toBe(1);
    expect(this.sentAfterClose, 'nothing transmitted after CLOSED').toBe(0);
  }

  // ─── TcpSegmentSink ──────────────────────────────────────────────────────────

  transmit(endpoint: TcpEndpointIdentity, repr: TcpRepr, data: SendBufferReader | null, dataOffset: number, payloadLen: number, gsoSize: number): void {
    expect(endpoint).toBe(this.ep);
    if (this.closed > 0) this.sentAfterClose++;
    const payload = new Uint8Array(payloadLen);
    if (payloadLen > 0) data!.copyOut(dataOffset, payloadLen, payload, 0);
    const n = tcpEmittedSackCount(repr);
    const sack: number[] = [];
    for (let i = 0; i < 2 * n; i++) sack.push(repr.sackBlocks[i]);
    const s: Sent = {
      flags: repr.flags,
      seq: repr.seq >>> 0,
      ack: repr.ack >>> 0,
      window: repr.window,
      mss: repr.mss,
      windowScale: repr.windowScale,
      sackPermitted: repr.sackPermitted,
      ts: repr.hasTimestamps ? [repr.tsVal >>> 0, repr.tsEcr >>> 0] : null,
      sack,
      payload,
      gsoSize,
    };
    this.sent.push(s);
    this.history.push(s);
  }

  // ─── TcpEndpointEvents ───────────────────────────────────────────────────────

  onEstablished(): void {
    this.established++;
  }
  onData(buf: Uint8Array, off: number, len: number): void {
    this.received.push(buf.slice(off, off + len));
    this.receivedBytes += len;
    if (this.onDataHook !== null) this.onDataHook(this);
  }
  onFin(): void {
    this.fins++;
  }
  onSendSpace(): void {
    this.sendSpace++;
  }
  onReset(reason: 'rst' | 'timeout'): void {
    this.resets.push(reason);
    if (this.onResetHook !== null) this.onResetHook(this);
  }
  onClosed(): void {
    this.closed++;
  }
}

const EMPTY = new Uint8Array(0);

export function toRepr(seg: Seg): TcpRepr {
  const r = newTcpRepr();
  r.srcPort = GUEST_PORT;
  r.dstPort = LOCAL_PORT;
  r.seq = seg.seq >>> 0;
  r.ack = seg.ack >>> 0;
  r.flags = seg.flags;
  r.window = seg.window;
  r.mss = seg.mss ?? 0;
  r.windowScale = seg.windowScale ?? -1;
  r.sackPermitted = seg.sackPermitted ?? false;
  if (seg.ts !== undefined) {
    r.hasTimestamps = true;
    r.tsVal = seg.ts[0] >>> 0;
    r.tsEcr = seg.ts[1] >>> 0;
  }
  const sack = seg.sack ?? [];
  r.sackCount = sack.length >>> 1;
  for (let i = 0; i < sack.length; i++) r.sackBlocks[i] = sack[i] >>> 0;
  r.payloadLength = seg.payload === undefined ? 0 : bytes(seg.payload).length;
  return r;
}

/** A readable, comparable form (vitest prints the diff of two of these). */
interface Described {
  flags: string;
  seq: number;
  ack: number;
  window: number;
  options: string;
  payload: string;
}

function describePayload(p: Uint8Array): string {
  if (p.length === 0) return '';
  if (p.length <= 64 && p.every((b) => b >= 0x20 && b < 0x7f)) return JSON.stringify(new TextDecoder().decode(p));
  let h = 0x811c9dc5;
  for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p[i], 0x01000193) >>> 0;
  return `${p.length} bytes fnv=${h.toString(16)}`;
}

function describeOptions(mss: number, ws: number, sackOk: boolean, ts: readonly [number, number] | null, sack: readonly number[]): string {
  const o: string[] = [];
  if (mss > 0) o.push(`mss ${mss}`);
  if (ws >= 0) o.push(`wscale ${ws}`);
  if (sackOk) o.push('sackOK');
  if (ts !== null) o.push(`TS val ${ts[0] >>> 0} ecr ${ts[1] >>> 0}`);
  if (sack.length > 0) {
    const b: string[] = [];
    for (let i = 0; i < sack.length; i += 2) b.push(`${sack[i] >>> 0}:${sack[i + 1] >>> 0}`);
    o.push(`sack ${b.join(' ')}`);
  }
  return o.join(',');
}

export function describeSent(s: Sent): Described {
  return {
    flags: tcpFlagsToString(s.flags),
    seq: s.seq,
    ack: s.ack,
    window: s.window,
    options: describeOptions(s.mss, s.windowScale, s.sackPermitted, s.ts, s.sack),
    payload: describePayload(s.payload),
  };
}

export function describeSeg(s: Seg): Described {
  return {
    flags: tcpFlagsToString(s.flags),
    seq: s.seq >>> 0,
    ack: s.ack >>> 0,
    window: s.window,
    options: describeOptions(s.mss ?? 0, s.windowScale ?? -1, s.sackPermitted ?? false, s.ts ?? null, s.sack ?? []),
    payload: describePayload(s.payload === undefined ? EMPTY : bytes(s.payload)),
  };
}
