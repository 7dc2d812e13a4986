/**
 * Port forwards from the host into the guest (slirp4netns's hostfwd, added
 * through the API socket): a host listener per forward; every accepted TCP
 * connection becomes a connection the stack opens towards the guest, and every
 * UDP client a conversation relayed through the forward's socket.
 *
 * The guest sees the client's real address as the source, which is why users
 * pick slirp4netns's port handler; loopback clients
 * appear as the gateway, as in slirp4netns.
 *
 * Over IPv6 (slirp4netns #253, which slirp4netns never did): a forward's
 * guest address may be IPv6, and its listener may be on an IPv6 host address
 * whatever the guest's family. The source the guest sees follows the guest
 * address's family: towards an IPv4 guest, IPv6 clients appear as the
 * gateway (10.0.2.2); towards an IPv6 guest, IPv6 clients appear as
 * themselves and IPv4, loopback, link-local and unspecified clients as
 * fd00::2 (the guest could route nothing else back to them).
 *
 * Removing a forward closes its listener and leaves established TCP
 * connections alone.
 */
import type { Server, Socket } from 'node:net';
import type { Socket as DgramSocket } from 'node:dgram';
import { UsernetError } from '../errors.js';
import type { AddressPlan } from '../ip/address-plan.js';
import type { Ipv6Ids } from '../ip/ipv6-ids.js';
import type { Ipv6Plan } from '../ip/ipv6-plan.js';
import { parseIpv4 } from '../wire/ipv4-address.js';
import { isLinkLocal6, isLoopback6, isUnspecified6, isV4Mapped6, parseIpv6 } from '../wire/ipv6-address.js';
import type { HostNetwork, HostStream } from './host.js';
import { NativeTcpStream } from './native-stream.js';
import type { TcpNat } from './tcp-nat.js';
import type { UdpNat } from './udp-nat.js';

export interface PortForward {
  proto: 'tcp' | 'udp';
  hostAddr: string;
  hostPort: number;
  guestAddr: string;
  guestPort: number;
}

interface Active {
  spec: PortForward;
  guestIp: number;
  server: Server | null;
  socket: DgramSocket | null;
}

export class PortForwards {
  private readonly active = new Map<string, Active>();

  constructor(
    private readonly plan: AddressPlan,
    private readonly host: HostNetwork,
    private readonly tcp: TcpNat,
    private readonly udp: UdpNat,
    private readonly kick: () => void,
    /** The IPv6 side, or null when IPv6 is off (then IPv6 guest addresses are refused). */
    private readonly v6: { ids: Ipv6Ids; plan: Ipv6Plan } | null = null,
  ) {}

  /** Opens the host side; rejects (EADDRINUSE, EADDRNOTAVAIL, …) without changing anything. */
  async add(spec: PortForward): Promise<void> {
    const key = forwardKey(spec);
    if (this.active.has(key)) throw new UsernetError('ERR_USERNET_FORWARD_EXISTS', `${key} is already forwarded`);
    const guestIp = this.guestAddress(spec.guestAddr);
    const entry: Active = { spec, guestIp, server: null, socket: null };
    try {
      await this.open(entry);
    } catch (err) {
      this.release(entry);
      throw err;
    }
    this.active.set(key, entry);
  }

  private async open(entry: Active): Promise<void> {
    const spec = entry.spec;
    const guestIp = entry.guestIp;
    if (spec.proto === 'tcp') {
      entry.server = await this.host.listenTcp(spec.hostAddr, spec.hostPort);
      entry.server.on('connection', (socket: Socket) => this.acceptTcp(entry, socket));
      entry.server.on('error', () => {});
    } else {
      entry.socket = await this.host.bindUdp(spec.hostAddr, spec.hostPort);
      const socket = entry.socket;
      socket.on('message', (msg, rinfo) => {
        const client = this.clientAddress(rinfo.address, guestIp);
        this.udp.forwardToGuest(client, rinfo.port, guestIp, spec.guestPort, msg, (payload) => {
          socket.send(payload, rinfo.port, rinfo.address);
        });
      });
      socket.on('error', () => {});
    }
  }

  /** The guest address of a forward as a number (an IPv6 one held as an id until the forward goes). */
  private guestAddress(text: string): number {
    // libslirp sends a forward to guest 0.0.0.0 to the first DHCP address.
    if (text === '0.0.0.0') return this.plan.dhcpStart;
    const v4 = parseIpv4(text);
    if (v4 !== undefined) return v4;
    const v6 = parseIpv6(text);
    if (v6 === undefined) throw new UsernetError('ERR_USERNET_INVALID_OPTION', `guest address must be an IP address: ${text}`);
    if (this.v6 === null) throw new UsernetError('ERR_USERNET_IPV6_DISABLED', `guest address ${text} is IPv6, and IPv6 is off (-6)`);
    return this.v6.ids.intern(v6);
  }

  private release(entry: Active): void {
    if (entry.guestIp < 0) this.v6!.ids.release(entry.guestIp);
  }

  /** Closes the listener; connections already accepted go on. */
  async remove(spec: PortForward): Promise<void> {
    const key = forwardKey(spec);
    const entry = this.active.get(key);
    if (entry === undefined) throw new UsernetError('ERR_USERNET_FORWARD_NOT_FOUND', `${key} is not forwarded`);
    this.active.delete(key);
    this.release(entry);
    // close() stops accepting at once; its callback would wait for every
    // accepted connection to end, and those are meant to go on.
    entry.server?.close();
    if (entry.socket !== null) await new Promise<void>((r) => entry.socket!.close(() => r()));
  }

  get size(): number {
    return this.active.size;
  }

  /** Closes every listener (stack shutdown). */
  close(): void {
    for (const entry of this.active.values()) {
      this.release(entry);
      entry.server?.close();
      entry.socket?.close();
    }
    this.active.clear();
  }

  private acceptTcp(entry: Active, socket: Socket): void {
    socket.on('error', () => {});
    const address = socket.remoteAddress ?? '';
    const port = socket.remotePort ?? 0;
    // The relay's fast path (native-stream.ts) takes over the accepted fd;
    // read the client's address first, the net.Socket is gone afterwards.
    const stream: HostStream = NativeTcpStream.canAdopt(socket) ? NativeTcpStream.adopt(socket) : socket;
    const text = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    this.tcp.accept(stream, this.clientAddress(address, entry.guestIp), port, text, entry.guestIp, entry.spec.guestPort);
    this.kick();
  }

  /**
   * The client's address as a guest at `guestIp` sees it (an IPv6 id is
   * valid until the stack's next sweep: the flow or pair that keeps it
   * acquires it).
   */
  private clientAddress(address: string, guestIp: number): number {
    const v4 = parseIpv4(address.startsWith('::ffff:') ? address.slice(7) : address);
    if (guestIp >= 0) {
      if (v4 === undefined) return this.plan.gateway; // an IPv6 client of an IPv4 guest
      const top = v4 >>> 24;
      return top === 127 || top === 0 ? this.plan.gateway : v4;
    }
    const v6 = this.v6!;
    const zone = address.indexOf('%');
    const b = v4 === undefined ? parseIpv6(zone < 0 ? address : address.slice(0, zone)) : undefined;
    if (b === undefined || isLoopback6(b, 0) || isUnspecified6(b, 0) || isLinkLocal6(b, 0) || isV4Mapped6(b, 0)) return v6.plan.gateway;
    return v6.ids.id(b, 0);
  }
}

function forwardKey(spec: PortForward): string {
  return `${spec.proto}:${spec.hostAddr}:${spec.hostPort}`;
}
