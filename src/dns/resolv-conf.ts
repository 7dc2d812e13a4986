/**
 * The host's resolver list, from resolv.conf(5).
 *
 * Parsing follows glibc's `res_init` where it matters to a forwarder:
 * - `nameserver ADDR`: an IPv4 or IPv6 literal, IPv6 optionally with a
 *   `%scope` (link-local resolvers, e.g. from router advertisements). Words
 *   after the address are ignored. A line that is not a literal is skipped,
 *   as glibc does (so `nameserver localhost` is ignored).
 * - `#` or `;` in the first column starts a comment; so does either after
 *   whitespace (glibc treats a trailing word as ignored anyway).
 * - `options timeout:N attempts:N` are read, clamped as glibc clamps them
 *   (timeout ≤ 30 s, attempts ≤ 5); the forwarder uses `attempts`.
 * - no nameserver lines (or no file) means "the name server on the local
 *   machine" (resolv.conf(5)): 127.0.0.1, as glibc. The forwarder then gets
 *   a quick ECONNREFUSED when nothing listens there and answers SERVFAIL.
 * - unlike glibc (MAXNS = 3) every nameserver is kept, up to MAX_NAMESERVERS:
 *   the design asks for failover through all of them.
 *
 * Extension, for tests and embedders with resolvers on other ports (resolv.conf
 * has no port syntax): `ADDR#PORT` (dnsmasq's notation) and `[ADDR]:PORT`.
 *
 * Change detection, like libslirp (`get_dns_addr_cached`, 1 s): the path is
 * stat'ed at most once per `checkIntervalMs`, and the file is re-read when its
 * inode, size, mtime or ctime changed. Stat'ing the path (not watching an open
 * file) is what makes this robust to the file being replaced by rename, which
 * is how systemd-resolved, NetworkManager and resolvconf update it, and to a
 * symlink being re-pointed (stat follows it). fs.watch is not used: it watches
 * an inode, which a rename leaves behind.
 */
import { promises as fsp } from 'node:fs';
import { isIP } from 'node:net';

export const DEFAULT_RESOLV_CONF_PATH = '/etc/resolv.conf';
export const MAX_NAMESERVERS = 16;

export interface Nameserver {
  /** The literal to connect to, `%scope` included for IPv6 link-local. */
  address: string;
  family: 4 | 6;
  /** From the `#PORT` / `[ADDR]:PORT` extension; null means "the default" (53 or the forwarder's `upstreamPort`). */
  port: number | null;
}

export interface ResolvConf {
  nameservers: Nameserver[];
  /** `options timeout:` in seconds (1..30), null when absent. */
  timeoutS: number | null;
  /** `options attempts:` (1..5), null when absent. */
  attempts: number | null;
  /** True when the file had no usable nameserver line and the glibc default 127.0.0.1 was put in. */
  defaulted: boolean;
}

const LOCAL_DEFAULT: Nameserver = { address: '127.0.0.1', family: 4, port: null };

export function parseResolvConf(text: string): ResolvConf {
  const nameservers: Nameserver[] = [];
  let timeoutS: number | null = null;
  let attempts: number | null = null;
  for (const raw of text.split('\n')) {
    const words = stripComment(raw).trim().split(/[ \t]+/);
    if (words[0] === 'nameserver' && words.length >= 2) {
      const ns = parseNameserver(words[1]);
      if (ns !== null && nameservers.length < MAX_NAMESERVERS) nameservers.push(ns);
    } else if (words[0] === 'options') {
      for (const opt of words.slice(1)) {
        const m = /^(timeout|attempts):(\d+)$/.exec(opt);
        if (m === null) continue;
        const v = Number(m[2]);
        if (m[1] === 'timeout') timeoutS = Math.min(Math.max(v, 1), 30);
        else attempts = Math.min(Math.max(v, 1), 5);
      }
    }
  }
  const defaulted = nameservers.length === 0;
  if (defaulted) nameservers.push({ ...LOCAL_DEFAULT });
  return { nameservers, timeoutS, attempts, defaulted };
}

function stripComment(line: string): string {
  if (line.startsWith('#') || line.startsWith(';')) return '';
  const m = /[ \t][#;]/.exec(line);
  return m === null ? line : line.slice(0, m.index);
}

/** `ADDR`, `ADDR%scope`, `ADDR#PORT` or `[ADDR]:PORT`; null if none of those. */
export function parseNameserver(word: string): Nameserver | null {
  let addr = word;
  let port: number | null = null;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(word);
  if (bracket !== null) {
    addr = bracket[1];
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else {
    const hash = word.lastIndexOf('#');
    if (hash >= 0) {
      if (!/^\d+$/.test(word.slice(hash + 1))) return null;
      addr = word.slice(0, hash);
      port = Number(word.slice(hash + 1));
    }
  }
  if (port !== null && (port < 1 || port > 65535)) return null;
  const family = isIP(addr);
  // isIP accepts a %scope on IPv6 only.
  if (family === 4 || family === 6) return { address: addr, family, port };
  return null;
}

export interface ResolvConfSourceOptions {
  /** Default /etc/resolv.conf. */
  path?: string;
  /** Stat the path at most this often (default 1000 ms, as libslirp). */
  checkIntervalMs?: number;
  /** Milliseconds on a monotonic scale (default performance.now). */
  now?: () => number;
}

/**
 * The current resolv.conf, re-read on change. `get()` is cheap when called
 * often: it awaits a stat at most once per interval and otherwise returns
 * the cached result; concurrent callers share one stat.
 */
export class ResolvConfSource {
  readonly path: string;
  private readonly checkIntervalMs: number;
  private readonly now: () => number;
  private conf: ResolvConf | null = null;
  private identity = '';
  private lastCheckMs = -Infinity;
  private checking: Promise<ResolvConf> | null = null;
  /** Bumped whenever the parsed contents change; lets callers drop per-server state. */
  generation = 0;

  constructor(opts: ResolvConfSourceOptions = {}) {
    this.path = opts.path ?? DEFAULT_RESOLV_CONF_PATH;
    this.checkIntervalMs = opts.checkIntervalMs ?? 1000;
    this.now = opts.now ?? (() => performance.now());
  }

  get(): Promise<ResolvConf> {
    if (this.conf !== null && this.now() - this.lastCheckMs < this.checkIntervalMs) {
      return Promise.resolve(this.conf);
    }
    this.checking ??= this.refresh().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  /** Resolves once no stat or read is in progress (for a clean shutdown). */
  async idle(): Promise<void> {
    await this.checking?.catch(() => undefined);
  }

  private async refresh(): Promise<ResolvConf> {
    this.lastCheckMs = this.now();
    let identity: string;
    try {
      const st = await fsp.stat(this.path, { bigint: true });
      identity = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    } catch {
      identity = 'missing';
    }
    if (this.conf !== null && identity === this.identity) return this.conf;
    let text = '';
    if (identity !== 'missing') {
      try {
        text = await fsp.readFile(this.path, 'utf8');
      } catch {
        // Replaced or removed between stat and read: treat as empty, retry next interval.
        identity = 'unreadable';
      }
    }
    const next = parseResolvConf(text);
    if (this.conf === null || !sameConf(this.conf, next)) this.generation++;
    this.conf = next;
    this.identity = identity;
    return next;
  }
}

function sameConf(a: ResolvConf, b: ResolvConf): boolean {
  if (a.nameservers.length !== b.nameservers.length || a.attempts !== b.attempts || a.timeoutS !== b.timeoutS) {
    return false;
  }
  return a.nameservers.every(
    (ns, i) => ns.address === b.nameservers[i].address && ns.port === b.nameservers[i].port,
  );
}
