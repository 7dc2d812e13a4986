import { describe, expect, test } from 'vitest';
import { ARP_LEN, ArpOp, ArpView, emitArp, newArpRepr, parseArp, type ArpRepr } from '../../src/wire/arp.js';
import { Wire } from '../../src/wire/errors.js';
import { EthernetView, EtherType, MAC_BROADCAST, parseEthernet } from '../../src/wire/ethernet.js';
import { ARP_REPLY, ARP_REQUEST, ETH, IP_A, IP_B, MAC_A, MAC_B, a5, concat, fill, toHex } from './golden.js';

const REQUEST: ArpRepr = { op: ArpOp.REQUEST, senderMac: MAC_A, senderIp: IP_A, targetMac: 0, targetIp: IP_B };
const REPLY: ArpRepr = { op: ArpOp.REPLY, senderMac: MAC_B, senderIp: IP_B, targetMac: MAC_A, targetIp: IP_A };

describe('ARP golden frames', () => {
  test('request: Ethernet header and every ARP field', () => {
    const eth = { dst: 0, src: 0, etherType: 0 };
    expect(parseEthernet(new EthernetView().wrap(ARP_REQUEST, 0, ARP_REQUEST.length), eth)).toBe(Wire.OK);
    expect(eth).toEqual({ dst: MAC_BROADCAST, src: MAC_A, etherType: EtherType.ARP });

    const v = new ArpView().wrap(ARP_REQUEST, ETH, ARP_REQUEST.length - ETH);
    expect(v.check()).toBe(Wire.OK);
    expect(v.htype).toBe(1);
    expect(v.ptype).toBe(0x0800);
    expect(v.hlen).toBe(6);
    expect(v.plen).toBe(4);
    expect(v.op).toBe(ArpOp.REQUEST);
    expect(v.senderMac).toBe(MAC_A);
    expect(v.senderIp).toBe(IP_A);
    expect(v.targetMac).toBe(0);
    expect(v.targetIp).toBe(IP_B);
    const r = newArpRepr();
    expect(parseArp(v, r)).toBe(Wire.OK);
    expect(r).toEqual(REQUEST);
  });

  test('reply', () => {
    const r = newArpRepr();
    expect(parseArp(new ArpView().wrap(ARP_REPLY, ETH, ARP_LEN), r)).toBe(Wire.OK);
    expect(r).toEqual(REPLY);
  });

  test('emit writes all 28 bytes, at any offset', () => {
    for (const [repr, golden] of [
      [REQUEST, ARP_REQUEST],
      [REPLY, ARP_REPLY],
    ] as const) {
      for (const at of [0, 1, 7]) {
        const buf = a5(at + ARP_LEN + 4);
        expect(emitArp(repr, buf, at)).toBe(ARP_LEN);
        expect(toHex(buf.subarray(at, at + ARP_LEN))).toBe(toHex(golden.subarray(ETH, ETH + ARP_LEN)));
        expect(buf[at + ARP_LEN]).toBe(0xa5);
        if (at > 0) expect(buf[at - 1]).toBe(0xa5);
      }
    }
  });

  test('setters rebuild the golden bytes', () => {
    const buf = a5(ARP_LEN);
    const v = new ArpView().wrap(buf, 0, ARP_LEN);
    v.htype = 1;
    v.ptype = 0x0800;
    v.hlen = 6;
    v.plen = 4;
    v.op = ArpOp.REPLY;
    v.senderMac = MAC_B;
    v.senderIp = IP_B;
    v.targetMac = MAC_A;
    v.targetIp = IP_A;
    expect(toHex(buf)).toBe(toHex(ARP_REPLY.subarray(ETH)));
  });

  test('round trip parse(emit(r)) with extreme values', () => {
    const r: ArpRepr = {
      op: 0xffff,
      senderMac: 0xffff_ffff_ffff,
      senderIp: 0xffff_ffff,
      targetMac: 0x8000_0000_0001,
      targetIp: 0x8000_0001,
    };
    const buf = a5(ARP_LEN);
    emitArp(r, buf, 0);
    const out = newArpRepr();
    expect(parseArp(new ArpView().wrap(buf, 0, ARP_LEN), out)).toBe(Wire.OK);
    expect(out).toEqual(r);
  });

  test('Ethernet padding after the 28 bytes is ignored', () => {
    const padded = concat(ARP_REQUEST, fill(0, 60 - ARP_REQUEST.length));
    const r = newArpRepr();
    expect(parseArp(new ArpView().wrap(padded, ETH, padded.length - ETH), r)).toBe(Wire.OK);
    expect(r).toEqual(REQUEST);
  });
});

describe('ARP malformed input', () => {
  test('truncation sweep: every length below 28 is TRUNCATED', () => {
    const v = new ArpView();
    const r = newArpRepr();
    for (let len = 0; len < ARP_LEN; len++) {
      const cut = ARP_REQUEST.slice(ETH, ETH + len);
      expect(v.wrap(cut, 0, len).check()).toBe(Wire.TRUNCATED);
      expect(parseArp(v, r)).toBe(Wire.TRUNCATED);
    }
  });

  test.each([
    ['htype 6 (IEEE 802)', 0, 0x00, 0x06],
    ['ptype IPv6', 2, 0x86, 0xdd],
    ['hlen 8', 4, 8, -1],
    ['plen 16', 5, 16, -1],
  ])('%s is BAD_FIELD', (_name, at, b0, b1) => {
    const p = ARP_REQUEST.slice(ETH);
    p[at] = b0;
    if (b1 >= 0) p[at + 1] = b1;
    expect(new ArpView().wrap(p, 0, p.length).check()).toBe(Wire.BAD_FIELD);
  });

  test('an unknown op is a value, not an error', () => {
    const p = ARP_REQUEST.slice(ETH);
    p[7] = 9;
    const r = newArpRepr();
    expect(parseArp(new ArpView().wrap(p, 0, p.length), r)).toBe(Wire.OK);
    expect(r.op).toBe(9);
  });
});
