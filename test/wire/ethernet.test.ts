import { describe, expect, test } from 'vitest';
import { Wire } from '../../src/wire/errors.js';
import {
  ETHERNET_HEADER_LEN,
  EtherType,
  EthernetView,
  MAC_BROADCAST,
  emitEthernet,
  isMulticastMac,
  macFromBytes,
  macToBytes,
  macToString,
  parseEthernet,
  readMac,
  writeMac,
  type EthernetRepr,
} from '../../src/wire/ethernet.js';
import { ipv4ToString, parseIpv4, prefixToNetmask, readIpv4, writeIpv4 } from '../../src/wire/ipv4-address.js';
import { ARP_REQUEST, MAC_A, MAC_B, TCP_SYN, a5, hex, toHex } from './golden.js';

describe('Ethernet', () => {
  test('golden header fields', () => {
    const v = new EthernetView().wrap(TCP_SYN, 0, TCP_SYN.length);
    expect(v.check()).toBe(Wire.OK);
    expect(v.dst).toBe(MAC_B);
    expect(v.src).toBe(MAC_A);
    expect(v.etherType).toBe(EtherType.IPV4);
    expect(v.payloadOffset).toBe(14);
    expect(v.payloadLength).toBe(TCP_SYN.length - 14);
    const r: EthernetRepr = { dst: 0, src: 0, etherType: 0 };
    expect(parseEthernet(new EthernetView().wrap(ARP_REQUEST, 0, 42), r)).toBe(Wire.OK);
    expect(r).toEqual({ dst: MAC_BROADCAST, src: MAC_A, etherType: EtherType.ARP });
  });

  test('emit writes all 14 bytes', () => {
    const buf = a5(16);
    expect(emitEthernet({ dst: MAC_BROADCAST, src: MAC_A, etherType: EtherType.ARP }, buf, 1)).toBe(ETHERNET_HEADER_LEN);
    expect(toHex(buf)).toBe('a5' + toHex(ARP_REQUEST.subarray(0, 14)) + 'a5');
  });

  test('setters', () => {
    const buf = a5(14);
    const v = new EthernetView().wrap(buf, 0, 14);
    v.dst = MAC_B;
    v.src = MAC_A;
    v.etherType = EtherType.IPV4;
    expect(toHex(buf)).toBe(toHex(TCP_SYN.subarray(0, 14)));
  });

  test('truncation sweep', () => {
    const r: EthernetRepr = { dst: 0, src: 0, etherType: 0 };
    for (let len = 0; len < 14; len++) {
      const v = new EthernetView().wrap(ARP_REQUEST.slice(0, len), 0, len);
      expect(v.check()).toBe(Wire.TRUNCATED);
      expect(parseEthernet(v, r)).toBe(Wire.TRUNCATED);
    }
  });

  test('MACs as 48-bit numbers', () => {
    const b = hex('ffeeddccbbaa');
    expect(readMac(b, 0)).toBe(0xffee_ddcc_bbaa);
    expect(macFromBytes(b)).toBe(0xffee_ddcc_bbaa);
    expect(toHex(macToBytes(0x0102_0304_0506))).toBe('010203040506');
    const w = a5(8);
    writeMac(w, 1, 0x8000_0000_0001);
    expect(toHex(w)).toBe('a5800000000001a5');
    expect(macToString(MAC_A)).toBe('02:00:00:00:00:01');
    expect(macToString(MAC_BROADCAST)).toBe('ff:ff:ff:ff:ff:ff');
    expect(isMulticastMac(MAC_BROADCAST)).toBe(true);
    expect(isMulticastMac(0x0100_5e00_0001)).toBe(true);
    expect(isMulticastMac(0x3333_0000_0001)).toBe(true);
    expect(isMulticastMac(MAC_A)).toBe(false);
    expect(isMulticastMac(0xfeff_ffff_ffff)).toBe(false);
  });
});

describe('IPv4 addresses', () => {
  test('u32 conversions', () => {
    expect(parseIpv4('10.0.2.2')).toBe(0x0a00_0202);
    expect(parseIpv4('255.255.255.255')).toBe(0xffff_ffff);
    expect(parseIpv4('0.0.0.0')).toBe(0);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.-4', '1.2.3.04x', '1..3.4', ' 1.2.3.4', '01.2.3.4', '1.2.3.00']) {
      expect(parseIpv4(bad)).toBeUndefined();
    }
    expect(ipv4ToString(0xc0a8_0101)).toBe('192.168.1.1');
    expect(ipv4ToString(0xffff_ffff)).toBe('255.255.255.255');
    const b = a5(6);
    writeIpv4(b, 1, 0xc0a8_0101);
    expect(toHex(b)).toBe('a5c0a80101a5');
    expect(readIpv4(b, 1)).toBe(0xc0a8_0101);
    expect(readIpv4(hex('ffffffff'), 0)).toBe(0xffff_ffff);
  });

  test('prefixToNetmask', () => {
    expect(prefixToNetmask(0)).toBe(0);
    expect(prefixToNetmask(1)).toBe(0x8000_0000);
    expect(prefixToNetmask(24)).toBe(0xffff_ff00);
    expect(prefixToNetmask(32)).toBe(0xffff_ffff);
  });
});
