/**
 * ICMP errors for the UDP relay's host sockets (issue 4: ICMP port
 * unreachable to the guest when the host refuses a datagram).
 *
 * The relay's sockets are unconnected Node dgram udp4 sockets (udp-nat.ts:
 * endpoint-independent mapping and filtering), and Linux tells an unconnected
 * UDP socket about ICMP errors only with IP_RECVERR, through the socket's
 * error queue (native/udp-err.c reads it). What the kernel, libuv 1.46 and
 * Node 20 then do, measured on Linux 6.x with test/unit/udp-errors.test.ts
 * and scratch scripts (loopback, a datagram to a closed port):
 *
 *  1. Kernel (__udp4_lib_err with IP_RECVERR): every ICMP error both queues a
 *     sock_extended_err (with the failed datagram's destination and the
 *     ICMP's sender) on the error queue AND sets sk_err. Without IP_RECVERR
 *     an unconnected socket hears nothing at all. On loopback the ICMP is
 *     produced inside the sendmsg call itself, so sk_err is already set when
 *     send returns.
 *
 *  2. Whoever touches the socket next consumes sk_err:
 *     - libuv's recvmsg (it always polls the socket for reading): it fails
 *       with the errno and Node emits 'error' (code 'ECONNREFUSED', syscall
 *       'recvmsg'; EHOSTUNREACH, ENETUNREACH, ... for other ICMP errors).
 *       The socket keeps receiving; later datagrams arrive normally.
 *     - or the next send, whichever comes first: sendmsg fails with the
 *       stale errno (sock_alloc_send_skb checks sk_err) and THAT datagram is
 *       never sent, whatever its destination. Node reports it only to the
 *       send callback; no 'error' event. Measured: 100 sends to a closed
 *       port in one tick -> 50 succeed, 50 fail with ECONNREFUSED, 0 'error'
 *       events, 50 entries queued. A datagram to a live destination sent
 *       right after a refused one is lost the same way.
 *
 *  3. The queue entry stays until read with MSG_ERRQUEUE, and while the queue
 *     is non-empty the socket polls EPOLLERR. libuv (level-triggered epoll)
 *     turns a bare EPOLLERR into a read attempt, recvmsg says EAGAIN, Node
 *     sees nothing, and the loop spins: 100% of a core (measured 990 ms CPU
 *     per 1 s wall) for as long as the entry stays, with no JS code running.
 *     Drained, the same socket costs under 2 ms per second. Queue entries
 *     also count against SO_RCVBUF (sock_queue_err_skb, from the kernel
 *     source), so undrained errors would starve the socket's incoming
 *     datagrams, and an ICMP error that finds the buffer full sets sk_err
 *     without an entry (an 'error' event with nothing to report).
 *
 *  4. Draining (udpReadErrors until EAGAIN) also clears sk_err: dequeuing
 *     sets sk_err to the next ICMP entry's errno, and to 0 after the last.
 *
 * So every ICMP error ends up consumed either by libuv's recvmsg ('error'
 * event) or by a send (send callback error). enableUdpErrors drains on both:
 * it listens to 'error', and it wraps this socket's send() so that a send
 * failing with an ICMP-derived errno drains the queue and sends the datagram
 * again (the failure was an earlier datagram's ICMP error, not this one's;
 * see wrapSend for how retries are bounded). Draining on every 'message' is
 * not needed given the above, and would cost a syscall per datagram.
 */
import type { Socket as DgramSocket } from 'node:dgram';
import { loadNative, type NativeAddon } from '../link/native.js';

/**
 * Called once per ICMP error: the destination (IPv4, host order) and port of
 * the datagram that failed, the kernel's errno for it (ECONNREFUSED = 111 for
 * port unreachable), the ICMP type and code, and the address that sent the
 * ICMP error (0 if unknown).
 */
export type UdpErrorHandler = (
  dst: number,
  dstPort: number,
  errno: number,
  icmpType: number,
  icmpCode: number,
  offender: number,
) => void;

/** Numbers per entry written by udpReadErrors. */
const FIELDS = 6;
/** Entries per udpReadErrors call; a drain loops until the queue is empty. */
const BATCH = 64;
/** Shared: drains are synchronous and Node is single-threaded. */
const entries = new Float64Array(FIELDS * BATCH);

/**
 * errno values (Linux) that an ICMP error leaves in sk_err
 * (icmp_err_convert, __udp4_lib_err): a send failing with one of them may be
 * failing only because of an earlier datagram's error.
 */
const STALE_SEND_ERRORS = new Set([
  'ECONNREFUSED', // port unreachable
  'EHOSTUNREACH', // host unreachable, filtered, time exceeded, ...
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENONET',
  'ENOPROTOOPT', // protocol unreachable
  'EPROTO', // parameter problem
  'EMSGSIZE', // fragmentation needed
  'EOPNOTSUPP', // source route failed
]);

interface ErrorState {
  /** Node's dgram state object (holds `handle`), found once. */
  readonly nodeState: { handle?: { fd?: unknown } | null };
  readonly onError: UdpErrorHandler;
  /**
   * Retry budget: ICMP entries reported, minus sk_err consumptions already
   * accounted for (stale sends retried, 'error' events). See wrapSend.
   */
  credit: number;
}

/** Retries of one datagram at most (a bound, not expected to be reached). */
const MAX_RETRIES = 8;

const states = new WeakMap<DgramSocket, ErrorState>();

/**
 * The file descriptor of a bound Node dgram socket, or -1 (not bound yet,
 * closed, not a real dgram socket, or Node's internals changed).
 *
 * Node has no public API for a dgram socket's fd. In Node 20 the socket keeps
 * its state under a private symbol (`Symbol(state symbol)`, lib/internal/
 * dgram.js kStateSymbol) whose `handle` is the UDPWrap, and UDPWrap has an
 * `fd` getter (uv_fileno; a negative UV_EBADF before bind). The symbol is not
 * exported, so we look for the own symbol-keyed object with a `handle` that
 * has a numeric `fd`. `socket._handle` reaches the same handle but is
 * deprecated (DEP0112, prints a warning). test/unit/udp-errors.test.ts checks
 * that the fd found is really the socket's, and fails loudly if it is not.
 */
export function dgramFd(socket: DgramSocket): number {
  const state = nodeStateOf(socket);
  return state === null ? -1 : fdOfState(state);
}

function nodeStateOf(socket: DgramSocket): ErrorState['nodeState'] | null {
  const own = socket as unknown as Record<symbol, unknown>;
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    const v = own[sym];
    if (v === null || typeof v !== 'object' || !('handle' in v)) continue;
    const handle = (v as { handle: unknown }).handle;
    if (handle !== null && typeof handle === 'object' && typeof (handle as { fd?: unknown }).fd === 'number') {
      return v as ErrorState['nodeState'];
    }
  }
  return null;
}

function fdOfState(state: ErrorState['nodeState']): number {
  const fd = state.handle?.fd; // handle is null once the socket is closed
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/**
 * Turns on ICMP error reporting (IP_RECVERR) for an unconnected udp4 socket
 * and calls `onError` once per ICMP error that comes back for one of its
 * datagrams. The socket stays unconnected.
 *
 * Installs an 'error' listener (so ICMP errors never crash the process, even
 * without another listener; others still see the 'error' events) and wraps
 * this socket's `send`: a send that fails with an ICMP-derived errno (an
 * earlier datagram's error, see the top of this file) drains the queue and
 * is retried (wrapSend); its callback gets the last attempt's outcome.
 *
 * Works on a socket that is bound or still binding (IP_RECVERR is then set
 * from 'listening', before dgram sends what it queued while binding). Call it
 * right after bind(), before the first send: a datagram queued by an earlier
 * send goes out through dgram's own send, not the wrapper, so a stale error
 * can cost it (its ICMP error is still reported, by a drain after the flush).
 *
 * Returns false when nothing was done: the addon is not built, the socket is
 * closed or not a Node dgram socket, or setsockopt failed (the socket then
 * works as before, without ICMP errors). True when enabled, or deferred to
 * 'listening' (a failure there silently leaves the socket as it was).
 * Calling it again for the same socket returns true and changes nothing.
 */
export function enableUdpErrors(socket: DgramSocket, onError: UdpErrorHandler): boolean {
  if (states.has(socket)) return true;
  let native: NativeAddon;
  try {
    native = loadNative();
  } catch {
    return false;
  }
  const nodeState = nodeStateOf(socket);
  if (nodeState === null) return false;
  const state: ErrorState = { nodeState, onError, credit: 0 };
  if (fdOfState(nodeState) >= 0 && isBound(socket)) {
    if (native.udpEnableRecvErr(fdOfState(nodeState)) !== 0) return false;
    install(native, socket, state);
    return true;
  }
  // Still binding. Prepended, so that IP_RECVERR is on before dgram flushes
  // the datagrams it queued while binding (its own 'listening' listener):
  // on loopback their ICMP errors come back during that flush.
  socket.prependOnceListener('listening', () => {
    const fd = fdOfState(nodeState);
    if (fd < 0 || native.udpEnableRecvErr(fd) !== 0) return;
    // Datagrams queued before enableUdpErrors was called go out through the
    // unwrapped send: a stale failure among them leaves its entry queued with
    // no 'error' to come. Their sends and callbacks all run in ticks of the
    // flush, so one drain after them finds whatever they left.
    setImmediate(() => drain(native, state));
  });
  install(native, socket, state);
  return true;
}

/** The 'error' listener and the wrapped send; IP_RECVERR is (or will be) on. */
function install(native: NativeAddon, socket: DgramSocket, state: ErrorState): void {
  states.set(socket, state);
  // An ICMP error that libuv's recvmsg met first ('error', syscall recvmsg).
  // Draining on any 'error' is harmless: an empty queue costs one syscall.
  socket.on('error', (err: NodeJS.ErrnoException) => {
    drain(native, state);
    // That sk_err can no longer fail a send: its entry is accounted for.
    if (err.code !== undefined && STALE_SEND_ERRORS.has(err.code) && state.credit > 0) state.credit--;
  });
  wrapSend(native, socket, state);
}

/**
 * Reads the socket's error queue now, calling its enableUdpErrors handler per
 * entry; returns the entries reported. 0 when errors are not enabled for the
 * socket or it is closed.
 */
export function drainUdpErrors(socket: DgramSocket): number {
  const state = states.get(socket);
  return state === undefined ? 0 : drain(loadNative(), state);
}

function isBound(socket: DgramSocket): boolean {
  try {
    socket.address();
    return true;
  } catch {
    return false;
  }
}

/** Drains the whole queue (batches of BATCH) and reports each entry. */
function drain(native: NativeAddon, state: ErrorState): number {
  let total = 0;
  for (;;) {
    // Re-read the fd each round: a handler may have closed the socket, and
    // its fd number may already belong to something else.
    const fd = fdOfState(state.nodeState);
    if (fd < 0) return total;
    const n = native.udpReadErrors(fd, entries, BATCH);
    if (n <= 0) return total;
    total += n;
    state.credit += n;
    for (let i = 0; i < n; i++) {
      const o = i * FIELDS;
      state.onError(entries[o], entries[o + 1], entries[o + 2], entries[o + 3], entries[o + 4], entries[o + 5]);
    }
    if (n < BATCH) return total;
  }
}

type SendCallback = (error: Error | null, bytes: number) => void;

/**
 * Replaces this socket's `send` (an own property shadowing the prototype's)
 * with one that always passes a callback, so that a send failing with a stale
 * sk_err is seen: the queue is drained (which clears sk_err, and reports the
 * error that caused the failure) and the datagram is sent again.
 *
 * A retry is not immediate: dgram's send resolves the address first, and even
 * for an IP literal that costs a tick, so several retries can go out
 * back to back and fail each other in turn on loopback (where the ICMP error
 * is back before sendmsg returns). Hence more than one retry per datagram,
 * bounded by a budget: each stale failure consumed the sk_err of one distinct
 * ICMP error, and that error was queued before the failure, so by the time
 * the failure's callback has drained the queue it has been reported. Retries
 * are allowed while (entries reported) - (retries) - ('error' events) > 0: no
 * stale failure is refused a retry, and a genuine failure with the same errno
 * (ENETUNREACH: no route) is retried only on leftover credit, and at most
 * MAX_RETRIES times.
 *
 * Every form of dgram send ends with an optional callback, so appending one
 * when there is none keeps the call's meaning.
 */
function wrapSend(native: NativeAddon, socket: DgramSocket, state: ErrorState): void {
  const original = socket.send as (...a: unknown[]) => void;
  const send = function (this: DgramSocket, ...args: unknown[]): void {
    // Not bound yet: dgram queues the call as this.send (this wrapper) bound
    // to normalized arguments, and replays it once bound; wrap it then.
    if (fdOfState(state.nodeState) < 0) {
      original.apply(this, args);
      return;
    }
    const last = args.length - 1;
    const userCb = typeof args[last] === 'function' ? (args[last] as SendCallback) : undefined;
    const sendArgs = userCb === undefined ? args : args.slice(0, last);
    let retries = 0;
    const onSent: SendCallback = (err, bytes) => {
      if (err !== null && err !== undefined) {
        drain(native, state);
        const code = (err as NodeJS.ErrnoException).code;
        if (
          code !== undefined &&
          STALE_SEND_ERRORS.has(code) &&
          retries < MAX_RETRIES &&
          state.credit > 0 &&
          fdOfState(state.nodeState) >= 0
        ) {
          retries++;
          state.credit--;
          try {
            original.apply(socket, [...sendArgs, onSent]);
            return;
          } catch {
            // Closed meanwhile: report this failure.
          }
        }
      }
      if (userCb !== undefined) userCb(err, bytes);
    };
    original.apply(this, [...sendArgs, onSent]);
  };
  socket.send = send as DgramSocket['send'];
}
