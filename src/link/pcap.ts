/**
 * A Link decorator that records every frame, in and out, to a pcap file
 * (LINKTYPE_ETHERNET) that tshark, tcpdump and Wireshark read.
 *
 * The virtio-net header is stripped; TSO/GSO super-frames are written whole
 * (up to 64 KiB, the snap length is 262144), as the kernel handed them over
 * or as we handed them to it. Records of one batch are gathered in a buffer
 * and written with one synchronous write per batch. The file is bounded by
 * `maxBytes`: past it, frames are counted but no longer written. When no
 * capture is asked for, the stack uses the link as is: capture costs nothing.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { LinkDecorator, OUTPUT_META_STRIDE, type BatchHandler, type Link } from './link.js';

const VNET_HDR_LEN = 10;
const SNAPLEN = 262_144;
const LINKTYPE_ETHERNET = 1;
const RECORD_HEADER = 16;

export interface PcapOptions {
  /** Stop writing once the file reaches this size (default 1 GiB). */
  maxBytes?: number;
  /**
   * A file already open for writing (and empty), used instead of opening
   * `path`; taken over and closed with the link. For a process that can no
   * longer open files by path (the CLI's --enable-sandbox).
   */
  fd?: number;
}

export interface PcapStats {
  framesWritten: number;
  bytesWritten: number;
  framesNotWritten: number;
}

export class PcapLink extends LinkDecorator {
  readonly pcap: PcapStats = { framesWritten: 0, bytesWritten: 0, framesNotWritten: 0 };
  private readonly fd: number;
  private readonly maxBytes: number;
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  private closed = false;

  constructor(inner: Link, path: string, options: PcapOptions = {}) {
    super(inner);
    this.maxBytes = options.maxBytes ?? 1 << 30;
    this.fd = options.fd ?? openSync(path, 'w', 0o600);
    const header = Buffer.alloc(24);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(SNAPLEN, 16);
    header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
    writeSync(this.fd, header);
    this.pcap.bytesWritten = 24;
  }

  override start(onBatch: BatchHandler): void {
    this.inner.start((buf, meta, count) => {
      const skip = this.inner.vnetHdr ? VNET_HDR_LEN : 0;
      for (let i = 0; i < count; i++) {
        const off = meta[2 * i] + skip;
        const len = meta[2 * i + 1] - skip;
        if (len > 0) this.record(buf, off, len, null, 0, 0);
      }
      this.flush();
      onBatch(buf, meta, count);
    });
  }

  override writeBatch(bufs: readonly Uint8Array[], meta: Uint32Array, count: number): number {
    const skip = this.inner.vnetHdr ? VNET_HDR_LEN : 0;
    for (let i = 0; i < count; i++) {
      const m = i * OUTPUT_META_STRIDE;
      const len0 = meta[m + 2] - skip;
      if (len0 >= 0) this.record(bufs[meta[m]], meta[m + 1] + skip, len0, bufs[meta[m + 3]] ?? null, meta[m + 4], meta[m + 5]);
    }
    this.flush();
    return this.inner.writeBatch(bufs, meta, count);
  }

  override close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    closeSync(this.fd);
    this.inner.close();
  }

  private record(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array | null, bOff: number, bLen: number): void {
    const len = aLen + (b === null ? 0 : bLen);
    const size = RECORD_HEADER + Math.min(len, SNAPLEN);
    if (this.closed || this.pcap.bytesWritten + this.used + size > this.maxBytes) {
      this.pcap.framesNotWritten++;
      return;
    }
    if (this.used + size > this.buf.length) {
      this.flush();
      if (size > this.buf.length) this.buf = Buffer.allocUnsafe(size);
    }
    const now = Date.now();
    const h = this.buf;
    let o = this.used;
    h.writeUInt32LE(Math.floor(now / 1000), o);
    h.writeUInt32LE((now % 1000) * 1000, o + 4);
    h.writeUInt32LE(Math.min(len, SNAPLEN), o + 8);
    h.writeUInt32LE(len, o + 12);
    o += RECORD_HEADER;
    const first = Math.min(aLen, SNAPLEN);
    h.set(a.subarray(aOff, aOff + first), o);
    o += first;
    if (b !== null && bLen > 0 && first < SNAPLEN) {
      const second = Math.min(bLen, SNAPLEN - first);
      h.set(b.subarray(bOff, bOff + second), o);
      o += second;
    }
    this.used = o;
    this.pcap.framesWritten++;
  }

  private flush(): void {
    if (this.used === 0 || this.closed) {
      this.used = 0;
      return;
    }
    writeSync(this.fd, this.buf, 0, this.used);
    this.pcap.bytesWritten += this.used;
    this.used = 0;
  }
}
