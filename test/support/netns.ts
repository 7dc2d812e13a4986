/**
 * Namespaces for e2e tests: each test makes its own, with the kernel as the
 * guest, and removes them afterwards. Nothing here sends traffic anywhere but
 * into those namespaces.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { promisify } from 'node:util';
import { TapLink } from '../../src/index.js';

const execFileP = promisify(execFile);

/** Why e2e tests cannot run here, or null when they can. */
export function e2eUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  if (!existsSync('/usr/bin/unshare') && !existsSync('/bin/unshare')) return 'unshare is missing';
  return null;
}

/** Says loudly that a suite is skipped; use with describe.skipIf. */
export function announceSkip(suite: string, reason: string | null): boolean {
  if (reason !== null) console.warn(`\n*** SKIPPED: ${suite}: ${reason} ***\n`);
  return reason !== null;
}

export interface UserNetns {
  pid: number;
  /** Runs a command inside the namespaces (user + net). */
  exec(cmd: string[], options?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** Like exec, but resolves with the exit code instead of throwing. */
  run(cmd: string[], options?: { timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  close(): Promise<void>;
}

/** A process in new user (root mapped to us) and network namespaces, like `unshare -r -n sleep`. */
export async function userNetns(): Promise<UserNetns> {
  const child: ChildProcess = spawn('unshare', ['--user', '--map-root-user', '--net', 'sleep', '3600'], { stdio: 'ignore' });
  const pid = child.pid!;
  const ours = readlinkSync('/proc/self/ns/net');
  await waitFor(() => {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) !== ours;
    } catch {
      return false;
    }
  }, 5000, 'namespace did not appear');
  const prefix = ['-t', String(pid), '-U', '--preserve-credentials', '-n', '--'];
  return {
    pid,
    exec: (cmd, o) => execFileP('nsenter', [...prefix, ...cmd], { timeout: o?.timeoutMs ?? 20_000, encoding: 'utf8' }),
    run: (cmd, o) => runCommand('nsenter', [...prefix, ...cmd], o?.timeoutMs),
    async close() {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
    },
  };
}

export interface NamedNetns {
  name: string;
  path: string;
  exec(cmd: string[]): Promise<{ stdout: string; stderr: string }>;
  close(): Promise<void>;
}

/** A named network namespace (`ip netns add`), for --netns-type=path without a user namespace. */
export async function namedNetns(): Promise<NamedNetns> {
  const name = `usernet-e2e-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  await execFileP('ip', ['netns', 'add', name]);
  return {
    name,
    path: `/run/netns/${name}`,
    exec: (cmd) => execFileP('ip', ['netns', 'exec', name, ...cmd], { timeout: 20_000, encoding: 'utf8' }),
    async close() {
      await execFileP('ip', ['netns', 'del', name]).catch(() => {});
    },
  };
}

export async function runCommand(file: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(file, args, { timeout: timeoutMs, encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The nsenter arguments that put a command into a `userNetns()` namespace pair. */
export function nsenterPrefix(pid: number): string[] {
  return ['-t', String(pid), '-U', '--preserve-credentials', '-n', '--'];
}

export interface NetnsProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves (never rejects) when the process has exited, with its status and output. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  /** SIGKILL unless it already exited; resolves once it has. */
  kill(): Promise<void>;
}

/**
 * Starts a command inside the namespaces of `pid` without waiting for it, for
 * guests that must run while the test drives the host side. It is killed
 * after `timeoutMs` (default 60 s); callers also kill() it in their cleanup.
 */
export function spawnInNetns(
  pid: number,
  cmd: string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; stdin?: 'ignore' | 'pipe' } = {},
): NetnsProcess {
  const child = spawn('nsenter', [...nsenterPrefix(pid), ...cmd], {
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((r) => {
    // 'close' waits for stdout/stderr to drain as well as for the exit.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      r({ code, signal, stdout: out, stderr: err });
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      r({ code: -1, signal: null, stdout: out, stderr: err + String(e) });
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    done,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await done;
    },
  };
}

/**
 * A TAP attached in `ns` and configured as `--configure` does (tap0,
 * 10.0.2.100/24, default route via 10.0.2.2, MTU 1500), for tests that run
 * the library in-process.
 */
export function attachTap(ns: UserNetns, options: { offloads?: boolean } = {}): TapLink {
  return TapLink.attach({
    netnsPath: `/proc/${ns.pid}/ns/net`,
    usernsPath: `/proc/${ns.pid}/ns/user`,
    tapName: 'tap0',
    mtu: 1500,
    offloads: options.offloads,
    configure: { addr: 0x0a000264, netmask: 0xffffff00, gateway: 0x0a000202, mac: null },
  });
}
