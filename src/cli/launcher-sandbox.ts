/**
 * What native/launcher.c hands over after --enable-sandbox (sandbox.c; the
 * launcher's "--enable-sandbox, after the attach" section): inside the
 * sandbox Node cannot bind the API socket or create the pcap file, so the
 * launcher did it before and passes each as
 *
 *   fd:N       open and inherited (the API socket bound and listening)
 *   err:ERRNO  the open, bind or listen failed
 *
 * and USERNET_LAUNCHER_SANDBOX=1 says the sandbox is in place. main.ts uses
 * the fds where it would have opened the files itself and turns an errno
 * into the message its own open or listen would have thrown.
 */
import { getSystemErrorMap } from 'node:util';

// Also in native/launcher.c.
export const LAUNCHER_SANDBOX_ENV = 'USERNET_LAUNCHER_SANDBOX';
export const LAUNCHER_API_ENV = 'USERNET_LAUNCHER_API';
export const LAUNCHER_PCAP_ENV = 'USERNET_LAUNCHER_PCAP';
/** "1": Node was started by the launcher, so --enable-sandbox can work. */
export const LAUNCHED_ENV = 'USERNET_LAUNCHER';

export type LauncherFd = { kind: 'fd'; fd: number } | { kind: 'err'; errno: number };

export interface LauncherSandbox {
  /** Started by the launcher: without it --enable-sandbox is unsupported (and --help leaves it out). */
  launched: boolean;
  /** The sandbox is in place (every step succeeded). */
  sandboxed: boolean;
  api: LauncherFd | null;
  pcap: LauncherFd | null;
}

export function parseLauncherFd(value: string | undefined): LauncherFd | null {
  const m = value === undefined ? null : /^(fd|err):(\d+)$/.exec(value);
  if (m === null) return null;
  return m[1] === 'fd' ? { kind: 'fd', fd: Number(m[2]) } : { kind: 'err', errno: Number(m[2]) };
}

/** Reads and removes the variables, so that nothing usernet starts inherits them. */
export function takeLauncherSandbox(env: NodeJS.ProcessEnv): LauncherSandbox {
  const out = { launched: env[LAUNCHED_ENV] === '1', sandboxed: env[LAUNCHER_SANDBOX_ENV] === '1', api: parseLauncherFd(env[LAUNCHER_API_ENV]), pcap: parseLauncherFd(env[LAUNCHER_PCAP_ENV]) };
  delete env[LAUNCHED_ENV];
  delete env[LAUNCHER_SANDBOX_ENV];
  delete env[LAUNCHER_API_ENV];
  delete env[LAUNCHER_PCAP_ENV];
  return out;
}

/**
 * The error Node's own call would have thrown for `errno`: `listen` on a
 * UNIX socket says "listen EACCES: permission denied /path", fs `open` says
 * "EACCES: permission denied, open '/path'".
 */
export function launcherFdError(errno: number, syscall: 'listen' | 'open', path: string): Error & { code: string; errno: number } {
  const [code, desc] = getSystemErrorMap().get(-errno) ?? [`Unknown system error ${errno}`, 'unknown error'];
  const message = syscall === 'listen' ? `listen ${code}: ${desc} ${path}` : `${code}: ${desc}, open '${path}'`;
  return Object.assign(new Error(message), { code, errno: -errno, syscall, path });
}
