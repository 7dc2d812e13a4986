/**
 * A small authoritative-looking DNS server for tests, on UDP and TCP of one
 * port on a loopback address, built with dns-packet. Nothing leaves the host.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { DnsTcpFramer, frame } from '../../src/dns/tcp-framing.js';

export type Transport = 'udp' | 'tcp';

/** What a handler returns: a packet to encode (id and question filled in if absent), raw bytes, or 'drop'. */
export type HandlerResult = Partial<dnsPacket.Packet> | Uint8Array | 'drop';
export type Handler = (q: dnsPacket.DecodedPacket, transport: Transport, raw: Uint8Array) => HandlerResult;

export interface TestServer {
  address: string;
  port: number;
  /** Queries received, by transport. */
  udpQueries: dnsPacket.DecodedPacket[];
  tcpQueries: dnsPacket.DecodedPacket[];
  handler: Handler;
  close(): Promise<void>;
}

export interface Zone {
  [name: string]: { A?: string[]; AAAA?: string[]; TXT?: string[][]; CNAME?: string; ttl?: number };
}

export const SOA = {
  type: 'SOA' as const,
  name: 'test',
  ttl: 3600,
  data: {
    mname: 'ns.test',
    rname: 'hostmaster.test',
    serial: 1,
    refresh: 7200,
    retry: 3600,
    expire: 604800,
    minimum: 60,
  },
};

/**
 * Answers from `zone`. Unknown names get NXDOMAIN with an SOA (minimum 60, TTL 3600); known names
 * without the type get NODATA with the SOA.
 */
export function zoneHandler(zone: Zone): Handler {
  return (q) => {
    const question = q.questions?.[0];
    if (question === undefined) return { rcode: 'FORMERR' } as never;
    const entry = zone[question.name.toLowerCase()];
    if (entry === undefined) return { flags: 3, authorities: [SOA] } as never;
    const ttl = entry.ttl ?? 300;
    const answers: dnsPacket.Answer[] = [];
    if (question.type === 'A') {
      for (const a of entry.A ?? []) answers.push({ type: 'A', name: question.name, ttl, data: a });
    }
    if (question.type === 'AAAA') {
      for (const a of entry.AAAA ?? []) answers.push({ type: 'AAAA', name: question.name, ttl, data: a });
    }
    if (question.type === 'TXT') {
      for (const t of entry.TXT ?? []) answers.push({ type: 'TXT', name: question.name, ttl, data: t });
    }
    if (answers.length === 0) return { authorities: [SOA] };
    return { answers };
  };
}

/** Encodes a handler result as the reply to `q`. */
export function encodeReply(q: dnsPacket.DecodedPacket, r: Partial<dnsPacket.Packet>): Uint8Array {
  const rcodeFlags = (r.flags ?? 0) & 0xf;
  const flags = (r.flags ?? 0) | dnsPacket.RECURSION_AVAILABLE | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED);
  return new Uint8Array(
    dnsPacket.encode({
      type: 'response',
      id: r.id ?? q.id,
      flags: flags | rcodeFlags,
      questions: r.questions ?? q.questions,
      answers: r.answers ?? [],
      authorities: r.authorities ?? [],
      additionals: r.additionals ?? [],
    }),
  );
}

export async function startServer(
  handler: Handler,
  opts: { address?: string; udp?: boolean; tcp?: boolean } = {},
): Promise<TestServer> {
  const address = opts.address ?? '127.0.0.1';
  const wantUdp = opts.udp ?? true;
  const wantTcp = opts.tcp ?? true;
  for (let tries = 0; tries < 20; tries++) {
    const tcp = net.createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, address, () => resolve());
    });
    const port = (tcp.address() as net.AddressInfo).port;
    const udp = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
    const bound = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, address, () => resolve(true));
    });
    if (!bound) {
      await new Promise<void>((r) => tcp.close(() => r()));
      udp.close();
      continue;
    }
    const server: TestServer = {
      address,
      port,
      udpQueries: [],
      tcpQueries: [],
      handler,
      close: async () => {
        for (const s of sockets) s.destroy();
        await Promise.all([
          new Promise<void>((r) => tcp.close(() => r())),
          new Promise<void>((r) => udp.close(() => r())),
        ]);
      },
    };
    const reply = (raw: Uint8Array, transport: Transport): Uint8Array | null => {
      const q = dnsPacket.decode(Buffer.from(raw));
      (transport === 'udp' ? server.udpQueries : server.tcpQueries).push(q);
      const r = server.handler(q, transport, raw);
      if (r === 'drop') return null;
      if (r instanceof Uint8Array) return r;
      return encodeReply(q, r);
    };
    udp.on('message', (msg, rinfo) => {
      if (!wantUdp) return;
      const out = reply(msg, 'udp');
      if (out !== null) udp.send(out, rinfo.port, rinfo.address);
    });
    const sockets = new Set<net.Socket>();
    tcp.on('connection', (sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => undefined);
      if (!wantTcp) {
        sock.destroy();
        return;
      }
      const framer = new DnsTcpFramer();
      const msgs: Uint8Array[] = [];
      sock.on('data', (chunk) => {
        msgs.length = 0;
        framer.push(chunk, msgs);
        for (const m of msgs) {
          const out = reply(m, 'tcp');
          if (out !== null) sock.write(frame(out));
        }
      });
    });
    return server;
  }
  throw new Error('startServer: no port free for both UDP and TCP');
}

/** A UDP port on `address` with nothing bound (ICMP port unreachable → ECONNREFUSED). */
export async function deadPort(address = '127.0.0.1'): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A temp dir holding a resolv.conf; `write` replaces it by rename, as systemd-resolved and NetworkManager do. */
export class TempResolvConf {
  readonly dir = mkdtempSync(join(tmpdir(), 'usernet-dns-'));
  readonly path = join(this.dir, 'resolv.conf');
  private n = 0;

  constructor(text: string) {
    writeFileSync(this.path, text);
  }

  /** In place (same inode). */
  overwrite(text: string): void {
    writeFileSync(this.path, text);
  }

  /** Write a new file, rename over the old one. */
  replace(text: string): void {
    const tmp = join(this.dir, `resolv.conf.tmp${this.n++}`);
    writeFileSync(tmp, text);
    renameSync(tmp, this.path);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function nameserverLine(s: { address: string; port: number }): string {
  return net.isIPv6(s.address) ? `nameserver [${s.address}]:${s.port}\n` : `nameserver ${s.address}#${s.port}\n`;
}

/** A query message as a stub resolver would send it. */
export function makeQuery(
  name: string,
  type: dnsPacket.RecordType,
  opts: { id?: number; edns?: number; flags?: number } = {},
): Uint8Array {
  return new Uint8Array(
    dnsPacket.encode({
      type: 'query',
      id: opts.id ?? 0x4242,
      flags: opts.flags ?? dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name }],
      additionals:
        opts.edns === undefined
          ? []
          : [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, flags: 0, options: [] } as never],
    }),
  );
}

export function decode(msg: Uint8Array | null): dnsPacket.DecodedPacket {
  if (msg === null) throw new Error('no reply');
  return dnsPacket.decode(Buffer.from(msg));
}
