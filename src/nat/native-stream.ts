/**
 * NativeTcpStream: a host TCP connection driven by the native addon on a raw
 * non-blocking fd (native/stream.c), for the TCP relay (tcp-nat.ts).
 *
 * Theory of operation
 * -------------------
 * net.Socket costs the relay most of its time per event: per read a fresh
 * 64 KiB malloc'd Buffer (and its page faults), onStreamRead,
 * readableAddChunk and emit; per write a WriteWrap, Writable state and a
 * nextTick. Here readiness comes from a uv_poll on Node's own loop (poll.c,
 * as for the TAP), a read is one recv() and a write one send().
 *
 * It behaves like the net.Socket tcp-nat used to get (allowHalfOpen: true,
 * noDelay: true): events 'connect', 'data', 'end', 'drain', 'error', 'close';
 * write/end/destroy/resetAndDestroy/pause/resume; writableLength, destroyed,
 * writableEnded. Differences, all deliberate:
 *   - write() never keeps `chunk`: what the kernel does not take at once is
 *     copied into the queue (`copiesOnWrite`), so callers may pass views of
 *     buffers they reuse. write() after end() or destroy() is ignored and
 *     returns false (net.Socket would emit ERR_STREAM_WRITE_AFTER_END).
 *   - 'error' is only emitted when someone listens: an unheard error must not
 *     crash the process. The stream is closed either way, and 'close' follows.
 *   - connect() takes IPv4 or IPv6 literals only, the source (localAddress)
 *     of the destination's family: anything else (a host name, a %zone, an
 *     IPv6 destination with an IPv4 --outbound-addr) is not attempted here
 *     (canConnect says false and host.ts falls back to net.Socket, which
 *     resolves names and refuses mixed families itself, with EINVAL; it
 *     never binds the wrong family). An IPv6 socket has IPV6_V6ONLY, so
 *     ::ffff:a.b.c.d fails with ENETUNREACH instead of reaching IPv4.
 *
 * Readiness
 * ---------
 *   CONNECTING  poll WRITABLE; writable (or POLLERR) → SO_ERROR → 'connect' or 'error'.
 *               Skipped when the connect has completed by the time connect()
 *               returns (tcpConnected: the usual case for the host's own
 *               addresses): OPEN at once, 'connect' on the next tick.
 *   OPEN        poll READABLE unless paused or at EOF, WRITABLE while the queue is not empty
 *   CLOSED      no poll, no fd; exactly one 'close', after 'error' if any
 *
 * The poll is level-triggered, so a wake-up reads at most READ_BUDGET_BYTES
 * (fairness across flows) and the rest waits for the next turn of the loop.
 * pause() is lazy: it only stops the read loop, and READABLE is dropped at the
 * next readable wake-up that finds the stream paused; a resume() before that
 * costs no epoll_ctl at all (tcp-nat pauses and resumes a busy flow often).
 * libuv reports POLLERR as status UV_EBADF and stops the handle: SO_ERROR then
 * says what happened (ECONNREFUSED while connecting, ECONNRESET later).
 *
 * Reads and ownership
 * -------------------
 * 'data' chunks belong to the listener: tcp-nat's send buffer keeps them until
 * the guest acknowledges them, without copying. Reads land in the free tail of
 * a shared 1 MiB slab (one per process, `sharedSlab`) and are handed out as
 * views of it; a new slab is taken when the tail is shorter than
 * MIN_READ_BYTES, and the old one lives as long as a view of it does. A read
 * shorter than COPY_BELOW_BYTES is copied into its own small Buffer instead,
 * so that a tiny long-lived chunk does not pin a whole slab.
 * Named approximation: a chunk of 4 KiB or more still pins its slab; in the
 * worst case (many flows each holding one such chunk unacknowledged, every
 * other byte of the slabs released) memory is 256× the bytes held. Flows
 * release their chunks in order as the guest acknowledges, so slabs recycle
 * in practice.
 *
 * Writes and ownership
 * --------------------
 * write() sends at once and keeps nothing; what the kernel did not take is
 * copied into the queue (the caller's bytes are the link's reused read
 * buffer). Copies up to 64 KiB go into buffers from a small pool (`copyPool`,
 * at most 64 kept, dropped by releaseNativeStreamMemory when the relay is
 * idle): a fresh ArrayBuffer per copy made guest→host bulk traffic allocate
 * ~200 MB/s outside the V8 heap at MTU 65520 (13 % of the bytes met a full
 * socket), and that external-memory pressure kept V8 marking concurrently,
 * ~10 % of the helper's CPU samples.
 *
 * Port forwards: adopt() takes over a net.Socket accepted paused
 * (pauseOnConnect), of either family (a listener on ::1 or ::, or on an IPv4
 * address): its fd is dup'd and the net.Socket destroyed. Closing one
 * of two fds of a socket sends nothing (no FIN, no RST): the connection lives
 * on through the dup, and Node never read from it, so no byte is lost.
 *
 * This file and host.ts (and ping-socket.ts) are where host sockets are opened.
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { loadNative, nativeAvailable, PollEvents, type NativeAddon, type PollHandle } from '../link/native.js';
import { parseIpv4 } from '../wire/ipv4-address.js';
import type { HostStream, HostTcpConnectOptions } from './host-stream.js';

const { EAGAIN, EBADF, EIO, ENOTCONN } = osConstants.errno;
const { READABLE, WRITABLE } = PollEvents;

/** Size of a read slab. */
export const SLAB_BYTES = 1 << 20;
/** A new slab is taken when the current one has less room than this for the next read. */
const MIN_READ_BYTES = 64 * 1024;
/** Bytes read per wake-up at most, before yielding to other flows (the poll is level-triggered). */
export const READ_BUDGET_BYTES = 256 * 1024;
/** Reads shorter than this are copied out of the slab (see Reads and ownership). */
export const COPY_BELOW_BYTES = 4096;
/** write() returns false from this many queued bytes on (net.Socket's default highWaterMark). */
export const HIGH_WATER_MARK = 16 * 1024;
/** Consecutive POLLERR wake-ups without any socket error before the stream gives up (EIO). */
const MAX_SPURIOUS_POLL_ERRORS = 16;
/** Queue entries dropped from the front before the queue array is compacted. */
const QUEUE_COMPACT_AT = 64;

/** An 'error' of a NativeTcpStream: like Node's socket errors. */
export interface NativeStreamError extends Error {
  /** errno name: ECONNREFUSED, ECONNRESET, EPIPE, ... */
  code: string;
  /** Negative errno, as Node reports it. */
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

/** Where reads land (see Reads and ownership). */
class ReadSlab {
  buf: Buffer = Buffer.alloc(0);
  off = 0;

  /** Room for the next read at `off`, at least MIN_READ_BYTES. */
  reserve(): number {
    if (this.buf.length - this.off < MIN_READ_BYTES) {
      // Not zeroed: every byte handed out was written by the kernel.
      this.buf = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.off = 0;
    }
    return this.buf.length - this.off;
  }

  /** The `n` bytes just read at `off`, now owned by the caller. */
  take(n: number): Buffer {
    const start = this.off;
    if (n < COPY_BELOW_BYTES) {
      // From Node's small-buffer pool; the slab region is reused by the next read.
      const copy = Buffer.allocUnsafe(n);
      this.buf.copy(copy, 0, start, start + n);
      return copy;
    }
    this.off = start + n;
    return this.buf.subarray(start, start + n);
  }
}

const sharedSlab = new ReadSlab();

/** Size of a pooled queue buffer; longer copies get their own. */
const POOL_BUFFER_BYTES = 64 * 1024;
/** Pooled buffers kept at most (4 MiB). */
const POOL_MAX_BUFFERS = 64;

/** Where the write queue's copies come from (see Writes and ownership). */
class CopyPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly ours = new WeakSet<ArrayBuffer>();

  /** A copy of src[from, from+len), in a pooled buffer when it fits. */
  copy(src: Uint8Array, from: number, len: number): Buffer {
    if (len > POOL_BUFFER_BYTES) return Buffer.copyBytesFrom(src, from, len);
    let ab = this.free.pop();
    if (ab === undefined) {
      // Not zeroed: the copy overwrites what is handed out.
      ab = Buffer.allocUnsafeSlow(POOL_BUFFER_BYTES).buffer as ArrayBuffer;
      this.ours.add(ab);
    }
    const b = Buffer.from(ab, 0, len);
    b.set(len === src.length && from === 0 ? src : src.subarray(from, from + len));
    return b;
  }

  /** `b` (a queue entry) is done with: its buffer goes back if it came from here. */
  release(b: Uint8Array): void {
    const ab = b.buffer as ArrayBuffer;
    if (this.free.length < POOL_MAX_BUFFERS && this.ours.has(ab)) this.free.push(ab);
  }

  drop(): void {
    this.free.length = 0;
  }

  get pooled(): number {
    return this.free.length;
  }
}

const copyPool = new CopyPool();

/** Idle-time release (stack.releaseIdleMemory): the pooled queue buffers go. */
export function releaseNativeStreamMemory(): void {
  copyPool.drop();
}

/** Pooled queue buffers held now (tests). */
export function pooledCopyBuffers(): number {
  return copyPool.pooled;
}

export class NativeTcpStream extends EventEmitter implements HostStream {
  /** write() copies what it keeps: callers may pass views of buffers they reuse. */
  readonly copiesOnWrite = true;
  /** Bytes queued: accepted by write() and not yet taken by the kernel. */
  writableLength = 0;
  /** end() was called (or the stream was destroyed). */
  writableEnded = false;
  destroyed = false;

  private fd = -1;
  private poll: PollHandle | null = null;
  /** The mask the poll currently waits for. */
  private armed = 0;
  private connecting: boolean;
  private paused = false;
  private readEnded = false;
  /** shutdown(SHUT_WR) done: our FIN is on its way. */
  private writeShut = false;
  private spuriousPollErrors = 0;
  private readonly queue: Buffer[] = [];
  private queueHead = 0;
  /** Bytes of queue[queueHead] already sent. */
  private queueHeadOff = 0;
  /** For error messages: "addr:port" of a connect. */
  private peer = '';

  private constructor(
    private readonly native: NativeAddon,
    connecting: boolean,
  ) {
    super();
    this.connecting = connecting;
  }

  /**
   * Whether connect() can take these options: the addon is built, and host
   * and localAddress (if any) are literals of one family, both IPv4 or both
   * IPv6.
   */
  static canConnect(o: HostTcpConnectOptions): boolean {
    return nativeAvailable() && connectAddresses(loadNative(), o) !== undefined;
  }

  /**
   * Starts a connect to o.host:o.port (see canConnect) and returns at once.
   * 'connect' or 'error' follows, always asynchronously: failures carry the
   * code Node's would (ECONNREFUSED, ENETUNREACH, EHOSTUNREACH,
   * EADDRNOTAVAIL for a localAddress that is not ours, EAFNOSUPPORT when the
   * host has no IPv6, ...). Throws (API misuse) when canConnect would say
   * false.
   */
  static connect(o: HostTcpConnectOptions): NativeTcpStream {
    const native = loadNative();
    const a = connectAddresses(native, o);
    if (a === undefined) {
      throw new TypeError(`NativeTcpStream.connect: not IPv4 or IPv6 literals of one family: ${o.host}${o.localAddress === undefined ? '' : ` from ${o.localAddress}`}`);
    }
    const s = new NativeTcpStream(native, true);
    s.peer = `${o.host}:${o.port}`;
    const fd = native.tcpConnect(a.addr, o.port, a.local);
    if (fd < 0) {
      s.fail(-fd, 'connect');
      return s;
    }
    s.fd = fd;
    const done = native.tcpConnected(fd);
    if (done < 0) {
      s.fail(-done, 'connect');
    } else if (done > 0) {
      // Connected already (the host's own addresses): no round through the
      // loop for UV_WRITABLE; 'connect' still comes asynchronously.
      s.connecting = false;
      s.startPoll(READABLE);
      process.nextTick(() => s.connected());
    } else {
      s.startPoll(WRITABLE);
    }
    return s;
  }

  /** Whether adopt() can take `socket`: the addon is built and the socket has an fd (a real TCP socket). */
  static canAdopt(socket: net.Socket): boolean {
    return socketFd(socket) >= 0 && nativeAvailable();
  }

  /**
   * Takes over `socket`, which must have been accepted paused
   * (pauseOnConnect) and never read from: its fd is dup'd and the net.Socket
   * destroyed. The stream starts paused; resume() starts reading. On failure
   * (no fd, dup failing) the stream is returned already failing ('error',
   * 'close'), and the net.Socket is destroyed all the same.
   */
  static adopt(socket: net.Socket): NativeTcpStream {
    const native = loadNative();
    const s = new NativeTcpStream(native, false);
    s.paused = true;
    const fd = socketFd(socket);
    const dup = fd >= 0 ? native.dupFd(fd) : -EBADF;
    socket.destroy();
    if (dup < 0) {
      s.fail(-dup, 'dup');
      return s;
    }
    s.fd = dup;
    s.startPoll(0);
    return s;
  }

  /**
   * Sends `chunk` (or queues a copy of what the kernel did not take); the
   * chunk is not referenced after the call. Returns false when writableLength
   * reached HIGH_WATER_MARK ('drain' follows), or when the stream is ended or
   * destroyed (the chunk is then ignored).
   */
  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.writableEnded) return false;
    const len = chunk.length;
    let sent = 0;
    if (!this.connecting && this.writableLength === 0 && len > 0) {
      const n = this.native.tcpWrite(this.fd, chunk, 0, len);
      if (n === len) return true;
      if (n >= 0) sent = n;
      else if (n !== -EAGAIN) {
        this.fail(-n, 'write');
        return false;
      }
    }
    if (sent < len) {
      this.queue.push(copyPool.copy(chunk, sent, len - sent));
      this.writableLength += len - sent;
      if (!this.connecting) this.sync(false);
    }
    return this.writableLength < HIGH_WATER_MARK;
  }

  /** Half-close: FIN once everything queued is sent. Reading goes on. */
  end(): this {
    if (this.destroyed || this.writableEnded) return this;
    this.writableEnded = true;
    if (!this.connecting && this.writableLength === 0) this.shutdownWrite();
    return this;
  }

  /** Closes the fd (queued bytes are dropped); 'close' follows once. Idempotent. */
  destroy(): this {
    if (this.destroyed) return this;
    this.close(false);
    process.nextTick(() => this.emit('close', false));
    return this;
  }

  /** Closes with RST (SO_LINGER 0); 'close' follows once. Idempotent. */
  resetAndDestroy(): this {
    if (this.destroyed) return this;
    this.close(true);
    process.nextTick(() => this.emit('close', false));
    return this;
  }

  /** Stops reading ('data' and 'end'); see Readiness for why it is lazy. */
  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    if (!this.connecting && !this.destroyed) this.sync(false);
    return this;
  }

  // --- readiness -------------------------------------------------------------

  private readonly onPoll = (status: number, events: number): void => {
    try {
      if (this.destroyed) return;
      if (status < 0) {
        this.armed = 0; // libuv stopped the handle
        this.onPollError(-status);
        return;
      }
      this.spuriousPollErrors = 0;
      if (this.connecting) {
        if ((events & WRITABLE) !== 0) this.finishConnect();
        return;
      }
      if ((events & WRITABLE) !== 0 && this.writableLength > 0) this.flush();
      if ((events & READABLE) !== 0 && !this.destroyed && !this.paused) this.readSome();
      if (!this.destroyed) this.sync((events & READABLE) !== 0);
    } catch (err) {
      // A bug here or in a listener: it becomes this stream's error, never the process's.
      this.failWith(err);
    }
  };

  private startPoll(events: number): void {
    try {
      this.poll = this.native.pollStart(this.fd, this.onPoll, events);
      this.armed = events;
    } catch (err) {
      this.failWith(err);
    }
  }

  /** What the poll should wait for now. `readableFired`: a readable wake-up just found the stream paused. */
  private sync(readableFired: boolean): void {
    let events = 0;
    if (this.connecting) events = WRITABLE;
    else {
      if (!this.readEnded && (!this.paused || (!readableFired && (this.armed & READABLE) !== 0))) events |= READABLE;
      if (this.writableLength > 0) events |= WRITABLE;
    }
    if (events === this.armed || this.poll === null) return;
    const r = this.native.pollSetEvents(this.poll, events);
    if (r < 0) {
      this.fail(-r, 'poll');
      return;
    }
    this.armed = events;
  }

  private onPollError(uvErrno: number): void {
    const e = this.native.sockError(this.fd);
    if (e !== 0) {
      this.fail(Math.abs(e), this.connecting ? 'connect' : e < 0 ? 'getsockopt' : 'read');
      return;
    }
    // POLLERR without a pending socket error (something consumed it, or it
    // was not a socket error at all): poll again, but not forever.
    if (++this.spuriousPollErrors >= MAX_SPURIOUS_POLL_ERRORS) {
      this.fail(uvErrno === EBADF ? EIO : uvErrno, 'poll');
      return;
    }
    this.sync(false);
  }

  private finishConnect(): void {
    const e = this.native.sockError(this.fd);
    if (e !== 0) {
      this.fail(Math.abs(e), 'connect');
      return;
    }
    this.connecting = false;
    this.connected();
  }

  /** The connect completed: 'connect', then what was written or ended before it. */
  private connected(): void {
    if (this.destroyed) return;
    this.emit('connect');
    if (this.destroyed) return;
    if (this.writableLength > 0) this.flush();
    else if (this.writableEnded && !this.writeShut) this.shutdownWrite();
    if (!this.destroyed) this.sync(false);
  }

  // --- reading ---------------------------------------------------------------

  private readSome(): void {
    const native = this.native;
    const slab = sharedSlab;
    let budget = READ_BUDGET_BYTES;
    while (budget > 0) {
      const want = Math.min(slab.reserve(), budget);
      const n = native.tcpRead(this.fd, slab.buf, slab.off, want);
      if (n > 0) {
        budget -= n;
        this.emit('data', slab.take(n));
        if (this.destroyed || this.paused) return;
        // A short read emptied the socket: the next readiness says when there is more.
        if (n < want) return;
        continue;
      }
      if (n === 0) {
        this.onEof();
        return;
      }
      if (n !== -EAGAIN) this.fail(-n, 'read');
      return;
    }
  }

  private onEof(): void {
    this.readEnded = true;
    this.emit('end');
    // Both directions are done: net.Socket (allowHalfOpen) destroys itself here too.
    if (!this.destroyed && this.writeShut) this.destroy();
  }

  // --- writing ---------------------------------------------------------------

  /** Sends from the queue until it is empty or the kernel is full. */
  private flush(): void {
    const native = this.native;
    const q = this.queue;
    while (this.writableLength > 0) {
      const count = q.length - this.queueHead;
      let n: number;
      let tried: number;
      if (count === 1) {
        tried = this.writableLength;
        n = native.tcpWrite(this.fd, q[this.queueHead], this.queueHeadOff, tried);
      } else {
        tried = -this.queueHeadOff;
        const end = this.queueHead + Math.min(count, 64);
        for (let i = this.queueHead; i < end; i++) tried += q[i].length;
        n = native.tcpWritev(this.fd, q, this.queueHead, count, this.queueHeadOff);
      }
      if (n < 0) {
        if (n !== -EAGAIN) this.fail(-n, 'write');
        return;
      }
      this.consume(n);
      if (n < tried) return; // the kernel is full: wait for WRITABLE
    }
    if (this.writableEnded && !this.writeShut) this.shutdownWrite();
    if (!this.destroyed) this.emit('drain');
  }

  private consume(n: number): void {
    const q = this.queue;
    this.writableLength -= n;
    while (n > 0) {
      const live = q[this.queueHead].length - this.queueHeadOff;
      if (n < live) {
        this.queueHeadOff += n;
        break;
      }
      n -= live;
      copyPool.release(q[this.queueHead]);
      this.queueHead++;
      this.queueHeadOff = 0;
    }
    if (this.queueHead === q.length) {
      q.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead >= QUEUE_COMPACT_AT && this.queueHead * 2 >= q.length) {
      q.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private shutdownWrite(): void {
    this.writeShut = true;
    const r = this.native.tcpShutdownWrite(this.fd);
    // ENOTCONN: the connection is already gone (a reset the poll reports next).
    if (r < 0 && r !== -ENOTCONN) {
      this.fail(-r, 'shutdown');
      return;
    }
    if (this.readEnded) this.destroy();
  }

  // --- closing ---------------------------------------------------------------

  private close(reset: boolean): void {
    this.destroyed = true;
    this.writableEnded = true;
    if (this.poll !== null) {
      // The poll closes the fd after libuv has let go of it (no failing EPOLL_CTL_DEL).
      if (this.fd >= 0) this.native.pollClose(this.poll, this.fd, reset);
      else this.native.pollStop(this.poll);
      this.poll = null;
    } else if (this.fd >= 0) {
      if (reset) this.native.tcpResetClose(this.fd);
      else this.native.fdClose(this.fd);
    }
    this.fd = -1;
    this.armed = 0;
    for (let i = this.queueHead; i < this.queue.length; i++) copyPool.release(this.queue[i]);
    this.queue.length = 0;
    this.queueHead = 0;
    this.queueHeadOff = 0;
    this.writableLength = 0;
  }

  /** Closes the stream because of `errno`; 'error' (if heard) and 'close' follow. */
  private fail(errno: number, syscall: string): void {
    if (this.destroyed) return;
    this.failWith(errnoError(errno, syscall, syscall === 'connect' ? this.peer : ''));
  }

  private failWith(cause: unknown): void {
    if (this.destroyed) {
      // Thrown by a listener after the stream closed: nothing left to fail.
      process.emitWarning(cause instanceof Error ? cause : new Error(String(cause)));
      return;
    }
    this.close(false);
    const err = cause instanceof Error ? cause : new Error(String(cause));
    process.nextTick(() => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.emit('close', true);
    });
  }
}

/**
 * The addresses of a connect as tcpConnect takes them: numbers for IPv4,
 * 16 bytes for IPv6, the source (if any) of the destination's family;
 * undefined when they are not literals of one family.
 */
function connectAddresses(native: NativeAddon, o: HostTcpConnectOptions): { addr: number | Uint8Array; local: number | Uint8Array | undefined } | undefined {
  const addr4 = parseIpv4(o.host);
  if (addr4 !== undefined) {
    if (o.localAddress === undefined) return { addr: addr4, local: undefined };
    const local4 = parseIpv4(o.localAddress);
    return local4 === undefined ? undefined : { addr: addr4, local: local4 };
  }
  const addr6 = new Uint8Array(16);
  if (!native.inet6Pton(o.host, addr6, 0)) return undefined;
  if (o.localAddress === undefined) return { addr: addr6, local: undefined };
  const local6 = new Uint8Array(16);
  return native.inet6Pton(o.localAddress, local6, 0) ? { addr: addr6, local: local6 } : undefined;
}

/** The fd of a net.Socket's libuv handle (Node exposes it as _handle.fd on Unix), or -1. */
function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/** An Error shaped like Node's socket errors (`connect ECONNREFUSED 127.0.0.1:80`). */
function errnoError(errno: number, syscall: string, peer: string): NativeStreamError {
  let code: string;
  try {
    code = getSystemErrorName(-errno);
  } catch {
    code = `E${errno}`;
  }
  const err = new Error(`${syscall} ${code}${peer === '' ? '' : ` ${peer}`}`) as NativeStreamError;
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  if (peer !== '') {
    const colon = peer.lastIndexOf(':');
    err.address = peer.slice(0, colon);
    err.port = Number(peer.slice(colon + 1));
  }
  return err;
}
