/**
 * The only place that opens sockets on the host (DESIGN.md, Layout). Keeping
 * it in one file makes the host-facing surface easy to audit, and lets tests
 * substitute the host.
 */
import dgram from 'node:dgram';
import net from 'node:net';

export interface HostTcpConnectOptions {
  host: string;
  port: number;
  /** --outbound-addr: the local address every host-side socket binds to. */
  localAddress?: string;
}

/**
 * What the TCP NAT needs of a host connection: a net.Socket, or anything
 * shaped like one (the DNS-over-TCP session).
 */
export interface HostStream {
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

export interface HostNetwork {
  connectTcp(options: HostTcpConnectOptions): net.Socket;
  /** An unconnected IPv4 datagram socket on an ephemeral port (bound to `localAddress` if given). */
  createUdpSocket(localAddress?: string): dgram.Socket;
}

export const realHost: HostNetwork = {
  connectTcp(options) {
    const socket = net.connect({
      host: options.host,
      port: options.port,
      localAddress: options.localAddress,
      // The guest half-closes independently of the host (RFC 9293 §3.6): each
      // FIN is relayed on its own, so Node must not end the socket for us.
      allowHalfOpen: true,
      // Segments from the guest are relayed as they come; Nagle would only
      // add latency to request/response traffic (the guest runs its own).
      noDelay: true,
      autoSelectFamily: false,
    });
    return socket;
  },

  createUdpSocket(localAddress) {
    const socket = dgram.createSocket({ type: 'udp4' });
    socket.bind({ port: 0, address: localAddress });
    return socket;
  },
};
