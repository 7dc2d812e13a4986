/**
 * The shape of a host TCP connection, apart from host.ts (the factory) so that
 * native-stream.ts, which implements it and which host.ts creates, imports
 * this file instead of host.ts: no import cycle.
 */

export interface HostTcpConnectOptions {
  host: string;
  port: number;
  /** --outbound-addr: the local address every host-side socket binds to. */
  localAddress?: string;
}

/**
 * What the TCP NAT needs of a host connection: a net.Socket, or anything
 * shaped like one (NativeTcpStream, the DNS-over-TCP session). 'data' chunks
 * belong to the listener.
 */
export interface HostStream {
  /**
   * true: write() copies whatever it keeps, so a view of a reused buffer may
   * be passed. Otherwise the stream may keep the chunk, which must then be the
   * caller's to give away.
   */
  readonly copiesOnWrite?: boolean;
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
  write(chunk: Uint8Array): boolean;
  end(): unknown;
  destroy(): unknown;
  resetAndDestroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  readonly writableLength: number;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
}
