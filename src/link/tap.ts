/**
 * TapLink: the Link over a TAP fd that lives in the container's network
 * namespace (docs/architecture.md, Process model).
 *
 * Input: a uv_poll on the fd wakes us; each wake-up drains the fd with
 * readBatch into ONE preallocated buffer of fixed 64-byte-aligned slots and
 * hands the batch to the stack. The buffer and its meta array are reused for
 * every batch, so frames are valid only during onBatch (link.ts). Nothing is
 * allocated per frame or per batch.
 *
 * Output: one writeBatch call per output batch, one writev per frame, header
 * and payload as separate slices. The device refusing a frame (EIO while the
 * interface is down, EINVAL for a frame it cannot parse) is a drop, counted,
 * as a NIC would drop it.
 *
 * Offloads (docs/architecture.md, Measured techniques): with the 10-byte virtio-net header the
 * kernel hands us 64 KB TCP super-frames with partial checksums and accepts the
 * same from us, which cuts the frame rate ~45× at MTU 1500. We ask for the most
 * the kernel might know and step down on EINVAL, as QEMU does:
 *   CSUM|TSO4|TSO6|TSO_ECN|USO4|USO6  →  without USO (kernels < 6.2)  →  0
 * With mask 0 the vnet header stays on; frames then carry flags 0 and full
 * checksums. `offloads: false` or USERNET_NO_OFFLOAD=1 turn the header off too
 * (plain Ethernet frames, as slirp4netns reads them) unless `vnetHdr` says otherwise.
 *
 * Stats count bytes as they cross the fd, vnet header included (MemoryLink
 * likewise counts whole frames).
 */
import { closeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { newLinkStats, type BatchHandler, type Link, type LinkStats } from './link.js';
import { closeOnCollect, closeOnCollectCancel } from './fd-finalizer.js';
import { loadNative, TunFlags, type NativeAddon, type NativeConfigure6, type PollHandle } from './native.js';
import { UsernetError } from '../errors.js';

/** TUN_F_* bits for TUNSETOFFLOAD (linux/if_tun.h; USO since Linux 6.2). */
export const TunOffload = {
  CSUM: 0x01,
  TSO4: 0x02,
  TSO6: 0x04,
  TSO_ECN: 0x08,
  USO4: 0x20,
  USO6: 0x40,
} as const;

export type OffloadName = 'csum' | 'tso4' | 'tso6' | 'tso_ecn' | 'uso4' | 'uso6';

const OFFLOAD_NAMES: readonly (readonly [number, OffloadName])[] = [
  [TunOffload.CSUM, 'csum'],
  [TunOffload.TSO4, 'tso4'],
  [TunOffload.TSO6, 'tso6'],
  [TunOffload.TSO_ECN, 'tso_ecn'],
  [TunOffload.USO4, 'uso4'],
  [TunOffload.USO6, 'uso6'],
];

/** Names of the TUN_F_* bits set in `mask`, for logs and the banner. */
export function offloadNames(mask: number): OffloadName[] {
  const names: OffloadName[] = [];
  for (const [bit, name] of OFFLOAD_NAMES) if ((mask & bit) !== 0) names.push(name);
  return names;
}

const USO = TunOffload.USO4 | TunOffload.USO6;
const FULL_OFFLOADS = TunOffload.CSUM | TunOffload.TSO4 | TunOffload.TSO6 | TunOffload.TSO_ECN | USO;
/** Masks tried in order; the first the kernel accepts wins. */
export const OFFLOAD_PROBE: readonly number[] = [FULL_OFFLOADS, FULL_OFFLOADS & ~USO, 0];

export const VNET_HDR_LEN = 10;
/**
 * One read slot: the largest frame tun can hand us (64 KB GSO super-frame +
 * Ethernet header + vnet header, 65560 bytes) rounded up to 64 bytes, plus a
 * spare cache line. Equal to 64 × 1025.
 */
export const READ_SLOT_BYTES = 65600;
export const DEFAULT_READ_SLOTS = 64;
/**
 * readBatch rounds per wake-up. The poll is level-triggered, so stopping early
 * only yields to timers and host sockets; it loses nothing.
 */
const MAX_ROUNDS_PER_WAKEUP = 16;
/** Consecutive wake-ups that read nothing but errors before we give up on the fd. */
const MAX_CONSECUTIVE_READ_ERRORS = 100;

const { EIO, ENXIO, EBADF, EFAULT, ENODEV, EINVAL } = osConstants.errno;
/** Linux's "File descriptor in bad state": a tun fd whose device was deleted. Not in os.constants. */
const EBADFD = 77;
/** Read errors meaning the device is gone or the fd is unusable. */
const FATAL_READ_ERRNOS: ReadonlySet<number> = new Set([EIO, ENXIO, EBADF, EFAULT, ENODEV, EINVAL, EBADFD]);

/** Options for `TapLink.attach` (what the CLI derives from slirp4netns's arguments). */
export interface TapAttachOptions {
  /** `/proc/PID/ns/net` in pid mode, the given path with --netns-type=path. */
  netnsPath: string;
  /** `/proc/PID/ns/user` (pid mode, when it differs from ours) or --userns-path; null otherwise. */
  usernsPath?: string | null;
  tapName: string;
  /** Link MTU, also what --configure sets. Default 1500. */
  mtu?: number;
  /** --configure: assign addr/netmask, default route via gateway, optional MAC. Null: leave the device alone. */
  configure?: TapConfigure | null;
  /**
   * No `sent tapfd=N for NAME` on stderr. Default false: the attach child
   * prints it, as slirp4netns's does (the CLI's slirp4netns mode keeps it).
   */
  quiet?: boolean;
  /** Ask the kernel for TSO/USO/checksum offloads. Default true, false when USERNET_NO_OFFLOAD=1. */
  offloads?: boolean;
  /** Use the virtio-net header. Default: the value of `offloads`. */
  vnetHdr?: boolean;
  /** Frames drained per readBatch call (buffer = readSlots × 65600 bytes). Default 64. */
  readSlots?: number;
}

export interface TapConfigure {
  /** MTU to set on the device. Default: the link's `mtu` (they should agree). */
  mtu?: number;
  /** Guest address (net+100), host byte order. */
  addr: number;
  netmask: number;
  /** Gateway (net+2), host byte order. */
  gateway: number;
  /** 6 bytes (--macaddress), or null for the kernel's random one. */
  mac?: Uint8Array | null;
  /**
   * IPv6 as well: the address (an all-zero interface identifier asks for the
   * EUI-64 of the TAP's MAC, the address SLAAC would form) without DAD, and a
   * static default route via `gateway` (link-local). Its failure does not
   * fail the attach: see TapLink.ipv6Errno.
   */
  ipv6?: NativeConfigure6 | null;
}

export interface TapFromFdOptions {
  mtu?: number;
  /** Whether the fd was opened with IFF_VNET_HDR. Default: asked from the fd (TUNGETIFF). */
  vnetHdr?: boolean;
  /** true: probe as attach does; false: none; a number: exactly that TUN_F_* mask. Default true. */
  offloads?: boolean | number;
  readSlots?: number;
}

/** The error passed to `onError` when the device stops working. */
export interface TapError extends Error {
  code: 'ERR_USERNET_TAP_IO';
  errno: number;
  syscall: string;
}

/** Whether USERNET_NO_OFFLOAD asks for plain frames. */
export function offloadsDisabledByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.USERNET_NO_OFFLOAD;
  return v !== undefined && v !== '' && v !== '0';
}

/** Tries OFFLOAD_PROBE in order; returns the accepted mask (0 if even 0 was refused). */
export function probeOffloads(native: NativeAddon, fd: number): number {
  for (const mask of OFFLOAD_PROBE) if (native.setOffload(fd, mask) === 0) return mask;
  return 0;
}

export class TapLink implements Link {
  readonly fd: number;
  readonly mtu: number;
  readonly vnetHdr: boolean;
  readonly offloads: number;
  readonly stats: LinkStats = newLinkStats();
  /** Called once when reading fails for good (device deleted, fd broken); polling has stopped. */
  onError: ((err: TapError) => void) | null = null;
  /** errno of the last frame the device refused on write, 0 if none yet. */
  lastTxErrno = 0;
  /** errno of the last failed read, 0 if none yet. */
  lastRxErrno = 0;
  /** After attach with configure.ipv6: 0, or why the guest's IPv6 could not be configured (EAFNOSUPPORT, EACCES, ...). */
  ipv6Errno = 0;

  private readonly native: NativeAddon;
  private readonly readSlots: number;
  private readBuf: Uint8Array | null = null;
  private readMeta: Uint32Array | null = null;
  private onBatch: BatchHandler | null = null;
  private poll: PollHandle | null = null;
  private pollRef = true;
  private readonly txOut = new Float64Array(2);
  private consecutiveReadErrors = 0;
  private started = false;
  private closed = false;

  private constructor(native: NativeAddon, fd: number, mtu: number, vnetHdr: boolean, offloads: number, readSlots: number) {
    this.native = native;
    this.fd = fd;
    this.mtu = mtu;
    this.vnetHdr = vnetHdr;
    this.offloads = offloads;
    this.readSlots = readSlots;
    closeOnCollect(this, fd);
  }

  /**
   * Joins the namespaces in a forked child, creates or attaches the TAP,
   * optionally configures it, and takes its fd. Throws the child's failure as
   * ChildFailedError (`child failed(N)`; the reason is on stderr) or a
   * ParentFailedError (native.ts).
   */
  static attach(options: TapAttachOptions): TapLink {
    const mtu = checkMtu(options.mtu ?? 1500);
    const readSlots = checkReadSlots(options.readSlots ?? DEFAULT_READ_SLOTS);
    const wantOffloads = (options.offloads ?? true) && !offloadsDisabledByEnv();
    const vnetHdr = options.vnetHdr ?? wantOffloads;
    const cfg = options.configure ?? null;
    if (cfg !== null && cfg.mac != null && cfg.mac.length !== 6) {
      throw new UsernetError('ERR_USERNET_INVALID_OPTION', 'TapLink.attach: configure.mac must be 6 bytes');
    }
    const native = loadNative();
    const { fd, ipv6Errno } = native.attach({
      netnsPath: options.netnsPath,
      usernsPath: options.usernsPath ?? null,
      tapName: options.tapName,
      vnetHdr,
      quiet: options.quiet ?? false,
      configure:
        cfg === null
          ? null
          : {
              mtu: checkMtu(cfg.mtu ?? mtu),
              mac: cfg.mac ?? null,
              addr: cfg.addr >>> 0,
              netmask: cfg.netmask >>> 0,
              gateway: cfg.gateway >>> 0,
              ipv6: cfg.ipv6 ?? null,
            },
    });
    // A persistent TAP keeps the offload state of its previous user, so we
    // always set it, to 0 when unwanted: offloads without the vnet header would
    // hand us partial checksums we cannot recognise.
    let offloads = 0;
    if (vnetHdr && wantOffloads) offloads = probeOffloads(native, fd);
    else native.setOffload(fd, 0);
    const link = new TapLink(native, fd, mtu, vnetHdr, offloads, readSlots);
    link.ipv6Errno = ipv6Errno;
    return link;
  }

  /**
   * Wraps an fd opened elsewhere (a TAP passed in by a supervisor). The link
   * owns the fd from now on: close() closes it, and so does the garbage
   * collector if the link is dropped unclosed (and not polling). The fd is
   * made non-blocking and close-on-exec.
   */
  static fromFd(fd: number, options: TapFromFdOptions = {}): TapLink {
    const native = loadNative();
    const mtu = checkMtu(options.mtu ?? 1500);
    const readSlots = checkReadSlots(options.readSlots ?? DEFAULT_READ_SLOTS);
    const info = native.tunInfo(fd);
    const vnetHdr = options.vnetHdr ?? (info !== null && (info.flags & TunFlags.VNET_HDR) !== 0);
    const nb = native.adoptFd(fd);
    if (nb !== 0) throw errnoError(`TapLink.fromFd: fcntl(O_NONBLOCK, FD_CLOEXEC) on fd ${fd}`, nb);
    if (vnetHdr) {
      const e = native.setVnetHdr(fd);
      if (e !== 0) throw errnoError(`TapLink.fromFd: TUNSETVNETHDRSZ on fd ${fd}`, e);
    }
    let offloads = 0;
    const want = options.offloads ?? true;
    if (info !== null) {
      if (!vnetHdr) native.setOffload(fd, 0);
      else if (typeof want === 'number') {
        const e = native.setOffload(fd, want >>> 0);
        if (e !== 0) throw errnoError(`TapLink.fromFd: TUNSETOFFLOAD 0x${want.toString(16)}`, e);
        offloads = want >>> 0;
      } else if (want && !offloadsDisabledByEnv()) offloads = probeOffloads(native, fd);
      else native.setOffload(fd, 0);
    }
    return new TapLink(native, fd, mtu, vnetHdr, offloads, readSlots);
  }

  start(onBatch: BatchHandler): void {
    if (this.closed) throw new UsernetError('ERR_USERNET_CLOSED', 'TapLink.start: link is closed');
    if (this.started) throw new UsernetError('ERR_USERNET_INVALID_OPTION', 'TapLink.start: already started');
    this.started = true;
    this.onBatch = onBatch;
    // allocUnsafeSlow: a dedicated ArrayBuffer outside Node's pool, not zeroed
    // (every byte the stack reads was written by the kernel first). Handed out
    // as a plain Uint8Array, not a Buffer: Buffer#slice returns a view, so a
    // handler that copies with slice() as the Uint8Array type promises would
    // silently keep a view of this reused buffer (docs/architecture.md, Ownership).
    this.readBuf = new Uint8Array(Buffer.allocUnsafeSlow(this.readSlots * READ_SLOT_BYTES).buffer);
    this.readMeta = new Uint32Array(this.readSlots * 2);
    this.poll = this.native.pollStart(this.fd, this.onReadable);
    if (!this.pollRef) this.native.pollRef(this.poll, false);
  }

  writeBatch(bufs: readonly Uint8Array[], meta: Uint32Array, count: number): number {
    if (count <= 0) return 0;
    if (this.closed) {
      this.stats.txDropped += count;
      return 0;
    }
    const out = this.txOut;
    const written = this.native.writeBatch(this.fd, bufs, meta, count, out);
    this.stats.txFrames += written;
    this.stats.txBytes += out[0];
    if (written < count) {
      this.stats.txDropped += count - written;
      this.lastTxErrno = out[1];
    }
    return written;
  }

  /** Whether the link keeps the process alive while polling (default true). */
  setRef(ref: boolean): void {
    this.pollRef = ref;
    if (this.poll !== null) this.native.pollRef(this.poll, ref);
  }

  /** The read slots' pages back to the kernel (called between batches; they hold nothing then). */
  releaseIdleMemory(): void {
    if (this.readBuf !== null && !this.closed) this.native.releasePages(this.readBuf);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopPolling();
    this.onBatch = null;
    closeOnCollectCancel(this);
    try {
      closeSync(this.fd);
    } catch {
      // Already closed behind our back: nothing left to release.
    }
  }

  private readonly onReadable = (status: number): void => {
    if (status < 0) {
      // libuv turns POLLERR into UV_EBADF and stops the poll. That is what a
      // TAP whose device was deleted reports; one more read says why (EBADFD).
      const n = this.native.readBatch(this.fd, this.readBuf as Uint8Array, this.readMeta as Uint32Array, 1, READ_SLOT_BYTES);
      const errno = n < 0 ? -n : -status;
      this.stats.rxErrors++;
      this.lastRxErrno = errno;
      this.fail(errno, 'read');
      return;
    }
    this.drain();
  };

  private drain(): void {
    const native = this.native;
    const buf = this.readBuf as Uint8Array;
    const meta = this.readMeta as Uint32Array;
    const max = this.readSlots;
    for (let round = 0; round < MAX_ROUNDS_PER_WAKEUP; round++) {
      const onBatch = this.onBatch;
      if (onBatch === null) return; // closed by a previous batch's handler
      const n = native.readBatch(this.fd, buf, meta, max, READ_SLOT_BYTES);
      if (n < 0) {
        this.readError(-n);
        return;
      }
      if (n === 0) return;
      this.consecutiveReadErrors = 0;
      let bytes = 0;
      for (let i = 1; i < 2 * n; i += 2) bytes += meta[i];
      const stats = this.stats;
      stats.rxBatches++;
      stats.rxFrames += n;
      stats.rxBytes += bytes;
      onBatch(buf, meta, n);
      if (n < max) return;
    }
  }

  private readError(errno: number): void {
    this.stats.rxErrors++;
    this.lastRxErrno = errno;
    if (FATAL_READ_ERRNOS.has(errno) || ++this.consecutiveReadErrors >= MAX_CONSECUTIVE_READ_ERRORS) {
      this.fail(errno, 'read');
    }
  }

  private fail(errno: number, syscall: string): void {
    this.stopPolling();
    const err = errnoError(`TapLink: ${syscall} on TAP fd ${this.fd} failed`, errno) as TapError;
    err.code = 'ERR_USERNET_TAP_IO';
    err.syscall = syscall;
    if (this.onError !== null) this.onError(err);
    else process.emitWarning(err);
  }

  private stopPolling(): void {
    if (this.poll === null) return;
    this.native.pollStop(this.poll);
    this.poll = null;
  }
}

function checkMtu(mtu: number): number {
  // 65535 is ETH_MAX_MTU, the most a TAP takes. Smaller values the kernel
  // refuses (below 68) are left to it, so --configure fails with slirp4netns's
  // own "cannot set MTU: Invalid argument".
  if (!Number.isInteger(mtu) || mtu < 1 || mtu > 65535) throw new UsernetError('ERR_USERNET_INVALID_OPTION', `TapLink: bad MTU ${mtu}`);
  return mtu;
}

function checkReadSlots(slots: number): number {
  if (!Number.isInteger(slots) || slots < 1 || slots > 1024) throw new UsernetError('ERR_USERNET_INVALID_OPTION', `TapLink: bad readSlots ${slots}`);
  return slots;
}

function errnoError(what: string, errno: number): Error & { errno: number; code: string } {
  const name = errno === EBADFD ? 'EBADFD' : getSystemErrorName(-errno);
  const err = new Error(`${what}: ${name}`) as Error & { errno: number; code: string };
  err.errno = errno;
  err.code = 'ERR_USERNET_TAP';
  return err;
}
