/**
 * The DNS service at net+3 (10.0.2.3:53, UDP and TCP): a caching forwarder.
 *
 * Size: over 600 lines, a good part of it the theory of operation below. What
 * stands apart already does (sockets in upstream.ts, resolv.conf in
 * resolv-conf.ts, the policy's name guard in src/policy); the rest is one
 * resolution loop (coalescing, failover, deadlines, TCP fallback, caching)
 * whose steps share its state.
 *
 * Theory of operation
 * -------------------
 * slirp4netns rewrites packets to 10.0.2.3:53 towards the first nameserver
 * of the host's resolv.conf: no failover (slirp4netns #347), no cache, and a
 * guest query dies with that one server. Here the guest's query is answered
 * by a real forwarder:
 *
 *   guest query ─▶ validate ─▶ static? ─▶ cache? ─▶ in flight? ─▶ upstream loop
 *                     │           │          │           │              │
 *                  drop/FORMERR  answer    answer      share        reply/SERVFAIL
 *                  /NOTIMP       (AA)     (TTL aged)    result      (then cached)
 *
 * Validation. A message under 12 bytes or with QR set is dropped: replying
 * to a reply could loop, and to noise only reflects noise. So is one whose
 * question cannot be read (there is nothing to echo that a client would match
 * against). A readable question with a broken rest, qdcount ≠ 1, or a
 * misplaced OPT gets FORMERR; opcodes other than QUERY and zone transfers
 * (one reply message cannot carry an AXFR stream) get NOTIMP.
 *
 * Upstream loop. Servers are every nameserver of resolv.conf, in file order,
 * except that a server which timed out or failed at the network level within
 * the last `serverPenaltyMs` goes to the back (dnsmasq does similar; without
 * it a dead first resolver costs every query a full per-server timeout).
 * Rounds over the list are repeated `attempts` times (resolv.conf
 * `options attempts:`, default 2 as glibc). Each attempt:
 * - copies the query (trailing bytes after the last record dropped) under a
 *   fresh random ID (crypto.randomInt), sent from a fresh socket with a
 *   kernel-chosen random port (upstream.ts): RFC 5452 §9.
 * - accepts only a reply with that ID, QR set, and the same question (name
 *   compared ASCII-case-insensitively, type, class): RFC 5452 §4.2.
 * - UDP for a UDP guest query; a reply with TC set is asked again over TCP
 *   to the same server (RFC 7766 §5); if that fails the truncated reply is
 *   used as it is (not cached). A TCP guest query goes upstream over TCP.
 * - NOERROR and NXDOMAIN are final. SERVFAIL, REFUSED, NOTIMP, FORMERR, a
 *   malformed reply, a timeout or a network error move on to the next
 *   server (`failovers`). When every attempt failed, the guest gets the last
 *   upstream error rcode or, with none, SERVFAIL.
 * - the attempt timeout is min(perServerTimeoutMs, time left). The whole
 *   loop runs against a deadline slightly before queryDeadlineMs (the slack
 *   absorbs timer lateness), so SERVFAIL reaches the guest before its own
 *   5 s resolver timeout (glibc `timeout:5`) gives up on us.
 *
 * Cache (lru-cache, bounded by entries and bytes). Key: lowercased wire
 * qname, qtype, qclass, and the query bits that change the answer: RD, CD,
 * whether an OPT was sent (a reply to a non-EDNS query must not carry OPT,
 * RFC 6891 §7) and DO (RFC 3225: DNSSEC records only with DO). The transport
 * is not in the key: the cache stores the full reply and trims per guest.
 * - positive (NOERROR with answers): for the smallest TTL of any record in
 *   the reply (OPT excepted), capped at maxTtlS (1 day). Taking every
 *   section's minimum means no record's TTL can count below zero.
 * - negative (NXDOMAIN, or NOERROR without answers = NODATA): for min(SOA
 *   TTL, SOA MINIMUM) of the authority SOA (RFC 2308 §5), capped at
 *   maxNegativeTtlS (3 h, RFC 2308 §5's upper suggestion); without an SOA,
 *   not cached (RFC 2308 §5 "SHOULD NOT").
 * - never cached: TC replies, other rcodes, TTL 0.
 * - a hit is served with every TTL decremented by whole seconds spent in the
 *   cache (RFC 1035 §7.4); an entry is served while now < stored + TTL, so a
 *   served TTL is never 0.
 *
 * Replies to the guest are copies with the guest's ID and the guest's
 * question bytes (its letter case, for clients using 0x20 randomisation). A
 * UDP reply larger than the guest can take (512 without OPT, else its OPT
 * payload size, RFC 6891 §6.2.5) becomes header + question with TC set: the
 * guest retries over TCP and finds the full reply in the cache.
 *
 * Identical queries in flight share one upstream exchange (`coalesced`).
 * The number of distinct exchanges in flight is bounded (`maxInflight`);
 * beyond it queries are dropped and counted, never queued.
 *
 * Time, both injected: `now()` (the stack's clock) ages cache entries;
 * `socketNow()` (default performance.now) measures deadlines and server
 * penalties, which must follow the real timers the sockets time out on
 * whatever a test's clock says.
 */
import { randomInt } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { UsernetError } from '../errors.js';
import {
  DNS_HEADER_LEN,
  DNS_MAX_MESSAGE_LEN,
  DNS_MAX_UDP_LEN,
  DNS_RCODE_MASK,
  DnsClass,
  DnsCursor,
  DnsError,
  DnsFlag,
  DnsOpcode,
  DnsRcode,
  DnsType,
  DnsView,
  decrementDnsTtls,
  dnsNameKey,
  dnsNameText,
  dnsReplyFlags,
  dnsReplyLength,
  emitDnsReply,
  newDnsScan,
  scanDns,
  type DnsAnswerRepr,
  type DnsScan,
} from '../wire/dns.js';
import { ResolvConfSource, type ResolvConf } from './resolv-conf.js';
import { StaticRecords } from './static-records.js';
import { Upstream, UpstreamStatus, type ResolverSockets, type UpstreamResult, type UpstreamTarget } from './upstream.js';

export interface DnsForwarderOptions {
  /** Default /etc/resolv.conf; stat'ed at most once a second, re-read on change. */
  resolvConfPath?: string;
  /** Cache size in entries (default 4096). 0 disables the cache. */
  cacheEntries?: number;
  /** Cache size in bytes of stored replies (default 8 MiB). */
  cacheBytes?: number;
  /** name → IPv4/IPv6 literals, answered locally (class IN, case-insensitive). */
  staticRecords?: Record<string, string[]>;
  /** TTL of static answers (default 60 s). */
  staticTtlS?: number;
  /** The guest gets a reply (SERVFAIL if nothing better) within this (default 5000). */
  queryDeadlineMs?: number;
  /** One upstream attempt's timeout (default 1500). */
  perServerTimeoutMs?: number;
  /** Port of every upstream without a port of its own (default 53). */
  upstreamPort?: number;
  /** Where the sockets to the resolvers come from: the stack's HostNetwork (realHost in src/nat/host.ts). */
  sockets: ResolverSockets;
  /** Source address of IPv4 upstream sockets (--outbound-addr). */
  localAddress?: string;
  /** Source address of IPv6 upstream sockets (--outbound-addr6). */
  localAddress6?: string;
  /** Cap on positive cache TTLs (default 86400 s). */
  maxTtlS?: number;
  /** Cap on negative cache TTLs (default 10800 s). */
  maxNegativeTtlS?: number;
  /** Distinct upstream exchanges in flight (default 512); more queries are dropped. */
  maxInflight?: number;
  /** How long a server that timed out or failed stays at the back of the list (default 30000). */
  serverPenaltyMs?: number;
  /** resolv.conf stat interval (default 1000 ms, as libslirp). */
  resolvConfCheckIntervalMs?: number;
  /** Milliseconds on a monotonic scale, for cache ages (default performance.now). */
  now?: () => number;
  /** Milliseconds on the scale of the sockets' real timers, for deadlines and penalties (default performance.now). */
  socketNow?: () => number;
  /** The egress policy's view of names (the stack's); none by default. */
  names?: DnsNameGuard;
}

/**
 * What the egress policy (src/policy/) needs from the forwarder: a name no
 * rule lets any flow reach gets NXDOMAIN before anything is asked upstream,
 * and every reply given to the guest reports the addresses it named, with
 * the CNAME chain that led to them, so that flows to them match name rules.
 */
export interface DnsNameGuard {
  /** Whether a policy is in force now; without one the forwarder neither asks nor reports (no work per query). */
  active(): boolean;
  /** false: the guest gets NXDOMAIN for `name` (presentation form). */
  allows(name: string): boolean;
  /** A reply gave `addresses` (IPv4 u32, IPv6 16 bytes) for `names` (the question's name, then its CNAME targets) for `ttlS`. */
  answered(names: string[], addresses: Array<number | Uint8Array>, ttlS: number): void;
}

export type DnsTransport = 'udp' | 'tcp';

export interface DnsForwarderStats {
  queries: number;
  queriesUdp: number;
  queriesTcp: number;
  cacheHits: number;
  cacheMisses: number;
  /** Queries that joined an identical one already in flight. */
  coalesced: number;
  /** Messages sent upstream (UDP and TCP, TCP fallbacks included). */
  upstreamQueries: number;
  upstreamTimeouts: number;
  /** ECONNREFUSED, resets, EOF, malformed replies. */
  upstreamErrors: number;
  /** Attempts after the first for one query. */
  failovers: number;
  /** SERVFAIL replies sent to the guest. */
  servfails: number;
  /** FORMERR replies sent to the guest. */
  formerrs: number;
  /** NOTIMP replies sent to the guest. */
  notimps: number;
  staticAnswers: number;
  /** TC replies from upstream retried over TCP. */
  tcpFallbacks: number;
  /** UDP replies cut to header + question with TC because the guest could not take the size. */
  truncatedReplies: number;
  /** Queries answered with nothing (malformed, a reply, over maxInflight, or closed). */
  dropped: number;
  /** NXDOMAIN for names the egress policy lets nothing reach. */
  refusedByPolicy: number;
}

function newStats(): DnsForwarderStats {
  return {
    queries: 0,
    queriesUdp: 0,
    queriesTcp: 0,
    cacheHits: 0,
    cacheMisses: 0,
    coalesced: 0,
    upstreamQueries: 0,
    upstreamTimeouts: 0,
    upstreamErrors: 0,
    failovers: 0,
    servfails: 0,
    formerrs: 0,
    notimps: 0,
    staticAnswers: 0,
    tcpFallbacks: 0,
    truncatedReplies: 0,
    dropped: 0,
    refusedByPolicy: 0,
  };
}

interface CacheEntry {
  /** The upstream reply as received (its ID and question case are replaced per guest). */
  msg: Uint8Array;
  storedAtMs: number;
  expiresAtMs: number;
}

/** The result of resolving one question: an upstream reply, or an rcode to synthesize. */
type Resolution = { reply: Uint8Array; rcode: -1 } | { reply: null; rcode: number } | null;

/** Names a reply's CNAME chain may add (the question's name included). */
const MAX_CNAME_CHAIN = 16;

/** Keeps SERVFAIL ahead of the guest's timeout despite timer lateness. */
const DEADLINE_SLACK_MS = 250;

export class DnsForwarder {
  readonly stats: DnsForwarderStats = newStats();
  private readonly resolvConf: ResolvConfSource;
  private readonly upstream: Upstream;
  private readonly statics: StaticRecords;
  private readonly cache: LRUCache<string, CacheEntry> | null;
  private readonly inflight = new Map<string, Promise<Resolution>>();
  /** `address#port` → socketNow() until which the server goes last. */
  private readonly penalties = new Map<string, number>();
  private readonly now: () => number;
  private readonly socketNow: () => number;
  private readonly staticTtlS: number;
  private readonly queryDeadlineMs: number;
  private readonly perServerTimeoutMs: number;
  private readonly upstreamPort: number;
  private readonly maxTtlS: number;
  private readonly maxNegativeTtlS: number;
  private readonly maxInflight: number;
  private readonly serverPenaltyMs: number;
  private readonly names: DnsNameGuard | null;
  private readonly cursor = new DnsCursor();
  private closed = false;

  /** Throws UsernetError ERR_USERNET_INVALID_OPTION for bad options. */
  constructor(opts: DnsForwarderOptions) {
    const cacheEntries = intOption('cacheEntries', opts.cacheEntries, 4096, 0);
    const cacheBytes = intOption('cacheBytes', opts.cacheBytes, 8 * 1024 * 1024, DNS_MAX_MESSAGE_LEN);
    this.staticTtlS = intOption('staticTtlS', opts.staticTtlS, 60, 0);
    this.queryDeadlineMs = intOption('queryDeadlineMs', opts.queryDeadlineMs, 5000, 1);
    this.perServerTimeoutMs = intOption('perServerTimeoutMs', opts.perServerTimeoutMs, 1500, 1);
    this.upstreamPort = intOption('upstreamPort', opts.upstreamPort, 53, 1);
    if (this.upstreamPort > 65535) throw invalid('upstreamPort must be ≤ 65535');
    this.maxTtlS = intOption('maxTtlS', opts.maxTtlS, 86400, 0);
    this.maxNegativeTtlS = intOption('maxNegativeTtlS', opts.maxNegativeTtlS, 10800, 0);
    this.maxInflight = intOption('maxInflight', opts.maxInflight, 512, 1);
    this.serverPenaltyMs = intOption('serverPenaltyMs', opts.serverPenaltyMs, 30_000, 0);
    this.now = opts.now ?? (() => performance.now());
    this.socketNow = opts.socketNow ?? (() => performance.now());
    this.names = opts.names ?? null;
    this.statics = new StaticRecords(opts.staticRecords ?? {});
    this.cache =
      cacheEntries === 0
        ? null
        : new LRUCache<string, CacheEntry>({
            max: cacheEntries,
            maxSize: cacheBytes,
            sizeCalculation: (e) => e.msg.length + 64,
          });
    this.resolvConf = new ResolvConfSource({
      path: opts.resolvConfPath,
      checkIntervalMs: opts.resolvConfCheckIntervalMs,
    });
    this.upstream = new Upstream({ sockets: opts.sockets, localAddress: opts.localAddress, localAddress6: opts.localAddress6 });
  }

  /**
   * The reply to send back to the guest for one query message (a UDP payload,
   * or one message of a TCP stream without its length prefix), or null to
   * send nothing. Never rejects. `message` is copied before the first await.
   */
  async query(message: Uint8Array, transport: DnsTransport): Promise<Uint8Array | null> {
    const reply = await this.answer(message, transport);
    if (reply !== null && this.names?.active() === true) this.reportAnswers(reply);
    return reply;
  }

  /** query() without the report to the name guard. */
  private async answer(message: Uint8Array, transport: DnsTransport): Promise<Uint8Array | null> {
    const st = this.stats;
    st.queries++;
    if (transport === 'tcp') st.queriesTcp++;
    else st.queriesUdp++;
    if (this.closed) return this.drop();

    const q = new Uint8Array(message.length);
    q.set(message);
    const view = new DnsView().wrap(q, 0, q.length);
    if (view.check() !== DnsError.OK || view.qr) return this.drop();
    const scan = newDnsScan();
    const code = scanDns(q, 0, q.length, scan);
    if (view.opcode !== DnsOpcode.QUERY) return this.errorReply(q, scan.questionEnd, DnsRcode.NOTIMP);
    if (view.qdcount !== 1) return this.errorReply(q, -1, DnsRcode.FORMERR);
    if (scan.questionEnd < 0) return this.drop();
    if (code !== DnsError.OK) return this.errorReply(q, scan.questionEnd, DnsRcode.FORMERR);
    if (scan.qtype === DnsType.AXFR || scan.qtype === DnsType.IXFR) {
      return this.errorReply(q, scan.questionEnd, DnsRcode.NOTIMP);
    }
    // scan passed: the name is well formed.
    const nameKey = dnsNameKey(q, 0, q.length, DNS_HEADER_LEN) as string;
    if (this.names?.active() === true && !this.names.allows(dnsNameText(q, 0, q.length, DNS_HEADER_LEN) as string)) {
      st.refusedByPolicy++;
      return this.errorReply(q, scan.questionEnd, DnsRcode.NXDOMAIN);
    }
    const limit = transport === 'udp' ? udpLimit(scan) : DNS_MAX_MESSAGE_LEN;

    if (this.statics.size > 0 && (scan.qclass === DnsClass.IN || scan.qclass === DnsClass.ANY)) {
      const entry = this.statics.lookup(nameKey);
      if (entry !== undefined) {
        st.staticAnswers++;
        return this.staticReply(q, scan, entry.a, entry.aaaa, limit);
      }
    }

    const key = cacheKey(nameKey, scan, view);
    const cached = this.fromCache(key, q, scan, limit);
    if (cached !== null) return cached;
    st.cacheMisses++;

    let pending = this.inflight.get(key);
    if (pending !== undefined) {
      st.coalesced++;
    } else {
      if (this.inflight.size >= this.maxInflight) return this.drop();
      pending = this.resolve(q, scan, transport, key);
      this.inflight.set(key, pending);
      const p = pending;
      const forget = (): void => {
        if (this.inflight.get(key) === p) this.inflight.delete(key);
      };
      p.then(forget, forget);
    }
    // resolve() handles every failure it knows of; anything else must not become an unhandled rejection.
    const res = await pending.catch((): Resolution => ({ reply: null, rcode: DnsRcode.SERVFAIL }));
    if (res === null) return this.drop();
    if (res.reply === null) return this.errorReply(q, scan.questionEnd, res.rcode);
    return this.toGuest(res.reply, q, scan, limit);
  }

  /**
   * Tells the name guard which addresses `reply` gave: the A and AAAA records
   * (class IN) of the answer section whose owner is the question's name or a
   * name a CNAME of the chain led to (at most MAX_CNAME_CHAIN names), with
   * the smallest TTL along the way.
   */
  private reportAnswers(m: Uint8Array): void {
    if (m.length < DNS_HEADER_LEN || (m[3] & DNS_RCODE_MASK) !== DnsRcode.NOERROR) return;
    const qd = (m[4] << 8) | m[5];
    const an = (m[6] << 8) | m[7];
    const c = this.cursor.start(m, 0, m.length);
    if (qd !== 1 || an === 0 || c.question() !== DnsError.OK) return;
    const first = dnsNameText(m, 0, m.length, c.nameOff);
    if (first === null) return;
    const chain = [first.toLowerCase()];
    const addresses: Array<number | Uint8Array> = [];
    let ttl = Infinity;
    for (let i = 0; i < an && c.record() === DnsError.OK; i++) {
      if (c.klass !== DnsClass.IN) continue;
      const owner = dnsNameText(m, 0, m.length, c.nameOff)?.toLowerCase();
      if (owner === undefined || !chain.includes(owner)) continue;
      if (c.type === DnsType.CNAME) {
        const target = dnsNameText(m, 0, m.length, c.rdOff)?.toLowerCase();
        if (target !== undefined && !chain.includes(target) && chain.length < MAX_CNAME_CHAIN) chain.push(target);
      } else if (c.type === DnsType.A && c.rdLen === 4) {
        addresses.push(((m[c.rdOff] << 24) | (m[c.rdOff + 1] << 16) | (m[c.rdOff + 2] << 8) | m[c.rdOff + 3]) >>> 0);
      } else if (c.type === DnsType.AAAA && c.rdLen === 16) {
        addresses.push(m.slice(c.rdOff, c.rdOff + 16));
      } else {
        continue;
      }
      if (c.ttl < ttl) ttl = c.ttl;
    }
    if (addresses.length > 0) this.names!.answered(chain, addresses, ttl);
  }

  /** Closes every upstream socket and cancels every timer; later queries get null. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache?.clear();
    await this.upstream.close();
    await this.resolvConf.idle();
  }

  private drop(): null {
    this.stats.dropped++;
    return null;
  }

  /** Header + the question (when questionEnd ≥ 0) with `rcode`. */
  private errorReply(q: Uint8Array, questionEnd: number, rcode: number): Uint8Array {
    if (rcode === DnsRcode.SERVFAIL) this.stats.servfails++;
    else if (rcode === DnsRcode.FORMERR) this.stats.formerrs++;
    else if (rcode === DnsRcode.NOTIMP) this.stats.notimps++;
    const qEnd = questionEnd < 0 ? DNS_HEADER_LEN : questionEnd;
    const out = new Uint8Array(qEnd);
    emitDnsReply(q, 0, qEnd, dnsReplyFlags(readU16(q, 2), rcode), NO_ANSWERS, out, 0);
    return out;
  }

  private staticReply(
    q: Uint8Array,
    scan: DnsScan,
    a: readonly Uint8Array[],
    aaaa: readonly Uint8Array[],
    limit: number,
  ): Uint8Array {
    const answers: DnsAnswerRepr[] = [];
    const any = scan.qtype === DnsType.ANY;
    if (scan.qtype === DnsType.A || any) {
      for (const rdata of a) answers.push({ type: DnsType.A, klass: DnsClass.IN, ttl: this.staticTtlS, rdata });
    }
    if (scan.qtype === DnsType.AAAA || any) {
      for (const rdata of aaaa) answers.push({ type: DnsType.AAAA, klass: DnsClass.IN, ttl: this.staticTtlS, rdata });
    }
    const qLen = scan.questionEnd - DNS_HEADER_LEN;
    const out = new Uint8Array(dnsReplyLength(qLen, answers));
    emitDnsReply(q, 0, scan.questionEnd, dnsReplyFlags(readU16(q, 2), DnsRcode.NOERROR, DnsFlag.AA), answers, out, 0);
    return this.fit(out, scan, limit);
  }

  private fromCache(key: string, q: Uint8Array, scan: DnsScan, limit: number): Uint8Array | null {
    if (this.cache === null) return null;
    const entry = this.cache.get(key);
    if (entry === undefined) return null;
    const now = this.now();
    if (now >= entry.expiresAtMs) {
      this.cache.delete(key);
      return null;
    }
    this.stats.cacheHits++;
    const out = entry.msg.slice();
    decrementDnsTtls(out, 0, out.length, Math.floor((now - entry.storedAtMs) / 1000));
    return this.toGuestOwned(out, q, scan, limit);
  }

  private toGuest(reply: Uint8Array, q: Uint8Array, scan: DnsScan, limit: number): Uint8Array {
    return this.toGuestOwned(reply.slice(), q, scan, limit);
  }

  /** Gives `out` (a copy) the guest's ID and question bytes, then fits it to `limit`. */
  private toGuestOwned(out: Uint8Array, q: Uint8Array, scan: DnsScan, limit: number): Uint8Array {
    out[0] = q[0];
    out[1] = q[1];
    // The reply's question matched the guest's case-insensitively, so it has the same length.
    out.set(q.subarray(DNS_HEADER_LEN, scan.questionEnd), DNS_HEADER_LEN);
    return this.fit(out, scan, limit);
  }

  /** RFC 1035 §4.2.1 / RFC 6891 §7: a UDP reply too big for the guest becomes header + question with TC. */
  private fit(out: Uint8Array, scan: DnsScan, limit: number): Uint8Array {
    if (out.length <= limit) return out;
    this.stats.truncatedReplies++;
    const cut = new Uint8Array(scan.questionEnd);
    cut.set(out.subarray(0, scan.questionEnd));
    writeU16(cut, 2, readU16(out, 2) | DnsFlag.TC);
    writeU16(cut, 4, 1);
    writeU16(cut, 6, 0);
    writeU16(cut, 8, 0);
    writeU16(cut, 10, 0);
    return cut;
  }

  private async resolve(q: Uint8Array, scan: DnsScan, transport: DnsTransport, key: string): Promise<Resolution> {
    const startMs = this.socketNow();
    const deadlineMs = startMs + this.queryDeadlineMs - Math.min(DEADLINE_SLACK_MS, this.queryDeadlineMs / 10);
    const conf = await this.resolvConf.get();
    const servers = this.order(conf);
    const rounds = conf.attempts ?? 2;
    // Without trailing bytes; the ID is replaced per attempt.
    const out = q.slice(0, scan.end);
    const replyScan = newDnsScan();
    let lastRcode: number = DnsRcode.SERVFAIL;
    let attempt = 0;
    for (let round = 0; round < rounds; round++) {
      for (const server of servers) {
        if (this.closed) return null;
        const leftMs = deadlineMs - this.socketNow();
        if (leftMs < 1) return { reply: null, rcode: lastRcode };
        if (attempt > 0) this.stats.failovers++;
        attempt++;
        const timeoutMs = Math.min(this.perServerTimeoutMs, leftMs);
        const res = await this.exchange(server, out, scan, transport, timeoutMs, deadlineMs);
        if (res.status === UpstreamStatus.CLOSED) return null;
        if (res.status === UpstreamStatus.TIMEOUT) {
          this.stats.upstreamTimeouts++;
          this.penalize(server);
          continue;
        }
        if (res.status === UpstreamStatus.NET_ERROR || res.reply === null) {
          this.stats.upstreamErrors++;
          this.penalize(server);
          continue;
        }
        const reply = res.reply;
        if (scanDns(reply, 0, reply.length, replyScan) !== DnsError.OK) {
          this.stats.upstreamErrors++;
          continue;
        }
        const rcode = readU16(reply, 2) & DNS_RCODE_MASK;
        if (rcode === DnsRcode.NOERROR || rcode === DnsRcode.NXDOMAIN) {
          this.penalties.delete(serverKey(server));
          this.store(key, reply, replyScan);
          return { reply, rcode: -1 };
        }
        lastRcode = rcode;
      }
    }
    return { reply: null, rcode: lastRcode };
  }

  /** One attempt with one server; a UDP TC reply is asked again over TCP (RFC 7766 §5). */
  private async exchange(
    server: UpstreamTarget,
    query: Uint8Array,
    scan: DnsScan,
    transport: DnsTransport,
    timeoutMs: number,
    deadlineMs: number,
  ): Promise<UpstreamResult> {
    this.stats.upstreamQueries++;
    if (transport === 'tcp') return this.send(server, query, scan, 'tcp', timeoutMs);
    const res = await this.send(server, query, scan, 'udp', timeoutMs);
    if (res.reply === null || (readU16(res.reply, 2) & DnsFlag.TC) === 0) return res;
    const leftMs = deadlineMs - this.socketNow();
    if (leftMs < 1 || this.closed) return res;
    this.stats.tcpFallbacks++;
    this.stats.upstreamQueries++;
    const full = await this.send(server, query, scan, 'tcp', Math.min(this.perServerTimeoutMs, leftMs));
    return full.status === UpstreamStatus.REPLY ? full : res;
  }

  private send(
    server: UpstreamTarget,
    query: Uint8Array,
    scan: DnsScan,
    via: DnsTransport,
    timeoutMs: number,
  ): Promise<UpstreamResult> {
    const msg = query.slice();
    const id = randomInt(0, 0x1_0000);
    writeU16(msg, 0, id);
    const accept = (reply: Uint8Array): boolean => isReplyTo(reply, id, msg, scan.questionEnd);
    return via === 'tcp'
      ? this.upstream.tcp(server, msg, accept, timeoutMs)
      : this.upstream.udp(server, msg, accept, timeoutMs);
  }

  private store(key: string, reply: Uint8Array, scan: DnsScan): void {
    if (this.cache === null) return;
    const flags = readU16(reply, 2);
    if ((flags & DnsFlag.TC) !== 0) return;
    const rcode = flags & DNS_RCODE_MASK;
    const ancount = readU16(reply, 6);
    let ttlS: number;
    if (rcode === DnsRcode.NOERROR && ancount > 0) {
      ttlS = Math.min(scan.minTtl, this.maxTtlS);
    } else if (rcode === DnsRcode.NXDOMAIN || rcode === DnsRcode.NOERROR) {
      // RFC 2308 §5; minTtl ≤ the SOA's own TTL, and keeps every other record non-negative.
      if (scan.negativeTtl < 0) return;
      ttlS = Math.min(scan.negativeTtl, scan.minTtl, this.maxNegativeTtlS);
    } else {
      return;
    }
    if (!(ttlS > 0)) return;
    const now = this.now();
    this.cache.set(key, { msg: reply.slice(0, scan.end), storedAtMs: now, expiresAtMs: now + ttlS * 1000 });
  }

  /** resolv.conf order, with recently failed servers moved to the back (in their order). */
  private order(conf: ResolvConf): UpstreamTarget[] {
    const nowMs = this.socketNow();
    const good: UpstreamTarget[] = [];
    const bad: UpstreamTarget[] = [];
    for (const ns of conf.nameservers) {
      const t: UpstreamTarget = { address: ns.address, family: ns.family, port: ns.port ?? this.upstreamPort };
      const until = this.penalties.get(serverKey(t));
      if (until !== undefined && until > nowMs) bad.push(t);
      else good.push(t);
    }
    for (const [k, until] of this.penalties) if (until <= nowMs) this.penalties.delete(k);
    return good.concat(bad);
  }

  private penalize(server: UpstreamTarget): void {
    if (this.serverPenaltyMs > 0) this.penalties.set(serverKey(server), this.socketNow() + this.serverPenaltyMs);
  }
}

/**
 * RFC 5452 §4.2: the ID we chose, QR set, one question equal to ours. The
 * first question of any message holds no compression pointer (see
 * src/wire/dns.ts), and label lengths (≤ 63) are never ASCII letters, so a
 * byte-wise ASCII-case-insensitive compare of the question bytes is exact.
 */
function isReplyTo(reply: Uint8Array, id: number, query: Uint8Array, questionEnd: number): boolean {
  if (reply.length < questionEnd) return false;
  if (readU16(reply, 0) !== id || (reply[2] & 0x80) === 0 || readU16(reply, 4) !== 1) return false;
  for (let i = DNS_HEADER_LEN; i < questionEnd; i++) {
    let a = reply[i];
    let b = query[i];
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

function cacheKey(nameKey: string, scan: DnsScan, view: DnsView): string {
  const bits = (view.rd ? 1 : 0) | (view.cd ? 2 : 0) | (scan.optOff >= 0 ? 4 : 0) | (scan.ednsDo ? 8 : 0);
  return `${scan.qtype}/${scan.qclass}/${bits}/${nameKey}`;
}

function udpLimit(scan: DnsScan): number {
  // RFC 6891 §6.2.5: values below 512 are treated as 512.
  return scan.optOff >= 0 ? Math.max(DNS_MAX_UDP_LEN, scan.ednsUdpSize) : DNS_MAX_UDP_LEN;
}

function serverKey(t: UpstreamTarget): string {
  return `${t.address}#${t.port}`;
}

function intOption(name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw invalid(`${name} must be an integer ≥ ${min}`);
  return v;
}

function invalid(message: string): UsernetError {
  return new UsernetError('ERR_USERNET_INVALID_OPTION', `DnsForwarder: ${message}`);
}

function readU16(buf: Uint8Array, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

function writeU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

const NO_ANSWERS: readonly DnsAnswerRepr[] = [];
