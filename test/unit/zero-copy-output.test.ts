/**
 * Host→guest TCP payloads sent from where they are (SendBuffer.viewOf,
 * OutputQueue tails, TcpOutput): the frame a link receives is byte for byte
 * the frame a copy would have built, the tail's buffer is passed once per
 * batch, and whatever is not one run of memory (or needs a checksum
 * computed here, or is small) is still copied.
 */
import { describe, expect, it } from 'vitest';
import { FrameOutput } from '../../src/ethernet/frame-output.js';
import { addressPlan } from '../../src/ip/address-plan.js';
import { Ipv6Ids } from '../../src/ip/ipv6-ids.js';
import { OUTPUT_META_STRIDE, type Link } from '../../src/link/link.js';
import { MemoryLink } from '../../src/link/memory.js';
import { OutputQueue } from '../../src/link/output-queue.js';
import { TcpOutput, TUN_F_CSUM, TUN_F_TSO4, ZERO_COPY_MIN_BYTES } from '../../src/nat/tcp-output.js';
import { DEFAULT_TCP_CONFIG, type PayloadView, type TcpEndpointConfig } from '../../src/tcp/contract.js';
import { SendBuffer } from '../../src/tcp/send-buffer.js';
import { newTcpRepr, TcpFlag } from '../../src/wire/tcp.js';
import { prng } from '../tcp/sim.js';

function view(): PayloadView {
  return { bytes: new Uint8Array(0), off: 0 };
}

/** A slab with `sizes` consecutive chunks carved from it (as ReadSlab.take does), bytes i & 0xff. */
function slabChunks(sizes: number[], gapAfter = -1): { slab: Uint8Array; chunks: Uint8Array[] } {
  const slab = new Uint8Array(sizes.reduce((a, b) => a + b, 0) + 64);
  for (let i = 0; i < slab.length; i++) slab[i] = (i * 7 + 3) & 0xff;
  const chunks: Uint8Array[] = [];
  let off = 0;
  sizes.forEach((n, i) => {
    chunks.push(slab.subarray(off, off + n));
    off += n + (i === gapAfter ? 8 : 0);
  });
  return { slab, chunks };
}

describe('SendBuffer.viewOf', () => {
  it('finds a run across adjacent chunks of one buffer, past released bytes', () => {
    const { slab, chunks } = slabChunks([100, 200, 300]);
    const b = new SendBuffer();
    for (const c of chunks) b.push(c);
    const v = view();
    expect(b.viewOf(50, 400, v)).toBe(true);
    expect(v.bytes.buffer).toBe(slab.buffer);
    expect(v.off).toBe(50);
    b.release(120); // into the second chunk
    expect(b.viewOf(10, 400, v)).toBe(true);
    expect(v.off).toBe(130);
    const copy = new Uint8Array(400);
    b.copyOut(10, 400, copy, 0);
    expect(v.bytes.subarray(v.off, v.off + 400)).toEqual(copy);
  });

  it('says no for a gap between chunks, chunks of two buffers, and ranges outside the queue', () => {
    const gap = slabChunks([100, 100], 0);
    const b = new SendBuffer();
    for (const c of gap.chunks) b.push(c);
    const v = view();
    expect(b.viewOf(0, 100, v)).toBe(true); // within the first chunk
    expect(b.viewOf(50, 100, v)).toBe(false); // across the gap
    const two = new SendBuffer();
    two.push(new Uint8Array(10));
    two.push(new Uint8Array(10));
    expect(two.viewOf(5, 10, v)).toBe(false);
    expect(two.viewOf(15, 10, v)).toBe(false);
    expect(two.viewOf(-1, 2, v)).toBe(false);
    expect(two.viewOf(0, 0, v)).toBe(false);
  });

  it('agrees with copyOut under random pushes, releases and reads', () => {
    const next = prng(11);
    const rand = () => Math.floor(next() * 0x1_0000_0000);
    const b = new SendBuffer();
    const v = view();
    let slab = new Uint8Array(4096);
    let used = 0;
    let seen = 0;
    for (let step = 0; step < 3000; step++) {
      const r = rand() % 10;
      if (r < 4) {
        const n = 1 + (rand() % 700);
        if (used + n > slab.length || rand() % 8 === 0) {
          slab = new Uint8Array(4096);
          for (let i = 0; i < slab.length; i++) slab[i] = rand() & 0xff;
          used = 0;
        }
        b.push(slab.subarray(used, used + n));
        used += n + (rand() % 6 === 0 ? 1 : 0);
      } else if (r < 6) {
        b.release(rand() % (b.length + 1));
      } else if (b.length > 0) {
        const off = rand() % b.length;
        const len = 1 + (rand() % (b.length - off));
        if (b.viewOf(off, len, v)) {
          seen++;
          const copy = new Uint8Array(len);
          b.copyOut(off, len, copy, 0);
          expect(v.bytes.subarray(v.off, v.off + len)).toEqual(copy);
        }
      }
    }
    expect(seen).toBeGreaterThan(100);
  });
});

describe('OutputQueue tails', () => {
  function capture(): { link: Link; frames: Uint8Array[]; bufsSeen: number[] } {
    const frames: Uint8Array[] = [];
    const bufsSeen: number[] = [];
    const mem = new MemoryLink();
    const link: Link = Object.assign(Object.create(mem) as MemoryLink, {
      writeBatch(bufs: readonly Uint8Array[], meta: Uint32Array, count: number): number {
        bufsSeen.push(bufs.length);
        for (let i = 0; i < count; i++) {
          const m = i * OUTPUT_META_STRIDE;
          const a = bufs[meta[m]].subarray(meta[m + 1], meta[m + 1] + meta[m + 2]);
          const t = meta[m + 5] > 0 ? bufs[meta[m + 3]].subarray(meta[m + 4], meta[m + 4] + meta[m + 5]) : new Uint8Array(0);
          frames.push(Uint8Array.from([...a, ...t]));
        }
        return count;
      },
    });
    return { link, frames, bufsSeen };
  }

  it('sends arena bytes then the tail; one entry per tail buffer per batch; none after the flush', () => {
    const { link, frames, bufsSeen } = capture();
    const q = new OutputQueue(link);
    const tailA = Uint8Array.of(1, 2, 3, 4, 5, 6);
    const tailB = Uint8Array.of(9, 9);
    for (const [tail, off, len] of [[tailA, 1, 3], [tailA, 4, 2], [tailB, 0, 2], [null, 0, 0]] as const) {
      const at = q.reserve(4);
      q.arena.set([0xaa, 0xbb], at);
      q.commit(at, 2, tail, off, len);
    }
    q.flush();
    expect(frames.map((f) => [...f])).toEqual([[0xaa, 0xbb, 2, 3, 4], [0xaa, 0xbb, 5, 6], [0xaa, 0xbb, 9, 9], [0xaa, 0xbb]]);
    expect(bufsSeen).toEqual([3]); // arena, tailA, tailB
    const at = q.reserve(2);
    q.commit(at, 2);
    q.flush();
    expect(bufsSeen).toEqual([3, 1]);
  });
});

describe('TcpOutput payloads', () => {
  const plan = addressPlan();
  const cfg = {
    ...DEFAULT_TCP_CONFIG,
    localIp: plan.gateway,
    localPort: 80,
    guestIp: plan.guest,
    guestPort: 40000,
    iss: 1,
    mss: 1460,
    maxSegmentPayload: 62780,
  } as TcpEndpointConfig;

  function build(offloads: number, data: SendBuffer, len: number): { got: Uint8Array[]; zeroCopyBytes: number } {
    const got: Uint8Array[] = [];
    const link = new MemoryLink({ vnetHdr: true, offloads });
    const guest = new MemoryLink({ vnetHdr: true });
    link.peer = guest;
    guest.peer = link;
    const q = new OutputQueue(link);
    const out = new TcpOutput(new FrameOutput(q, true), plan, offloads, new Ipv6Ids(), plan.gatewayMac);
    const repr = newTcpRepr();
    repr.flags = TcpFlag.ACK | TcpFlag.PSH;
    repr.seq = 1000;
    repr.ack = 2000;
    repr.window = 512;
    out.segment(0x020000000001, cfg, repr, data, 0, len, 1460);
    guest.start((buf, meta, count) => {
      for (let i = 0; i < count; i++) got.push(buf.slice(meta[2 * i], meta[2 * i] + meta[2 * i + 1]));
    });
    q.flush();
    return { got, zeroCopyBytes: out.stats.zeroCopyBytes };
  }

  async function frameFor(offloads: number, chunks: Uint8Array[], len: number): Promise<{ frame: Uint8Array; zeroCopyBytes: number }> {
    const b = new SendBuffer();
    for (const c of chunks) b.push(c);
    const r = build(offloads, b, len);
    for (let i = 0; i < 3 && r.got.length === 0; i++) await new Promise((res) => setImmediate(res));
    expect(r.got).toHaveLength(1);
    return { frame: r.got[0], zeroCopyBytes: r.zeroCopyBytes };
  }

  it('a payload in one run goes out from there, and the frame is the one a copy builds', async () => {
    const { chunks } = slabChunks([30000, 32780]);
    const zero = await frameFor(TUN_F_CSUM | TUN_F_TSO4, chunks, 62780);
    expect(zero.zeroCopyBytes).toBe(62780);
    const copies = chunks.map((c) => Uint8Array.from(c)); // same bytes, two buffers
    const copied = await frameFor(TUN_F_CSUM | TUN_F_TSO4, copies, 62780);
    expect(copied.zeroCopyBytes).toBe(0);
    expect(zero.frame.length).toBe(10 + 14 + 20 + 20 + 62780);
    expect(Buffer.from(zero.frame).equals(Buffer.from(copied.frame))).toBe(true);
  });

  it('copies when the checksum is computed here (no CSUM offload), and below the size threshold', async () => {
    const { chunks } = slabChunks([1460]);
    expect((await frameFor(0, chunks, 1460)).zeroCopyBytes).toBe(0);
    const small = slabChunks([ZERO_COPY_MIN_BYTES - 1]);
    expect((await frameFor(TUN_F_CSUM, small.chunks, ZERO_COPY_MIN_BYTES - 1)).zeroCopyBytes).toBe(0);
    const atMin = slabChunks([ZERO_COPY_MIN_BYTES]);
    expect((await frameFor(TUN_F_CSUM, atMin.chunks, ZERO_COPY_MIN_BYTES)).zeroCopyBytes).toBe(ZERO_COPY_MIN_BYTES);
  });
});
