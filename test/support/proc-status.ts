/**
 * What /proc says about a helper process, and its API socket, for the e2e
 * tests of --enable-seccomp and --enable-sandbox.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export interface ThreadStatus {
  name: string;
  /** 0 none, 2 filter. */
  seccomp: string;
  /** "1" when no_new_privs is set. */
  nnp: string;
  /** The capability sets, 16 hex digits each. */
  capInh: string;
  capPrm: string;
  capEff: string;
  capBnd: string;
  capAmb: string;
}

/** The status of each of the process's threads. */
export function threadStatus(pid: number): ThreadStatus[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const s = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(s)![1]!.trim();
    return {
      name: field('Name'),
      seccomp: field('Seccomp'),
      nnp: field('NoNewPrivs'),
      capInh: field('CapInh'),
      capPrm: field('CapPrm'),
      capEff: field('CapEff'),
      capBnd: field('CapBnd'),
      capAmb: field('CapAmb'),
    };
  });
}

/** One request on the slirp4netns API socket; resolves with the whole reply. */
export function apiRequest(path: string, body: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(path, () => c.write(JSON.stringify(body)));
    let got = '';
    c.setEncoding('utf8').on('data', (d: string) => (got += d)).on('end', () => resolve(got)).on('error', reject);
  });
}

export const STRACE = ['/usr/bin/strace', '/bin/strace'].find((p) => existsSync(p)) ?? null;

/**
 * Runs `file args…` (its fd 9 a file, `ready`) under strace with `syscall`
 * failing with `errno` in every process, to the end: how a helper meets a
 * kernel that refuses a step. Needs STRACE.
 */
export async function runWithInjectedError(
  syscall: string,
  errno: string,
  ready: string,
  file: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    'sh',
    ['-c', `exec "$0" "$@" 9>"${ready}"`, STRACE!, '-f', '-qq', '-o', '/dev/null', '-e', `trace=${syscall}`, '-e', `inject=${syscall}:error=${errno}`, file, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { code, stdout, stderr };
}
