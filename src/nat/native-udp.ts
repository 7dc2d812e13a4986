/**
 * NativeUdpSocket: one unconnected UDP socket on the host, IPv4 (open,
 * tryOpen) or IPv6 (open6, tryOpen6), for the UDP relay (udp-nat.ts), driven
 * by the addon on a raw non-blocking fd (native/udp.c) and polled with
 * uv_poll on Node's loop, as the ping sockets are (ping-socket.ts).
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
 * IPv6: one class for both families, because everything but the addresses is
 * the same (polling, batching, the error handling below). An IPv6 socket has
 * its own three methods, send6, onMessage6 and onIcmpError6, which take and
 * give addresses as 16 bytes: a destination as (buffer, offset), so the
 * relay can point into the guest's packet; a source or failed destination as
 * a 16-byte view that is valid only during the handler call (one per module,
 * filled from the addon's four address words, see IPV6_WORDS). The socket
 * has IPV6_V6ONLY=1: it can never reach IPv4, not even through
 * ::ffff:a.b.c.d (such a send fails with ENETUNREACH). Calling a method of
 * the other family is misuse and throws a TypeError.
 *
 * Theory of operation: ICMP errors
 * --------------------------------
 * The sockets stay unconnected (endpoint-independent mapping and filtering),
 * and Linux tells an unconnected UDP socket about ICMP errors only when
 * IP_RECVERR (IPV6_RECVERR) is on (udpOpen and udpOpen6 set it). Measured on
 * Linux 6.x for both families (loopback, a datagram to a closed port on
 * 127.0.0.1 or ::1; test/unit/udp-errors.test.ts), and the same in the
 * kernel's code (__udp4_lib_err and __udp6_lib_err):
 *
 *  1. Every ICMP error both queues a sock_extended_err (the failed datagram's
 *     destination, the errno, ICMP type and code, the ICMP's sender; for
 *     IPv6 origin SO_EE_ORIGIN_ICMP6, port unreachable being type 1 code 4)
 *     on the socket's error queue AND sets sk_err. On loopback the
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
 * Only this file, ping-socket.ts and host.ts open host sockets (docs/architecture.md,
 * Layout); host.ts exposes the factory.
 */
import { constants as osConstants } from 'node:os';
import { ipv6FromWords, IPV6_WORDS, loadNative, type NativeAddon } from '../link/native.js';
import { parseIpv4 } from '../wire/ipv4-address.js';
import { errnoName } from './errno-name.js';
import { PolledSocket } from './polled-socket.js';

/** One receive slot: the largest UDP payload (65507 bytes over IPv4, 65527 over IPv6) fits, so nothing is truncated. */
export const UDP_SLOT_BYTES = 65536;
/** Slots of the shared receive buffer (1 MiB): datagrams taken per udpRecvBatch call. */
export const UDP_RECV_SLOTS = 16;
/** u32 per datagram in udpRecvBatch's meta: [src, srcPort, len, flags]; udpRecvBatch6: [src words 0..3, ...]. */
const META_STRIDE = 4;
const META_STRIDE6 = IPV6_WORDS + 3;
const META_TRUNCATED = 1;
/** Batches per wake-up before yielding to the loop (the poll is level-triggered: nothing is lost). */
const MAX_BATCHES_PER_WAKEUP = 8;
/** Consecutive unexplained failures (receive errors, POLLERR with nothing queued) before giving up. */
/** Sends of one datagram at most when each failure was an earlier datagram's ICMP error. */
const MAX_SEND_ATTEMPTS = 4;

const { EACCES, EAFNOSUPPORT, EBADF, ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ENOPROTOOPT, EPROTO, EMSGSIZE, EOPNOTSUPP } = osConstants.errno;
/** Not in Node's table on every platform; Linux values. */
const EHOSTDOWN = 112;
const ENONET = 64;

/**
 * errno values an ICMP error leaves in sk_err (icmp_err_convert and
 * __udp4_lib_err; icmpv6_err_convert adds EACCES for administratively
 * prohibited, policy failure and reject route): a send or receive failing
 * with one of them may be failing only because of an earlier datagram's
 * error.
 */
const ICMP_ERRNO = new Uint8Array(256);
for (const e of [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENONET, ENOPROTOOPT, EPROTO, EMSGSIZE, EOPNOTSUPP, EACCES]) {
  ICMP_ERRNO[e] = 1;
}

/** Numbers per entry written by udpReadErrors, and by udpReadErrors6. */
const ERR_FIELDS = 6;
const ERR_FIELDS6 = 2 * IPV6_WORDS + 4;

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

/**
 * onMessage6's handler: `src` is the sender's IPv6 address, 16 bytes, and
 * like buf[off, off+len) (the payload) valid only during the call.
 */
export type Udp6MessageHandler = (src: Uint8Array, srcPort: number, buf: Uint8Array, off: number, len: number) => void;

/**
 * onIcmpError6's handler, once per ICMPv6 error about one of this socket's
 * datagrams: its destination (16 bytes, valid only during the call) and
 * port, the kernel's errno (ECONNREFUSED for port unreachable), the ICMPv6
 * type and code (1 and 4 for port unreachable).
 */
export type Udp6IcmpErrorHandler = (dst: Uint8Array, dstPort: number, errno: number, icmpType: number, icmpCode: number) => void;

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
/** The source address onMessage6 hands out. */
const src6 = new Uint8Array(16);
const src6View = new DataView(src6.buffer);
// One entry at a time: an ICMP error handler may send, and a send may drain.
const errEntry = new Float64Array(ERR_FIELDS6);
// The destination onIcmpError6 hands out, one per nesting depth (a handler's
// send may drain and call a handler again, which must not overwrite the
// outer call's view). Grown on first use of a depth, never per error.
const errDst6: { bytes: Uint8Array; view: DataView }[] = [];
let errDepth = 0;

/** family 4 or 6: which methods apply (send/onMessage/onIcmpError, or send6/onMessage6/onIcmpError6). */
export class NativeUdpSocket extends PolledSocket<UdpSocketError> {
  /** The bound port (host order), assigned by the kernel at open. */
  readonly localPort: number;
  /** The bound address (host order), 0 for any and on an IPv6 socket. */
  readonly localAddress: number;
  /** An IPv6 socket's bound address (16 bytes), null for :: and on an IPv4 socket. */
  readonly localAddress6: Uint8Array | null;
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

  private messageHandler: UdpMessageHandler | null = null;
  private icmpHandler: UdpIcmpErrorHandler | null = null;
  private messageHandler6: Udp6MessageHandler | null = null;
  private icmpHandler6: Udp6IcmpErrorHandler | null = null;
  /** Bumped by every ICMP error seen (entry or errno): what explains a POLLERR. */
  private icmpSeen = 0;

  private constructor(native: NativeAddon, fd: number, localPort: number, localAddress: number | Uint8Array | null) {
    super(native, fd, typeof localAddress === 'number' ? 4 : 6);
    this.localPort = localPort;
    this.localAddress = typeof localAddress === 'number' ? localAddress : 0;
    this.localAddress6 = typeof localAddress === 'number' ? null : localAddress;
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
    return opened(NativeUdpSocket.tryOpen(local), 'open');
  }

  /**
   * Opens an IPv6 socket bound to (`localAddress`, an ephemeral port): an
   * IPv6 literal (--outbound-addr6); absent: any (::). Throws as open does
   * (EAFNOSUPPORT when the host has no IPv6), a TypeError for an address that
   * is not an IPv6 literal.
   */
  static open6(localAddress?: string): NativeUdpSocket {
    if (localAddress !== undefined && localIpv6(loadNative(), localAddress) === undefined) {
      const err = new TypeError(`NativeUdpSocket.open6: local address must be an IPv6 literal, got ${JSON.stringify(localAddress)}`) as TypeError & { code: string };
      err.code = 'ERR_INVALID_ARG_VALUE';
      throw err;
    }
    return opened(NativeUdpSocket.tryOpen6(localAddress), 'open6');
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
    return NativeUdpSocket.bound(native, native.udpOpen(local), local);
  }

  /**
   * As open6, with every failure returned as a positive errno:
   * EAFNOSUPPORT when the host has no IPv6 or `localAddress` is not an IPv6
   * literal, EADDRNOTAVAIL when it is not ours, EMFILE, ... Still throws
   * ERR_USERNET_NATIVE_MISSING.
   */
  static tryOpen6(localAddress?: string): NativeUdpSocket | number {
    const native = loadNative();
    const local = localAddress === undefined ? null : localIpv6(native, localAddress);
    if (local === undefined) return EAFNOSUPPORT;
    return NativeUdpSocket.bound(native, native.udpOpen6(local), local);
  }

  /** The socket for a udpOpen/udpOpen6 result, or the positive errno. */
  private static bound(native: NativeAddon, fd: number, local: number | Uint8Array | null): NativeUdpSocket | number {
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
    if (this.family !== 4) throw familyError('send', 6);
    let r = EBADF;
    for (let attempt = 0; attempt < MAX_SEND_ATTEMPTS && !this.closed; attempt++) {
      r = this.native.udpSend(this.fd, dst >>> 0, dstPort, buf, off, len);
      if (!this.retrySend(r, attempt)) break;
    }
    return this.sendDone(r, len);
  }

  /**
   * send for an IPv6 socket: to (dst[dstOff, dstOff+16), dstPort). The same
   * results and the same handling of stale ICMP errors; EMSGSIZE above
   * 65527 bytes, ENETUNREACH for a v4-mapped destination (IPV6_V6ONLY).
   * RangeError when either range lies outside its buffer.
   */
  send6(dst: Uint8Array, dstOff: number, dstPort: number, buf: Uint8Array, off: number, len: number): number {
    if (this.family !== 6) throw familyError('send6', 4);
    let r = EBADF;
    for (let attempt = 0; attempt < MAX_SEND_ATTEMPTS && !this.closed; attempt++) {
      r = this.native.udpSend6(this.fd, dst, dstOff, dstPort, buf, off, len);
      if (!this.retrySend(r, attempt)) break;
    }
    return this.sendDone(r, len);
  }

  /** After a failed attempt `r` (0: sent): whether to send again because the failure was stale. */
  private retrySend(r: number, attempt: number): boolean {
    if (r === 0 || r > 0xff || ICMP_ERRNO[r] === 0) return false;
    // Possibly an earlier datagram's error left in sk_err: the drain
    // reports it and clears sk_err. Without an entry, retry only once (an
    // error whose entry found the receive buffer full sets sk_err alone);
    // a genuine ENETUNREACH then fails twice and is reported.
    if ((this.drainErrors() === 0 && attempt > 0) || attempt + 1 === MAX_SEND_ATTEMPTS) return false;
    this.stats.staleSendRetries++;
    return true;
  }

  private sendDone(r: number, len: number): number {
    const stats = this.stats;
    if (r === 0) {
      stats.sent++;
      stats.sentBytes += len;
      return 0;
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
    if (this.family !== 4) throw familyError('onMessage', 6);
    if (this.closed) throw new Error('NativeUdpSocket.onMessage: socket is closed');
    this.messageHandler = handler;
    this.startPolling();
  }

  /** onMessage for an IPv6 socket: the source is 16 bytes, valid only during the call. */
  onMessage6(handler: Udp6MessageHandler): void {
    if (this.family !== 6) throw familyError('onMessage6', 4);
    if (this.closed) throw new Error('NativeUdpSocket.onMessage6: socket is closed');
    this.messageHandler6 = handler;
    this.startPolling();
  }

  /**
   * Sets the ICMP error handler (replacing any previous one). Errors are read
   * while polling (after onMessage) and by sends; without a handler they are
   * still drained, and dropped.
   */
  onIcmpError(handler: UdpIcmpErrorHandler): void {
    if (this.family !== 4) throw familyError('onIcmpError', 6);
    if (this.closed) throw new Error('NativeUdpSocket.onIcmpError: socket is closed');
    this.icmpHandler = handler;
  }

  /** onIcmpError for an IPv6 socket (ICMPv6 errors): the destination is 16 bytes, valid only during the call. */
  onIcmpError6(handler: Udp6IcmpErrorHandler): void {
    if (this.family !== 6) throw familyError('onIcmpError6', 4);
    if (this.closed) throw new Error('NativeUdpSocket.onIcmpError6: socket is closed');
    this.icmpHandler6 = handler;
  }

  protected hasHandler(): boolean {
    return this.messageHandler !== null || this.messageHandler6 !== null;
  }

  protected dropHandlers(): void {
    this.messageHandler = null;
    this.icmpHandler = null;
    this.messageHandler6 = null;
    this.icmpHandler6 = null;
  }

  protected closeFd(): void {
    this.native.udpClose(this.fd);
  }

  // POLLERR is an ICMP error's queue entry (point 3 at the top), unless a
  // send drained it between epoll_wait and the callback.
  protected override onPollErrorDrain(): void {
    this.drainErrors();
  }

  protected override explainedErrors(): number {
    return this.icmpSeen;
  }

  protected drain(): void {
    if (sharedBuf === null || sharedMeta === null) {
      // A dedicated ArrayBuffer, not zeroed (every byte read was written by
      // the kernel), handed out as a plain Uint8Array (docs/architecture.md, Ownership).
      sharedBuf = new Uint8Array(Buffer.allocUnsafeSlow(UDP_RECV_SLOTS * UDP_SLOT_BYTES).buffer);
      sharedMeta = new Uint32Array(UDP_RECV_SLOTS * META_STRIDE6);
    }
    const buf = sharedBuf;
    const meta = sharedMeta;
    const native = this.native;
    const stats = this.stats;
    const v6 = this.family === 6;
    const stride = v6 ? META_STRIDE6 : META_STRIDE;
    const aw = v6 ? IPV6_WORDS : 1;
    for (let round = 0; round < MAX_BATCHES_PER_WAKEUP; round++) {
      if (this.closed) return;
      const n = v6
        ? native.udpRecvBatch6(this.fd, buf, meta, UDP_RECV_SLOTS, UDP_SLOT_BYTES)
        : native.udpRecvBatch(this.fd, buf, meta, UDP_RECV_SLOTS, UDP_SLOT_BYTES);
      if (n < 0) {
        if (-n <= 0xff && ICMP_ERRNO[-n] === 1) {
          // sk_err of an ICMP error (point 2): its entry is on the queue.
          this.icmpSeen++;
          this.drainErrors();
          continue;
        }
        this.recvFailed(-n, 'recvmmsg');
        return;
      }
      if (n === 0) return;
      this.consecutiveErrors = 0;
      stats.batches++;
      for (let i = 0; i < n; i++) {
        if (this.closed) return; // closed by a handler: the rest is dropped
        const m = i * stride;
        const len = meta[m + aw + 1];
        if ((meta[m + aw + 2] & META_TRUNCATED) !== 0) {
          stats.truncated++;
          continue;
        }
        stats.received++;
        stats.receivedBytes += len;
        if (v6) {
          const handler = this.messageHandler6;
          if (handler === null) continue;
          ipv6FromWords(meta, m, src6View);
          handler(src6, meta[m + aw], buf, i * UDP_SLOT_BYTES, len);
        } else {
          const handler = this.messageHandler;
          if (handler === null) continue;
          handler(meta[m], meta[m + 1], buf, i * UDP_SLOT_BYTES, len);
        }
      }
      if (n < UDP_RECV_SLOTS) return;
    }
  }

  /** Empties the error queue, reporting each ICMP entry; returns how many. */
  private drainErrors(): number {
    const e = errEntry;
    const v6 = this.family === 6;
    let count = 0;
    while (!this.closed) {
      const n = v6 ? this.native.udpReadErrors6(this.fd, e, 1) : this.native.udpReadErrors(this.fd, e, 1);
      if (n <= 0) break;
      count++;
      this.icmpSeen++;
      this.stats.icmpErrors++;
      this.consecutiveErrors = 0;
      // The handler may send, which may drain into `e`: the arguments are
      // read first (and the IPv6 destination copied to this depth's view).
      if (!v6) {
        const handler = this.icmpHandler;
        if (handler !== null) handler(e[0], e[1], e[2], e[3], e[4]);
        continue;
      }
      const handler = this.icmpHandler6;
      if (handler === null) continue;
      const dst = errDst6[errDepth] ?? (errDst6[errDepth] = newAddress6());
      ipv6FromWords(e, 0, dst.view);
      errDepth++;
      try {
        handler(dst.bytes, e[IPV6_WORDS], e[IPV6_WORDS + 1], e[IPV6_WORDS + 2], e[IPV6_WORDS + 3]);
      } finally {
        errDepth--;
      }
    }
    return count;
  }

  protected ioError(errno: number, syscall: string): UdpSocketError {
    const err = new Error(`NativeUdpSocket: ${syscall} on UDP socket fd ${this.fd} failed: ${errnoName(errno)}`) as UdpSocketError;
    err.code = 'ERR_USERNET_UDP_IO';
    err.errno = errno;
    err.syscall = syscall as UdpSocketError['syscall'];
    return err;
  }
}

/** A UdpOpenError for a positive errno, or the socket. */
function opened(s: NativeUdpSocket | number, what: string): NativeUdpSocket {
  if (typeof s !== 'number') return s;
  const err = new Error(`NativeUdpSocket.${what}: ${errnoName(s)}`) as UdpOpenError;
  err.code = errnoName(s);
  err.errno = s;
  throw err;
}

function familyError(method: string, family: 4 | 6): TypeError {
  const err = new TypeError(`NativeUdpSocket.${method}: this is an IPv${family} socket`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

function newAddress6(): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(16);
  return { bytes, view: new DataView(bytes.buffer) };
}

/** An IPv6 bind address as 16 bytes; undefined for a string that is not an IPv6 literal. */
function localIpv6(native: NativeAddon, address: string): Uint8Array | undefined {
  const bytes = new Uint8Array(16);
  return native.inet6Pton(address, bytes, 0) ? bytes : undefined;
}

/** A bind address as u32 (0: any); undefined for a string that is not dotted IPv4. */
function localIpv4(address: string | number | undefined): number | undefined {
  if (address === undefined) return 0;
  if (typeof address === 'number') return address >>> 0;
  return parseIpv4(address);
}

