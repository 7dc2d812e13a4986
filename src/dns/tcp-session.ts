/**
 * DNS over TCP for the guest (RFC 7766): one session per guest connection to
 * net+3:53, shaped like the host socket the TCP NAT would otherwise open, so
 * the NAT relays to it unchanged. Queries are framed out of the byte stream,
 * forwarded, and answered in the order they arrived (pipelined queries are
 * answered in order, which RFC 7766 §6.2.1.1 permits).
 */
import { Duplex } from 'node:stream';
import { DnsTcpFramer, frame, TcpFramerResult } from './tcp-framing.js';

export interface DnsQueryService {
  query(message: Uint8Array, transport: 'udp' | 'tcp'): Promise<Uint8Array | null>;
}

/** Queries in flight per connection before the session stops reading. */
const MAX_PIPELINED = 64;

export class DnsTcpSession extends Duplex {
  private readonly framer = new DnsTcpFramer();
  private readonly messages: Uint8Array[] = [];
  private replies: Promise<void> = Promise.resolve();
  private inFlight = 0;

  constructor(private readonly dns: DnsQueryService) {
    super({ allowHalfOpen: true });
    // Like a socket whose connect completed at once.
    queueMicrotask(() => this.emit('connect'));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.messages.length = 0;
    if (this.framer.push(chunk, this.messages) === TcpFramerResult.OVERFLOW) {
      callback(Object.assign(new Error('DNS over TCP: oversized message'), { code: 'ECONNRESET' }));
      return;
    }
    for (const m of this.messages) this.answer(m);
    // Backpressure: hold the guest's stream while too many queries are pending.
    if (this.inFlight < MAX_PIPELINED) callback();
    else this.replies.then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    // The guest half-closed: answer what it asked, then close our side.
    this.replies.then(() => {
      this.push(null);
      callback();
    }, callback);
  }

  override _read(): void {}

  /** net.Socket's RST; here the same as destroy. */
  resetAndDestroy(): this {
    return this.destroy();
  }

  private answer(message: Uint8Array): void {
    this.inFlight++;
    const reply = this.dns.query(message, 'tcp');
    this.replies = this.replies.then(async () => {
      const r = await reply;
      this.inFlight--;
      if (r !== null && !this.destroyed) this.push(frame(r));
    });
  }
}
