#!/usr/bin/env node
// The relay's host side alone: net.Socket against NativeTcpStream (src/nat/native-stream.ts)
// on loopback, the peer in a child process (run `npm run build` first):
//   node bench/host-stream.js [--seconds S=2] [--rounds N=3]
// rr: 1-byte ping-pong; read: the peer sends as fast as it can; write: we send 64 KiB
// chunks, as tcp-nat does (net.Socket gets a copy per write, NativeTcpStream a view of one
// reused buffer). Rounds alternate the two so that a noisy machine hurts both alike.
import { fork } from 'node:child_process';
import net from 'node:net';
import { NativeTcpStream } from '../dist/nat/native-stream.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SECONDS = opt('--seconds', 2);
const ROUNDS = opt('--rounds', 3);
const CHUNK = 64 * 1024;

if (process.argv[2] === '--peer') {
  // The peer: echo (rr), source (read) or sink (write), chosen by the first byte.
  const server = net.createServer({ noDelay: true }, (c) => {
    c.once('data', (first) => {
      const mode = first[0];
      if (mode === 0x72 /* r: rr */) {
        c.on('data', (d) => c.write(d));
        c.write(first.subarray(1, 2));
      } else if (mode === 0x73 /* s: source */) {
        const b = Buffer.alloc(CHUNK, 7);
        const pump = () => {
          while (!c.destroyed && c.write(b));
          if (!c.destroyed) c.once('drain', pump);
        };
        c.on('error', () => {});
        pump();
      } else {
        c.on('data', () => {});
      }
      c.on('error', () => {});
    });
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const peer = fork(new URL(import.meta.url).pathname, ['--peer']);
  const port = await new Promise((r) => peer.once('message', r));
  const open = (kind) =>
    kind === 'net' ? net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true }) : NativeTcpStream.connect({ host: '127.0.0.1', port });

  async function rr(kind) {
    const s = open(kind);
    await new Promise((r) => s.once('connect', r));
    let n = 0;
    const end = Date.now() + SECONDS * 1000;
    const one = Buffer.from([1]);
    await new Promise((resolve) => {
      s.on('data', () => {
        n++;
        if ((n & 255) === 0 && Date.now() > end) return resolve();
        s.write(kind === 'net' ? Buffer.from(one) : one);
      });
      s.write(Buffer.from([0x72, 1]));
    });
    s.destroy();
    return n / SECONDS;
  }

  async function read(kind) {
    const s = open(kind);
    await new Promise((r) => s.once('connect', r));
    let bytes = 0;
    s.on('data', (d) => (bytes += d.length));
    s.on('error', () => {});
    s.write(Buffer.from('s'));
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    s.destroy();
    return (bytes * 8) / SECONDS / 1e9;
  }

  async function write(kind) {
    const s = open(kind);
    await new Promise((r) => s.once('connect', r));
    s.on('error', () => {});
    s.write(Buffer.from('w'));
    const buf = Buffer.alloc(CHUNK, 9);
    let bytes = 0;
    const end = Date.now() + SECONDS * 1000;
    while (Date.now() < end) {
      for (let i = 0; i < 64; i++) {
        bytes += CHUNK;
        if (!s.write(kind === 'net' ? Buffer.copyBytesFrom(buf) : buf)) {
          await new Promise((r) => s.once('drain', r));
          break;
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    s.destroy();
    return (bytes * 8) / SECONDS / 1e9;
  }

  const results = { net: { rr: [], read: [], write: [] }, native: { rr: [], read: [], write: [] } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ['net', 'native']) {
      results[kind].rr.push(await rr(kind));
      results[kind].read.push(await read(kind));
      results[kind].write.push(await write(kind));
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(`median of ${ROUNDS} rounds, ${SECONDS} s each      net.Socket   NativeTcpStream`);
  console.log(`rr (round trips/s)                       ${median(results.net.rr).toFixed(0).padStart(10)}   ${median(results.native.rr).toFixed(0).padStart(15)}`);
  console.log(`read (Gbit/s)                            ${median(results.net.read).toFixed(2).padStart(10)}   ${median(results.native.read).toFixed(2).padStart(15)}`);
  console.log(`write (Gbit/s)                           ${median(results.net.write).toFixed(2).padStart(10)}   ${median(results.native.write).toFixed(2).padStart(15)}`);
  peer.kill();
}
