/**
 * The attach the launcher did before Node started (native/launcher.c, "The
 * TAP, before Node starts"), as it arrives in USERNET_LAUNCHER_TAP:
 *
 *   ok:FD:VNET:IPV6ERRNO   the TAP is FD, inherited; VNET 1 with IFF_VNET_HDR
 *   child:STATUS:MESSAGE   the attach child exited non-zero ("child failed(N)")
 *   parent:ERRNO:MESSAGE   the launcher's own step failed (perror's text)
 *
 * main.ts uses it in place of its own attach and prints what it would have
 * printed after one. Absent or malformed: null, and main.ts attaches itself.
 */

// Also in native/launcher.c.
export const LAUNCHER_TAP_ENV = 'USERNET_LAUNCHER_TAP';

export type LauncherTap =
  | { kind: 'ok'; fd: number; vnetHdr: boolean; ipv6Errno: number }
  | { kind: 'child'; exitStatus: number; message: string }
  | { kind: 'parent'; errno: number; message: string };

const FORMAT = /^(ok|child|parent):(\d+):(.*)$/s;

export function parseLauncherTap(value: string | undefined): LauncherTap | null {
  const m = value === undefined ? null : FORMAT.exec(value);
  if (m === null) return null;
  const n = Number(m[2]);
  if (m[1] === 'child') return { kind: 'child', exitStatus: n, message: m[3] };
  if (m[1] === 'parent') return { kind: 'parent', errno: n, message: m[3] };
  const rest = /^([01]):(\d+)$/.exec(m[3]);
  return rest === null ? null : { kind: 'ok', fd: n, vnetHdr: rest[1] === '1', ipv6Errno: Number(rest[2]) };
}

/** The error TapLink.attach would have thrown for the same failure. */
export function launcherTapError(tap: Exclude<LauncherTap, { kind: 'ok' }>): Error {
  const err = new Error(tap.message) as Error & { code: string; exitStatus?: number; errno?: number };
  if (tap.kind === 'child') {
    err.code = 'ERR_USERNET_CHILD_FAILED';
    err.exitStatus = tap.exitStatus;
  } else {
    err.code = 'ERR_USERNET_PARENT_FAILED';
    err.errno = tap.errno;
  }
  return err;
}
