/**
 * PingSocket: one unprivileged ICMP echo socket on the host ("ping socket",
 * `SOCK_DGRAM/IPPROTO_ICMP`, native/ping.c), used to relay the guest's echo
 * requests to the outside (docs/architecture.md, Ping sockets).
 *
 * What the kernel does, and what the relay must undo:
 *   - send(): the buffer is the whole ICMP echo request (type 8, code 0,
 *     8-byte header + payload). The kernel overwrites the identifier with the
 *     socket's own (`identifier`, assigned at open) and computes the checksum;
 *     what the caller put in those fields is ignored. Anything but an echo
 *     request, or fewer than 8 bytes, is EINVAL.
 *   - onReply(): only echo replies carrying `identifier` (and addressed to the
 *     bound address, when one was given) arrive, as the ICMP message without
 *     the IP header: type 0, code 0, the replier's checksum, id = `identifier`,
 *     the request's sequence number and payload. The relay restores the
 *     guest's id and adjusts the checksum before handing it to the guest.
 *     The replier's TTL is not available (no IP header).
 *
 * IPv6 (open6): the same over `SOCK_DGRAM/IPPROTO_ICMPV6`, with send6 and
 * onReply6, whose addresses are 16 bytes: the destination as (buffer,
 * offset), the replier as a view valid only during the handler call. The
 * request is an ICMPv6 echo request (type 128, code 0), replies are type 129.
 * The reply's checksum covers the ICMPv6 pseudo header, i.e. the replier's
 * and the HOST's address: besides the identifier, the relay must account for
 * the guest's address in it. The socket has IPV6_V6ONLY. Calling a method of
 * the other family is misuse and throws a TypeError.
 *
 * Permission: the caller's gid must lie in `net.ipv4.ping_group_range` of the
 * network namespace ("1 0", the common default, excludes everyone: EACCES);
 * despite its name it governs ICMPv6 ping sockets too. `probe()` says
 * whether that is so, for a one-time log line; a PingOpenError carries the
 * same text as `reason`.
 *
 * Receiving: a uv_poll (the TAP's poller, poll.c) drains the socket with
 * pingRecvBatch into a receive buffer shared by every PingSocket (8 slots of
 * 64 KB, allocated on first use): a reply's bytes are valid only during the
 * handler call. Polling starts with the first onReply() and keeps the event
 * loop alive unless setRef(false); close() stops it. IP_RECVERR is off, so
 * ICMP errors about our requests (unreachable, TTL exceeded) are not seen.
 *
 * Only this file and host.ts open host sockets (docs/architecture.md, Layout); host.ts
 * exposes the factory.
 */
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { UsernetError } from '../errors.js';
import { ipv6FromWords, IPV6_WORDS, loadNative, type NativeAddon } from '../link/native.js';
import { ipv4ToString } from '../wire/ipv4-address.js';
import { errnoName } from './errno-name.js';
import { PolledSocket } from './polled-socket.js';

/** One receive slot: the largest ICMP message (65515 bytes over IPv4, 65535 over IPv6) fits, so nothing is truncated. */
export const PING_SLOT_BYTES = 65536;
/** Slots of the shared receive buffer: replies taken per pingRecvBatch call. */
export const PING_RECV_SLOTS = 8;
/** Batches per wake-up before yielding to the loop (the poll is level-triggered: nothing is lost). */
const MAX_ROUNDS_PER_WAKEUP = 16;
/** Consecutive failed wake-ups (receive errors or poll errors) before giving up on the socket. */

const { EACCES, EAFNOSUPPORT, EPROTONOSUPPORT, EADDRNOTAVAIL, EBADF } = osConstants.errno;

const PING_GROUP_RANGE = '/proc/sys/net/ipv4/ping_group_range';

/**
 * Called per echo reply: `src` is the replier's IPv4 address (host order);
 * buf[off, off+len) is the ICMP message as received (header included,
 * identifier = the socket's). The bytes are valid only during the call.
 */
export type PingReplyHandler = (src: number, buf: Uint8Array, off: number, len: number) => void;

/**
 * onReply6's handler: `src` is the replier's IPv6 address (16 bytes);
 * buf[off, off+len) the ICMPv6 echo reply (type 129, identifier = the
 * socket's). Both are valid only during the call.
 */
export type Ping6ReplyHandler = (src: Uint8Array, buf: Uint8Array, off: number, len: number) => void;

export interface PingSocketStats {
  /** Requests the kernel accepted, and their bytes (ICMP header included). */
  sent: number;
  sentBytes: number;
  /** Requests refused by sendto (see lastSendErrno). */
  sendErrors: number;
  /** Replies delivered to the handler, and their bytes. */
  received: number;
  receivedBytes: number;
  /** pingRecvBatch calls that returned at least one reply. */
  batches: number;
  /** Failed receives and poll errors (see lastRecvErrno). */
  recvErrors: number;
}

/** Thrown by PingSocket.open. `code` is the errno name (EACCES, EPROTONOSUPPORT, EADDRNOTAVAIL, ...). */
export interface PingOpenError extends Error {
  code: string;
  /** Positive errno. */
  errno: number;
  syscall: 'socket';
  /** Why, for one log line, as probe() gives it: "ping sockets not permitted (net.ipv4.ping_group_range = 1 0)". */
  reason: string;
}

/** Passed to `onError` when the socket stops working for good; polling has stopped. */
export interface PingSocketError extends Error {
  code: 'ERR_USERNET_PING_IO';
  errno: number;
  syscall: 'recvmsg' | 'poll';
}

export interface PingProbeResult {
  ok: boolean;
  /** Why not, for the log: e.g. "ping sockets not permitted (net.ipv4.ping_group_range = 1 0)". */
  reason?: string;
  /** errno name (EACCES, EPROTONOSUPPORT, ...) or ERR_USERNET_NATIVE_MISSING. */
  code?: string;
}

/** u32 per reply in pingRecvBatch's meta: [src, offset, length]; pingRecvBatch6: [src words 0..3, offset, length]. */
const META_STRIDE = 3;
const META_STRIDE6 = IPV6_WORDS + 2;

let sharedBuf: Uint8Array | null = null;
let sharedMeta: Uint32Array | null = null;
/** The replier's address onReply6 hands out (a drain never nests). */
const src6 = new Uint8Array(16);
const src6View = new DataView(src6.buffer);

/** family 4 or 6: which methods apply (send/onReply, or send6/onReply6). */
export class PingSocket extends PolledSocket<PingSocketError> {
  /** The echo identifier the kernel assigned to this socket (host order, never 0): replies carry it. */
  readonly identifier: number;
  /** The bound address (host order), 0 for any and on an ICMPv6 socket. */
  readonly localAddress: number;
  /** An ICMPv6 socket's bound address (16 bytes), null for :: and on an ICMP socket. */
  readonly localAddress6: Uint8Array | null;
  readonly stats: PingSocketStats = {
    sent: 0,
    sentBytes: 0,
    sendErrors: 0,
    received: 0,
    receivedBytes: 0,
    batches: 0,
    recvErrors: 0,
  };

  private handler: PingReplyHandler | null = null;
  private handler6: Ping6ReplyHandler | null = null;

  private constructor(native: NativeAddon, fd: number, identifier: number, localAddress: number | Uint8Array | null) {
    super(native, fd, typeof localAddress === 'number' ? 4 : 6);
    this.identifier = identifier;
    this.localAddress = typeof localAddress === 'number' ? localAddress : 0;
    this.localAddress6 = typeof localAddress === 'number' ? null : localAddress;
  }

  /**
   * Opens a ping socket bound to `localAddress` (IPv4, host order; 0 or absent:
   * any; --outbound-addr otherwise). Throws a PingOpenError whose `code` is the
   * errno name: EACCES when net.ipv4.ping_group_range excludes our gid,
   * EPROTONOSUPPORT/EAFNOSUPPORT without kernel support, EADDRNOTAVAIL when
   * `localAddress` is not ours. Also throws ERR_USERNET_NATIVE_MISSING
   * (native.ts) when the addon was not built.
   */
  static open(localAddress = 0): PingSocket {
    const local = localAddress >>> 0;
    const native = loadNative();
    return PingSocket.bound(native, native.pingOpen(local), local);
  }

  /**
   * Opens an ICMPv6 ping socket bound to `localAddress` (16 bytes, copied;
   * null or absent: any). Throws a PingOpenError as open does (EAFNOSUPPORT
   * also when the host has no IPv6), a TypeError when `localAddress` is not
   * 16 bytes, and ERR_USERNET_NATIVE_MISSING without the addon.
   */
  static open6(localAddress: Uint8Array | null = null): PingSocket {
    const native = loadNative();
    const local = localAddress === null ? null : Uint8Array.from(localAddress);
    return PingSocket.bound(native, native.pingOpen6(local), local);
  }

  /** The socket for a pingOpen/pingOpen6 result; throws a PingOpenError. */
  private static bound(native: NativeAddon, fd: number, local: number | Uint8Array | null): PingSocket {
    if (fd < 0) throw openError(-fd, local);
    const id = native.pingLocalId(fd);
    if (id < 0) {
      native.pingClose(fd);
      throw openError(-id, local);
    }
    return new PingSocket(native, fd, id, local);
  }

  /**
   * Whether ping sockets can be opened here (bound to `localAddress`, default
   * any). Opens and closes one socket. The reason is meant for a single log
   * line such as `${reason}; ICMP echo to the outside is dropped`.
   */
  static probe(localAddress = 0): PingProbeResult {
    let native: NativeAddon;
    try {
      native = loadNative();
    } catch (err) {
      return {
        ok: false,
        code: (err as { code?: string }).code ?? 'ERR_USERNET_NATIVE_MISSING',
        reason: 'ping sockets unavailable (the native addon is not built)',
      };
    }
    const fd = native.pingOpen(localAddress >>> 0);
    if (fd >= 0) {
      native.pingClose(fd);
      return { ok: true };
    }
    return { ok: false, code: errnoName(-fd), reason: describeOpenErrno(-fd, localAddress >>> 0) };
  }

  /**
   * Sends the ICMP echo request buf[off, off+len) (header included) to `dst`
   * (IPv4, host order). Returns 0 when the kernel took it, else the positive
   * errno (a number, so the relay can map it to an ICMP error without
   * allocating): EINVAL (not an echo request / shorter than 8 bytes),
   * ENETUNREACH, EHOSTUNREACH, EAGAIN (send buffer full), EBADF after close,
   * ... `util.getSystemErrorName(-errno)` names it. RangeError when the slice
   * lies outside `buf`.
   */
  send(dst: number, buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (this.family !== 4) throw familyError('send', 6);
    return this.sendDone(this.closed ? -EBADF : this.native.pingSend(this.fd, dst >>> 0, buf, off, len));
  }

  /**
   * send for an ICMPv6 socket: the ICMPv6 echo request buf[off, off+len)
   * (type 128, code 0, header included) to dst[dstOff, dstOff+16). The same
   * results (EINVAL: not an echo request). RangeError when either range lies
   * outside its buffer.
   */
  send6(dst: Uint8Array, dstOff: number, buf: Uint8Array, off = 0, len = buf.length - off): number {
    if (this.family !== 6) throw familyError('send6', 4);
    return this.sendDone(this.closed ? -EBADF : this.native.pingSend6(this.fd, dst, dstOff, buf, off, len));
  }

  /** `r`: bytes sent or -errno, as the addon returns it. */
  private sendDone(r: number): number {
    if (r < 0) {
      this.stats.sendErrors++;
      this.lastSendErrno = -r;
      return -r;
    }
    this.stats.sent++;
    this.stats.sentBytes += r;
    return 0;
  }

  /**
   * Sets the reply handler (replacing any previous one) and starts polling if
   * it has not started. Replies that arrived before are delivered then. An
   * exception thrown by the handler becomes an 'uncaughtException', and the
   * rest of that batch is lost.
   */
  onReply(handler: PingReplyHandler): void {
    if (this.family !== 4) throw familyError('onReply', 6);
    if (this.closed) throw new UsernetError('ERR_USERNET_CLOSED', 'PingSocket.onReply: socket is closed');
    this.handler = handler;
    this.startPolling();
  }

  /** onReply for an ICMPv6 socket: the replier is 16 bytes, valid only during the call. */
  onReply6(handler: Ping6ReplyHandler): void {
    if (this.family !== 6) throw familyError('onReply6', 4);
    if (this.closed) throw new UsernetError('ERR_USERNET_CLOSED', 'PingSocket.onReply6: socket is closed');
    this.handler6 = handler;
    this.startPolling();
  }

  protected hasHandler(): boolean {
    return this.handler !== null || this.handler6 !== null;
  }

  protected dropHandlers(): void {
    this.handler = null;
    this.handler6 = null;
  }

  protected closeFd(): void {
    this.native.pingClose(this.fd);
  }

  // POLLERR is not expected: without IP_RECVERR on an unconnected socket
  // there is no error to report, so nothing explains it; the drain's receive
  // clears whatever is pending (polled-socket.ts).

  protected drain(): void {
    if (sharedBuf === null || sharedMeta === null) {
      // A dedicated ArrayBuffer, not zeroed (every byte read was written by
      // the kernel), handed out as a plain Uint8Array (docs/architecture.md, Ownership).
      sharedBuf = new Uint8Array(Buffer.allocUnsafeSlow(PING_RECV_SLOTS * PING_SLOT_BYTES).buffer);
      sharedMeta = new Uint32Array(PING_RECV_SLOTS * META_STRIDE6);
    }
    const buf = sharedBuf;
    const meta = sharedMeta;
    const native = this.native;
    const stats = this.stats;
    const v6 = this.family === 6;
    const stride = v6 ? META_STRIDE6 : META_STRIDE;
    const aw = v6 ? IPV6_WORDS : 1;
    for (let round = 0; round < MAX_ROUNDS_PER_WAKEUP; round++) {
      if (this.closed) return;
      const n = v6
        ? native.pingRecvBatch6(this.fd, buf, meta, PING_RECV_SLOTS, PING_SLOT_BYTES)
        : native.pingRecvBatch(this.fd, buf, meta, PING_RECV_SLOTS, PING_SLOT_BYTES);
      if (n < 0) {
        this.recvFailed(-n, 'recvmsg');
        return;
      }
      if (n === 0) return;
      this.consecutiveErrors = 0;
      stats.batches++;
      for (let i = 0; i < n; i++) {
        if (this.closed) return; // closed by a handler: the rest is dropped
        const m = i * stride;
        const len = meta[m + aw + 1];
        stats.received++;
        stats.receivedBytes += len;
        if (v6) {
          const handler = this.handler6;
          if (handler === null) continue;
          ipv6FromWords(meta, m, src6View);
          handler(src6, buf, meta[m + aw], len);
        } else {
          const handler = this.handler;
          if (handler === null) continue;
          handler(meta[m], buf, meta[m + 1], len);
        }
      }
      if (n < PING_RECV_SLOTS) return;
    }
  }

  protected ioError(errno: number, syscall: string): PingSocketError {
    const err = new Error(`PingSocket: ${syscall} on ping socket fd ${this.fd} failed: ${errnoName(errno)}`) as PingSocketError;
    err.code = 'ERR_USERNET_PING_IO';
    err.errno = errno;
    err.syscall = syscall as PingSocketError['syscall'];
    return err;
  }
}

function formatAddress(addr: number | Uint8Array): string {
  if (typeof addr === 'number') return ipv4ToString(addr);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((addr[i] << 8) | addr[i + 1]).toString(16));
  return groups.join(':');
}

function familyError(method: string, family: 4 | 6): TypeError {
  const err = new TypeError(`PingSocket.${method}: this is an ${family === 4 ? 'ICMP' : 'ICMPv6'} socket`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

/** The sysctl as one line ("1 0"), or null when it cannot be read. */
function readPingGroupRange(): string | null {
  try {
    return readFileSync(PING_GROUP_RANGE, 'utf8').trim().split(/\s+/).join(' ');
  } catch {
    return null;
  }
}

/** `local`: a number for an ICMP socket, bytes or null for an ICMPv6 one. */
function describeOpenErrno(errno: number, local: number | Uint8Array | null): string {
  const name = errnoName(errno);
  const v6 = typeof local !== 'number';
  if (errno === EACCES) {
    const range = readPingGroupRange();
    return range !== null
      ? `${v6 ? 'ICMPv6 ' : ''}ping sockets not permitted (net.ipv4.ping_group_range = ${range})`
      : `${v6 ? 'ICMPv6 ' : ''}ping sockets not permitted (${name}; see net.ipv4.ping_group_range)`;
  }
  if (v6 && errno === EAFNOSUPPORT) return `ICMPv6 ping sockets unavailable: no IPv6 on this host (${name})`;
  if (errno === EPROTONOSUPPORT || errno === EAFNOSUPPORT) return `${v6 ? 'ICMPv6 ' : ''}ping sockets not supported by this kernel (${name})`;
  if (errno === EADDRNOTAVAIL && local !== 0 && local !== null) return `ping socket cannot bind to ${formatAddress(local)} (${name})`;
  return `${v6 ? 'ICMPv6 ' : ''}ping sockets unavailable (${name})`;
}

function openError(errno: number, local: number | Uint8Array | null): PingOpenError {
  const reason = describeOpenErrno(errno, local);
  const err = new Error(`PingSocket.${typeof local === 'number' ? 'open' : 'open6'}: ${reason}`) as PingOpenError;
  err.code = errnoName(errno);
  err.errno = errno;
  err.syscall = 'socket';
  err.reason = reason;
  return err;
}
