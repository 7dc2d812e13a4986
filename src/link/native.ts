/**
 * The only loader of the native addon (native/*.c, built by `node-gyp rebuild`
 * on `npm install` into build/Release/usernet_native.node). Everything else
 * reaches the addon through this module's typed surface.
 *
 * Loading is lazy: importing usernet must work where the addon was not built
 * (the memory link, the wire layer, tests of the protocol core); only code
 * that really needs a TAP fails, with a message saying how to build it.
 *
 * The relative path resolves to <package>/build/Release from both src/link
 * (tests run the sources) and dist/link (the published build).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';

/** `--configure`, done by the attach child inside the namespace, as in slirp4netns 1.2. */
export interface NativeConfigure {
  mtu: number;
  /** 6 bytes, or null to keep the kernel's random MAC. */
  mac: Uint8Array | null;
  /** The guest address to assign (net+100), host byte order. */
  addr: number;
  netmask: number;
  /** Default route via this address (net+2). */
  gateway: number;
  /**
   * IPv6 as well (not in slirp4netns): absent or null leaves IPv6 to the
   * kernel. Its failure never fails the attach (NativeAttachResult.ipv6Errno).
   */
  ipv6?: NativeConfigure6 | null;
}

/** `--configure`'s IPv6 part, done by the attach child after the IPv4 steps (tap.c). */
export interface NativeConfigure6 {
  /**
   * 16 bytes: the guest's address, assigned with IFA_F_NODAD (usable at
   * once, never "tentative"). With an all-zero interface identifier (the
   * low 64 bits), the child fills in the modified EUI-64 of the TAP's MAC,
   * the address SLAAC would give it.
   */
  addr: Uint8Array;
  /** 0..128 (64 for a SLAAC-sized prefix). */
  prefixLength: number;
  /**
   * 16 bytes, a link-local address such as fe80::2: `default via gateway dev
   * <tap> proto static metric 1023` (one below the metric of a default route
   * learned from a Router Advertisement, so that one never collides: tap.c).
   */
  gateway: Uint8Array;
}

export interface NativeAttachOptions {
  netnsPath: string;
  /** Joined before the netns; null when there is none to join (path mode, or same userns). */
  usernsPath: string | null;
  /** Truncated to 15 bytes by the kernel, as in slirp4netns. */
  tapName: string;
  vnetHdr: boolean;
  /** No `sent tapfd=N for NAME` on stderr (the child prints it, as slirp4netns's does, unless this is true). */
  quiet?: boolean;
  configure: NativeConfigure | null;
  /**
   * How long to wait for the attach child before killing it (a
   * ParentFailedError with errno ETIMEDOUT). Default 30000: a healthy child
   * takes a few ms (native/attach.c, ATTACH_WAIT_MS, says why so long).
   */
  childWaitMs?: number;
  /** Tests only: the child stalls before its first step, so the bounded wait ends it. */
  testStallChild?: boolean;
}

export interface NativeAttachResult {
  /** Non-blocking, close-on-exec, owned by the caller. */
  fd: number;
  vnetHdr: boolean;
  /**
   * 0 when configure.ipv6 was applied or not asked for; else the errno of
   * the IPv6 step that failed, the TAP being attached and configured for
   * IPv4 all the same: EAFNOSUPPORT (no IPv6 in the kernel, ipv6.disable=1),
   * EACCES (disable_ipv6=1 on the device), EINVAL (MTU below 1280: the kernel
   * keeps no IPv6 state on such a link), EPERM, ...
   */
  ipv6Errno: number;
}

/** Thrown by attach when the child exited non-zero (its message is already on stderr). */
export interface ChildFailedError extends Error {
  code: 'ERR_USERNET_CHILD_FAILED';
  /** The exit status slirp4netns would exit with. */
  exitStatus: number;
}

/**
 * Thrown by attach for failures in this process (socketpair, fork, recvmsg),
 * and for a child killed for not finishing within childWaitMs (ETIMEDOUT).
 */
export interface ParentFailedError extends Error {
  code: 'ERR_USERNET_PARENT_FAILED';
  errno: number;
}

export interface TunInfo {
  name: string;
  /** IFF_* flags of the fd (TunFlags). */
  flags: number;
  /** TUNGETVNETHDRSZ, -1 when unavailable. */
  vnetHdrSize: number;
}

declare const pollHandle: unique symbol;
/** Opaque uv_poll handle. */
export type PollHandle = { readonly [pollHandle]: true };
declare const hangupHandle: unique symbol;
/** Opaque watchHangup handle. */
export type HangupHandle = { readonly [hangupHandle]: true };

export interface NativeAddon {
  /** Forks a child that joins the namespaces, opens/attaches the TAP, configures it and passes the fd back. */
  attach(opts: NativeAttachOptions): NativeAttachResult;
  /** TUNSETOFFLOAD; returns 0 or an errno (EINVAL: a bit the kernel does not know). */
  setOffload(fd: number, mask: number): number;
  /** TUNSETVNETHDRSZ 10 + TUNSETVNETLE for an fd opened with IFF_VNET_HDR elsewhere; 0 or errno. */
  setVnetHdr(fd: number): number;
  /** O_NONBLOCK and FD_CLOEXEC on an fd the process takes over; 0 or errno. */
  adoptFd(fd: number): number;
  /** TUNGETIFF; null when fd is not an attached tun/tap fd. */
  tunInfo(fd: number): TunInfo | null;
  /**
   * Drains up to maxFrames frames (non-blocking read until EAGAIN) into `buf`,
   * frame i at offset i*slotSize; writes [offset, length] pairs into meta.
   * Returns the count, or -errno when the first read failed.
   * slotSize >= 65560 and a multiple of 64.
   */
  readBatch(fd: number, buf: Uint8Array, meta: Uint32Array, maxFrames: number, slotSize: number): number;
  /**
   * Writes `count` frames described by six u32 each (link.ts); returns how many
   * the device accepted. out[0] = bytes written, out[1] = errno of the last
   * refused frame (0 if none). RangeError (nothing written) on a bad slice.
   */
  writeBatch(fd: number, bufs: readonly Uint8Array[], meta: Uint32Array, count: number, out?: Float64Array): number;
  /** Folded, non-inverted ones' complement sum of buf[off, off+len) plus `initial`. */
  checksum(buf: Uint8Array, off: number, len: number, initial?: number): number;
  /**
   * uv_poll on the main loop for `events` (PollEvents bits, default READABLE;
   * 0: created stopped); callback(status, events) per readiness. status < 0
   * (UV_EBADF) reports POLLERR: libuv has then stopped the poll, until
   * pollSetEvents starts it again.
   */
  pollStart(fd: number, callback: (status: number, events: number) => void, events?: number): PollHandle;
  /**
   * Changes what a running poll waits for; 0 stops the uv handle but keeps it
   * (it then does not keep the loop alive). 0, or a negative uv error with the
   * mask unchanged. No-op after pollStop. Safe inside the callback.
   */
  pollSetEvents(handle: PollHandle, events: number): number;
  /** Idempotent; safe inside the callback. */
  pollStop(handle: PollHandle): void;
  /**
   * pollStop, then close(fd) (SO_LINGER 0 first when `reset`) once libuv has
   * taken fd out of its epoll set: at once, or when this poll's callback
   * returns if called from inside it. Forget fd on return.
   */
  pollClose(handle: PollHandle, fd: number, reset: boolean): void;
  /** Whether the poll keeps the event loop alive (it does by default). */
  pollRef(handle: PollHandle, ref: boolean): void;
  /** Fires callback(revents) once when poll({fd, events: 0}) reports anything. */
  watchHangup(fd: number, callback: (revents: number) => void): HangupHandle;
  watchHangupStop(handle: HangupHandle): void;
  /**
   * An unprivileged ICMP echo socket (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)),
   * non-blocking and close-on-exec, bound to `localAddr` (IPv4, host order;
   * 0 = INADDR_ANY) so its echo identifier is assigned at once. Returns the fd,
   * or -errno: EACCES when net.ipv4.ping_group_range excludes our gid,
   * EPROTONOSUPPORT/EAFNOSUPPORT without kernel support, EADDRNOTAVAIL when
   * localAddr is not an address of this host. Poll it with pollStart.
   */
  pingOpen(localAddr: number): number;
  /**
   * pingOpen for ICMPv6 (socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)),
   * IPV6_V6ONLY, bound to `localAddr` (16 bytes; absent or null: ::). Same
   * permission (net.ipv4.ping_group_range covers both families) and errnos;
   * EAFNOSUPPORT also when the host has no IPv6.
   */
  pingOpen6(localAddr?: Uint8Array | null): number;
  /** The socket's echo identifier (the kernel's "port", host order), or -errno. */
  pingLocalId(fd: number): number;
  /**
   * sendto(dst) of the ICMP echo request buf[off, off+len), header included;
   * bytes sent or -errno (EINVAL: not type 8 code 0, or shorter than 8 bytes).
   * The kernel overwrites the identifier with the socket's and computes the
   * checksum. RangeError when the slice lies outside buf.
   */
  pingSend(fd: number, dst: number, buf: Uint8Array, off: number, len: number): number;
  /**
   * pingSend for an ICMPv6 ping socket: the destination is dst[dstOff,
   * dstOff+16); buf[off, off+len) an ICMPv6 echo request (type 128, code 0).
   * RangeError when either range lies outside its buffer.
   */
  pingSend6(fd: number, dst: Uint8Array, dstOff: number, buf: Uint8Array, off: number, len: number): number;
  /**
   * Drains up to maxMessages echo replies (recvmsg until EAGAIN) into `buf`,
   * message i at offset i*slotSize; writes [srcAddr (host order), offset,
   * length] triples into meta. A message is the ICMP reply without IP header,
   * identifier = the socket's. Returns the count, or -errno when the first
   * receive failed. slotSize >= 65536 and a multiple of 64 (never truncates).
   */
  pingRecvBatch(fd: number, buf: Uint8Array, meta: Uint32Array, maxMessages: number, slotSize: number): number;
  /**
   * pingRecvBatch for an ICMPv6 ping socket: six u32 per reply, [source
   * address words 0..3 (IPV6_WORDS), offset, length]; replies are type 129.
   */
  pingRecvBatch6(fd: number, buf: Uint8Array, meta: Uint32Array, maxMessages: number, slotSize: number): number;
  /** close(fd): 0 or -errno. Stop its poll first. */
  pingClose(fd: number): number;
  /**
   * A UDP (IPv4) socket for the UDP relay (socket(AF_INET, SOCK_DGRAM)),
   * non-blocking and close-on-exec, bound to (`localAddr`, an ephemeral port)
   * (IPv4, host order; 0 = INADDR_ANY), with IP_RECVERR on: ICMP errors for
   * its datagrams are queued on its error queue (udpReadErrors) and set sk_err
   * although it stays unconnected (src/nat/native-udp.ts). Returns the fd, or
   * -errno (EADDRNOTAVAIL: localAddr is not ours; EMFILE). Poll it with pollStart.
   */
  udpOpen(localAddr: number): number;
  /**
   * udpOpen for IPv6: socket(AF_INET6, SOCK_DGRAM) with IPV6_V6ONLY=1 (it can
   * never reach IPv4, not even ::ffff:a.b.c.d: such sends fail ENETUNREACH)
   * and IPV6_RECVERR on (udpReadErrors6), bound to (`localAddr`: 16 bytes,
   * absent or null: ::, an ephemeral port). The fd, or -errno
   * (EAFNOSUPPORT: no IPv6 on this host; EADDRNOTAVAIL: not our address).
   */
  udpOpen6(localAddr?: Uint8Array | null): number;
  /** The socket's bound port (host order), or -errno. */
  udpLocalPort(fd: number): number;
  /**
   * sendto(dst, dstPort) of buf[off, off+len), synchronous: 0 when the kernel
   * took it (and copied the bytes), else the positive errno (EAGAIN/ENOBUFS:
   * no room, not retried; an ICMP error's errno when sk_err was pending).
   * RangeError when the slice lies outside buf or dstPort > 65535.
   */
  udpSend(fd: number, dst: number, dstPort: number, buf: Uint8Array, off: number, len: number): number;
  /**
   * udpSend on an IPv6 socket, to (dst[dstOff, dstOff+16), dstPort); the
   * same results (EMSGSIZE above 65527 bytes). RangeError when either range
   * lies outside its buffer or dstPort > 65535.
   */
  udpSend6(fd: number, dst: Uint8Array, dstOff: number, dstPort: number, buf: Uint8Array, off: number, len: number): number;
  /**
   * One recvmmsg of up to maxSlots (and 64) datagrams: datagram i at
   * buf[i * slotSize], meta[4i .. 4i+3] = [source address (host order),
   * source port, length, flags (1: truncated)]. Returns the count (0 on
   * EAGAIN), or -errno when nothing was received (an ICMP error's errno when
   * sk_err was pending). slotSize >= 65536 and a multiple of 64.
   */
  udpRecvBatch(fd: number, buf: Uint8Array, meta: Uint32Array, maxSlots: number, slotSize: number): number;
  /**
   * udpRecvBatch on an IPv6 socket: meta[7i .. 7i+6] = [source address words
   * 0..3 (IPV6_WORDS), source port, length, flags (1: truncated)].
   */
  udpRecvBatch6(fd: number, buf: Uint8Array, meta: Uint32Array, maxSlots: number, slotSize: number): number;
  /** close(fd): 0 or -errno. Stop its poll first. */
  udpClose(fd: number): number;
  /**
   * Drains the socket's error queue (recvmsg MSG_ERRQUEUE|MSG_DONTWAIT until
   * EAGAIN) into `out`, at most `max` entries (and out.length / 6). Per ICMP
   * error six numbers: [destination address of the failed datagram (host
   * order), its destination port, errno (ECONNREFUSED = 111 for port
   * unreachable), ICMP type, ICMP code, sender of the ICMP error (host order;
   * 0 if none)]. Non-ICMP entries are consumed, not reported. Returns the
   * entry count, or -errno when the first recvmsg failed (EBADF, ENOTSOCK).
   */
  udpReadErrors(fd: number, out: Float64Array, max: number): number;
  /**
   * udpReadErrors on an IPv6 socket (ICMPv6 errors, SO_EE_ORIGIN_ICMP6):
   * twelve numbers per entry, [destination address words 0..3 (IPV6_WORDS),
   * destination port, errno (ECONNREFUSED = 111 for port unreachable),
   * ICMPv6 type, ICMPv6 code, sender address words 0..3 (0s if none)].
   */
  udpReadErrors6(fd: number, out: Float64Array, max: number): number;
  /**
   * A non-blocking, close-on-exec TCP socket with TCP_NODELAY, connecting to
   * addr:port: an IPv4 address (host order) or an IPv6 one (16 bytes; the
   * socket then has IPV6_V6ONLY=1, so a v4-mapped address fails ENETUNREACH).
   * Bound first to `localAddr` (of the same family: a TypeError otherwise;
   * IPv4 0 or absent: no bind), with IP_BIND_ADDRESS_NO_PORT. Returns the fd
   * while the connect is in progress (it completes when the fd polls
   * writable; sockError says how), or -errno when socket/bind/connect failed
   * at once (the fd is then closed).
   */
  tcpConnect(addr: number | Uint8Array, port: number, localAddr?: number | Uint8Array): number;
  /** SO_ERROR: 0 or a positive errno (reading clears it), or -errno when getsockopt fails. */
  sockError(fd: number): number;
  /**
   * Whether tcpConnect's connect has completed: 1 (writable, SO_ERROR 0), 0
   * (pending, or a state the poll should report), -errno (failed; SO_ERROR is
   * then cleared). A connect to the host's own addresses usually has.
   */
  tcpConnected(fd: number): number;
  /** recv into buf[off, off+len): bytes (> 0), 0 at end of stream, or -errno (-EAGAIN: nothing there). */
  tcpRead(fd: number, buf: Uint8Array, off: number, len: number): number;
  /** send(MSG_NOSIGNAL) of buf[off, off+len): bytes taken (maybe fewer), or -errno (-EAGAIN: none). */
  tcpWrite(fd: number, buf: Uint8Array, off: number, len: number): number;
  /**
   * One sendmsg of chunks[start, start+count) (at most 64 of them), the first
   * from byte headOff on: bytes taken, or -errno. Nothing is kept after the call.
   */
  tcpWritev(fd: number, chunks: readonly Uint8Array[], start: number, count: number, headOff: number): number;
  /** shutdown(SHUT_WR): 0 or -errno. */
  tcpShutdownWrite(fd: number): number;
  /** SO_LINGER {1, 0} then close: the peer gets RST. 0 or -errno; the fd is closed either way. Stop its poll first. */
  tcpResetClose(fd: number): number;
  /** close(fd): 0 or -errno. Stop its poll first. */
  fdClose(fd: number): number;
  /** F_DUPFD_CLOEXEC, then O_NONBLOCK (shared with `fd`): the new fd, or -errno. */
  dupFd(fd: number): number;
  /**
   * inet_pton(AF_INET6): true and the 16 bytes written to out[off, off+16)
   * when `text` is an IPv6 literal (no %zone, no brackets), false (out
   * untouched) otherwise. For text addresses once per socket or connection.
   */
  inet6Pton(text: string, out: Uint8Array, off: number): boolean;
  /**
   * --enable-seccomp (seccomp.c): PR_SET_NO_NEW_PRIVS, then a filter on every
   * thread (SECCOMP_FILTER_FLAG_TSYNC) that kills the process on the syscalls
   * seccompBlocked() names. Irreversible: after it this process can never
   * exec, fork-and-exec, mount, unshare or setns again. 0, or -errno: EINVAL
   * or ENOSYS (no seccomp filters, TSYNC or KILL_PROCESS in this kernel, or an
   * architecture the filter does not know), ESRCH (a thread could not be
   * synchronised), EACCES, EFAULT.
   */
  installSeccomp(): number;
  /** The syscalls the filter kills on, in slirp4netns's banner order; prctl is among them. */
  seccompBlocked(): string[];
  /** The prctl options the filter still allows (PR_SET_NAME, PR_GET_NAME). */
  seccompPrctlAllowed(): string[];
  /**
   * malloc_trim(0): gives the C heap's free pages back to the kernel (what
   * ArrayBuffer backing stores freed by the GC leave behind). Returns the
   * free bytes the heap held before (mallinfo2 fordblks).
   */
  mallocTrim(): number;
  /** Adaptive busy polling of this thread's loop (poll.c): `maxMicroseconds` 0 turns it off; no argument only reads the counters. */
  setBusyPoll(maxMicroseconds?: number): { spins: number; hits: number; sleeps: number; bulk: number; spinNs: number; windowNs: number };
  /**
   * madvise(MADV_DONTNEED) on the whole pages inside `buf`: they leave the RSS
   * and read back as zeros. Only for buffers whose contents no longer matter.
   * Returns the bytes released, or -errno.
   */
  releasePages(buf: Uint8Array): number;
}

/**
 * How the addon reports an IPv6 address in a Uint32Array or Float64Array:
 * four numbers, word k being bytes 4k..4k+3 of the address read big-endian
 * (each word "in host order", like an IPv4 address).
 */
export const IPV6_WORDS = 4;

/** Writes the four address words at words[at..at+3] (IPV6_WORDS) as 16 bytes into `out`. */
export function ipv6FromWords(words: ArrayLike<number>, at: number, out: DataView): void {
  out.setUint32(0, words[at]);
  out.setUint32(4, words[at + 1]);
  out.setUint32(8, words[at + 2]);
  out.setUint32(12, words[at + 3]);
}

/** IFF_* bits reported by tunInfo (linux/if_tun.h). */
export const TunFlags = {
  TUN: 0x0001,
  TAP: 0x0002,
  NO_PI: 0x1000,
  ONE_QUEUE: 0x2000,
  VNET_HDR: 0x4000,
  PERSIST: 0x0800,
} as const;

/** uv_poll event bits: pollStart's and pollSetEvents's masks, and the callback's `events`. */
export const PollEvents = { READABLE: 1, WRITABLE: 2, DISCONNECT: 4, PRIORITIZED: 8 } as const;

/** poll(2) revents bits passed to watchHangup's callback. */
export const PollRevents = { POLLERR: 0x008, POLLHUP: 0x010, POLLNVAL: 0x020 } as const;

const ADDON_PATH = '../../build/Release/usernet_native.node';

let addon: NativeAddon | null = null;
let addonFile: string | null = null;

/**
 * Loads the addon from `file` (absolute) instead of ADDON_PATH, with
 * process.dlopen. For code that has no module URL to resolve ADDON_PATH
 * against: the CLI deserialized from a V8 startup snapshot
 * (src/cli/snapshot-entry.ts), which learns the package's place at run time.
 * Only before the first loadNative().
 */
export function useAddonFile(file: string): void {
  addonFile = file;
}

/** The addon, loaded on first use. Throws ERR_USERNET_NATIVE_MISSING when it was not built. */
export function loadNative(): NativeAddon {
  if (addon !== null) return addon;
  try {
    if (addonFile !== null) {
      const m = { exports: {} as NativeAddon };
      process.dlopen(m, addonFile);
      addon = m.exports;
    } else {
      addon = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
    }
  } catch (cause) {
    const err = new Error(
      `usernet: the native addon could not be loaded (${(cause as Error).message}); ` +
        'build it with `npm install` or `npx node-gyp rebuild` (needs a C compiler and Node headers)',
      { cause },
    ) as Error & { code: string };
    err.code = 'ERR_USERNET_NATIVE_MISSING';
    throw err;
  }
  return addon;
}

/** Whether the addon can be loaded here (tests use it to skip loudly). */
export function nativeAvailable(): boolean {
  try {
    loadNative();
    return true;
  } catch {
    return false;
  }
}

export interface HangupWatch {
  /** After stop() the callback never fires. Idempotent. */
  stop(): void;
}

export interface WatchHangupOptions {
  /**
   * `fd` came from the parent process, as slirp4netns's --exit-fd does (the
   * default). When the parent did NOT pass fd N, Node has usually given that
   * number to one of its own pipes, eventfds or epoll fds before any JS ran,
   * and a watch on it would never fire. With `inherited`, an fd that is
   * evidently Node's own (an anon_inode, or a pipe whose other end is also open
   * in this process; an exit pipe's write end is in the parent) is treated as
   * not open: POLLNVAL at once, which is what slirp4netns sees for that fd.
   * Pass false for fds this process opened itself.
   */
  inherited?: boolean;
}

/**
 * slirp4netns `--exit-fd`: calls `onHangup(revents)` once when `fd` reports
 * POLLHUP, POLLERR or POLLNVAL (the write end closed, or fd not open at all);
 * data written into the pipe does not trigger it. The watch does not keep the
 * process alive by itself. Call it early (before opening sockets or the TAP):
 * an fd this process opened later could otherwise hold the number.
 */
export function watchHangup(
  fd: number,
  onHangup: (revents: number) => void,
  options: WatchHangupOptions = {},
): HangupWatch {
  const native = loadNative();
  if ((options.inherited ?? true) && isOwnFd(fd)) {
    let stopped = false;
    setImmediate(() => {
      if (!stopped) onHangup(PollRevents.POLLNVAL);
    });
    return {
      stop(): void {
        stopped = true;
      },
    };
  }
  let handle: HangupHandle | null = native.watchHangup(fd, (revents) => {
    handle = null;
    onHangup(revents);
  });
  return {
    stop(): void {
      if (handle === null) return;
      native.watchHangupStop(handle);
      handle = null;
    },
  };
}

/** Whether `fd` is one Node (or this process) opened for itself: see WatchHangupOptions. */
function isOwnFd(fd: number): boolean {
  let target: string;
  try {
    target = readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return false; // not open (the native watch reports POLLNVAL), or no /proc
  }
  // epoll, eventfd, io_uring, signalfd, timerfd: runtime plumbing, never an exit fd.
  if (target.startsWith('anon_inode:')) return true;
  if (!target.startsWith('pipe:')) return false;
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fd');
  } catch {
    return false;
  }
  const self = String(fd);
  for (const other of fds) {
    if (other === self) continue;
    try {
      if (readlinkSync(`/proc/self/fd/${other}`) === target) return true;
    } catch {
      // closed meanwhile (the fd readdir itself used)
    }
  }
  return false;
}
