/**
 * The only place that opens sockets on the host (DESIGN.md, Layout): Node's
 * for listeners and port-forward datagrams, and the addon-driven ones the
 * relays use on their hot paths (native-stream.ts for TCP, native-udp.ts for
 * UDP, ping-socket.ts for ICMP echo), which are created only from here (and,
 * for an accepted port-forward connection, adopted in port-forwards.ts).
 * Keeping it in one file makes the host-facing surface easy to audit, and
 * lets tests substitute the host.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import { NativeUdpSocket } from './native-udp.js';
import { NativeTcpStream } from './native-stream.js';
import { PingSocket } from './ping-socket.js';

const { EAFNOSUPPORT, ENOSYS } = osConstants.errno;

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

export interface HostNetwork {
  /** A connection to an address; 'connect' or 'error' follows, asynchronously. */
  connectTcp(options: HostTcpConnectOptions): HostStream;
  /**
   * An unconnected IPv4 datagram socket on an ephemeral port (bound to
   * `localAddress` if given) for the UDP relay, or the positive errno when
   * none could be opened (EMFILE, EADDRNOTAVAIL; ENOSYS without the addon).
   */
  createUdpSocket(localAddress?: string): HostUdpSocket | number;
  /** The same over IPv6 (IPV6_V6ONLY; `localAddress` from --outbound-addr6); EAFNOSUPPORT without IPv6 on the host. */
  createUdp6Socket(localAddress?: string): HostUdp6Socket | number;
  /** A listener for a TCP port forward; connections arrive paused and half-open capable. */
  listenTcp(address: string, port: number): Promise<net.Server>;
  /** A bound datagram socket for a UDP port forward (udp6 for an IPv6 address). */
  bindUdp(address: string, port: number): Promise<dgram.Socket>;
  /** An ICMP echo ("ping") socket, or why it cannot be had (net.ipv4.ping_group_range). */
  openPingSocket(localAddress?: number): HostPingSocket | string;
}

/** What the ICMP relay needs of a ping socket (src/nat/ping-socket.ts). */
export interface HostPingSocket {
  /** 0, or the errno of a failed send. */
  send(dst: number, buf: Uint8Array, off: number, len: number): number;
  onReply(handler: (src: number, buf: Uint8Array, off: number, len: number) => void): void;
  close(): void;
}

/** What the UDP relay needs of its host socket (src/nat/native-udp.ts). */
export interface HostUdpSocket {
  /** The bound port, for list_connections. */
  readonly localPort: number;
  /** 0, or the errno of a failed send. The bytes are copied before it returns. */
  send(dst: number, dstPort: number, buf: Uint8Array, off: number, len: number): number;
  /** Bytes valid only during the call. */
  onMessage(handler: (src: number, srcPort: number, buf: Uint8Array, off: number, len: number) => void): void;
  onIcmpError(handler: (dst: number, dstPort: number, errno: number, icmpType: number, icmpCode: number) => void): void;
  close(): void;
}

/** What the UDP relay needs of an IPv6 host socket (src/nat/native-udp.ts). */
export interface HostUdp6Socket {
  readonly localPort: number;
  /** 0, or the errno of a failed send; `dst` is 16 bytes at `dstOff`. The bytes are copied before it returns. */
  send6(dst: Uint8Array, dstOff: number, dstPort: number, buf: Uint8Array, off: number, len: number): number;
  /** `src` (16 bytes) and the payload are valid only during the call. */
  onMessage6(handler: (src: Uint8Array, srcPort: number, buf: Uint8Array, off: number, len: number) => void): void;
  /** ICMPv6 errors about datagrams this socket sent; `dst` valid only during the call. */
  onIcmpError6(handler: (dst: Uint8Array, dstPort: number, errno: number, icmpType: number, icmpCode: number) => void): void;
  close(): void;
}

export const realHost: HostNetwork = {
  connectTcp(options) {
    // The relay's hot path: a raw fd polled by the addon (native-stream.ts).
    // net.Socket remains for what it cannot take (a host name, no addon).
    if (NativeTcpStream.canConnect(options)) return NativeTcpStream.connect(options);
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

  openPingSocket(localAddress) {
    try {
      return PingSocket.open(localAddress ?? 0);
    } catch (err) {
      const probe = PingSocket.probe(localAddress ?? 0);
      return probe.reason ?? `ping sockets unavailable (${(err as Error).message})`;
    }
  },

  listenTcp(address, port) {
    return new Promise((resolve, reject) => {
      // pauseOnConnect: nothing may be read before the guest-side endpoint exists.
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true });
      server.once('error', reject);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.removeListener('error', reject);
        resolve(server);
      });
    });
  },

  bindUdp(address, port) {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4' });
      socket.once('error', reject);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.removeListener('error', reject);
        resolve(socket);
      });
    });
  },

  createUdp6Socket() {
    return EAFNOSUPPORT;
  },

  createUdpSocket(localAddress) {
    try {
      return NativeUdpSocket.tryOpen(localAddress);
    } catch (err) {
      // Without the addon the relay has no UDP sockets; it counts the drops.
      if ((err as { code?: string }).code === 'ERR_USERNET_NATIVE_MISSING') return ENOSYS;
      throw err;
    }
  },
};
