/**
 * The composition root: one Stack per link. It owns the output queue, the
 * single timer and the counters, and wires the protocol pieces together:
 *
 *   link batch ─▶ virtio-net header ─▶ Ethernet ─┬─▶ ARP responder
 *                                                ├─▶ IPv4 input ─┬─▶ reassembly ─┐
 *                                                │               ├─▶ ICMP  ◀─────┤
 *                                                │               └─▶ UDP, TCP ◀──┘
 *                                                └─▶ IPv6 input ─┬─▶ ICMPv6 (NDP, RA, echo)
 *                                                                └─▶ UDP (DHCPv6), TCP
 *   replies ─▶ IPv4/IPv6 output (fragments) ─▶ frame output ─▶ output queue ─▶ one writeBatch per batch
 *
 * Every frame of a batch is handled to completion before the next; the
 * frames produced meanwhile go to the link in one call at the end. IPv6
 * addresses seen meanwhile are interned as ids (ip/ipv6-ids.ts); the ones no
 * flow kept are swept after every batch, timer run and host event.
 *
 * Size: the composition root wires every layer and owns the output queue and
 * the timer, so it is long; no protocol lives here, and a large part of it is
 * the documented options.
 */
import { SystemClock, type Clock } from './clock.js';
import { DhcpServer } from './dhcp/server.js';
import { ArpResponder } from './ethernet/arp-responder.js';
import { FrameOutput } from './ethernet/frame-output.js';
import { NeighbourTable } from './ethernet/neighbours.js';
import { addressPlan, DEFAULT_NETWORK, DEFAULT_PREFIX_LENGTH, type AddressPlan } from './ip/address-plan.js';
import { IcmpResponder } from './ip/icmp-responder.js';
import { Ipv4Input } from './ip/ipv4-input.js';
import { Ipv4Output } from './ip/ipv4-output.js';
import { Ipv6Ids } from './ip/ipv6-ids.js';
import { Ipv6Input } from './ip/ipv6-input.js';
import { Ipv6Output } from './ip/ipv6-output.js';
import { ipv6Plan } from './ip/ipv6-plan.js';
import { Icmpv6Input, type Icmpv6Stats } from './ip/icmpv6-input.js';
import { RouterAdvertiser, type RouterAdvertiserStats } from './ip/router-advertiser.js';
import { Dhcpv6Server, type Dhcpv6ServerStats } from './dhcp/dhcpv6-server.js';
import { IPV6_MIN_MTU } from './wire/ipv6.js';
import { Reassembler } from './ip/reassembly.js';
import type { Link, LinkStats } from './link/link.js';
import { OutputQueue } from './link/output-queue.js';
import { PcapLink } from './link/pcap.js';
import { Drop, DropCounters } from './stats.js';
import { UdpInput } from './udp/udp-input.js';
import { ETHERNET_HEADER_LEN, EtherType, macToString, readMac } from './wire/ethernet.js';
import { ipv4ToString, parseIpv4 } from './wire/ipv4-address.js';
import { parseIpv6 } from './wire/ipv6-address.js';
import { GsoType, VNET_HDR_LEN, VnetFlag } from './wire/virtio-net.js';
import { UsernetError } from './errors.js';
import { IcmpErrors } from './ip/icmp-errors.js';
import { realHost, type HostNetwork } from './nat/host.js';
import { AddressPolicy } from './nat/policy.js';
import { releaseNativeStreamMemory } from './nat/native-stream.js';
import { TcpNat, type TcpFlowInfo, type TcpNatStats } from './nat/tcp-nat.js';
import { TcpOutput } from './nat/tcp-output.js';
import type { TcpEndpointConfig } from './tcp/contract.js';
import { TimerQueue, type TimerOwner } from './timer-queue.js';
import { DnsForwarder, type DnsForwarderStats } from './dns/forwarder.js';
import { DnsTcpSession } from './dns/tcp-session.js';
import { UdpNat, type UdpMappingInfo, type UdpNatStats } from './nat/udp-nat.js';
import { IcmpNat, type IcmpNatStats } from './nat/icmp-nat.js';
import { PortForwards, type PortForward } from './nat/port-forwards.js';
import { UdpOutput } from './udp/udp-output.js';
import { EgressPolicy, type PolicyCounters } from './policy/egress-policy.js';
import { NameBindings } from './policy/name-bindings.js';
import { parsePolicyOrThrow } from './policy/rules.js';

export const MIN_MTU = 68;
export const MAX_MTU = 65521;

export interface StackOptions {
  /** Where frames come from and go to. */
  link: Link;
  /** The guest network as `a.b.c.d/n` (n ≤ 25); default `10.0.2.0/24`. */
  network?: string;
  /** MTU the guest uses (68..65521); default the link's. */
  mtu?: number;
  /** Serve DHCP on the gateway (default true). */
  dhcp?: boolean;
  /**
   * Forbid guest traffic to the gateway (and 255.255.255.255, 127.0.0.0/8,
   * 0.0.0.0/8) from reaching the host's loopback (slirp4netns
   * --disable-host-loopback). Default false: net+2 is the host's 127.0.0.1.
   */
  disableHostLoopback?: boolean;
  /** Local IPv4 address every host-side socket binds to (--outbound-addr). */
  outboundAddress?: string;
  /**
   * Speak IPv6 to the guest (slirp4netns --enable-ipv6): Router
   * Advertisements for fd00::/64 (SLAAC, RDNSS fd00::3), NDP, stateless
   * DHCPv6, ICMPv6 echo, and IPv6 TCP/UDP relayed onto host IPv6 sockets;
   * fd00::2 is the host's ::1 unless `disableHostLoopback`. Default false.
   * On a link whose MTU is below 1280 IPv6 cannot run: it stays off and
   * `log` says so.
   */
  ipv6?: boolean;
  /** Local IPv6 address every IPv6 host-side socket binds to (--outbound-addr6). */
  outboundAddress6?: string;
  /**
   * DNS at net+3 port 53 (UDP; TCP follows): a caching forwarder to the
   * nameservers of `resolvConfPath` (default /etc/resolv.conf). `false`
   * makes net+3 an ordinary address (--disable-dns).
   */
  dns?: false | DnsOptions;
  /** Clock and timer; tests pass a ManualClock. */
  clock?: Clock;
  limits?: StackLimits;
  /** Where host sockets come from; tests may substitute it. */
  host?: HostNetwork;
  /** Tuning of the guest-side TCP endpoints (buffer sizes, timeouts). */
  tcp?: Partial<TcpEndpointConfig>;
  /**
   * Record every frame in and out to a pcap file (virtio-net header stripped,
   * super-frames whole). `fd`: the file already open for writing, taken over
   * in place of opening `path`.
   */
  pcap?: { path: string; fd?: number; maxBytes?: number };
  /** One-line notices (ping sockets not permitted, …); default: none. The CLI prints them on stderr. */
  log?: (message: string) => void;
  /** Also send per-flow events (connections opened, refused, closed; UDP mappings) to `log`. */
  debug?: boolean;
  /**
   * An egress policy: rule lines (one string with newlines, or a list) in the
   * grammar of src/policy/rules.ts, e.g. `['default deny', 'allow tcp:198.51.100.0/24:443']`.
   * New TCP connections, UDP datagrams and ICMP echo requests to a host
   * destination it denies get ICMP administratively prohibited. Invalid
   * rules throw UsernetError ERR_USERNET_INVALID_POLICY listing each line.
   * Name rules match the addresses the DNS forwarder answered for those
   * names (CNAMEs followed, for their TTL, at least 60 s); names no rule
   * allows get NXDOMAIN. Without the forwarder (`dns: false`) they match nothing.
   */
  policy?: string | readonly string[];
}

export interface StackLimits {
  /** Bytes of fragments held for reassembly, both families together (default 4 MiB). */
  reassemblyBytes?: number;
  /** Datagrams being reassembled at once, both families together (default 64). */
  reassemblyDatagrams?: number;
  /** How long an incomplete IPv4 datagram is kept (default 30 s; IPv6 keeps one 60 s, RFC 8200 §4.5). */
  reassemblyTimeoutMs?: number;
  /** Guest addresses remembered with their MAC (default 256). */
  neighbours?: number;
  /** TCP connections at once (default 16384); over it new SYNs get RST. */
  tcpFlows?: number;
  /** TCP connections waiting for their host connect (default 1024). */
  tcpConnecting?: number;
  /** How long a host connect may take before the guest gets RST (default 20 s). */
  tcpConnectTimeoutMs?: number;
  /**
   * Bytes all TCP connections together may hold in buffers, both directions
   * (default 256 MiB); over it, flows stop reading from the host and close
   * their windows until it recovers (nat/tcp-nat.ts).
   */
  tcpBufferBytes?: number;
  /** UDP mappings (guest address and port → host socket) at once (default 4096). */
  udpMappings?: number;
}

export interface DnsOptions {
  resolvConfPath?: string;
  /** Names answered locally: name → IPv4/IPv6 literals. */
  staticRecords?: Record<string, string[]>;
  /** Port of every upstream nameserver (default 53; tests run resolvers elsewhere). */
  upstreamPort?: number;
  cacheEntries?: number;
}

export interface StackAddresses {
  network: string;
  prefixLength: number;
  netmask: string;
  gateway: string;
  dns: string;
  dhcpStart: string;
  guest: string;
  gatewayMac: string;
}

export interface StackStats {
  link: LinkStats;
  rx: { frames: number; bytes: number; arp: number; ipv4: number; ipv6: number };
  drops: Record<string, number>;
  dropsTotal: number;
  arp: { requests: number; replies: number; learned: number };
  icmp: { echoRequests: number; echoReplies: number };
  reassembly: { fragments: number; reassembled: number; inProgress: number; bytesHeld: number };
  dhcp: unknown;
  tcp: TcpNatStats & { segmentsOut: number; superFramesOut: number; payloadBytesOut: number; zeroCopyBytesOut: number; resetsOut: number };
  udp: UdpNatStats & { gsoSuperFrames: number };
  icmpEcho: IcmpNatStats;
  dns: (DnsForwarderStats & { guestQueries: number; guestReplies: number }) | null;
  icmpErrors: { unreachableSent: number };
  neighbours: Array<{ ip: string; mac: string }>;
  /** Flows each rule (and the default, rule -1) allowed and denied; null without a policy. */
  policy: PolicyCounters | null;
  /** null when IPv6 is off. */
  ipv6: {
    rx: { datagrams: number };
    icmpv6: Icmpv6Stats;
    routerAdvertisements: RouterAdvertiserStats;
    dhcpv6: Dhcpv6ServerStats | null;
    /** IPv6 addresses the stack holds now (flows, mappings, neighbours; bounded by their limits). */
    addressesHeld: number;
  } | null;
}

export interface Stack {
  readonly addresses: StackAddresses;
  readonly mtu: number;
  /** Whether IPv6 runs (asked for, and the MTU allows it). */
  readonly ipv6: boolean;
  stats(): StackStats;
  /** One entry per flow: TCP connections and UDP mappings. */
  connections(): Array<TcpFlowInfo | UdpMappingInfo>;
  /**
   * Forwards a host port into the guest (slirp4netns add_hostfwd). The guest
   * sees each client's real address (loopback clients as the gateway).
   * Rejects if the host port cannot be bound.
   */
  addForward(forward: PortForward): Promise<void>;
  /** Closes a forward's listener; established connections go on. */
  removeForward(forward: PortForward): Promise<void>;
  /**
   * Gives the pages of the big preallocated buffers (the TAP's read slots,
   * the output arena: several MB that bulk traffic touches end to end) back
   * to the kernel; they fill again on use. For idle moments
   * (reclaimMemoryWhenIdle's `release`).
   */
  releaseIdleMemory(): void;
  /**
   * Replaces the egress policy atomically (null: none): flows already open go
   * on, new ones see the new rules. Throws as the `policy` option does, and
   * then leaves the old policy in place.
   */
  setPolicy(rules: string | readonly string[] | null): void;
  /** The egress policy in canonical rule lines (`default …` first), or null. */
  policy(): string[] | null;
  close(): void;
}

export function createStack(options: StackOptions): Stack {
  return new StackImpl(options);
}

class StackImpl implements Stack {
  readonly addresses: StackAddresses;
  readonly mtu: number;
  private readonly link: Link;
  private readonly plan: AddressPlan;
  private readonly clock: Clock;
  private readonly drops = new DropCounters();
  private readonly queue: OutputQueue;
  private readonly neighbours: NeighbourTable;
  private readonly arp: ArpResponder;
  private readonly icmp: IcmpResponder;
  private readonly reassembler: Reassembler;
  private readonly ipv4: Ipv4Input;
  private readonly dhcp: DhcpServer | null;
  private readonly rx = { frames: 0, bytes: 0, arp: 0, ipv4: 0, ipv6: 0 };
  readonly ipv6: boolean;
  private readonly ids = new Ipv6Ids();
  private readonly ipv6In: Ipv6Input | null;
  private readonly icmp6: Icmpv6Input | null;
  private readonly advertiser: RouterAdvertiser | null;
  private readonly dhcp6: Dhcpv6Server | null;
  private readonly vnet: boolean;
  private readonly timers = new TimerQueue<TimerOwner>();
  private readonly tcp: TcpNat;
  private readonly tcpOutput: TcpOutput;
  private readonly icmpErrors: IcmpErrors;
  private readonly udpNat: UdpNat;
  private readonly icmpNat: IcmpNat;
  private readonly forwards: PortForwards;
  private readonly udpIn: UdpInput;
  private readonly dns: DnsForwarder | null;
  private readonly addressPolicy: AddressPolicy;
  /** What the DNS forwarder answered (name → addresses), for name rules; shared by every policy. */
  private readonly nameBindings = new NameBindings();
  private closed = false;
  private inBatch = false;
  private timerAt = Infinity;
  /** `log` when `debug` is on: per-flow events and internal errors. */
  private readonly debugLog: ((message: string) => void) | undefined;

  constructor(options: StackOptions) {
    this.link = options.pcap === undefined ? options.link : new PcapLink(options.link, options.pcap.path, { maxBytes: options.pcap.maxBytes, fd: options.pcap.fd });
    this.plan = parseNetwork(options.network);
    this.mtu = options.mtu ?? options.link.mtu;
    if (!Number.isInteger(this.mtu) || this.mtu < MIN_MTU || this.mtu > MAX_MTU) {
      throw new UsernetError('ERR_USERNET_INVALID_OPTION', `mtu must be an integer in ${MIN_MTU}..${MAX_MTU}, got ${this.mtu}`);
    }
    this.clock = options.clock ?? new SystemClock();
    const limits = options.limits ?? {};
    const log = options.log;
    this.ipv6 = options.ipv6 === true && this.mtu >= IPV6_MIN_MTU;
    if (options.ipv6 === true && !this.ipv6) log?.(`usernet: IPv6 stays off: the MTU (${this.mtu}) is below IPv6's minimum of ${IPV6_MIN_MTU}`);
    this.vnet = this.link.vnetHdr;
    // Room for several 64 KiB super-frames per flush when the link takes GSO.
    this.queue = new OutputQueue(this.link, this.vnet ? 4 << 20 : 1 << 20);
    const frames = new FrameOutput(this.queue, this.vnet);
    const ipOut = new Ipv4Output(frames, this.plan, this.mtu, this.drops);
    const outbound6 = options.outboundAddress6 === undefined ? null : parseIpv6(options.outboundAddress6) ?? null;
    if (options.outboundAddress6 !== undefined && outbound6 === null) {
      throw new UsernetError('ERR_USERNET_INVALID_OPTION', `outboundAddress6 must be an IPv6 address, got ${JSON.stringify(options.outboundAddress6)}`);
    }
    const ids = this.ids;
    const plan6 = this.ipv6 ? ipv6Plan(ids, this.plan.gatewayMac) : null;
    const ip6Out = plan6 === null ? null : new Ipv6Output(frames, ids, plan6.routerMac, this.mtu, this.drops);
    this.neighbours = new NeighbourTable(limits.neighbours, ids);
    this.arp = new ArpResponder(this.plan, this.neighbours, frames, this.drops);

    this.reassembler = new Reassembler(this.drops, ids, {
      maxBytes: limits.reassemblyBytes,
      maxDatagrams: limits.reassemblyDatagrams,
      timeoutMs: limits.reassemblyTimeoutMs,
    });
    this.dhcp =
      options.dhcp === false
        ? null
        : new DhcpServer({
            network: this.plan.network,
            netmask: this.plan.netmask,
            gateway: this.plan.gateway,
            dns: [this.plan.dns],
            poolStart: this.plan.dhcpStart,
            poolSize: this.plan.dhcpEnd - this.plan.dhcpStart + 1,
            leaseTimeS: 86400,
            mtu: this.mtu,
          });
    const now = (): number => this.clock.now();
    this.icmpErrors = new IcmpErrors(this.plan, ipOut, plan6 === null ? null : { ids, plan: plan6, ip: ip6Out! }, now);
    const debugLog = options.debug === true && log !== undefined ? (m: string) => log(`usernet: ${m}`) : undefined;
    this.debugLog = debugLog;
    const policy = new AddressPolicy(this.plan, options.disableHostLoopback !== true, options.dns !== false, plan6 === null ? null : { ids, plan: plan6 });
    this.addressPolicy = policy;
    policy.debugLog = debugLog;
    if (options.policy !== undefined) policy.egress = this.buildEgress(options.policy);
    const host = options.host ?? realHost;
    this.icmpNat = new IcmpNat({
      plan: this.plan,
      policy,
      host,
      ip: ipOut,
      icmp: this.icmpErrors,
      timers: this.timers,
      drops: this.drops,
      now,
      kick: () => this.kick(),
      log: options.log ?? (() => {}),
      outboundAddress: options.outboundAddress === undefined ? undefined : parseIpv4(options.outboundAddress),
      v6: plan6 === null ? null : { ids, plan: plan6, ip: ip6Out!, outboundAddress: outbound6 },
    });
    this.icmp = new IcmpResponder(this.plan, ipOut, this.drops, this.icmpNat);
    const udpOutput = new UdpOutput(ipOut, ids, ip6Out);
    const neighbourMac = (ip: number): number | undefined => this.neighbours.lookup(ip);
    const requestMac = (ip: number): void => {
      if (ip >= 0) this.arp.request(ip);
      else this.icmp6?.solicit(ip);
    };
    this.udpNat = new UdpNat({
      plan: this.plan,
      policy,
      host,
      output: udpOutput,
      icmp: this.icmpErrors,
      timers: this.timers,
      drops: this.drops,
      now,
      kick: () => this.kick(),
      outboundAddress: options.outboundAddress,
      outboundAddress6: options.outboundAddress6,
      ids,
      plan6,
      maxMappings: limits.udpMappings,
      neighbourMac,
      requestMac,
      debug: debugLog,
    });
    this.dns =
      options.dns === false
        ? null
        : new DnsForwarder({
            sockets: host,
            resolvConfPath: options.dns?.resolvConfPath,
            staticRecords: options.dns?.staticRecords,
            upstreamPort: options.dns?.upstreamPort,
            cacheEntries: options.dns?.cacheEntries,
            localAddress: options.outboundAddress,
            localAddress6: options.outboundAddress6,
            names: {
              active: () => this.addressPolicy.egress !== null,
              allows: (name) => this.addressPolicy.egress?.allowsName(name) ?? true,
              answered: (names, addresses, ttlS) => this.nameBindings.record(names, addresses, ttlS, this.clock.now()),
            },
          });
    this.dhcp6 =
      plan6 === null || options.dhcp === false
        ? null
        : new Dhcpv6Server({ routerMac: plan6.routerMac, dnsServers: this.dns === null ? [] : [ids.bytes(plan6.dns)], domainSearch: [], informationRefreshTimeS: null });
    this.udpIn = new UdpInput(
      this.plan,
      ipOut,
      udpOutput,
      this.drops,
      this.dhcp === null ? null : this.dhcpService(),
      this.dns,
      this.udpNat,
      () => this.kick(),
      ids,
      plan6 === null ? null : { plan: plan6, ip: ip6Out!, dhcp: this.dhcp6 },
    );
    const udp = this.udpIn;
    this.tcpOutput = new TcpOutput(frames, this.plan, this.link.offloads, ids, this.plan.gatewayMac);
    this.tcp = new TcpNat({
      mtu: this.mtu,
      policy,
      host,
      output: this.tcpOutput,
      icmp: this.icmpErrors,
      timers: this.timers,
      drops: this.drops,
      clock: this.clock,
      kick: () => this.kick(),
      outboundAddress: options.outboundAddress,
      outboundAddress6: options.outboundAddress6,
      ids,
      dnsSession: this.dns === null ? undefined : () => new DnsTcpSession(this.dns!),
      neighbourMac,
      requestMac,
      debug: debugLog,
      maxFlows: limits.tcpFlows,
      maxConnecting: limits.tcpConnecting,
      connectTimeoutMs: limits.tcpConnectTimeoutMs,
      bufferBytes: limits.tcpBufferBytes,
      endpoint: options.tcp,
    });
    this.ipv4 = new Ipv4Input(this.drops, this.reassembler, this.icmp, udp, this.tcp);
    if (plan6 === null) {
      this.advertiser = null;
      this.icmp6 = null;
      this.ipv6In = null;
    } else {
      this.advertiser = new RouterAdvertiser({
        plan: plan6,
        ids,
        ip: ip6Out!,
        mtu: this.mtu,
        dns: this.dns !== null,
        dhcpv6: this.dhcp6 !== null,
        timers: this.timers,
      });
      this.icmp6 = new Icmpv6Input({
        plan: plan6,
        ids,
        ip: ip6Out!,
        drops: this.drops,
        neighbours: this.neighbours,
        advertiser: this.advertiser,
        relay: this.icmpNat,
      });
      this.ipv6In = new Ipv6Input(ids, this.drops, this.icmp6, udp, this.tcp, this.reassembler, this.icmpErrors);
      const problem = host.ipv6Problem?.() ?? null;
      if (problem !== null) log?.(`usernet: the host has no IPv6 (${problem}): the guest gets IPv6 addresses and DNS, and IPv6 destinations outside fail at once`);
    }
    this.neighbours.onLearn = (ip, mac) => this.tcp.neighbourLearned(ip, mac);
    this.forwards = new PortForwards(this.plan, host, this.tcp, this.udpNat, () => this.kick(), plan6 === null ? null : { ids, plan: plan6 });
    this.addresses = {
      network: ipv4ToString(this.plan.network),
      prefixLength: this.plan.prefixLength,
      netmask: ipv4ToString(this.plan.netmask),
      gateway: ipv4ToString(this.plan.gateway),
      dns: ipv4ToString(this.plan.dns),
      dhcpStart: ipv4ToString(this.plan.dhcpStart),
      guest: ipv4ToString(this.plan.guest),
      gatewayMac: macToString(this.plan.gatewayMac),
    };
    this.link.start((buf, meta, count) => this.onBatch(buf, meta, count));
    if (this.advertiser !== null) {
      // Unsolicited RAs from the start (RFC 4861 §6.2.4), so a guest whose
      // interface is already up configures itself without waiting to solicit.
      this.advertiser.start(this.clock.now());
      this.kick();
    }
  }

  stats(): StackStats {
    return {
      link: { ...this.link.stats },
      rx: { ...this.rx },
      drops: this.drops.toJSON(),
      dropsTotal: this.drops.total,
      arp: { ...this.arp.stats },
      icmp: { ...this.icmp.stats },
      reassembly: this.reassembler.stats,
      dhcp: this.dhcp === null ? null : { ...this.dhcp.stats },
      tcp: {
        ...this.tcp.stats,
        segmentsOut: this.tcpOutput.stats.segments,
        superFramesOut: this.tcpOutput.stats.superFrames,
        payloadBytesOut: this.tcpOutput.stats.payloadBytes,
        zeroCopyBytesOut: this.tcpOutput.stats.zeroCopyBytes,
        resetsOut: this.tcpOutput.stats.resets,
      },
      icmpErrors: { ...this.icmpErrors.stats },
      udp: { ...this.udpNat.stats, gsoSuperFrames: this.udpIn.stats.gsoSuperFrames },
      icmpEcho: this.icmpNat.stats,
      dns: this.dns === null ? null : { ...this.dns.stats, guestQueries: this.udpIn.stats.dnsQueries, guestReplies: this.udpIn.stats.dnsReplies },
      neighbours: this.neighbours.toJSON().map(({ ip, mac }) => ({ ip: this.ids.format(ip), mac: macToString(mac) })),
      policy: this.addressPolicy.egress?.counters() ?? null,
      ipv6:
        this.ipv6In === null
          ? null
          : {
              rx: { ...this.ipv6In.stats },
              icmpv6: { ...this.icmp6!.stats },
              routerAdvertisements: { ...this.advertiser!.stats },
              dhcpv6: this.dhcp6 === null ? null : { ...this.dhcp6.stats },
              addressesHeld: this.ids.size,
            },
    };
  }

  connections(): Array<TcpFlowInfo | UdpMappingInfo> {
    const now = this.clock.now();
    return [...this.tcp.list(now), ...this.udpNat.list(now)];
  }

  addForward(forward: PortForward): Promise<void> {
    if (this.closed) return Promise.reject(new UsernetError('ERR_USERNET_CLOSED', 'the stack is closed'));
    return this.forwards.add(forward);
  }

  removeForward(forward: PortForward): Promise<void> {
    return this.forwards.remove(forward);
  }

  setPolicy(rules: string | readonly string[] | null): void {
    this.addressPolicy.egress = rules === null ? null : this.buildEgress(rules);
  }

  policy(): string[] | null {
    return this.addressPolicy.egress?.rules() ?? null;
  }

  private buildEgress(rules: string | readonly string[]): EgressPolicy {
    return new EgressPolicy(parsePolicyOrThrow(rules), this.nameBindings);
  }

  releaseIdleMemory(): void {
    if (this.closed || this.inBatch) return;
    this.queue.releaseIdleMemory();
    this.link.releaseIdleMemory?.();
    this.tcpOutput.releaseIdleMemory();
    releaseNativeStreamMemory();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.forwards.close();
    this.tcp.close();
    this.udpNat.close();
    this.icmpNat.close();
    this.advertiser?.stop();
    this.neighbours.clear();
    void this.dns?.close();
    this.clock.disarm();
    this.link.close();
    this.ids.sweep();
  }

  /** After host-side events: send what they produced and keep the timer right. */
  private kick(): void {
    if (this.closed) return;
    this.queue.flush();
    this.armTimer(this.clock.now());
    // Not inside a batch (a neighbour learned mid-batch kicks): its frames' ids are still in use.
    if (!this.inBatch) this.ids.sweep();
  }

  private dhcpService() {
    const dhcp = this.dhcp!;
    return {
      handle: (buf: Uint8Array, off: number, len: number, out: Uint8Array, outOff: number, nowMs: number): number => {
        const n = dhcp.handle(buf, off, len, out, outOff, nowMs);
        if (n > 0 && dhcp.lastReply.yiaddr !== 0) this.neighbours.learn(dhcp.lastReply.yiaddr, dhcp.lastReply.clientMac);
        return n;
      },
    };
  }

  private onBatch(buf: Uint8Array, meta: Uint32Array, count: number): void {
    if (this.closed) return;
    const now = this.clock.now();
    this.inBatch = true;
    for (let i = 0; i < count; i++) {
      try {
        this.onFrame(buf, meta[2 * i], meta[2 * i + 1], now);
      } catch (err) {
        // A bug must cost one frame, never the process (docs/architecture.md, Errors).
        this.drops.add(Drop.INTERNAL_ERROR);
        this.debugLog?.(`internal error on an input frame: ${(err as Error).stack ?? String(err)}`);
      }
    }
    this.tcp.flush(now);
    this.queue.flush();
    this.armTimer(now);
    this.inBatch = false;
    this.ids.sweep();
  }

  private onFrame(buf: Uint8Array, off: number, len: number, now: number): void {
    this.rx.frames++;
    this.rx.bytes += len;
    let checksumPartial = false;
    let udpGsoSize = 0;
    if (this.vnet) {
      if (len < VNET_HDR_LEN) {
        this.drops.add(Drop.VNET_TRUNCATED);
        return;
      }
      checksumPartial = (buf[off] & VnetFlag.NEEDS_CSUM) !== 0;
      // A UDP GSO (USO) super-frame carries several datagrams' payloads of gso_size each.
      if ((buf[off + 1] & ~GsoType.ECN) === GsoType.UDP_L4) udpGsoSize = buf[off + 4] | (buf[off + 5] << 8);
      off += VNET_HDR_LEN;
      len -= VNET_HDR_LEN;
    }
    if (len < ETHERNET_HEADER_LEN) {
      this.drops.add(Drop.ETH_TRUNCATED);
      return;
    }
    const etherType = (buf[off + 12] << 8) | buf[off + 13];
    const payload = off + ETHERNET_HEADER_LEN;
    const payloadLen = len - ETHERNET_HEADER_LEN;
    switch (etherType) {
      case EtherType.IPV4:
        this.rx.ipv4++;
        this.ipv4.input(buf, payload, payloadLen, readMac(buf, off + 6), checksumPartial, udpGsoSize, now);
        return;
      case EtherType.ARP:
        this.rx.arp++;
        this.arp.input(buf, payload, payloadLen);
        return;
      case EtherType.IPV6:
        if (this.ipv6In === null) {
          this.drops.add(Drop.IPV6_UNSUPPORTED);
          return;
        }
        this.rx.ipv6++;
        this.ipv6In.input(buf, payload, payloadLen, readMac(buf, off + 6), checksumPartial, udpGsoSize, now);
        return;
      default:
        this.drops.add(Drop.ETH_UNKNOWN_TYPE);
    }
  }

  /**
   * Keeps the one timer at or before the earliest deadline. Deadlines move
   * later with nearly every ACK (RTO restarts) by little: for those the timer
   * stays, and one that fires a little early finds nothing due and re-arms
   * itself. A deadline that went away for good (a delayed ACK that the reply
   * carried, TIMER_SLACK_MS or more before the next one) re-arms it later, so
   * request/response traffic does not pay a useless wake-up per request.
   */
  private armTimer(now: number): void {
    // A deadline already passed arms the timer at once: onTimer expires it, then flushes its ICMPv6 error.
    const reassembly = this.reassembler.inProgress > 0 ? this.reassembler.nextDeadlineMs : Infinity;
    const next = Math.min(reassembly, this.timers.peek());
    if (next === this.timerAt || (next > this.timerAt && next - this.timerAt < TIMER_SLACK_MS)) return;
    this.timerAt = next;
    if (next === Infinity) this.clock.disarm();
    else this.clock.arm(next, this.onTimerBound);
  }

  private readonly onTimerBound = (): void => this.onTimer();

  private onTimer(): void {
    if (this.closed) return;
    this.timerAt = Infinity;
    const now = this.clock.now();
    this.reassembler.expire(now);
    this.timers.run(now);
    this.queue.flush();
    this.armTimer(now);
    this.ids.sweep();
  }
}

/** How much later than the armed timer the earliest deadline must be for re-arming to pay (see armTimer). */
const TIMER_SLACK_MS = 5;

function parseNetwork(network: string | undefined): AddressPlan {
  if (network === undefined) return addressPlan(DEFAULT_NETWORK, DEFAULT_PREFIX_LENGTH);
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(network);
  const addr = m === null ? undefined : parseIpv4(m[1]);
  if (m === null || addr === undefined) {
    throw new UsernetError('ERR_USERNET_INVALID_OPTION', `network must look like 10.0.2.0/24, got ${JSON.stringify(network)}`);
  }
  try {
    return addressPlan(addr, Number(m[2]));
  } catch (err) {
    throw new UsernetError('ERR_USERNET_INVALID_OPTION', `invalid network ${network}: ${(err as Error).message}`);
  }
}
