/**
 * glibc getopt_long as slirp4netns 1.2.0 calls it: its short-option string,
 * its 21-entry long-option table in its order, and the scanner that turns
 * argv into options, operands and glibc's error messages.
 */
import type { Feature } from './features.js';

/** slirp4netns's getopt_long short-option string. */
const SHORT_OPTIONS = 'ce:r:m:a:6hv';

export type OptionName =
  | 'configure'
  | 'exit-fd'
  | 'ready-fd'
  | 'mtu'
  | 'cidr'
  | 'disable-host-loopback'
  | 'no-host-loopback'
  | 'netns-type'
  | 'userns-path'
  | 'api-socket'
  | 'enable-ipv6'
  | 'enable-sandbox'
  | 'create-sandbox'
  | 'enable-seccomp'
  | 'help'
  | 'version'
  | 'outbound-addr'
  | 'outbound-addr6'
  | 'disable-dns'
  | 'macaddress'
  | 'target-type';

export interface LongOption {
  readonly name: OptionName;
  readonly hasArg: boolean;
  readonly feature: Feature;
}

// slirp4netns 1.2.0's `longopts[]`, in its order (verified: `--=x` lists them all).
// The order is observable: it is the order of an ambiguous prefix's possibilities.
const LONG_OPTIONS: readonly LongOption[] = [
  { name: 'configure', hasArg: false, feature: 'configure' },
  { name: 'exit-fd', hasArg: true, feature: 'exitFd' },
  { name: 'ready-fd', hasArg: true, feature: 'readyFd' },
  { name: 'mtu', hasArg: true, feature: 'mtu' },
  { name: 'cidr', hasArg: true, feature: 'cidr' },
  { name: 'disable-host-loopback', hasArg: false, feature: 'disableHostLoopback' },
  { name: 'no-host-loopback', hasArg: false, feature: 'disableHostLoopback' },
  { name: 'netns-type', hasArg: true, feature: 'netnsType' },
  { name: 'userns-path', hasArg: true, feature: 'usernsPath' },
  { name: 'api-socket', hasArg: true, feature: 'apiSocket' },
  { name: 'enable-ipv6', hasArg: false, feature: 'enableIpv6' },
  { name: 'enable-sandbox', hasArg: false, feature: 'enableSandbox' },
  { name: 'create-sandbox', hasArg: false, feature: 'enableSandbox' },
  { name: 'enable-seccomp', hasArg: false, feature: 'enableSeccomp' },
  { name: 'help', hasArg: false, feature: 'help' },
  { name: 'version', hasArg: false, feature: 'version' },
  { name: 'outbound-addr', hasArg: true, feature: 'outboundAddr' },
  { name: 'outbound-addr6', hasArg: true, feature: 'outboundAddr6' },
  { name: 'disable-dns', hasArg: false, feature: 'disableDns' },
  { name: 'macaddress', hasArg: true, feature: 'macAddress' },
  { name: 'target-type', hasArg: true, feature: 'targetType' },
];

/** The long option each short option is the same `val` as. */
const SHORT_TO_LONG: Readonly<Record<string, OptionName>> = {
  c: 'configure',
  e: 'exit-fd',
  r: 'ready-fd',
  m: 'mtu',
  a: 'api-socket',
  '6': 'enable-ipv6',
  h: 'help',
  v: 'version',
};

export type GetoptEvent =
  | { kind: 'option'; option: LongOption; optarg: string; spelling: string }
  | { kind: 'error'; message: string };

/**
 * glibc 2.36 `_getopt_internal_r` + `process_long_option`, with opterr = 1 and
 * no `+`/`-`/`:` prefix in the short string. Permutation is modelled by
 * collecting non-options into `operands` as they are skipped; glibc's exchange()
 * keeps their relative order, so the result is the same argv tail.
 *
 * Simplification: every error ends slirp4netns's loop (`default: goto error`),
 * so state after an error is never used. Short options are taken per code point
 * where glibc takes bytes; this only changes the message for a non-ASCII
 * invalid option character.
 */
export class Getopt {
  readonly operands: string[] = [];
  private next = 0;
  private cluster: string | null = null;
  private clusterPos = 0;

  constructor(
    private readonly args: readonly string[],
    private readonly argv0: string,
    private readonly requireOrder: boolean,
  ) {}

  /** The next option, an error, or null at the end of the options. */
  step(): GetoptEvent | null {
    if (this.cluster === null) {
      const args = this.args;
      for (;;) {
        if (this.next >= args.length) return null;
        const arg = args[this.next];
        if (arg === '--') {
          this.operands.push(...args.slice(this.next + 1));
          this.next = args.length;
          return null;
        }
        // NONOPTION_P: "-" alone is an operand too.
        if (arg[0] !== '-' || arg.length === 1) {
          if (this.requireOrder) {
            this.operands.push(...args.slice(this.next));
            this.next = args.length;
            return null;
          }
          this.operands.push(arg);
          this.next++;
          continue;
        }
        break;
      }
      const arg = args[this.next++];
      if (arg[1] === '-') return this.longOption(arg.slice(2));
      this.cluster = arg;
      this.clusterPos = 1;
    }
    return this.shortOption(this.cluster);
  }

  private shortOption(cluster: string): GetoptEvent {
    const c = String.fromCodePoint(cluster.codePointAt(this.clusterPos)!);
    this.clusterPos += c.length;
    const lastInCluster = this.clusterPos >= cluster.length;
    if (lastInCluster) this.cluster = null;

    const at = SHORT_OPTIONS.indexOf(c);
    if (at < 0 || c === ':') {
      return { kind: 'error', message: `${this.argv0}: invalid option -- '${c}'\n` };
    }
    const option = longOption(SHORT_TO_LONG[c]);
    const spelling = `-${c}`;
    if (SHORT_OPTIONS[at + 1] !== ':') return { kind: 'option', option, optarg: '', spelling };

    // Required argument: the rest of this element (`-m1500`, `-cr3`), else the next element.
    if (!lastInCluster) {
      const optarg = cluster.slice(this.clusterPos);
      this.cluster = null;
      return { kind: 'option', option, optarg, spelling };
    }
    if (this.next >= this.args.length) {
      return { kind: 'error', message: `${this.argv0}: option requires an argument -- '${c}'\n` };
    }
    return { kind: 'option', option, optarg: this.args[this.next++], spelling };
  }

  private longOption(body: string): GetoptEvent {
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);

    // An exact match wins over prefixes (`--outbound-addr` vs `--outbound-addr6`).
    let option = LONG_OPTIONS.find((o) => o.name === name);
    if (option === undefined) {
      // glibc only calls two prefix matches ambiguous when their has_arg, flag or
      // val differ; every entry here has its own val, so any two are ambiguous.
      // An empty name (`--=x`) is a prefix of every option.
      const candidates = LONG_OPTIONS.filter((o) => o.name.startsWith(name));
      if (candidates.length === 0) {
        return { kind: 'error', message: `${this.argv0}: unrecognized option '--${body}'\n` };
      }
      if (candidates.length > 1) {
        const possibilities = candidates.map((o) => ` '--${o.name}'`).join('');
        return {
          kind: 'error',
          message: `${this.argv0}: option '--${body}' is ambiguous; possibilities:${possibilities}\n`,
        };
      }
      option = candidates[0];
    }

    const spelling = `--${option.name}`;
    if (eq >= 0) {
      if (!option.hasArg) {
        return { kind: 'error', message: `${this.argv0}: option '--${option.name}' doesn't allow an argument\n` };
      }
      return { kind: 'option', option, optarg: body.slice(eq + 1), spelling };
    }
    if (!option.hasArg) return { kind: 'option', option, optarg: '', spelling };
    if (this.next >= this.args.length) {
      return { kind: 'error', message: `${this.argv0}: option '--${option.name}' requires an argument\n` };
    }
    return { kind: 'option', option, optarg: this.args[this.next++], spelling };
  }
}

function longOption(name: OptionName): LongOption {
  return LONG_OPTIONS.find((o) => o.name === name)!;
}
