/**
 * Golden IPv6 frames (whole Ethernet frames) captured from Linux for the
 * ICMPv6, NDP and DHCPv6 tests.
 *
 * How they were captured, on the development VM (kernel 6.18.44, Debian 12,
 * dnsmasq 2.90, ISC dhclient 4.4.3-P1, tshark 4.0.17), as root:
 *   ip netns add uw6-a-$$; ip netns add uw6-b-$$   # "A" and "B" below; both deleted afterwards
 *   sysctl net.ipv6.conf.{all,default}.disable_ipv6=0 in each; lo up
 *   ip -n A link add va address 02:00:00:00:00:01 type veth \
 *       peer name vb address 02:00:00:00:00:02 netns B
 *   ethtool -K va tx off; ethtool -K vb tx off   # complete UDP checksums on the wire
 *   sysctl net.ipv6.conf.vb.router_solicitations=0 (in B: only A solicits)
 *   ip -n B link set vb up; ip netns exec B tshark -i vb -w cap.pcapng &
 *   ip -n A link set va up; sleep 6                 # MLDv2 reports, DAD, RS
 *   ip netns exec A ping -6 -c 1 -s 24 -p 75736e6574 fe80::ff:fe00:2%va
 *   ip netns exec A python3: UDP from [fe80::ff:fe00:1]:40000 to [fe80::ff:fe00:2]:9998
 *   ip -n B addr add fd00::2/64 dev vb nodad
 *   ip netns exec B dnsmasq --no-daemon --conf-file=/dev/null -u root --port=0 \
 *       --interface=vb --bind-interfaces --enable-ra \
 *       --dhcp-range=::,constructor:vb,ra-stateless,64,1h --domain=example.test \
 *       --dhcp-option=option6:dns-server,[fd00::3] \
 *       --dhcp-option=option6:domain-search,example.test,corp.example
 *   ip netns exec A dhclient -6 -S -v -1 -d -sf /bin/true va   # Information-request
 *   ip netns exec A timeout 5 dhclient -6 -v -d -sf /bin/true va  # Solicit (no addresses: retried)
 * Addresses are the EUI-64 link-locals fe80::ff:fe00:1 (A) and fe80::ff:fe00:2
 * (B). Nothing left the two namespaces. The frames below are the pcap's bytes
 * verbatim (tshark reported every ICMPv6 and UDP checksum correct).
 */
import { hex } from './golden.js';

/** Offsets of the IPv6 header and of what follows a plain 40-byte IPv6 header in these frames. */
export const IP6 = 14;
export const L4 = 14 + 40;
/** After the 8-byte Hop-by-Hop header of the MLD reports. */
export const MLD_L4 = 14 + 40 + 8;

export const MAC_A6 = 0x02_00_00_00_00_01;
export const MAC_B6 = 0x02_00_00_00_00_02;

/** Frame 5: A's DAD probe for its link-local fe80::ff:fe00:1 (RFC 4862 §5.4.2): source ::,
 * destination its solicited-node group ff02::1:ff00:1, hop limit 255, no SLLA, a Nonce option
 * (type 14, RFC 7527; Linux net.ipv6.conf.*.enhanced_dad=1). */
export const NDP_DAD_NS = hex(
  '3333ff00000102000000000186dd6000000000203aff00000000000000000000000000000000ff020000000000000000' +
  '0001ff0000018700bf8400000000fe80000000000000000000fffe0000010e01aabcc55a3f80',
);

/** Frame 8: A's MLDv2 report (type 143) from its link-local address to ff02::16, behind a
 * Hop-by-Hop header carrying Router Alert (RFC 3810 §5.2): one record, CHANGE_TO_EXCLUDE (4)
 * ff02::1:ff00:1. */
export const MLD2_REPORT = hex(
  '33330000001602000000000186dd6000000000240001fe80000000000000000000fffe000001ff020000000000000000' +
  '0000000000163a000502000001008f0072070000000104000000ff0200000000000000000001ff000001',
);

/** Frame 9: A's Router Solicitation from fe80::ff:fe00:1 to ff02::2 with an SLLA option
 * (02:00:00:00:00:01). */
export const NDP_RS = hex(
  '33330000000202000000000186dd6000000000103afffe80000000000000000000fffe000001ff020000000000000000' +
  '00000000000285007b2c000000000101020000000001',
);

/** Frame 13: A resolving fe80::ff:fe00:2 before the ping (RFC 4861 §7.2.2): NS to the
 * solicited-node group ff02::1:ff00:2, SLLA 02:00:00:00:00:01. */
export const NDP_NS = hex(
  '3333ff00000202000000000186dd6000000000203afffe80000000000000000000fffe000001ff020000000000000000' +
  '0001ff00000287007c9700000000fe80000000000000000000fffe0000020101020000000001',
);

/** Frame 14: B's answer: NA to fe80::ff:fe00:1, flags S and O (0x60), target fe80::ff:fe00:2,
 * TLLA 02:00:00:00:00:02. */
export const NDP_NA = hex(
  '02000000000102000000000286dd6000000000203afffe80000000000000000000fffe000002fe800000000000000000' +
  '00fffe00000188001b1a60000000fe80000000000000000000fffe0000020201020000000002',
);

/** Frame 15: `ping -6 -c 1 -s 24 -p 75736e6574 fe80::ff:fe00:2%va`: echo request, ident 0x1c80,
 * seq 1, 24 data bytes, flow label 0x50591. */
export const ICMP6_ECHO_REQUEST = hex(
  '02000000000202000000000186dd6005059100203a40fe80000000000000000000fffe000001fe800000000000000000' +
  '00fffe00000280008a701c800001e848116b00000000263f010000000000736e657475736e65',
);

/** Frame 16: B's echo reply (flow label 0x5c734). */
export const ICMP6_ECHO_REPLY = hex(
  '02000000000102000000000286dd6005c73400203a40fe80000000000000000000fffe000002fe800000000000000000' +
  '00fffe000001810089701c800001e848116b00000000263f010000000000736e657475736e65',
);

/** Frame 17: python3 UDP [fe80::ff:fe00:1]:40000 → [fe80::ff:fe00:2]:9998 "hello usernet" (no listener). */
export const UDP6_CLOSED_PORT = hex(
  '02000000000202000000000186dd600636e100151140fe80000000000000000000fffe000001fe800000000000000000' +
  '00fffe0000029c40270e0015403368656c6c6f20757365726e6574',
);

/** Frame 18: B's Destination Unreachable, code 4 (port unreachable), quoting frame 17's whole
 * IPv6 datagram (61 bytes). */
export const ICMP6_PORT_UNREACH = hex(
  '02000000000102000000000286dd600aa85c00453a40fe80000000000000000000fffe000002fe800000000000000000' +
  '00fffe00000101045b6100000000600636e100151140fe80000000000000000000fffe000001fe800000000000000000' +
  '00fffe0000029c40270e0015403368656c6c6f20757365726e6574',
);

/** Frame 20: B's MLDv2 report with four CHANGE_TO_EXCLUDE records, sent when dnsmasq
 * joined its groups on vb: ff02::2, ff05::1:3, ff02::1:2 and B's ff02::1:ff00:2. */
export const MLD2_REPORT_4 = hex(
  '33330000001602000000000286dd6000000000600001fe80000000000000000000fffe000002ff020000000000000000' +
  '0000000000163a000502000001008f0068b10000000404000000ff02000000000000000000000000000204000000ff05' +
  '000000000000000000000001000304000000ff02000000000000000000000001000204000000ff020000000000000000' +
  '0001ff000002',
);

/** Frame 22: dnsmasq's Router Advertisement from fe80::ff:fe00:2 to ff02::1: hop limit 64, O=1,
 * router lifetime 1800, Prefix Information fd00::/64 L A 3600/3600, MTU 1500, SLLA
 * 02:00:00:00:00:02, DNSSL 3600 example.test corp.example (padded to 40 bytes), RDNSS 3600 fd00::3. */
export const NDP_RA_DNSMASQ = hex(
  '33330000000102000000000286dd6c0d2a5b00803afffe80000000000000000000fffe000002ff020000000000000000' +
  '0000000000018600c1d0404007080000000000000000030440c000000e1000000e1000000000fd000000000000000000' +
  '00000000000005010000000005dc01010200000000021f05000000000e10076578616d706c6504746573740004636f72' +
  '70076578616d706c6500000000001903000000000e10fd000000000000000000000000000003',
);

/** Frame 25: B's reachability probe (RFC 4861 §7.3.3): NS unicast to fe80::ff:fe00:1, target
 * fe80::ff:fe00:1, SLLA 02:00:00:00:00:02. */
export const NDP_NS_UNICAST = hex(
  '02000000000102000000000286dd6000000000203afffe80000000000000000000fffe000002fe800000000000000000' +
  '00fffe00000187007d1b00000000fe80000000000000000000fffe0000010101020000000002',
);

/** Frame 26: A's answer to it: NA flags S only (0x40), no TLLA option (RFC 4861 §7.2.4: the
 * solicitation was unicast, so the option may be omitted). */
export const NDP_NA_UNICAST = hex(
  '02000000000202000000000186dd6000000000183afffe80000000000000000000fffe000001fe800000000000000000' +
  '00fffe00000288003f2640000000fe80000000000000000000fffe000001',
);

/** Frame 27: `dhclient -6 -S` Information-request to ff02::1:2 (546 → 547), transaction id
 * 0x7b23c6: Client ID DUID-LL 02:00:00:00:00:01, ORO [23, 24, 39, 31], Elapsed Time 0. */
export const DHCP6_INFO_REQUEST = hex(
  '33330001000202000000000186dd60082c03002c1101fe80000000000000000000fffe000001ff020000000000000000' +
  '00000001000202220223002ccceb0b7b23c60001000a0003000102000000000100060008001700180027001f00080002' +
  '0000',
);

/** Frame 28: dnsmasq's Reply: Client ID, Server ID (DUID-LLT, time 0x32a4056a,
 * 02:00:00:00:00:02), Domain List example.test corp.example, DNS Servers fd00::3, Information
 * Refresh Time 3600. */
export const DHCP6_REPLY_DNSMASQ = hex(
  '02000000000102000000000286dd6c0450a500681140fe80000000000000000000fffe000002fe800000000000000000' +
  '00fffe000001022302220068d51a077b23c60001000a000300010200000000010002000e0001000132a4056a02000000' +
  '00020018001c076578616d706c6504746573740004636f7270076578616d706c650000170010fd000000000000000000' +
  '0000000000030020000400000e10',
);

/** Frame 29: `dhclient -6` Solicit, transaction id 0x72f747: Client ID DUID-LLT (time 0x32a4056f,
 * 02:00:00:00:00:01), ORO [23, 24, 39, 31], Elapsed Time 0, IA_NA IAID 1 T1 3600 T2 5400. */
export const DHCP6_SOLICIT = hex(
  '33330001000202000000000186dd60082c0300401101fe80000000000000000000fffe000001ff020000000000000000' +
  '000000010002022202230040a7fd0172f7470001000e0001000132a4056f02000000000100060008001700180027001f' +
  '0008000200000003000c0000000100000e1000001518',
);

/** Frame 30: dnsmasq's Advertise for it: Client ID, Server ID and Status Code NoAddrsAvail
 * "no addresses available", and nothing else (RFC 8415 §18.3.9). */
export const DHCP6_ADVERTISE_DNSMASQ = hex(
  '02000000000102000000000286dd6c0450a5004c1140fe80000000000000000000fffe000002fe800000000000000000' +
  '00fffe00000102230222004c856c0272f7470001000e0001000132a4056f0200000000010002000e0001000132a4056a' +
  '020000000002000d001800026e6f2061646472657373657320617661696c61626c65',
);
