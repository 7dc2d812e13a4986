/**
 * The only place that opens sockets on the host (docs/architecture.md,
 * Layout), the DNS forwarder's to its resolvers included (ResolverSockets): Node's
 * for listeners and port-forward datagrams, and the addon-driven ones the
 * relays use on their hot paths (native-stream.ts for TCP, native-udp.ts for
 * UDP, ping-socket.ts for ICMP echo), which are created only from here (and,
 * for an accepted port-forward connection, adopted in port-forwards.ts).
 * Keeping it in one file makes the host-facing surface easy to audit, and
 * lets tests substitute the host.
 *
 * IPv6: the IPv6 relays get their own factories (createUdp6Socket,
 * openPing6Socket), whose sockets take and give addresses as 16 bytes and can
 * never reach IPv4 (IPV6_V6ONLY); connectTcp takes IPv6 literals as it takes
 * IPv4 ones.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import { NativeUdpSocket } from './native-udp.js';
import { NativeTcpStream } from './native-stream.js';
import { PingSocket, type PingOpenError } from './ping-socket.js';
import type { HostStream, HostTcpConnectOptions } from './host-stream.js';
import type { ResolverSockets } from '../dns/upstream.js';

export type { HostStream, HostTcpConnectOptions } from './host-stream.js';

const { ENOSYS } = osConstants.errno;

/** Without the addon there are no native sockets: the relays count the drops. */
function nativeMissing(err: unknown): boolean {
  return (err as { code?: string }).code === 'ERR_USERNET_NATIVE_MISSING';
}

/** Every host socket the stack opens comes from here (ResolverSockets: the DNS forwarder's to its resolvers). */
export interface HostNetwork extends ResolverSockets {
  /** A connection to an address; 'connect' or 'error' follows, asynchronously. */
  connectTcp(options: HostTcpConnectOptions): HostStream;
  /**
   * An unconnected IPv4 datagram socket on an ephemeral port (bound to
   * `localAddress` if given) for the UDP relay, or the positive errno when
   * none could be opened (EMFILE, EADDRNOTAVAIL; ENOSYS without the addon).
   */
  createUdpSocket(localAddress?: string): HostUdpSocket | number;
  /** A listener for a TCP port forward; connections arrive paused and half-open capable. */
  listenTcp(address: string, port: number): Promise<net.Server>;
  /** A bound datagram socket for a UDP port forward (udp6 for an IPv6 address). */
  bindUdp(address: string, port: number): Promise<dgram.Socket>;
  /** An ICMP echo ("ping") socket, or why it cannot be had (net.ipv4.ping_group_range). */
  openPingSocket(localAddress?: number): HostPingSocket | string;
  /**
   * An unconnected IPv6 datagram socket on an ephemeral port (bound to
   * `localAddress`, an IPv6 literal, if given: --outbound-addr6) for the
   * UDP relay, or the positive errno when none could be opened: ENOSYS
   * without the addon, EAFNOSUPPORT when the host has no IPv6 (or the
   * address is not an IPv6 literal), EADDRNOTAVAIL, EMFILE.
   */
  createUdp6Socket(localAddress?: string): HostUdp6Socket | number;
  /**
   * An ICMPv6 echo socket (bound to `localAddress`, 16 bytes, if given), or
   * why it cannot be had: net.ipv4.ping_group_range (which governs ICMPv6
   * ping sockets too), no IPv6 on the host, no addon.
   */
  openPing6Socket(localAddress?: Uint8Array | null): HostPing6Socket | string;
  /**
   * Why the host cannot carry IPv6 at all (no IPv6 in the kernel, or not one
   * IPv6 address on any interface: disabled), or null when it can. Asked
   * once at start, for a notice; optional for substitutes.
   */
  ipv6Problem?(): string | null;
}

/** What the ICMP relay needs of a ping socket (src/nat/ping-socket.ts). */
export interface HostPingSocket {
  /** 0, or the errno of a failed send. */
  send(dst: number, buf: Uint8Array, off: number, len: number): number;
  onReply(handler: (src: number, buf: Uint8Array, off: number, len: number) => void): void;
  close(): void;
}

/**
 * What the ICMPv6 relay needs of a ping socket (src/nat/ping-socket.ts):
 * requests are ICMPv6 echo requests (type 128), header included; the kernel
 * sets the identifier to the socket's own and computes the checksum. Replies
 * (type 129) carry that identifier, and a checksum computed for the host's
 * address (the ICMPv6 pseudo header): the relay rewrites both.
 */
export interface HostPing6Socket {
  /** To dst[dstOff, dstOff+16): 0, or the errno of a failed send. */
  send(dst: Uint8Array, dstOff: number, buf: Uint8Array, off: number, len: number): number;
  /** `src` (16 bytes) and the bytes are valid only during the call. */
  onReply(handler: (src: Uint8Array, buf: Uint8Array, off: number, len: number) => void): void;
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

/** What the IPv6 UDP relay needs of its host socket (NativeUdpSocket.tryOpen6). */
export interface HostUdp6Socket {
  /** The bound port, for list_connections. */
  readonly localPort: number;
  /**
   * To (dst[dstOff, dstOff+16), dstPort): 0, or the errno of a failed send
   * (ENETUNREACH for a v4-mapped destination: the socket never reaches
   * IPv4). The bytes are copied before it returns.
   */
  send6(dst: Uint8Array, dstOff: number, dstPort: number, buf: Uint8Array, off: number, len: number): number;
  /** `src` (16 bytes) and the bytes are valid only during the call. */
  onMessage6(handler: (src: Uint8Array, srcPort: number, buf: Uint8Array, off: number, len: number) => void): void;
  /** ICMPv6 errors (port unreachable: type 1, code 4, ECONNREFUSED); `dst` (16 bytes) is valid only during the call. */
  onIcmpError6(handler: (dst: Uint8Array, dstPort: number, errno: number, icmpType: number, icmpCode: number) => void): void;
  close(): void;
}

export const realHost: HostNetwork = {
  resolverUdpSocket(family) {
    return dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  },
  resolverTcpConnect(options) {
    return net.connect(options);
  },

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

  createUdpSocket(localAddress) {
    try {
      return NativeUdpSocket.tryOpen(localAddress);
    } catch (err) {
      if (nativeMissing(err)) return ENOSYS;
      throw err;
    }
  },

  createUdp6Socket(localAddress) {
    try {
      return NativeUdpSocket.tryOpen6(localAddress);
    } catch (err) {
      if (nativeMissing(err)) return ENOSYS;
      throw err;
    }
  },

  ipv6Problem() {
    const probe = realHost.createUdp6Socket();
    if (typeof probe === 'number') return probe === ENOSYS ? null : getSystemErrorName(-probe);
    probe.close();
    // disable_ipv6=1 everywhere leaves sockets working and no address at all, not even ::1.
    let addresses = '';
    try {
      addresses = readFileSync('/proc/net/if_inet6', 'utf8');
    } catch {
      return null;
    }
    return addresses.trim() === '' ? 'no IPv6 address on any interface' : null;
  },

  openPing6Socket(localAddress) {
    let s: PingSocket;
    try {
      s = PingSocket.open6(localAddress ?? null);
    } catch (err) {
      if (nativeMissing(err)) return 'ICMPv6 ping sockets unavailable (the native addon is not built)';
      return (err as PingOpenError).reason ?? `ICMPv6 ping sockets unavailable (${(err as Error).message})`;
    }
    return {
      send: (dst, dstOff, buf, off, len) => s.send6(dst, dstOff, buf, off, len),
      onReply: (handler) => s.onReply6(handler),
      close: () => s.close(),
    };
  },
};
