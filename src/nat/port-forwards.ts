/**
 * Port forwards from the host into the guest (slirp4netns's hostfwd, added
 * through the API socket): a host listener per forward; every accepted TCP
 * connection becomes a connection the stack opens towards the guest, and every
 * UDP client a conversation relayed through the forward's socket.
 *
 * The guest sees the client's real address as the source, which is why users
 * pick slirp4netns's port handler (compat spec §4.6, §7.1); loopback clients
 * (and IPv6 clients, until the stack speaks IPv6 to the guest) appear as the
 * gateway, as in slirp4netns. Removing a forward closes its listener and
 * leaves established TCP connections alone.
 */
import type { Server, Socket } from 'node:net';
import type { Socket as DgramSocket } from 'node:dgram';
import type { AddressPlan } from '../ip/address-plan.js';
import { parseIpv4 } from '../wire/ipv4-address.js';
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
  ) {}

  /** Opens the host side; rejects (EADDRINUSE, EADDRNOTAVAIL, …) without changing anything. */
  async add(spec: PortForward): Promise<void> {
    const key = forwardKey(spec);
    if (this.active.has(key)) throw Object.assign(new Error(`${key} is already forwarded`), { code: 'EADDRINUSE' });
    // libslirp sends a forward to guest 0.0.0.0 to the first DHCP address (compat §3).
    const guestIp = spec.guestAddr === '0.0.0.0' ? this.plan.dhcpStart : parseIpv4(spec.guestAddr);
    if (guestIp === undefined) throw new RangeError(`guest address must be IPv4: ${spec.guestAddr}`);
    const entry: Active = { spec, guestIp, server: null, socket: null };
    if (spec.proto === 'tcp') {
      entry.server = await this.host.listenTcp(spec.hostAddr, spec.hostPort);
      entry.server.on('connection', (socket: Socket) => this.acceptTcp(entry, socket));
      entry.server.on('error', () => {});
    } else {
      entry.socket = await this.host.bindUdp(spec.hostAddr, spec.hostPort);
      const socket = entry.socket;
      socket.on('message', (msg, rinfo) => {
        const client = this.clientAddress(rinfo.address);
        this.udp.forwardToGuest(client, rinfo.port, guestIp, spec.guestPort, msg, (payload) => {
          socket.send(payload, rinfo.port, rinfo.address);
        });
      });
      socket.on('error', () => {});
    }
    this.active.set(key, entry);
  }

  /** Closes the listener; connections already accepted go on. */
  async remove(spec: PortForward): Promise<void> {
    const key = forwardKey(spec);
    const entry = this.active.get(key);
    if (entry === undefined) throw new Error(`${key} is not forwarded`);
    this.active.delete(key);
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
    this.tcp.accept(stream, this.clientAddress(address), port, `${address}:${port}`, entry.guestIp, entry.spec.guestPort);
    this.kick();
  }

  /** The client's address as the guest sees it. */
  private clientAddress(address: string): number {
    const v4 = parseIpv4(address.startsWith('::ffff:') ? address.slice(7) : address);
    if (v4 === undefined) return this.plan.gateway; // IPv6 client: no IPv6 towards the guest yet
    const top = v4 >>> 24;
    return top === 127 || top === 0 ? this.plan.gateway : v4;
  }
}

function forwardKey(spec: PortForward): string {
  return `${spec.proto}:${spec.hostAddr}:${spec.hostPort}`;
}
