/**
 * ICMP arriving from the guest. Echo requests to the gateway and DNS
 * addresses are answered here, as libslirp does (TTL 255),
 * also when host loopback is disabled: slirp4netns's own tests ping 10.0.2.2
 * in that mode. Echo towards other destinations goes to the relay
 * (src/nat/icmp-nat.ts, ping sockets on the host). Other ICMP from the guest
 * (errors about host traffic, timestamps) is counted and dropped, as libslirp
 * mostly does.
 */
import type { AddressPlan } from './address-plan.js';
import type { Ipv4Output } from './ipv4-output.js';
import { Drop, type DropCounters } from '../stats.js';
import { Wire } from '../wire/errors.js';
import { emitIcmpv4Echo, Icmpv4Type, Icmpv4View, ICMPV4_HEADER_LEN } from '../wire/icmpv4.js';
import { IpProtocol } from '../wire/ipv4.js';

/** Relays echo requests to the outside (src/nat/icmp-nat.ts). */
export interface EchoRelay {
  echo(buf: Uint8Array, ipOff: number, ipLen: number, off: number, len: number, src: number, dst: number, ident: number, srcMac: number, nowMs: number): void;
}

export interface IcmpStats {
  echoRequests: number;
  echoReplies: number;
}

export class IcmpResponder {
  readonly stats: IcmpStats = { echoRequests: 0, echoReplies: 0 };
  private readonly view = new Icmpv4View();

  constructor(
    private readonly plan: AddressPlan,
    private readonly ip: Ipv4Output,
    private readonly drops: DropCounters,
    private readonly relay: EchoRelay | null,
  ) {}

  /** `off`/`len`: the ICMP message; `checksumPartial`: the link vouched for the checksum. */
  input(buf: Uint8Array, ipOff: number, off: number, len: number, src: number, dst: number, srcMac: number, checksumPartial: boolean, nowMs: number): void {
    const icmp = this.view.wrap(buf, off, len);
    if (icmp.check() !== Wire.OK) {
      this.drops.add(Drop.ICMP_MALFORMED);
      return;
    }
    if (!checksumPartial && !icmp.verifyChecksum()) {
      this.drops.add(Drop.ICMP_BAD_CHECKSUM);
      return;
    }
    if (icmp.type !== Icmpv4Type.ECHO_REQUEST || icmp.code !== 0) {
      this.drops.add(Drop.ICMP_UNHANDLED);
      return;
    }
    if (dst !== this.plan.gateway && dst !== this.plan.dns) {
      if (this.relay === null) this.drops.add(Drop.ICMP_UNHANDLED);
      else this.relay.echo(buf, ipOff, off + len - ipOff, off, len, src, dst, icmp.ident, srcMac, nowMs);
      return;
    }
    this.stats.echoRequests++;
    const payloadLen = len - ICMPV4_HEADER_LEN;
    const at = this.ip.begin(len);
    emitIcmpv4Echo(Icmpv4Type.ECHO_REPLY, icmp.ident, icmp.seq, buf, off + ICMPV4_HEADER_LEN, payloadLen, this.ip.buf, at);
    const r = this.ip.repr;
    r.src = dst;
    r.dst = src;
    r.protocol = IpProtocol.ICMP;
    r.ttl = 255;
    r.tos = 0;
    r.dontFragment = false;
    this.ip.finish(srcMac, len);
    this.stats.echoReplies++;
  }
}
