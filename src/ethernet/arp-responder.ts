/**
 * ARP for the virtual addresses (RFC 826). Like libslirp, we answer requests
 * for the gateway (net+2) and the DNS address (net+3) only, with the virtual
 * MAC 52:55:<ip>, and learn the guest's MAC from every request, reply and
 * gratuitous ARP it sends. ARP probes (sender 0.0.0.0, RFC 5227) teach nothing.
 */
import { Drop, type DropCounters } from '../stats.js';
import { ARP_LEN, ArpOp, ArpView, emitArp, type ArpRepr } from '../wire/arp.js';
import { Wire } from '../wire/errors.js';
import { EtherType } from '../wire/ethernet.js';
import type { NeighbourTable } from './neighbours.js';
import type { FrameOutput } from './frame-output.js';

/**
 * The part of the address plan (src/ip/address-plan.ts) ARP answers for;
 * declared here so that ethernet/ need not import ip/.
 */
export interface ArpAddresses {
  readonly gateway: number;
  readonly dns: number;
  readonly gatewayMac: number;
  readonly dnsMac: number;
}

export interface ArpStats {
  requests: number;
  replies: number;
  learned: number;
}

export class ArpResponder {
  readonly stats: ArpStats = { requests: 0, replies: 0, learned: 0 };
  private readonly view = new ArpView();
  private readonly reply: ArpRepr = { op: ArpOp.REPLY, senderMac: 0, senderIp: 0, targetMac: 0, targetIp: 0 };

  constructor(
    private readonly plan: ArpAddresses,
    private readonly neighbours: NeighbourTable,
    private readonly output: FrameOutput,
    private readonly drops: DropCounters,
  ) {}

  input(buf: Uint8Array, off: number, len: number): void {
    const arp = this.view.wrap(buf, off, len);
    if (arp.check() !== Wire.OK) {
      this.drops.add(Drop.ARP_MALFORMED);
      return;
    }
    const op = arp.op;
    const senderIp = arp.senderIp;
    if (senderIp !== 0) {
      const before = this.neighbours.lookup(senderIp);
      this.neighbours.learn(senderIp, arp.senderMac);
      if (before === undefined) this.stats.learned++;
    }
    if (op !== ArpOp.REQUEST) return;
    this.stats.requests++;
    const target = arp.targetIp;
    let mac: number;
    if (target === this.plan.gateway) mac = this.plan.gatewayMac;
    else if (target === this.plan.dns) mac = this.plan.dnsMac;
    else {
      this.drops.add(Drop.ARP_IGNORED);
      return;
    }
    const r = this.reply;
    r.senderMac = mac;
    r.senderIp = target;
    r.targetMac = arp.senderMac;
    r.targetIp = senderIp;
    const at = this.output.begin(ARP_LEN);
    emitArp(r, this.output.buf, at);
    this.output.finish(arp.senderMac, mac, EtherType.ARP, ARP_LEN);
    this.stats.replies++;
  }

  /** Asks the guest who has `ip` (used before sending to an unknown guest address). */
  request(ip: number): void {
    const r = this.reply;
    r.op = ArpOp.REQUEST;
    r.senderMac = this.plan.gatewayMac;
    r.senderIp = this.plan.gateway;
    r.targetMac = 0;
    r.targetIp = ip;
    const at = this.output.begin(ARP_LEN);
    emitArp(r, this.output.buf, at);
    r.op = ArpOp.REPLY;
    this.output.finish(0xffff_ffff_ffff, this.plan.gatewayMac, EtherType.ARP, ARP_LEN);
  }
}
