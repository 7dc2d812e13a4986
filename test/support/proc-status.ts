/**
 * What /proc says about a helper process, and its API socket, for the e2e
 * tests of --enable-seccomp and --enable-sandbox.
 */
import { readdirSync, readFileSync } from 'node:fs';
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
