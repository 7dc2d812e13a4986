/**
 * Golden frames captured from Linux 6.18 on the development VM
 * for the wire tests, and small helpers to build test buffers.
 *
 * How they were captured: two network namespaces (usernet-wire-<rand>-a/-b),
 * each with a TAP opened IFF_TAP|IFF_NO_PI|IFF_VNET_HDR (tap0 10.0.0.1/24
 * 02:00:00:00:00:01 in A, tap1 10.0.0.2/24 02:00:00:00:00:02 in B), bridged by
 * a small python3 relay that logged every frame with its virtio_net_hdr. IPv6
 * was disabled in both namespaces; nothing left them; both were deleted
 * afterwards. Traffic from A to B with standard tools:
 *   ping -c 1 -p 75736e6574 -s 24 / -R -s 8 / -s 1600 -p 5a;
 *   python3 UDP 40000 → 9999 ("hello usernet", "odd") and to closed port 9998;
 *   python3 TCP 40001 → 8080 sending pat(8000), the relay dropping the 2nd and
 *   4th full-sized segment to draw SACKs from B.
 * First run without offloads (TUNSETOFFLOAD 0: all-zero vnet headers and
 * complete checksums; the vnet header is stripped below except in
 * VNET_ARP_NONE). Second run with CSUM|TSO4|TSO6|TSO_ECN|USO4|USO6, adding a
 * UDP_SEGMENT=1000 send of pat(2500) and a TCP send of pat(6000).
 *
 * Large frames are stored as their headers plus the generator of their payload
 * (the relay log was checked byte for byte against the reconstruction).
 */

export function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function fill(value: number, n: number): Uint8Array {
  return new Uint8Array(n).fill(value);
}

/** The payload generator of the captures: byte i = (7i + 3 + seed) mod 256. */
export function pat(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + 3 + seed) & 0xff;
  return out;
}

/** A buffer of `n` bytes prefilled with 0xa5, so an emitter that skips a byte shows. */
export function a5(n: number): Uint8Array {
  return new Uint8Array(n).fill(0xa5);
}

/** Copies `data` to offset `at` of a fresh 0xa5 buffer with `slack` bytes after it. */
export function placed(data: Uint8Array, at: number, slack = 0): Uint8Array {
  const b = a5(at + data.length + slack);
  b.set(data, at);
  return b;
}

/** Deterministic PRNG (mulberry32) for property tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

export const MAC_A = 0x02_00_00_00_00_01;
export const MAC_B = 0x02_00_00_00_00_02;
/** 10.0.0.1 */
export const IP_A = 0x0a00_0001;
/** 10.0.0.2 */
export const IP_B = 0x0a00_0002;
/** Offset of the IP header in a plain frame, and in a frame after its vnet header. */
export const ETH = 14;
export const VNET_ETH = 24;

/** Frame 1: 02:00:00:00:00:01 → broadcast, ARP who-has 10.0.0.2 tell 10.0.0.1. */
export const ARP_REQUEST = hex(
  'ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002',
);

/** Frame 2: ARP reply 10.0.0.2 is-at 02:00:00:00:00:02. */
export const ARP_REPLY = hex(
  '020000000001020000000002080600010800060400020200000000020a0000020200000000010a000001',
);

/** Frame 3: `ping -c 1 -p 75736e6574 -s 24`: echo request, DF, ident 0x1b41, id 0x1bc8 seq 1, 24 data bytes. */
export const ICMP_ECHO_REQUEST = hex(
  '0200000000020200000000010800450000341b41400040010b860a0000010a0000020800c29b1bc80001dd1e0b6b0000' +
  '00007455000000000000736e657475736e65',
);

/** Frame 4: the echo reply (no DF, ident 0x48cb). */
export const ICMP_ECHO_REPLY = hex(
  '02000000000102000000000208004500003448cb000040011dfc0a0000020a0000010000ca9b1bc80001dd1e0b6b0000' +
  '00007455000000000000736e657475736e65',
);

/** Frame 5: `ping -R -s 8`: IPv4 header with a 40-byte Record Route option (ihl 15). */
export const ICMP_ECHO_RR = hex(
  '02000000000202000000000108004f00004c1b4240004001cf5c0a0000010a000002010727080a000001000000000000' +
  '00000000000000000000000000000000000000000000000000000800d0251bc900010001020304050607',
);

/** Frame 7: `ping -s 1600 -p 5a`, first fragment (MF, offset 0, 1480 IP payload bytes): first 58 bytes; the rest is 0x5a. */
export const IPV4_FRAG_FIRST_HEAD = hex(
  '0200000000020200000000010800450005dc1b432000400125dc0a0000010a000002080052911bca0001dd1e0b6b0000' +
  '00001992000000000000',
);

/** Frame 7 in full (1514 bytes). */
export const IPV4_FRAG_FIRST = concat(IPV4_FRAG_FIRST_HEAD, fill(0x5a, 1456));

/** Frame 8: the last fragment (offset 1480, MF clear, 128 payload bytes). */
export const IPV4_FRAG_LAST = hex(
  '0200000000020200000000010800450000941b4300b940014a6b0a0000010a0000025a5a5a5a5a5a5a5a5a5a5a5a5a5a' +
  '5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a' +
  '5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a' +
  '5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a',
);

/** Frame 11: UDP 10.0.0.1:40000 → 10.0.0.2:9999 "hello usernet", DF, full checksum. */
export const UDP_HELLO = hex(
  '020000000002020000000001080045000029d29f4000401154220a0000010a0000029c40270f0015273468656c6c6f20' +
  '757365726e6574',
);

/** Frame 13: UDP "odd" (3 payload bytes: odd checksum length; 45-byte frame, no padding on a tap). */
export const UDP_ODD = hex(
  '02000000000202000000000108004500001fd2a040004011542b0a0000010a0000029c40270f000b55216f6464',
);

/** Frame 15: UDP "to a closed port" to 10.0.0.2:9998. */
export const UDP_CLOSED_PORT = hex(
  '02000000000202000000000108004500002cd2a140004011541d0a0000010a0000029c40270e00184c60746f20612063' +
  '6c6f73656420706f7274',
);

/** Frame 16: the kernel's ICMP port unreachable for frame 15 (tos 0xc0, quotes all 44 bytes). */
export const ICMP_PORT_UNREACH = hex(
  '020000000001020000000002080045c000484946000040011cad0a0000020a00000103031129000000004500002cd2a1' +
  '40004011541d0a0000010a0000029c40270e00184c60746f206120636c6f73656420706f7274',
);

/** Frame 17: SYN 40001 → 8080, MSS 1460, SACK-perm, TS, WS 10. */
export const TCP_SYN = hex(
  '02000000000202000000000108004500003cc1504000400665690a0000010a0000029c411f90eaec97c000000000a002' +
  'faf040b10000020405b40402080abc35fda3000000000103030a',
);

/** Frame 18: SYN-ACK. */
export const TCP_SYN_ACK = hex(
  '02000000000102000000000208004500003c00004000400626ba0a0000020a0000011f909c41c4fbd563eaec97c1a012' +
  'fe889afd0000020405b40402080ac9923e18bc35fda30103030a',
);

/** Frame 19: ACK with timestamps. */
export const TCP_ACK = hex(
  '020000000002020000000001080045000034c1514000400665700a0000010a0000029c411f90eaec97c1c4fbd5648010' +
  '003fc81500000101080abc35fda4c9923e18',
);

/** Frame 20: first full-sized data segment (1448 bytes of pat(8000)): headers only. */
export const TCP_DATA_HEAD = hex(
  '0200000000020200000000010800450005dcc152400040065fc70a0000010a0000029c411f90eaec97c1c4fbd5648010' +
  '003fbb9700000101080abc35fda5c9923e18',
);

/** Frame 20 in full. */
export const TCP_DATA = concat(TCP_DATA_HEAD, pat(1448));

/** Frame 27: duplicate ACK with one SACK block (after the bridge dropped a segment). */
export const TCP_SACK1 = hex(
  '0200000000010200000000020800450000406e1740004006b89e0a0000020a0000011f909c41c4fbd564eaec9d69b010' +
  '00466aa800000101080ac9923e19bc35fda50101050aeaeca311eaeca8b9',
);

/** Frame 28: duplicate ACK with two SACK blocks. */
export const TCP_SACK2 = hex(
  '0200000000010200000000020800450000486e1840004006b8950a0000020a0000011f909c41c4fbd564eaec9d69d010' +
  '0049125000000101080ac9923e19bc35fda501010512eaecae61eaecb409eaeca311eaeca8b9',
);

/** Frame 34: PSH|ACK with 8 payload bytes "ok 8000\n". */
export const TCP_PSH_DATA = hex(
  '02000000000102000000000208004500003c6e1c40004006b89d0a0000020a0000011f909c41c4fbd564eaecb7018018' +
  '0051b8d300000101080ac9923e19bc35fda56f6b20383030300a',
);

/** Frame 35: FIN|ACK. */
export const TCP_FIN = hex(
  '0200000000010200000000020800450000346e1d40004006b8a40a0000020a0000011f909c41c4fbd56ceaecb7018011' +
  '0051a8b800000101080ac9923e19bc35fda5',
);

// Second capture: offloads CSUM|TSO4|TSO6|TSO_ECN|USO4|USO6; each frame starts with its virtio_net_hdr.

/** Frame 1 with its all-zero virtio_net_hdr (ARP request). */
export const VNET_ARP_NONE = hex(
  '00000000000000000000ffffffffffff020000000001080600010800060400010200000000010a000001000000000000' +
  '0a000002',
);

/** UDP "hello usernet": NEEDS_CSUM, csum_start 34, csum_offset 6; the field holds the pseudo-header sum. */
export const VNET_UDP_PARTIAL = hex(
  '0100000000002200060002000000000202000000000108004500002938c140004011ee000a0000010a0000029c40270f' +
  '0015142968656c6c6f20757365726e6574',
);

/** SYN: NEEDS_CSUM, csum_start 34, csum_offset 16. */
export const VNET_TCP_SYN_PARTIAL = hex(
  '0100000000002200100002000000000202000000000108004500003cc4fb4000400661be0a0000010a0000029c411f90' +
  'd628379f00000000a002faf014310000020405b40402080abc35a689000000000103030a',
);

/** UDP_SEGMENT=1000 send of pat(2500): one 2542-byte frame, gso UDP_L4, gso_size 1000, hdr_len 42: headers only. */
export const VNET_UDP_GSO_HEAD = hex(
  '01052a00e803220006000200000000020200000000010800450009e038d000004011243b0a0000010a0000029c42270f' +
  '09cc1de0',
);

/** The full USO super-frame. */
export const VNET_UDP_GSO = concat(VNET_UDP_GSO_HEAD, pat(2500));

/** 6000-byte send: one TCPV4 super-frame, gso_size 1448, hdr_len 66, NEEDS_CSUM: headers only. */
export const VNET_TCP_GSO_HEAD = hex(
  '01014200a805220010000200000000020200000000010800450017a4c4fd400040064a540a0000010a0000029c411f90' +
  'd62837a0b03768548018003f2b9900000101080abc35a68ac991e6fd',
);

/** The full TSO super-frame (6066-byte Ethernet frame). */
export const VNET_TCP_GSO = concat(VNET_TCP_GSO_HEAD, pat(6000));
