/**
 * Two endpoints back to back over a simulated link on a manual clock: one
 * active (connect), one passive (acceptSyn on the first SYN, as the relay
 * does), with seeded loss, duplication, reordering (jitter), a bandwidth and
 * a bounded queue per direction (tail drop, like a full TAP queue). Each side
 * has an "application" that writes a deterministic byte stream as fast as
 * the send buffer allows, half-closes when done, and reads what arrives at a
 * configurable rate (the host socket of the relay, for backpressure).
 */
import { DEFAULT_TCP_CONFIG, TcpState, type SendBufferReader, type TcpEndpointConfig, type TcpEndpointEvents, type TcpEndpointIdentity, type TcpSegmentSink } from '../../src/tcp/contract.js';
import { TcpEndpoint } from '../../src/tcp/endpoint.js';
import { copyTcpRepr, newTcpRepr, TcpFlag, type TcpRepr } from '../../src/wire/tcp.js';
import { pattern } from './harness.js';

/** mulberry32: small, seeded, good enough for fault injection. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LinkFaults {
  loss: number;
  duplicate: number;
  /** Extra random delay in [0, jitterMs): reorders segments. */
  jitterMs: number;
  delayMs: number;
  /** Serialisation rate. */
  bytesPerMs: number;
  /** Bytes queued per direction before tail drop. */
  queueBytes: number;
}

export interface SideSpec {
  iss: number;
  /** Bytes this side's application sends, then half-closes. */
  sendBytes: number;
  /** How fast the application reads (bytes/ms); Infinity = at once. */
  readBytesPerMs: number;
  /** Delay before the application closes after its last write (ms). */
  closeDelayMs?: number;
  config?: Partial<TcpEndpointConfig>;
}

interface Packet {
  at: number;
  order: number;
  repr: TcpRepr;
  payload: Uint8Array;
}

function copyRepr(from: TcpRepr): TcpRepr {
  const to = newTcpRepr();
  copyTcpRepr(from, to);
  return to;
}

export class Side implements TcpSegmentSink, TcpEndpointEvents {
  ep: TcpEndpoint | null = null;
  peer!: Side;
  readonly config: TcpEndpointConfig;
  written = 0;
  closedWrite = false;
  closeAt = Infinity;
  receivedOk = 0;
  corrupt = false;
  fin = false;
  resets: string[] = [];
  closed = 0;
  established = 0;
  backlog = 0;
  /** In-flight packets towards the peer, and when the wire is free again. */
  queue: Packet[] = [];
  queuedBytes = 0;
  wireFreeAt = 0;
  segmentsSent = 0;
  dropped = 0;
  maxBacklog = 0;

  constructor(
    readonly sim: Simulation,
    readonly name: string,
    readonly spec: SideSpec,
    readonly seed: number,
    mss: number,
    maxSegmentPayload: number,
  ) {
    this.config = {
      ...DEFAULT_TCP_CONFIG,
      localIp: 1,
      localPort: name === 'A' ? 1000 : 2000,
      guestIp: 2,
      guestPort: name === 'A' ? 2000 : 1000,
      iss: spec.iss,
      mss,
      maxSegmentPayload,
      rcvBufBytes: 1 << 20,
      sndBufBytes: 1 << 20,
      timeWaitMs: 2_000,
      ...spec.config,
    };
  }

  transmit(_e: TcpEndpointIdentity, repr: TcpRepr, data: SendBufferReader | null, dataOffset: number, payloadLen: number): void {
    const payload = new Uint8Array(payloadLen);
    if (payloadLen > 0) data!.copyOut(dataOffset, payloadLen, payload, 0);
    this.segmentsSent++;
    this.sim.wire(this, copyRepr(repr), payload);
  }

  onEstablished(): void {
    this.established++;
  }
  onData(buf: Uint8Array, off: number, len: number): void {
    const want = pattern(len, this.receivedOk, this.peer.seed);
    for (let i = 0; i < len; i++) {
      if (buf[off + i] !== want[i]) {
        this.corrupt = true;
        break;
      }
    }
    this.receivedOk += len;
    this.backlog += len;
    if (this.backlog > this.maxBacklog) this.maxBacklog = this.backlog;
  }
  onFin(): void {
    this.fin = true;
  }
  onSendSpace(): void {
    this.sim.pump(this);
  }
  onReset(reason: 'rst' | 'timeout'): void {
    this.resets.push(reason);
  }
  onClosed(): void {
    this.closed++;
  }
}

export class Simulation {
  now: number;
  readonly a: Side;
  readonly b: Side;
  private readonly rand: () => number;
  private order = 0;
  steps = 0;

  constructor(
    readonly faults: LinkFaults,
    specA: SideSpec,
    specB: SideSpec,
    seed: number,
    startMs = 1_000_000,
    mss = 1460,
    maxSegmentPayload = 64240,
  ) {
    this.now = startMs;
    this.rand = prng(seed);
    this.a = new Side(this, 'A', specA, 11, mss, maxSegmentPayload);
    this.b = new Side(this, 'B', specB, 23, mss, maxSegmentPayload);
    this.a.peer = this.b;
    this.b.peer = this.a;
  }

  /** A segment leaves `from`: lose, duplicate, delay, or drop it at a full queue. */
  wire(from: Side, repr: TcpRepr, payload: Uint8Array): void {
    const f = this.faults;
    // Handshake segments are never lost here: the handshake has its own tests.
    const control = (repr.flags & TcpFlag.SYN) !== 0;
    if (!control && this.rand() < f.loss) {
      from.dropped++;
      return;
    }
    const copies = !control && this.rand() < f.duplicate ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const size = payload.length + 60;
      if (from.queuedBytes + size > f.queueBytes) {
        from.dropped++;
        continue;
      }
      const start = Math.max(this.now, from.wireFreeAt);
      from.wireFreeAt = start + size / f.bytesPerMs;
      const at = from.wireFreeAt + f.delayMs + this.rand() * f.jitterMs;
      from.queue.push({ at, order: this.order++, repr: c === 0 ? repr : copyRepr(repr), payload });
      from.queuedBytes += size;
    }
  }

  /** Writes as much of the side's stream as its send buffer takes; closes when done. */
  pump(s: Side): void {
    const ep = s.ep;
    if (ep === null || s.closedWrite) return;
    while (s.written < s.spec.sendBytes && ep.sendBufferSpace > 0) {
      const n = Math.min(s.spec.sendBytes - s.written, 1 + Math.floor(this.rand() * 65536));
      ep.write(pattern(n, s.written, s.seed), this.now);
      s.written += n;
    }
    if (s.written >= s.spec.sendBytes && s.closeAt === Infinity) s.closeAt = this.now + (s.spec.closeDelayMs ?? 0);
    if (this.now >= s.closeAt) {
      s.closedWrite = true;
      ep.close(this.now);
    }
  }

  /** The application reads at its rate: the backlog shrinks and is reported. */
  private consume(s: Side, elapsedMs: number): void {
    if (s.ep === null || s.backlog === 0) return;
    const r = s.spec.readBytesPerMs;
    s.backlog = r === Infinity ? 0 : Math.max(0, s.backlog - Math.floor(r * elapsedMs));
    s.ep.setReceiveBacklog(s.backlog, this.now);
  }

  private deliverDue(to: Side, from: Side): boolean {
    const due = from.queue.filter((p) => p.at <= this.now).sort((x, y) => x.at - y.at || x.order - y.order);
    if (due.length === 0) return false;
    from.queue = from.queue.filter((p) => p.at > this.now);
    for (const p of due) {
      from.queuedBytes -= p.payload.length + 60;
      if (to.ep === null) {
        // The passive side is created by the first SYN, like the relay's forwarder.
        if ((p.repr.flags & (TcpFlag.SYN | TcpFlag.ACK)) !== TcpFlag.SYN) continue;
        to.ep = new TcpEndpoint(to.config, to, to);
        to.ep.acceptSyn(p.repr, this.now);
        continue;
      }
      to.ep.input(p.repr, p.payload, 0, p.payload.length, this.now);
    }
    // One batch: report the backlog, then flush (what the relay does).
    this.consume(to, 0);
    to.ep?.flush(this.now);
    return true;
  }

  private nextEvent(): number {
    let t = Infinity;
    for (const s of [this.a, this.b]) {
      for (const p of s.queue) if (p.at < t) t = p.at;
      if (s.ep !== null && s.ep.nextDeadline < t) t = s.ep.nextDeadline;
      if (s.closeAt > this.now && s.closeAt < t && !s.closedWrite) t = s.closeAt;
      if (s.backlog > 0 && s.spec.readBytesPerMs !== Infinity) t = Math.min(t, this.now + 1);
    }
    return t;
  }

  /** Runs until both endpoints are CLOSED, or `limitMs` of simulated time. */
  run(limitMs: number): void {
    const a = this.a;
    a.ep = new TcpEndpoint(a.config, a, a);
    a.ep.connect(this.now);
    const end = this.now + limitMs;
    let last = this.now;
    while (this.steps++ < 2_000_000) {
      if (a.ep.state === TcpState.CLOSED && this.b.ep !== null && this.b.ep.state === TcpState.CLOSED) break;
      const t = this.nextEvent();
      if (!(t <= end)) break;
      if (t > this.now) this.now = t;
      const elapsed = this.now - last;
      last = this.now;
      for (const s of [this.a, this.b]) this.consume(s, elapsed);
      this.deliverDue(this.b, this.a);
      this.deliverDue(this.a, this.b);
      for (const s of [this.a, this.b]) {
        if (s.ep !== null && s.ep.nextDeadline <= this.now) s.ep.onTimer(this.now);
        if (s.ep !== null && s.ep.state !== TcpState.CLOSED) this.pump(s);
      }
    }
  }
}
