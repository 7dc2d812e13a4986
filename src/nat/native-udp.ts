/**
 * NativeUdpSocket: one unconnected UDP (IPv4) socket on the host for the UDP
 * relay (udp-nat.ts), driven by the addon on a raw non-blocking fd
 * (native/udp.c) and polled with uv_poll on Node's loop, as the ping sockets
 * are (ping-socket.ts).
 *
 * Why not Node's dgram: per datagram it costs an rinfo object and an address
 * string (inet_ntop) on receive, then parseIpv4 of that string, and on send a
 * DNS lookup call (even for a literal), a process.nextTick, a SendWrap and a
 * MakeCallback. Measured with a 1-byte request/response: ~175 µs of CPU per
 * round trip against ~61 µs for slirp4netns. Here a send is one synchronous
 * sendto straight from the caller's bytes (the kernel copies them, so the
 * relay needs no copy of the guest's payload), and a wake-up is a few
 * recvmmsg calls into one receive buffer shared by every socket, with numeric
 * source addresses: nothing is allocated per datagram.
 *
 * Theory of operation: ICMP errors
 * --------------------------------
 * The sockets stay unconnected (endpoint-independent mapping and filtering),
 * and Linux tells an unconnected UDP socket about ICMP errors only when
 * IP_RECVERR is on (udpOpen sets it). Measured on Linux 6.x (loopback, a
 * datagram to a closed port; test/unit/udp-errors.test.ts):
 *
 *  1. Every ICMP error both queues a sock_extended_err (the failed datagram's
 *     destination, the errno, ICMP type and code, the ICMP's sender) on the
 *     socket's error queue AND sets sk_err (__udp4_lib_err). On loopback the
 *     ICMP is produced inside the sendmsg call itself, so sk_err is already
 *     set when sendto returns (successfully: the failure is the next call's).
 *
 *  2. The next send or receive consumes sk_err: sendto fails with it and
 *     THAT datagram is not sent, whatever its destination (sock_alloc_send_skb
 *     checks sk_err); a receive fails with it even when datagrams are queued
 *     (__skb_recv_udp checks sock_error first). Either way the queue entry
 *     stays.
 *
 *  3. While the error queue is non-empty the socket polls EPOLLERR, and
 *     libuv's uv_poll turns that into status UV_EBADF and STOPS the poll
 *     (uv__poll_io). Queue entries also count against SO_RCVBUF, so an
 *     undrained queue starves the socket's incoming datagrams.
 *
 *  4. Draining the queue (udpReadErrors) clears sk_err too: dequeuing sets it
 *     to the next ICMP entry's errno, and to 0 after the last.
 *
 * So: a send failing with an ICMP-derived errno drains the queue (each entry
 * goes to onIcmpError) and sends again at once (send is synchronous, so the
 * retry cannot race anything); a receive failing with one drains and goes
 * on; a POLLERR wake-up drains, receives, and restarts the poll on the next
 * turn (a new uv_poll on this fd must not start while the stopped one is
 * still closing). Only POLLERR wake-ups that nothing explains (no entry, no
 * ICMP errno) count towards giving up, and any progress resets that count.
 *
 * Only this file, ping-socket.ts and host.ts open host sockets (DESIGN.md,
 * Layout); host.ts exposes the factory.
 */
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { FdPoller } from '../link/fd-poller.js';
import { loadNative, type NativeAddon } from '../link/native.js';
import { parseIpv4 } from '../wire/ipv4-address.js';

/** One receive slot: the largest UDP payload over IPv4 (65535 − 20 − 8 bytes) fits, so nothing is truncated. */
export const UDP_SLOT_BYTES = 65536;
/** Slots of the shared receive buffer (1 MiB): datagrams taken per udpRecvBatch call. */
export const UDP_RECV_SLOTS = 16;
/** u32 per datagram in udpRecvBatch's meta: [src, srcPort, len, flags]. */
const META_STRIDE = 4;
const META_TRUNCATED = 1;
/** Batches per wake-up before yielding to the loop (the poll is level-triggered: nothing is lost). */
const MAX_BATCHES_PER_WAKEUP = 8;
/** Consecutive unexplained failures (receive errors, POLLERR with nothing queued) before giving up. */
const MAX_CONSECUTIVE_ERRORS = 100;
/** Sends of one datagram at most when each failure was an earlier datagram's ICMP error. */
const MAX_SEND_ATTEMPTS = 4;

const { EAFNOSUPPORT, EBADF, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ENOPROTOOPT, EPROTO, EMSGSIZE, EOPNOTSUPP } = osConstants.errno;
/** Not in Node's table on every platform; Linux values. */
const EHOSTDOWN = 112;
const ENONET = 64;

/**
 * errno values an ICMP error leaves in sk_err (icmp_err_convert,
 * __udp4_lib_err): a send or receive failing with one of them may be failing
 * only because of an earlier datagram's error.
 */
const ICMP_ERRNO = new Uint8Array(256);
for (const e of [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENONET, ENOPROTOOPT, EPROTO, EMSGSIZE, EOPNOTSUPP]) {
  ICMP_ERRNO[e] = 1;
}

/** Numbers per entry written by udpReadErrors. */
const ERR_FIELDS = 6;

/**
 * Called per datagram: the sender's IPv4 address (host order) and port;
 * buf[off, off+len) is the payload. The bytes are valid only during the call.
 */
export type UdpMessageHandler = (src: number, srcPort: number, buf: Uint8Array, off: number, len: number) => void;

/**
 * Called once per ICMP error about one of this socket's datagrams: its
 * destination (IPv4, host order) and port, the kernel's errno for it
 * (ECONNREFUSED for port unreachable), the ICMP type and code.
 */
export type UdpIcmpErrorHandler = (dst: number, dstPort: number, errno: number, icmpType: number, icmpCode: number) => void;

export interface NativeUdpSocketStats {
  /** Datagrams the kernel accepted, and their payload bytes. */
  sent: number;
  sentBytes: number;
  /** Datagrams refused by sendto for good (see lastSendErrno); EAGAIN/ENOBUFS included. */
  sendErrors: number;
  /** Sends retried because an earlier datagram's ICMP error failed them. */
  staleSendRetries: number;
  /** Datagrams delivered to the handler, and their bytes. */
  received: number;
  receivedBytes: number;
  /** udpRecvBatch calls that returned at least one datagram. */
  batches: number;
  /** Datagrams cut to the slot (cannot happen with 64 KB slots), dropped. */
  truncated: number;
  /** ICMP error entries read from the error queue. */
  icmpErrors: number;
  /** Unexplained receive or poll failures (see lastRecvErrno). */
  recvErrors: number;
}

/** Thrown by NativeUdpSocket.open. `code` is the errno name (EMFILE, EADDRNOTAVAIL, ...). */
export interface UdpOpenError extends Error {
  code: string;
  /** Positive errno. */
  errno: number;
}

/** Passed to `onError` when the socket stops receiving for good; polling has stopped. */
export interface UdpSocketError extends Error {
  code: 'ERR_USERNET_UDP_IO';
  errno: number;
  syscall: 'recvmmsg' | 'poll';
}

// Shared by every socket: a drain is synchronous, runs only from a poll
// callback (never nested), and hands out views valid only during the call.
let sharedBuf: Uint8Array | null = null;
let sharedMeta: Uint32Array | null = null;
// One entry at a time: an ICMP error handler may send, and a send may drain.
const errEntry = new Float64Array(ERR_FIELDS);

export class NativeUdpSocket {
  readonly fd: number;
  /** The bound port (host order), assigned by the kernel at open. */
  readonly localPort: number;
  /** The bound address (host order), 0 for any. */
  readonly localAddress: number;
  readonly stats: NativeUdpSocketStats = {
    sent: 0,
    sentBytes: 0,
    sendErrors: 0,
    staleSendRetries: 0,
    received: 0,
    receivedBytes: 0,
    batches: 0,
    truncated: 0,
    icmpErrors: 0,
    recvErrors: 0,
  };
  /** errno of the last refused send, 0 if none yet. */
  lastSendErrno = 0;
  /** errno of the last unexplained receive or poll failure, 0 if none yet. */
  lastRecvErrno = 0;
  /** Called once when receiving fails for good; polling has stopped. Default: a process warning. */
  onError: ((err: UdpSocketError) => void) | null = null;

  private readonly native: NativeAddon;
  private messageHandler: UdpMessageHandler | null = null;
  private icmpHandler: UdpIcmpErrorHandler | null = null;
  private readonly poller: FdPoller;
  private closed = false;
  private failed = false;
  private consecutiveErrors = 0;
  /** Bumped by every ICMP error seen (entry or errno): what explains a POLLERR. */
  private icmpSeen = 0;

  private constructor(native: NativeAddon, fd: number, localPort: number, localAddress: number) {
    this.native = native;
    this.fd = fd;
    this.localPort = localPort;
    this.localAddress = localAddress;
    this.poller = new FdPoller(native, fd, this.onReadable);
  }

  /**
   * Opens a socket bound to (`localAddress`, an ephemeral port): a dotted
   * IPv4 string or a number (host order); absent or 0: any (--outbound-addr
   * otherwise). Throws a UdpOpenError whose `code` is the errno name (EMFILE,
   * EADDRNOTAVAIL when the address is not ours), a TypeError for an address
   * that is not IPv4, and ERR_USERNET_NATIVE_MISSING (native.ts) when the
   * addon was not built.
   */
  static open(localAddress?: string | number): NativeUdpSocket {
    const local = localIpv4(localAddress);
    if (local === undefined) {
      const err = new TypeError(`NativeUdpSocket.open: local address must be an IPv4 address, got ${JSON.stringify(localAddress)}`) as TypeError & { code: string };
      err.code = 'ERR_INVALID_ARG_VALUE';
      throw err;
    }
    const s = NativeUdpSocket.tryOpen(local);
    if (typeof s !== 'number') return s;
    const err = new Error(`NativeUdpSocket.open: ${errnoName(s)}`) as UdpOpenError;
    err.code = errnoName(s);
    err.errno = s;
    throw err;
  }

  /**
   * As open, but every failure is returned as a positive errno instead of
   * thrown (the relay opens sockets on the data path, where a throw per
   * refused datagram would cost too much under EMFILE): EAFNOSUPPORT for a
   * local address that is not IPv4. Still throws ERR_USERNET_NATIVE_MISSING.
   */
  static tryOpen(localAddress?: string | number): NativeUdpSocket | number {
    const local = localIpv4(localAddress);
    if (local === undefined) return EAFNOSUPPORT;
    const native = loadNative();
    const fd = native.udpOpen(local);
    if (fd < 0) return -fd;
    const port = native.udpLocalPort(fd);
    if (port < 0) {
      native.udpClose(fd);
      return -port;
    }
    return new NativeUdpSocket(native, fd, port, local);
  }

  /**
   * Sends buf[off, off+len) to (`dst`, IPv4 host order, `dstPort`). Returns 0
   * when the kernel took it (it has copied the bytes: the caller may reuse
   * them at once), else the positive errno: EAGAIN/ENOBUFS (no room; not
   * retried), ENETUNREACH, EMSGSIZE (larger than 65507 bytes), EBADF after
   * close, ... A failure caused by an earlier datagram's ICMP error is not
   * reported: the error queue is drained (to onIcmpError) and the datagram
   * sent again. RangeError when the slice lies outside `buf`.
   */
  send(dst: number, dstPort: number, buf: Uint8Array, off: number, len: number): number {
    const stats = this.stats;
    let r = EBADF;
    for (let attempt = 0; attempt < MAX_SEND_ATTEMPTS && !this.closed; attempt++) {
      r = this.native.udpSend(this.fd, dst >>> 0, dstPort, buf, off, len);
      if (r === 0) {
        stats.sent++;
        stats.sentBytes += len;
        return 0;
      }
      if (r > 0xff || ICMP_ERRNO[r] === 0) break;
      // Possibly an earlier datagram's error left in sk_err: the drain
      // reports it and clears sk_err. Without an entry, retry only once (an
      // error whose entry found the receive buffer full sets sk_err alone);
      // a genuine ENETUNREACH then fails twice and is reported.
      if ((this.drainErrors() === 0 && attempt > 0) || attempt + 1 === MAX_SEND_ATTEMPTS) break;
      stats.staleSendRetries++;
    }
    stats.sendErrors++;
    this.lastSendErrno = r;
    return r;
  }

  /**
   * Sets the datagram handler (replacing any previous one) and starts polling
   * if it has not started. Datagrams that arrived before are delivered then.
   * An exception thrown by the handler becomes an 'uncaughtException', and
   * the rest of that batch is lost.
   */
  onMessage(handler: UdpMessageHandler): void {
    if (this.closed) throw new Error('NativeUdpSocket.onMessage: socket is closed');
    this.messageHandler = handler;
    if (!this.poller.wanted && !this.failed) this.poller.start();
  }

  /**
   * Sets the ICMP error handler (replacing any previous one). Errors are read
   * while polling (after onMessage) and by sends; without a handler they are
   * still drained, and dropped.
   */
  onIcmpError(handler: UdpIcmpErrorHandler): void {
    if (this.closed) throw new Error('NativeUdpSocket.onIcmpError: socket is closed');
    this.icmpHandler = handler;
  }

  /** Whether polling keeps the event loop alive (default true). Remembered when not polling yet. */
  setRef(ref: boolean): void {
    this.poller.setRef(ref);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Stops polling and closes the fd. Idempotent; safe inside either handler (the rest of the batch is dropped). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.messageHandler = null;
    this.icmpHandler = null;
    this.poller.stop();
    this.native.udpClose(this.fd);
  }

  private readonly onReadable = (status: number): void => {
    if (status >= 0) {
      this.drain();
      return;
    }
    // POLLERR: libuv reports it as UV_EBADF and has stopped the poll. It is
    // an ICMP error's queue entry (point 3 at the top), unless a send drained
    // it between epoll_wait and this callback.
    this.poller.stop();
    const seenBefore = this.icmpSeen;
    this.drainErrors();
    this.drain();
    if (this.closed || this.failed) return;
    if (this.icmpSeen === seenBefore) {
      this.stats.recvErrors++;
      this.lastRecvErrno = -status;
      if (++this.consecutiveErrors >= MAX_CONSECUTIVE_ERRORS) {
        this.fail(-status, 'poll');
        return;
      }
    }
    this.poller.restartNextTurn(() => !this.closed && !this.failed && this.messageHandler !== null);
  };

  private drain(): void {
    if (sharedBuf === null || sharedMeta === null) {
      // A dedicated ArrayBuffer, not zeroed (every byte read was written by
      // the kernel), handed out as a plain Uint8Array (DESIGN.md, Ownership).
      sharedBuf = new Uint8Array(Buffer.allocUnsafeSlow(UDP_RECV_SLOTS * UDP_SLOT_BYTES).buffer);
      sharedMeta = new Uint32Array(UDP_RECV_SLOTS * META_STRIDE);
    }
    const buf = sharedBuf;
    const meta = sharedMeta;
    const native = this.native;
    const stats = this.stats;
    for (let round = 0; round < MAX_BATCHES_PER_WAKEUP; round++) {
      if (this.closed) return;
      const n = native.udpRecvBatch(this.fd, buf, meta, UDP_RECV_SLOTS, UDP_SLOT_BYTES);
      if (n < 0) {
        if (-n <= 0xff && ICMP_ERRNO[-n] === 1) {
          // sk_err of an ICMP error (point 2): its entry is on the queue.
          this.icmpSeen++;
          this.drainErrors();
          continue;
        }
        stats.recvErrors++;
        this.lastRecvErrno = -n;
        if (++this.consecutiveErrors >= MAX_CONSECUTIVE_ERRORS) this.fail(-n, 'recvmmsg');
        return;
      }
      if (n === 0) return;
      this.consecutiveErrors = 0;
      stats.batches++;
      for (let i = 0; i < n; i++) {
        const handler = this.messageHandler;
        if (handler === null) return; // closed by a handler: the rest is dropped
        const m = i * META_STRIDE;
        const len = meta[m + 2];
        if ((meta[m + 3] & META_TRUNCATED) !== 0) {
          stats.truncated++;
          continue;
        }
        stats.received++;
        stats.receivedBytes += len;
        handler(meta[m], meta[m + 1], buf, i * UDP_SLOT_BYTES, len);
      }
      if (n < UDP_RECV_SLOTS) return;
    }
  }

  /** Empties the error queue, reporting each ICMP entry; returns how many. */
  private drainErrors(): number {
    const e = errEntry;
    let count = 0;
    while (!this.closed) {
      const n = this.native.udpReadErrors(this.fd, e, 1);
      if (n <= 0) break;
      count++;
      this.icmpSeen++;
      this.stats.icmpErrors++;
      this.consecutiveErrors = 0;
      const handler = this.icmpHandler;
      // The handler may send, which may drain into `e`: read it first.
      if (handler !== null) handler(e[0], e[1], e[2], e[3], e[4]);
    }
    return count;
  }

  private fail(errno: number, syscall: 'recvmmsg' | 'poll'): void {
    this.failed = true;
    this.poller.stop();
    const err = new Error(`NativeUdpSocket: ${syscall} on UDP socket fd ${this.fd} failed: ${errnoName(errno)}`) as UdpSocketError;
    err.code = 'ERR_USERNET_UDP_IO';
    err.errno = errno;
    err.syscall = syscall;
    if (this.onError !== null) this.onError(err);
    else process.emitWarning(err);
  }
}

/** A bind address as u32 (0: any); undefined for a string that is not dotted IPv4. */
function localIpv4(address: string | number | undefined): number | undefined {
  if (address === undefined) return 0;
  if (typeof address === 'number') return address >>> 0;
  return parseIpv4(address);
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}
