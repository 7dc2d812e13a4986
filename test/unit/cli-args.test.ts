/**
 * src/cli/args.ts (and getopt.ts, c-scan.ts, slirp-validate.ts) against slirp4netns 1.2.0 (compat spec §1).
 *
 * Expected texts were taken from the Debian slirp4netns 1.2.0 binary (glibc 2.36)
 * with `cat -A`; the MAC-parsing cases from glibc's sscanf("%x") in a C harness.
 * The last block re-runs the error vectors against /usr/bin/slirp4netns when it
 * is installed and compares byte for byte.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseArgs, type CliConfig, type ParseDeps, type ParseResult } from '../../src/cli/args.js';
import { strtolWhole } from '../../src/cli/c-scan.js';
import { slirpConfigVersionMax, SUPPORTED, USERNET_VERSION, type Feature } from '../../src/cli/features.js';
import { parseCidr, parseMacAddress } from '../../src/cli/slirp-validate.js';
import { announceSkip } from '../support/netns.js';

const ARGV0 = 'slirp4netns';
const EXISTING = new Set(['/run/user/1000/netns/cni-1', '/proc/self/ns/user', '/']);
const exists = (p: string): boolean => EXISTING.has(p);
const ALL: Record<Feature, boolean> = Object.fromEntries(Object.keys(SUPPORTED).map((k) => [k, true])) as Record<
  Feature,
  boolean
>;

function parse(argv: string[], env: Record<string, string | undefined> = {}, deps: ParseDeps = {}): ParseResult {
  return parseArgs(argv, env, ARGV0, { exists, nodeVersion: '20.0.0', ...deps });
}

function runConfig(argv: string[], deps: ParseDeps = {}): CliConfig {
  const r = parse(argv, {}, deps);
  if (r.kind !== 'run') throw new Error(`expected run, got exit ${r.status}: ${r.stderr}`);
  return r.config;
}

// slirp4netns 1.2.0 `--help`, every byte (two lines carry a literal TAB).
const FULL_HELP =
  'Usage: slirp4netns [OPTION]... PID|PATH [TAPNAME]\n' +
  'User-mode networking for unprivileged network namespaces.\n' +
  '\n' +
  '-c, --configure          bring up the interface\n' +
  '-e, --exit-fd=FD         specify the FD for terminating slirp4netns\n' +
  '-r, --ready-fd=FD        specify the FD to write to when the network is configured\n' +
  '-m, --mtu=MTU            specify MTU (default=1500, max=65521)\n' +
  '-6, --enable-ipv6        enable IPv6 (experimental)\n' +
  '-a, --api-socket=PATH    specify API socket path\n' +
  '--cidr=CIDR              specify network address CIDR (default=10.0.2.0/24)\n' +
  '--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace\n' +
  '--netns-type=TYPE \t specify network namespace type ([path|pid], default=pid)\n' +
  '--userns-path=PATH\t specify user namespace path\n' +
  '--enable-sandbox         create a new mount namespace (and drop all caps except CAP_NET_BIND_SERVICE if running as the root)\n' +
  '--enable-seccomp         enable seccomp to limit syscalls (experimental)\n' +
  '--outbound-addr=IPv4     sets outbound ipv4 address to bound to (experimental)\n' +
  '--outbound-addr6=IPv6    sets outbound ipv6 address to bound to (experimental)\n' +
  '--disable-dns            disables 10.0.2.3 (or configured internal ip) to host dns redirect (experimental)\n' +
  '--macaddress=MAC         specify the MAC address of the TAP (only valid with -c)\n' +
  '--target-type=TYPE       specify the target type ([netns|bess], default=netns)\n' +
  '-h, --help               show this help and exit\n' +
  '-v, --version            show version and exit\n';

// What usernet advertises today: every option slirp4netns 1.2.0 has.
const HELP = FULL_HELP;

const LOOPBACK_WARNING =
  'WARNING: 127.0.0.1:* on the host is accessible as 10.0.2.2 (set --disable-host-loopback to prohibit connecting to 127.0.0.1:*)\n';

describe('help text', () => {
  it('with every feature on, is slirp4netns 1.2.0 --help byte for byte', () => {
    expect(parse(['--help'], {}, { supported: ALL })).toEqual({ kind: 'exit', status: 0, stdout: FULL_HELP, stderr: '' });
  });

  it('is slirp4netns 1.2.0 --help (everything is supported but bess, whose line names it among the types)', () => {
    expect(parse(['--help'])).toEqual({ kind: 'exit', status: 0, stdout: HELP, stderr: '' });
    expect(parse(['-h']).stdout).toBe(HELP);
  });

  it('keeps what RootlessKit, Podman and dockerd-rootless.sh probe for', () => {
    const help = parse(['--help']).stdout;
    // dockerd-rootless.sh / containerd-rootless.sh: `grep -qw -- --netns-type`
    expect(help).toMatch(/(^|[^\w-])--netns-type([^\w-]|$)/m);
    for (const probe of ['--cidr', '--disable-host-loopback', '--mtu', '--enable-ipv6', '--outbound-addr', '--enable-seccomp']) {
      expect(help).toContain(probe);
    }
    // Podman and RootlessKit pass it as soon as it appears: it must work (test/e2e/sandbox.test.ts).
    expect(help).toContain('--enable-sandbox');
  });

  it('names the program as invoked', () => {
    const r = parseArgs(['-h'], {}, '/usr/local/bin/usernet');
    expect(r.stdout.split('\n')[0]).toBe('Usage: /usr/local/bin/usernet [OPTION]... PID|PATH [TAPNAME]');
  });

  it('pads every untabbed option line to column 25', () => {
    for (const l of FULL_HELP.split('\n').slice(3, -1)) {
      if (l.includes('\t')) continue;
      expect(l[24], l).toBe(' ');
      expect(l[25], l).not.toBe(' ');
    }
  });

  it('an unsupported flag is left out, and switched on appears in its slirp4netns place', () => {
    expect(parse(['-h'], {}, { supported: { enableSandbox: false } }).stdout).not.toContain('--enable-sandbox');
    const help = parse(['-h'], {}, { supported: { enableSandbox: true } }).stdout;
    expect(help).toContain(
      '--userns-path=PATH\t specify user namespace path\n--enable-sandbox         create a new mount namespace',
    );
  });

  it('prints pending stdout WARNINGs first, exits 0, and stops parsing', () => {
    const w =
      'WARNING: --no-host-loopback is deprecated and will be removed in future releases, please use --disable-host-loopback instead.\n';
    expect(parse(['--no-host-loopback', '-h', '--bogus'])).toEqual({ kind: 'exit', status: 0, stdout: w + HELP, stderr: '' });
  });
});

describe('version', () => {
  it('prints usernet and compatibility key: value lines', () => {
    expect(parse(['--version'])).toEqual({
      kind: 'exit',
      status: 0,
      stdout:
        `usernet version ${USERNET_VERSION}\n` +
        'slirp4netns compatibility: 1.2.0\n' +
        'node: 20.0.0\n' +
        'SLIRP_CONFIG_VERSION_MAX: 3\n',
      stderr: '',
    });
    expect(parse(['-v']).stdout).toBe(parse(['--version']).stdout);
    expect(parseArgs(['-v'], {}, ARGV0).stdout).toContain(`node: ${process.versions.node}\n`);
  });

  it('SLIRP_CONFIG_VERSION_MAX gates the upstream outbound-addr (>=2) and disable-dns (>=3) tests', () => {
    expect(slirpConfigVersionMax(SUPPORTED)).toBe(3);
    expect(slirpConfigVersionMax({ ...SUPPORTED, outboundAddr6: false })).toBe(1);
    expect(slirpConfigVersionMax({ ...SUPPORTED, outboundAddr: true, outboundAddr6: true, disableDns: false })).toBe(2);
    expect(slirpConfigVersionMax({ ...SUPPORTED, outboundAddr6: false, disableDns: true })).toBe(1);
    expect(slirpConfigVersionMax(ALL)).toBe(3);
  });
});

describe('defaults and modes', () => {
  it('PID TAP gives slirp4netns defaults', () => {
    const r = parse(['1234', 'tap0']);
    expect(r).toEqual({
      kind: 'run',
      stdout: LOOPBACK_WARNING,
      stderr: '',
      config: {
        configure: false,
        exitFd: null,
        readyFd: null,
        mtu: 1500,
        enableIpv6: false,
        apiSocket: null,
        cidr: { network: 0x0a000200, prefixLength: 24 },
        disableHostLoopback: false,
        netnsType: 'pid',
        userNsPath: null,
        enableSandbox: false,
        enableSeccomp: false,
        outboundAddr: null,
        outboundAddr6: null,
        disableDns: false,
        macAddress: null,
        targetType: 'netns',
        pid: 1234,
        netnsPath: '/proc/1234/ns/net',
        tapName: 'tap0',
        bessSocketPath: null,
      },
    });
  });

  it('RootlessKit v1 command line', () => {
    const argv = ['--mtu', '65520', '-r', '3', '--disable-host-loopback', '--cidr', '10.0.3.0/24', '24761', 'tap0'];
    const r = parse(argv);
    expect(r.stdout).toBe('');
    expect(runConfig(argv)).toMatchObject({
      mtu: 65520,
      readyFd: 3,
      disableHostLoopback: true,
      cidr: { network: 0x0a000300, prefixLength: 24 },
      pid: 24761,
      tapName: 'tap0',
    });
  });

  it('RootlessKit detach-netns command line (path mode with --userns-path)', () => {
    const c = runConfig([
      '--mtu',
      '65520',
      '-r',
      '3',
      '--userns-path=/proc/self/ns/user',
      '--netns-type=path',
      '/run/user/1000/netns/cni-1',
      'tap0',
    ]);
    expect(c).toMatchObject({
      netnsType: 'path',
      userNsPath: '/proc/self/ns/user',
      pid: null,
      netnsPath: '/run/user/1000/netns/cni-1',
      tapName: 'tap0',
    });
  });

  it('Podman >= 4.6 command line (without the options it only passes when advertised)', () => {
    const c = runConfig([
      '--disable-host-loopback',
      '--mtu=65520',
      '--cidr=10.0.2.0/24',
      '-c',
      '-r',
      '3',
      '-e',
      '4',
      '--netns-type=path',
      '/run/user/1000/netns/cni-1',
      'tap0',
    ]);
    expect(c).toMatchObject({ configure: true, readyFd: 3, exitFd: 4, mtu: 65520, netnsType: 'path' });
  });

  it('any --netns-type other than "pid" means path, "pid" means pid', () => {
    expect(runConfig(['--netns-type=foo', '/run/user/1000/netns/cni-1', 't']).netnsType).toBe('path');
    expect(runConfig(['--netns-type=', '/run/user/1000/netns/cni-1', 't']).netnsType).toBe('path');
    expect(runConfig(['--netns-type=PID', '/run/user/1000/netns/cni-1', 't']).netnsType).toBe('path');
    expect(runConfig(['--netns-type=pid', '7', 't'])).toMatchObject({ netnsType: 'pid', pid: 7 });
  });

  it('the last occurrence of an option wins', () => {
    expect(runConfig(['-m', '9000', '--mtu=1280', '1', 't']).mtu).toBe(1280);
    expect(runConfig(['--target-type=bess', '--target-type=netns', '1', 't']).targetType).toBe('netns');
  });

  it('keeps TAPNAME as given (the kernel truncates it to 15 bytes)', () => {
    expect(runConfig(['1', 'a-very-long-tap-name']).tapName).toBe('a-very-long-tap-name');
  });

  it('loopback WARNING names the gateway of the configured network, and goes with --disable-host-loopback', () => {
    expect(parse(['--cidr=10.0.135.128/25', '1', 't']).stdout).toBe(
      'WARNING: 127.0.0.1:* on the host is accessible as 10.0.135.130 (set --disable-host-loopback to prohibit connecting to 127.0.0.1:*)\n',
    );
    expect(parse(['--disable-host-loopback', '1', 't']).stdout).toBe('');
  });

  it('--no-host-loopback works and prints its deprecation WARNING', () => {
    const r = parse(['--no-host-loopback', '1', 't']);
    expect(r).toMatchObject({
      kind: 'run',
      stdout:
        'WARNING: --no-host-loopback is deprecated and will be removed in future releases, please use --disable-host-loopback instead.\n',
    });
    expect(r.kind === 'run' && r.config.disableHostLoopback).toBe(true);
  });

  it('more than two positionals: WARNING on stdout and carry on', () => {
    const r = parse(['1', 'tap0', '10/dev/fd/63']);
    expect(r.kind).toBe('run');
    expect(r.stdout).toBe('WARNING: too many arguments\n' + LOOPBACK_WARNING);
  });

  it('-c with --macaddress sets a lenient MAC', () => {
    expect(Array.from(runConfig(['-c', '--macaddress', '0e:d4:18:d9:38:fb', '1', 't']).macAddress!)).toEqual([
      0x0e, 0xd4, 0x18, 0xd9, 0x38, 0xfb,
    ]);
    expect(Array.from(runConfig(['-c', '--macaddress=2:bb', '1', 't']).macAddress!)).toEqual([2, 0xbb, 0, 0, 0, 0]);
  });

  it('uses fs.existsSync when no exists() is injected', () => {
    const r = parseArgs(['--netns-type=path', '/', 'tap0'], {}, ARGV0);
    expect(r.kind).toBe('run');
    const missing = parseArgs(['--netns-type=path', '/nonexistent/usernet-test', 'tap0'], {}, ARGV0);
    expect(missing).toMatchObject({ kind: 'exit', status: 1 });
  });
});

describe('getopt_long behaviour', () => {
  it.each([
    ['--opt=value', ['--mtu=9000', '1', 't'], { mtu: 9000 }],
    ['--opt value', ['--mtu', '9000', '1', 't'], { mtu: 9000 }],
    ['-r 3', ['-r', '3', '1', 't'], { readyFd: 3 }],
    ['-m1500 -r5', ['-m1400', '-r5', '1', 't'], { mtu: 1400, readyFd: 5 }],
    ['bundling -cr3', ['-cr3', '1', 't'], { configure: true, readyFd: 3 }],
    ['bundling -cr 3', ['-cr', '3', '1', 't'], { configure: true, readyFd: 3 }],
    ['options after positionals', ['1', 't', '--mtu', '9000', '-c'], { mtu: 9000, configure: true, pid: 1 }],
    ['options between positionals', ['1', '-c', 't'], { configure: true, pid: 1, tapName: 't' }],
    ['unique prefix', ['--disable-host', '--mt=9000', '1', 't'], { disableHostLoopback: true, mtu: 9000 }],
    ['prefix with separate value', ['--cid', '10.0.3.0/24', '1', 't'], { cidr: { network: 0x0a000300, prefixLength: 24 } }],
    ['one-letter unique prefix', ['--r', '3', '1', 't'], { readyFd: 3 }],
    ['a value that looks like an option is still the value', ['-e', '-c', '--mtu=1', '1', 't'], null],
    ['-- ends options', ['-c', '--', '1', '-t'], { configure: true, pid: 1, tapName: '-t' }],
    ['"-" is a positional', ['-c', '-', 't', '1'], null],
    ['exit-fd= is fd 0 (strtol of "")', ['--exit-fd=', '1', 't'], { exitFd: 0 }],
    ['strtol whitespace and sign', ['-e', ' +3', '-r', '\t4', '1', 't'], { exitFd: 3, readyFd: 4 }],
    ['int truncation of fds and PID', ['-e', '4294967299', '4294967297', 't'], { exitFd: 3, pid: 1 }],
    ['unsigned truncation of MTU', ['--mtu=4294968796', '1', 't'], { mtu: 1500 }],
    ['MTU bounds', ['--mtu=65521', '1', 't'], { mtu: 65521 }],
  ] as const)('%s', (_name, argv, expected) => {
    const r = parse([...argv]);
    if (expected === null) {
      expect(r.kind).toBe('exit');
      return;
    }
    expect(r.kind).toBe('run');
    if (r.kind === 'run') expect(r.config).toMatchObject(expected);
  });

  it('an exact match wins over a longer option with the same prefix', () => {
    // --outbound-addr is a prefix of --outbound-addr6; with the feature on it must not be ambiguous.
    const r = parse(['--outbound-addr=127.0.0.1', '1', 't'], {}, { supported: ALL });
    expect(r).toMatchObject({ kind: 'run', config: { outboundAddr: '127.0.0.1', outboundAddr6: null } });
  });

  it('POSIXLY_CORRECT stops at the first positional', () => {
    expect(parse(['1', 't', '-c'], {})).toMatchObject({ kind: 'run', config: { configure: true } });
    const r = parse(['1', 't', '-c'], { POSIXLY_CORRECT: '' });
    expect(r).toMatchObject({ kind: 'run', config: { configure: false }, stdout: 'WARNING: too many arguments\n' + LOOPBACK_WARNING });
    expect(parse(['0', 't', '-h'], { POSIXLY_CORRECT: '1' })).toEqual({
      kind: 'exit',
      status: 1,
      stdout: 'WARNING: too many arguments\n' + HELP,
      stderr: 'PID must be a positive integer\n',
    });
    // `--` after a positional stays a positional when not permuting.
    expect(parse(['1', '--', 't'], { POSIXLY_CORRECT: '1' }).stdout).toBe('WARNING: too many arguments\n' + LOOPBACK_WARNING);
  });
});

/** A usage error: message on stderr, (WARNINGs and) usage on stdout, exit 1. */
const usage = (stderr: string, warnings = '', help = HELP): ParseResult => ({
  kind: 'exit',
  status: 1,
  stdout: warnings + help,
  stderr,
});
/** A post-parse config error: message only. */
const bare = (stderr: string, warnings = ''): ParseResult => ({ kind: 'exit', status: 1, stdout: warnings, stderr });

describe('every error message of compat §1.3, with slirp4netns 1.2.0 text and status', () => {
  it.each([
    // glibc getopt_long
    [['--bogus'], usage("slirp4netns: unrecognized option '--bogus'\n")],
    [['--bogus=3'], usage("slirp4netns: unrecognized option '--bogus=3'\n")],
    [['---mtu'], usage("slirp4netns: unrecognized option '---mtu'\n")],
    [['-x'], usage("slirp4netns: invalid option -- 'x'\n")],
    [['-cx'], usage("slirp4netns: invalid option -- 'x'\n")],
    [['-:'], usage("slirp4netns: invalid option -- ':'\n")],
    [['-r'], usage("slirp4netns: option requires an argument -- 'r'\n")],
    [['-cr'], usage("slirp4netns: option requires an argument -- 'r'\n")],
    [['--mtu'], usage("slirp4netns: option '--mtu' requires an argument\n")],
    [['--mt'], usage("slirp4netns: option '--mtu' requires an argument\n")],
    [['--t'], usage("slirp4netns: option '--target-type' requires an argument\n")],
    [['--configure=x'], usage("slirp4netns: option '--configure' doesn't allow an argument\n")],
    [['--disable-host=1'], usage("slirp4netns: option '--disable-host-loopback' doesn't allow an argument\n")],
    [['--help=foo'], usage("slirp4netns: option '--help' doesn't allow an argument\n")],
    [
      ['--en'],
      usage("slirp4netns: option '--en' is ambiguous; possibilities: '--enable-ipv6' '--enable-sandbox' '--enable-seccomp'\n"),
    ],
    [
      ['--en=3'],
      usage("slirp4netns: option '--en=3' is ambiguous; possibilities: '--enable-ipv6' '--enable-sandbox' '--enable-seccomp'\n"),
    ],
    [['--d'], usage("slirp4netns: option '--d' is ambiguous; possibilities: '--disable-host-loopback' '--disable-dns'\n")],
    [['--c'], usage("slirp4netns: option '--c' is ambiguous; possibilities: '--configure' '--cidr' '--create-sandbox'\n")],
    [
      ['--e'],
      usage(
        "slirp4netns: option '--e' is ambiguous; possibilities: '--exit-fd' '--enable-ipv6' '--enable-sandbox' '--enable-seccomp'\n",
      ),
    ],
    [['--m'], usage("slirp4netns: option '--m' is ambiguous; possibilities: '--mtu' '--macaddress'\n")],
    [['--n'], usage("slirp4netns: option '--n' is ambiguous; possibilities: '--no-host-loopback' '--netns-type'\n")],
    [['--outbound-a'], usage("slirp4netns: option '--outbound-a' is ambiguous; possibilities: '--outbound-addr' '--outbound-addr6'\n")],
    [
      ['--=x'],
      usage(
        "slirp4netns: option '--=x' is ambiguous; possibilities: '--configure' '--exit-fd' '--ready-fd' '--mtu' '--cidr' " +
          "'--disable-host-loopback' '--no-host-loopback' '--netns-type' '--userns-path' '--api-socket' '--enable-ipv6' " +
          "'--enable-sandbox' '--create-sandbox' '--enable-seccomp' '--help' '--version' '--outbound-addr' '--outbound-addr6' " +
          "'--disable-dns' '--macaddress' '--target-type'\n",
      ),
    ],
    // values, in parse order
    [['-e', '-1', '1', 't'], usage('exit-fd must be a non-negative integer\n')],
    [['-e', '0x3', '1', 't'], usage('exit-fd must be a non-negative integer\n')],
    [['-e', '2147483648', '1', 't'], usage('exit-fd must be a non-negative integer\n')],
    [['-e', '99999999999999999999', '1', 't'], usage('exit-fd must be a non-negative integer\n')],
    [['-e', ' ', '1', 't'], usage('exit-fd must be a non-negative integer\n')],
    [['-r', '3x', '1', 't'], usage('ready-fd must be a non-negative integer\n')],
    [['-r', '+', '1', 't'], usage('ready-fd must be a non-negative integer\n')],
    [['-r', '--mtu', '0', 't'], usage('ready-fd must be a non-negative integer\n')],
    [['--mtu=0', '1', 't'], usage('MTU must be a positive integer (< 65522)\n')],
    [['--mtu=', '1', 't'], usage('MTU must be a positive integer (< 65522)\n')],
    [['--mtu=abc', '1', 't'], usage('MTU must be a positive integer (< 65522)\n')],
    [['-m', '65522', '1', 't'], usage('MTU must be a positive integer (< 65522)\n')],
    [['-m', '-1', '1', 't'], usage('MTU must be a positive integer (< 65522)\n')],
    [['-m0'], usage('MTU must be a positive integer (< 65522)\n')],
    [['--mtu=0', '-h'], usage('MTU must be a positive integer (< 65522)\n')],
    [['--userns-path=/nonexistent'], usage("userns path doesn't exist: /nonexistent\n")],
    [['--userns-path='], usage("userns path doesn't exist: \n")],
    [['--userns-path=/nonexistent', '--mtu=0'], usage("userns path doesn't exist: /nonexistent\n")],
    [['--mtu=0', '--userns-path=/nonexistent'], usage('MTU must be a positive integer (< 65522)\n')],
    // after the loop
    [['--macaddress=1'], usage('--macaddr cannot be specified when --configure or -c is not specified\n')],
    [['--target-type=foo', '--macaddress=1'], usage('--macaddr cannot be specified when --configure or -c is not specified\n')],
    [['--target-type=foo'], usage('--target-type must be either "netns" or "bess"\n')],
    [['--target-type=', '1', 't'], usage('--target-type must be either "netns" or "bess"\n')],
    [['--target-type=netns'], usage('')],
    [[], usage('')],
    [['1'], usage('')],
    [['--disable-host'], usage('')],
    [['0', 't'], usage('PID must be a positive integer\n')],
    [['x', 't'], usage('PID must be a positive integer\n')],
    [['-1', 't'], usage("slirp4netns: invalid option -- '1'\n")],
    [['4294967296', 't'], usage('PID must be a positive integer\n')],
    [['0', 't', '3'], usage('PID must be a positive integer\n', 'WARNING: too many arguments\n')],
    [['0', 't', '--mtu=0'], usage('MTU must be a positive integer (< 65522)\n')],
    [['--', '--mtu=0', 't'], usage('PID must be a positive integer\n')],
    [['-', 't'], usage('PID must be a positive integer\n')],
    [['--netns-type=PID', '1', 't'], usage('existing path expected when --netns-type=path: No such file or directory\n')],
    [['--netns-type=path', '/nonexistent', 't'], usage('existing path expected when --netns-type=path: No such file or directory\n')],
    [
      ['--netns-type=path', '/nonexistent', 't', 'x'],
      usage('existing path expected when --netns-type=path: No such file or directory\n', 'WARNING: too many arguments\n'),
    ],
    [
      ['--no-host-loopback', '--mtu=0'],
      usage(
        'MTU must be a positive integer (< 65522)\n',
        'WARNING: --no-host-loopback is deprecated and will be removed in future releases, please use --disable-host-loopback instead.\n',
      ),
    ],
    // slirp4netns_config_from_options(): no usage
    [['--cidr=24', '1', 't'], bare('invalid CIDR: 24\n')],
    [['--cidr=foo', '1', 't'], bare('invalid CIDR: foo\n')],
    [['--cidr=10.0.2.0', '1', 't'], bare('invalid CIDR: 10.0.2.0\n')],
    [['--cidr=10.0.2.0/123', '1', 't'], bare('invalid CIDR: 10.0.2.0/123\n')],
    [['--cidr=300.0.0.0/24', '1', 't'], bare('invalid network address: 300.0.0.0\n')],
    [['--cidr=1.2.3.04/24', '1', 't'], bare('invalid network address: 1.2.3.04\n')],
    [['--cidr=10.0.2.0/26', '1', 't'], bare('prefix length needs to be 1-25\n')],
    [['--cidr=10.0.2.0/0', '1', 't'], bare('prefix length needs to be 1-25\n')],
    [['--cidr=10.0.2.0/00', '1', 't'], bare('prefix length needs to be 1-25\n')],
    [['--cidr=10.0.2.100/24', '1', 't'], bare('CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24\n')],
    [['--cidr=bad', '-c', '--macaddress=zz', '1', 't'], bare('invalid CIDR: bad\n')],
    [
      ['-c', '--macaddress=zz', '1', 't'],
      bare(
        '"zz" is an invalid MAC address.\n' +
          "macaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':').",
      ),
    ],
    [
      ['-c', '--macaddress=1:2:3:4:5:6:7', '1', 't'],
      bare(
        '"1:2:3:4:5:6:7" is an invalid MAC address.  Is it too long?\n' +
          "macaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':').",
      ),
    ],
  ] as const)('%j', (argv, expected) => {
    expect(parse([...argv])).toEqual(expected);
  });

  it('argv0 is substituted into glibc messages as given', () => {
    expect(parseArgs(['--bogus'], {}, './bin/usernet').stderr).toBe("./bin/usernet: unrecognized option '--bogus'\n");
  });
});

describe('bess target (rejected for now, but parsed like slirp4netns)', () => {
  it.each([
    [['--target-type=bess'], usage('')],
    [['--target-type=bess', '-c'], usage('')],
    [['--target-type=bess', 's', 'extra'], usage('too many arguments\n')],
    [['--target-type=bess', '-c', 's'], usage('--configure conflicts with --target-type=bess\n')],
    [['--target-type=bess', '--netns-type=pid', 's'], usage('--netns-type conflicts with --target-type=bess\n')],
    [['--target-type=bess', '--userns-path=/', 's'], usage('--userns-path conflicts with --target-type=bess\n')],
    [['--target-type=bess', '--mtu=0', 's'], usage('MTU must be a positive integer (< 65522)\n')],
    [['--target-type=bess', '--macaddress=1', 's'], usage('--macaddr cannot be specified when --configure or -c is not specified\n')],
    [['--target-type=bess', 's'], bare('slirp4netns: --target-type=bess is not supported yet\n')],
  ] as const)('%j', (argv, expected) => {
    expect(parse([...argv])).toEqual(expected);
  });

  it('switched on, it runs with the socket path and its WARNING', () => {
    const r = parse(['--target-type=bess', '--disable-host-loopback', '/run/bess.sock'], {}, { supported: { targetTypeBess: true } });
    expect(r).toMatchObject({
      kind: 'run',
      stdout: 'WARNING: BESS mode is experimental\n',
      config: { targetType: 'bess', bessSocketPath: '/run/bess.sock', pid: null, netnsPath: null, tapName: '' },
    });
  });
});

describe('--enable-seccomp', () => {
  it('parses with its slirp4netns WARNING, which a later parse error still prints', () => {
    expect(parse(['--enable-seccomp', '-c', '1', 't'])).toMatchObject({
      kind: 'run',
      stdout: 'WARNING: Support for seccomp is experimental\n' + LOOPBACK_WARNING,
      config: { enableSeccomp: true, enableSandbox: false },
    });
    expect(runConfig(['1', 't']).enableSeccomp).toBe(false);
    expect(parse(['--enable-seccomp', '0', 't', 'x'])).toEqual(
      usage('PID must be a positive integer\n', 'WARNING: Support for seccomp is experimental\nWARNING: too many arguments\n'),
    );
  });
});

// The mechanism, shown with the sandbox switched off (bess is the one unsupported for real).
const NO_SANDBOX: ParseDeps = { supported: { enableSandbox: false } };
const HELP_NO_SANDBOX = HELP.replace(/^--enable-sandbox .*\n/m, '');

describe('options usernet does not support', () => {
  it.each([
    ['--enable-sandbox', ['--enable-sandbox', '1', 't']],
    ['--create-sandbox', ['--create-sandbox', '1', 't']],
  ] as const)('%s is rejected on stderr with exit 1 (%j)', (spelling, argv) => {
    expect(parse([...argv], {}, NO_SANDBOX)).toEqual(bare(`slirp4netns: ${spelling} is not supported yet\n`));
  });

  it('the first one in parse order is named', () => {
    expect(parse(['1', 't', '--create-sandbox', '--enable-sandbox'], {}, NO_SANDBOX).stderr).toBe('slirp4netns: --create-sandbox is not supported yet\n');
    expect(parse(['-c6', '--enable-sandbox', '1', 't'], {}, NO_SANDBOX).stderr).toBe('slirp4netns: --enable-sandbox is not supported yet\n');
  });

  it('their WARNINGs are not printed, but the ones already due are', () => {
    expect(parse(['--enable-sandbox', '--create-sandbox', '0', 't', 'x'], {}, NO_SANDBOX)).toEqual(
      usage('PID must be a positive integer\n', 'WARNING: too many arguments\n', HELP_NO_SANDBOX),
    );
    expect(parse(['-6', '--enable-sandbox', '1', 't', 'x'], {}, NO_SANDBOX)).toEqual(
      bare('slirp4netns: --enable-sandbox is not supported yet\n', 'WARNING: Support for IPv6 is experimental\nWARNING: too many arguments\n'),
    );
  });

  it('slirp4netns parse errors come first; config errors (CIDR, MAC) after', () => {
    expect(parse(['--enable-sandbox', '--mtu=0', '1', 't'], {}, NO_SANDBOX)).toEqual(usage('MTU must be a positive integer (< 65522)\n', '', HELP_NO_SANDBOX));
    expect(parse(['--enable-sandbox', '1'], {}, NO_SANDBOX)).toEqual(usage('', '', HELP_NO_SANDBOX));
    expect(parse(['--enable-sandbox', '--cidr=bad', '1', 't'], {}, NO_SANDBOX)).toEqual(bare('slirp4netns: --enable-sandbox is not supported yet\n'));
  });

  it('a later --target-type=netns cancels an earlier bess', () => {
    expect(parse(['--target-type=bess', '--target-type=netns', '1', 't']).kind).toBe('run');
    expect(parse(['--target-type=netns', '--target-type=bess', 's']).stderr).toBe(
      'slirp4netns: --target-type=bess is not supported yet\n',
    );
  });

  it('switched on, they parse into the config with their slirp4netns WARNINGs, in parse order', () => {
    const argv = [
      '--enable-seccomp',
      '-6',
      '--create-sandbox',
      '--outbound-addr=10.1.2.3',
      '--outbound-addr6=fd00::5',
      '--disable-dns',
      '-a',
      '/tmp/api.sock',
      '1',
      't',
    ];
    const r = parse(argv, {}, { supported: ALL });
    expect(r).toMatchObject({
      kind: 'run',
      stdout:
        'WARNING: Support for seccomp is experimental\n' +
        'WARNING: Support for IPv6 is experimental\n' +
        'WARNING: --create-sandbox is deprecated and will be removed in future releases, please use --enable-sandbox instead.\n' +
        'WARNING: Support for --outbound-addr is experimental\n' +
        'WARNING: Support for --outbound-addr6 is experimental\n' +
        LOOPBACK_WARNING,
      config: {
        enableSeccomp: true,
        enableIpv6: true,
        enableSandbox: true,
        outboundAddr: '10.1.2.3',
        outboundAddr6: 'fd00::5',
        disableDns: true,
        apiSocket: '/tmp/api.sock',
      },
    });
  });

  it('--outbound-addr and --outbound-addr6 resolve their own interface names (slirp4netns looks up --outbound-addr\'s for both)', () => {
    const interfaceAddress = (name: string, family: 4 | 6): string | null =>
      name === 'eth0' ? (family === 4 ? '192.0.2.1' : '2001:db8::1') : name === 'eth1' && family === 6 ? '2001:db8::2' : null;
    const deps = { supported: ALL, interfaceAddress };
    expect(runConfig(['--outbound-addr=eth0', '--outbound-addr6=eth0', '1', 't'], deps)).toMatchObject({
      outboundAddr: '192.0.2.1',
      outboundAddr6: '2001:db8::1',
    });
    expect(runConfig(['--outbound-addr6=eth0', '1', 't'], deps)).toMatchObject({ outboundAddr: null, outboundAddr6: '2001:db8::1' });
    expect(runConfig(['--outbound-addr=eth0', '--outbound-addr6=eth1', '1', 't'], deps)).toMatchObject({ outboundAddr6: '2001:db8::2' });
    expect(parse(['--outbound-addr6=wlan9', '1', 't'], {}, deps)).toEqual(
      bare(
        'outbound-addr has to be valid ipv4 address or iterface name.',
        'WARNING: Support for --outbound-addr6 is experimental\n',
      ),
    );
    expect(parse(['--outbound-addr=wlan9', '1', 't'], {}, deps)).toEqual(
      bare(
        'outbound-addr has to be valid ipv4 address or interface name.',
        'WARNING: Support for --outbound-addr is experimental\n',
      ),
    );
  });
});

describe('value parsers', () => {
  it('strtolWhole is strtol(s, &end, 10) with errno and *end checks', () => {
    expect(strtolWhole('')).toBe(0n);
    expect(strtolWhole('42')).toBe(42n);
    expect(strtolWhole(' \n-7')).toBe(-7n);
    expect(strtolWhole('+')).toBeNull();
    expect(strtolWhole(' ')).toBeNull();
    expect(strtolWhole('7 ')).toBeNull();
    expect(strtolWhole('9223372036854775807')).toBe(9223372036854775807n);
    expect(strtolWhole('9223372036854775808')).toBeNull();
    expect(strtolWhole('-9223372036854775808')).toBe(-9223372036854775808n);
  });

  it('parseCidr accepts network addresses /1 to /25', () => {
    expect(parseCidr('10.0.135.128/25')).toEqual({ ok: true, value: { network: 0x0a008780, prefixLength: 25 } });
    expect(parseCidr('128.0.0.0/1')).toEqual({ ok: true, value: { network: 0x80000000, prefixLength: 1 } });
    expect(parseCidr('192.168.0.0/09')).toMatchObject({ ok: false });
    expect(parseCidr('192.128.0.0/09')).toEqual({ ok: true, value: { network: 0xc0800000, prefixLength: 9 } });
    expect(parseCidr('10.0.2.0/24\n')).toEqual({ ok: false, message: 'invalid CIDR: 10.0.2.0/24\n\n' });
  });

  // Expectations from glibc 2.36: slirp4netns_macaddr_hexstring_to_data() compiled in a C harness.
  it.each([
    ['2:bb', [2, 0xbb, 0, 0, 0, 0]],
    ['0x1f:2', [0x1f, 2, 0, 0, 0, 0]],
    [' 1: 2', [1, 2, 0, 0, 0, 0]],
    ['+1', [1, 0, 0, 0, 0, 0]],
    ['100000001', [1, 0, 0, 0, 0, 0]],
    ['0x', [0, 0, 0, 0, 0, 0]],
    ['0xg', [0, 0, 0, 0, 0, 0]],
    ['a:b:c:d:e:f', [10, 11, 12, 13, 14, 15]],
    ['aa:-0', [0xaa, 0, 0, 0, 0, 0]],
    ['1 2', [1, 0, 0, 0, 0, 0]],
    ['\n5', [5, 0, 0, 0, 0, 0]],
    ['-0x0', [0, 0, 0, 0, 0, 0]],
    ['-ffffffffffffff01', [0xff, 0, 0, 0, 0, 0]],
    ['-100000000', [0, 0, 0, 0, 0, 0]],
    ['1g', [1, 0, 0, 0, 0, 0]],
    ['0X10', [0x10, 0, 0, 0, 0, 0]],
    ['00ff', [0xff, 0, 0, 0, 0, 0]],
    ['1ffffffff', 'invalid'],
    ['ffffffffffffffffffff', 'invalid'],
    [':aa', 'invalid'],
    ['aa:', 'invalid'],
    ['aa::bb', 'invalid'],
    ['+', 'invalid'],
    ['-', 'invalid'],
    ['', 'invalid'],
    ['  ', 'invalid'],
    ['fff', 'invalid'],
    ['a:b:c:d:e:f:', 'too long'],
    ['a:b:c:d:e:f:zz', 'too long'],
    ['1:2:3:4:5:6:7', 'too long'],
  ] as const)('MAC %j', (mac, expected) => {
    const r = parseMacAddress(mac);
    if (expected === 'invalid') expect(r).toEqual({ ok: false, message: `"${mac}" is an invalid MAC address.\n` });
    else if (expected === 'too long') {
      expect(r).toEqual({ ok: false, message: `"${mac}" is an invalid MAC address.  Is it too long?\n` });
    } else expect(r.ok && Array.from(r.value)).toEqual(expected);
  });
});

// ---------------------------------------------------------------------------
// Against the real binary. Only vectors that make slirp4netns exit while
// parsing: it must never fork, join a namespace or open a TAP here. As a
// guard, a vector is only run when usernet, with every feature on, also exits
// on it; PIDs that would pass are 2147483647, which cannot exist.

const REAL = '/usr/bin/slirp4netns';
const skipReal = announceSkip('comparison with the real slirp4netns', existsSync(REAL) ? null : `${REAL} is not installed`);
const NO_PID = '2147483647';
const BESS_SOCK = '/nonexistent/usernet-test/bess.sock';

const REAL_VECTORS: Array<{ argv: string[]; env?: Record<string, string> }> = [
  // getopt
  ...[
    ['--en'],
    ['--en=3'],
    ['--bogus'],
    ['--bogus=3'],
    ['---mtu'],
    ['-x'],
    ['-cx'],
    ['-:'],
    ['-r'],
    ['-cr'],
    ['-m'],
    ['--mtu'],
    ['--mt'],
    ['--configure=x'],
    ['--help=foo'],
    ['--disable-host=1'],
    ['--disable-host'],
    ['--d'],
    ['--c'],
    ['--e'],
    ['--m'],
    ['--n'],
    ['--o'],
    ['--outbound-a'],
    ['--t'],
    ['--u'],
    ['--r'],
    ['--a'],
    ['--=x'],
    ['-c6', '-x'],
    ['--help'],
    ['-h'],
    ['--h'],
    ['-h', '--bogus'],
    ['0', 't', '-h'],
    ['--no-host-loopback', '-h'],
    ['-6', '-h'],
    ['--enable-seccomp', '--create-sandbox', '-h'],
  ].map((argv) => ({ argv })),
  { argv: ['0', 't', '--mtu=0'], env: { POSIXLY_CORRECT: '1' } },
  { argv: ['0', 't', '-h'], env: { POSIXLY_CORRECT: '' } },
  { argv: ['-c', '-', '--mtu=0'], env: { POSIXLY_CORRECT: '1' } },
  // values
  ...[
    ['--mtu=0', NO_PID, 't'],
    ['--mtu=', NO_PID, 't'],
    ['--mtu=abc', NO_PID, 't'],
    ['-m', '65522', NO_PID, 't'],
    ['-m', '-1', NO_PID, 't'],
    ['-m0'],
    ['--mtu=0', '-h'],
    ['-e', '-1', NO_PID, 't'],
    ['-e', '0x3', NO_PID, 't'],
    ['-e', '2147483648', NO_PID, 't'],
    ['-e', '99999999999999999999', NO_PID, 't'],
    ['-e', ' ', NO_PID, 't'],
    ['-r', '3x', NO_PID, 't'],
    ['-r', '+', NO_PID, 't'],
    ['-r', '--mtu', '0', 't'],
    ['--exit-fd=', '--mtu=0'],
    ['-e', ' 3', '--mtu=0'],
    ['-e', '+3', '--mtu=0'],
    ['-e', '4294967299', '--mtu=0'],
    ['-cr3', '--mtu=0'],
    ['-e3', '-r4', '-c', '-m1500', '--mtu', '0'],
    ['--mtu=4294968796', '--cidr=x', NO_PID, 't'],
    ['--mtu=-4294965796', '--cidr=x', NO_PID, 't'],
    ['--userns-path=/nonexistent/usernet-test'],
    ['--userns-path='],
    ['--userns-path=/nonexistent/usernet-test', '--mtu=0'],
    ['--mtu=0', '--userns-path=/nonexistent/usernet-test'],
    ['--no-host-loopback', '--mtu=0'],
    ['-6', '--mtu=0'],
    ['--enable-seccomp', '--mtu=0'],
    ['--create-sandbox', '--mtu=0'],
    ['--outbound-addr=x', '--outbound-addr6=y', '--mtu=0'],
    // after the loop
    ['--macaddress=1'],
    ['--macaddress=1', '--target-type=foo'],
    ['--target-type=foo'],
    ['--target-type=foo', NO_PID],
    ['--target-type=', NO_PID, 't'],
    ['--target-type=netns'],
    ['--target-type=bess'],
    ['--target-type=bess', '-c'],
    ['--target-type=bess', '-c', BESS_SOCK],
    ['--target-type=bess', '--netns-type=pid', BESS_SOCK],
    ['--target-type=bess', '--userns-path=/', BESS_SOCK],
    ['--target-type=bess', '-c', '--userns-path=/', BESS_SOCK, 'a'],
    ['--target-type=bess', '--mtu=0', BESS_SOCK],
    ['--target-type=bess', '--macaddress=1', BESS_SOCK],
    ['--target-type=bess', '--cidr=x', BESS_SOCK],
    ['--target-type=bess', '--target-type=netns'],
    [],
    ['1'],
    ['0', 't'],
    ['x', 't'],
    ['-1', 't'],
    ['4294967296', 't'],
    ['0', 't', '3'],
    ['0', 't', '--mtu=0'],
    ['--', '--mtu=0', 't'],
    ['-', 't'],
    ['-c', '-', '--mtu=0'],
    ['--netns-type=PID', NO_PID, 't'],
    ['--netns-type=path', '/nonexistent/usernet-test', 't'],
    ['--netns-type=foo', '/nonexistent/usernet-test', 't'],
    ['--netns-type=', '/nonexistent/usernet-test', 't'],
    ['--netns-type=path', '/nonexistent/usernet-test', 't', '3'],
    // slirp4netns_config_from_options()
    ['--cidr=24', NO_PID, 't'],
    ['--cidr=foo', NO_PID, 't'],
    ['--cidr=10.0.2.0', NO_PID, 't'],
    ['--cidr=10.0.2.0/123', NO_PID, 't'],
    ['--cidr=300.0.0.0/24', NO_PID, 't'],
    ['--cidr=1.2.3.04/24', NO_PID, 't'],
    ['--cidr=010.0.2.0/24', NO_PID, 't'],
    ['--cidr=10.0.2.0/26', NO_PID, 't'],
    ['--cidr=10.0.2.0/0', NO_PID, 't'],
    ['--cidr=10.0.2.0/00', NO_PID, 't'],
    ['--cidr=10.0.2.100/24', NO_PID, 't'],
    ['--cidr=10.0.135.128/24', NO_PID, 't'],
    ['--cidr=10.0.2.0/24 ', NO_PID, 't'],
    ['--cidr=bad', '-c', '--macaddress=zz', NO_PID, 't'],
    ['--outbound-addr=nonexistent-if0', NO_PID, 't'],
    ['--outbound-addr=999.1.1.1', NO_PID, 't'],
    ['--outbound-addr6=nonexistent-if0', NO_PID, 't'],
    // Not compared: `--outbound-addr6=lo` alone, which slirp4netns refuses
    // (its lookup reads --outbound-addr's value) and usernet accepts.
    ...['zz', '1:2:3:4:5:6:7', '', '100', '-1', ':aa', 'aa:', 'aa::bb', 'a:b:c:d:e:f:', 'fff', '1ffffffff', '+'].map((mac) => [
      '-c',
      `--macaddress=${mac}`,
      NO_PID,
      't',
    ]),
  ].map((argv) => ({ argv })),
];

describe.skipIf(skipReal)('same bytes and status as /usr/bin/slirp4netns 1.2.0', () => {
  const argv0 = '/opt/usernet-test/slirp4netns';

  function real(argv: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(REAL, argv, {
      argv0,
      // glibc translates getopt's messages; compare the C locale's.
      env: { PATH: '/usr/bin:/bin', LC_ALL: 'C', ...env },
      encoding: 'utf8',
      timeout: 5000,
      killSignal: 'SIGKILL',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.status === null) throw new Error(`${REAL} ${argv.join(' ')}: ${r.signal ?? String(r.error)}`);
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  const named = REAL_VECTORS.map((v) => ({
    ...v,
    name: (v.env ? Object.entries(v.env).map(([k, x]) => `${k}=${x} `).join('') : '') + JSON.stringify(v.argv),
  }));
  it.each(named)('$name', ({ argv, env }) => {
    const ours = parseArgs(argv, env ?? {}, argv0, { supported: ALL });
    // The guard: never hand slirp4netns a command line it would act on.
    expect(ours.kind, 'usernet would run with this vector; not starting the real slirp4netns').toBe('exit');
    const theirs = real(argv, env);

    // Everything on: identical output, byte for byte.
    expect({ status: ours.kind === 'exit' ? ours.status : -1, stdout: ours.stdout, stderr: ours.stderr }).toEqual(theirs);

    // As shipped: same status and stderr, except where usernet refuses an unsupported option.
    const shipped = parseArgs(argv, env ?? {}, argv0);
    if (shipped.kind === 'exit' && shipped.stderr.endsWith(' is not supported yet\n')) {
      expect(shipped.status).toBe(1);
      return;
    }
    expect(shipped.kind).toBe('exit');
    if (shipped.kind === 'exit') expect({ status: shipped.status, stderr: shipped.stderr }).toEqual({
      status: theirs.status,
      stderr: theirs.stderr,
    });
  });

  it('--version exits 0 like slirp4netns -v', () => {
    expect(real(['--version']).status).toBe(0);
    expect(parseArgs(['--version'], {}, argv0)).toMatchObject({ kind: 'exit', status: 0 });
  });
});
