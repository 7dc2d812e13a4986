/**
 * A guest for integration tests: TCP endpoints of our own (src/tcp) playing
 * the container's kernel, speaking frames over a MemoryLink to a usernet
 * stack. Together with FaultyLink's seeded faults this is the "two stacks
 * over the in-memory link" tier.
 */
import type { ManualClock } from '../../src/clock.js';
import type { Link } from '../../src/link/link.js';
import { DEFAULT_TCP_CONFIG, TcpState, type SendBufferReader, type TcpEndpointEvents, type TcpEndpointIdentity, type TcpSegmentSink } from '../../src/tcp/contract.js';
import { TcpEndpoint } from '../../src/tcp/endpoint.js';
import { writeMac } from '../../src/wire/ethernet.js';
import { emitIpv4, IPV4_HEADER_LEN, IpProtocol, newIpv4Repr } from '../../src/wire/ipv4.js';
import { parseIpv4, writeIpv4 } from '../../src/wire/ipv4-address.js';
import { emitTcpHeader, fillTcpChecksumV4, newTcpRepr, parseTcp, TcpView, TCP_HEADER_LEN, tcpOptionsLength, type TcpRepr } from '../../src/wire/tcp.js';

const GUEST_MAC = 0x0200_0000_0064;
const GATEWAY_MAC = 0x5255_0a00_0202;

export class GuestConnection implements TcpEndpointEvents {
  readonly endpoint: TcpEndpoint;
  readonly chunks: Buffer[] = [];
  received = 0;
  finReceived = false;
  reset = false;
  closed = false;
  established = false;
  private pending: Buffer[] = [];

  constructor(
    readonly guest: GuestTcp,
    readonly localPort: number,
    readonly remoteIp: number,
    readonly remotePort: number,
    iss: number,
  ) {
    const mss = guest.mtu - 40;
    this.endpoint = new TcpEndpoint(
      {
        ...DEFAULT_TCP_CONFIG,
        localIp: guest.ip,
        localPort,
        guestIp: remoteIp,
        guestPort: remotePort,
        iss,
        mss,
        maxSegmentPayload: mss,
        rcvBufBytes: 1 << 20,
        sndBufBytes: 1 << 20,
        // A half-closed guest application keeps its socket (Linux times out orphans only).
        finWait2TimeoutMs: 3_600_000,
      },
      guest,
      this,
    );
  }

  /** Queues bytes to send, respecting the endpoint's send buffer. */
  write(data: Buffer): void {
    this.pending.push(data);
    this.pump();
  }

  pump(): void {
    const now = this.guest.clock.now();
    while (this.pending.length > 0 && this.endpoint.sendBufferSpace > 0) {
      const space = this.endpoint.sendBufferSpace;
      const head = this.pending[0];
      if (head.length <= space) {
        this.endpoint.write(this.pending.shift()!, now);
      } else {
        this.endpoint.write(head.subarray(0, space), now);
        this.pending[0] = head.subarray(space);
      }
    }
    if (this.pending.length === 0 && this.closeRequested && !this.closeSent) {
      this.closeSent = true;
      this.endpoint.close(now);
    }
  }

  private closeRequested = false;
  private closeSent = false;

  /** FIN after everything written so far. */
  end(): void {
    this.closeRequested = true;
    this.pump();
  }

  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  onEstablished(): void {
    this.established = true;
  }
  onData(buf: Uint8Array, off: number, len: number): void {
    this.chunks.push(Buffer.from(buf.subarray(off, off + len)));
    this.received += len;
    this.consumed = false;
  }

  /** The guest application reads everything at once: no receive backlog. */
  private consumed = true;

  /** When true the guest application stops reading: its window closes. */
  stalled = false;

  /** Called after input: reports an empty backlog when the data was consumed. */
  settle(): void {
    if (!this.consumed && !this.stalled) {
      this.consumed = true;
      this.endpoint.setReceiveBacklog(0, this.guest.clock.now());
    }
  }
  onFin(): void {
    this.finReceived = true;
  }
  onSendSpace(): void {
    this.pump();
  }
  onReset(): void {
    this.reset = true;
  }
  onClosed(): void {
    this.closed = true;
  }
}

export class GuestTcp implements TcpSegmentSink {
  readonly ip: number;
  readonly connections = new Map<number, GuestConnection>();
  private readonly out = new Uint8Array(70_000);
  private readonly meta = new Uint32Array(6);
  private readonly ipRepr = newIpv4Repr();
  private readonly view = new TcpView();
  private readonly seg = newTcpRepr();
  private nextPort = 40000;
  /** Sees every TCP segment from the stack, as parsed (the repr is reused: copy what you keep). */
  observe: ((seg: TcpRepr) => void) | null = null;

  constructor(
    readonly link: Link,
    readonly clock: ManualClock,
    readonly mtu = 1500,
    ip = '10.0.2.100',
  ) {
    this.ip = parseIpv4(ip)!;
    link.start((buf, meta, count) => {
      for (let i = 0; i < count; i++) this.input(buf, meta[2 * i], meta[2 * i + 1]);
      this.flush();
    });
  }

  connect(remote: string, port: number): GuestConnection {
    const c = new GuestConnection(this, this.nextPort++, parseIpv4(remote)!, port, 0x1000_0000 + this.nextPort * 7919);
    this.connections.set(c.localPort, c);
    c.endpoint.connect(this.clock.now());
    return c;
  }

  /** Runs every guest endpoint's timers (call after advancing the clock). */
  tick(): void {
    const now = this.clock.now();
    for (const c of this.connections.values()) if (c.endpoint.nextDeadline <= now) c.endpoint.onTimer(now);
    this.flush();
  }

  flush(): void {
    const now = this.clock.now();
    for (const c of this.connections.values()) {
      if (c.endpoint.state !== TcpState.CLOSED) c.endpoint.flush(now);
    }
  }

  transmit(endpoint: TcpEndpointIdentity, repr: TcpRepr, data: SendBufferReader | null, dataOffset: number, payloadLen: number): void {
    const cfg = endpoint.config;
    const b = this.out;
    writeMac(b, 0, GATEWAY_MAC);
    writeMac(b, 6, GUEST_MAC);
    b[12] = 0x08;
    b[13] = 0x00;
    repr.srcPort = cfg.localPort;
    repr.dstPort = cfg.guestPort;
    const tcpLen = TCP_HEADER_LEN + tcpOptionsLength(repr) + payloadLen;
    const ip = this.ipRepr;
    ip.src = cfg.localIp;
    ip.dst = cfg.guestIp;
    ip.protocol = IpProtocol.TCP;
    ip.ttl = 64;
    ip.dontFragment = true;
    ip.payloadLength = tcpLen;
    emitIpv4(ip, b, 14);
    const tcpOff = 14 + IPV4_HEADER_LEN;
    const hl = emitTcpHeader(repr, b, tcpOff);
    if (payloadLen > 0 && data !== null) data.copyOut(dataOffset, payloadLen, b, tcpOff + hl);
    fillTcpChecksumV4(b, tcpOff, tcpLen, cfg.localIp, cfg.guestIp);
    const m = this.meta;
    m[0] = 0;
    m[1] = 0;
    m[2] = 14 + IPV4_HEADER_LEN + tcpLen;
    m[5] = 0;
    this.link.writeBatch([b], m, 1);
  }

  private input(buf: Uint8Array, off: number, len: number): void {
    if (len < 34 || buf[off + 12] !== 0x08 || buf[off + 13] !== 0x00 || buf[off + 23] !== 6) return;
    const ihl = (buf[off + 14] & 0xf) * 4;
    const total = (buf[off + 16] << 8) | buf[off + 17];
    const tcpOff = off + 14 + ihl;
    const v = this.view.wrap(buf, tcpOff, total - ihl);
    if (parseTcp(v, this.seg) !== 0) return;
    this.observe?.(this.seg);
    const c = this.connections.get(this.seg.dstPort);
    if (c === undefined) return;
    c.endpoint.input(this.seg, buf, this.seg.payloadOffset, this.seg.payloadLength, this.clock.now());
    c.settle();
  }
}

export { writeIpv4 };
