#!/usr/bin/env node
// Micro benchmarks of the per-packet building blocks (run `npm run build` first):
//   node bench/micro.js
// They guide work on the data path; the side-by-side throughput harness against
// slirp4netns is a separate piece.
import Benchmark from 'benchmark';
import { checksum } from '../dist/wire/checksum.js';
import { EthernetView } from '../dist/wire/ethernet.js';
import { Ipv4View } from '../dist/wire/ipv4.js';
import { UdpView } from '../dist/wire/udp.js';

const big = new Uint8Array(65536).map((_, i) => (i * 31) & 0xff);
const frame = new Uint8Array(1514);
frame.set([0x52, 0x55, 10, 0, 2, 2, 2, 0, 0, 0, 0, 0x64, 0x08, 0x00], 0);
frame.set([0x45, 0, 0x05, 0xdc, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 2, 100, 10, 0, 2, 2], 14);
frame.set([0x30, 0x39, 0x00, 0x35, 0x05, 0xc8, 0, 0], 34);
const eth = new EthernetView();
const ip = new Ipv4View();
const udp = new UdpView();
let sink = 0;

new Benchmark.Suite()
  .add('checksum 20 B (IPv4 header)', () => (sink ^= checksum(frame, 14, 20)))
  .add('checksum 1460 B', () => (sink ^= checksum(big, 0, 1460)))
  .add('checksum 64 KiB', () => (sink ^= checksum(big, 0, 65536)))
  .add('parse Ethernet + IPv4 + UDP headers', () => {
    eth.wrap(frame, 0, frame.length);
    if (eth.check() === 0) {
      ip.wrap(frame, 14, frame.length - 14);
      if (ip.check() === 0) {
        udp.wrap(frame, ip.payloadOffset, ip.payloadLength);
        if (udp.check() === 0) sink ^= udp.dstPort + ip.src;
      }
    }
  })
  .on('cycle', (event) => {
    const t = event.target;
    const ns = 1e9 / t.hz;
    const bytes = /(\d+) (B|KiB)/.exec(t.name);
    const rate = bytes ? `, ${((Number(bytes[1]) * (bytes[2] === 'KiB' ? 1024 : 1) * t.hz) / 1e9).toFixed(2)} GB/s` : '';
    console.log(`${t.name.padEnd(40)} ${ns.toFixed(1).padStart(9)} ns/op${rate}  (±${t.stats.rme.toFixed(1)}%)`);
  })
  .on('complete', () => {
    if (sink === 0.5) console.log(sink);
  })
  .run();
