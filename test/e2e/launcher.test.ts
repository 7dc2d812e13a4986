/**
 * bin/usernet → build/Release/usernet-launcher (native/launcher.c) → Node.
 *
 * The launcher answers a lone --help/-h/--version/-v from the texts
 * `npm run build` generated (dist/launcher/) and execs Node for everything
 * else. Every expectation here is parseArgs() for the same argv and argv0, so
 * the launcher and the TypeScript CLI cannot drift apart unnoticed.
 *
 * "Without Node" is proved by a NODE_OPTIONS that Node refuses at start-up
 * (exit 9): the command only succeeds under it if Node never ran.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs, type ParseDeps } from '../../src/cli/args.js';
import { announceSkip, e2eUnavailable } from '../support/netns.js';
import { ensureRootlessUser, installForUser, rootlessUnavailable, runAsUser, userEnv, userTempDir } from '../support/rootless.js';

const ROOT = resolve(__dirname, '../..');
const BIN = join(ROOT, 'bin', 'usernet');
const LAUNCHER = join(ROOT, 'build', 'Release', 'usernet-launcher');
const TEXTS = join(ROOT, 'dist', 'launcher');
const skip = announceSkip(
  'bin/usernet launcher',
  !existsSync(LAUNCHER)
    ? `${LAUNCHER} is not built (npm install)`
    : !existsSync(join(TEXTS, 'help.txt'))
      ? `${TEXTS} is not generated (npm run build)`
      : null,
);

const PATH = `${dirname(process.execPath)}:/usr/bin:/bin`;
const NO_NODE = { NODE_OPTIONS: '--usernet-test-node-must-not-start' };
const LOCAL = ['--help', '-h', '--version', '-v'];

interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], o: { argv0?: string; cwd?: string; env?: Record<string, string> } = {}): Outcome {
  const r = spawnSync(file, args, {
    argv0: o.argv0,
    cwd: o.cwd,
    env: { PATH, LC_ALL: 'C', ...o.env },
    encoding: 'utf8',
    timeout: 20_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What the TypeScript CLI prints for argv when named argv0. */
function expected(argv: string[], argv0: string, deps: ParseDeps = {}): Outcome {
  const r = parseArgs(argv, {}, argv0, deps);
  if (r.kind !== 'exit') throw new Error(`${JSON.stringify(argv)} would run`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Node refused NODE_OPTIONS: Node was started. */
function nodeStarted(r: Outcome): boolean {
  return r.status === 9 && r.stderr.includes('--usernet-test-node-must-not-start');
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-launcher-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A package with only some of its parts: bin/usernet and the launcher copied
 * (the launcher finds its package through /proc/self/exe, which resolves
 * symlinks), dist/bundle a symlink (Node follows it back to the real package,
 * addon and node_modules), dist/launcher copied only when asked.
 */
function partialPackage(name: string, parts: { launcher: boolean; texts: string[] }): string {
  const pkg = join(dir, name);
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  mkdirSync(join(pkg, 'dist', 'launcher'), { recursive: true });
  copyFileSync(BIN, join(pkg, 'bin', 'usernet'));
  symlinkSync(join(ROOT, 'dist', 'bundle'), join(pkg, 'dist', 'bundle'));
  if (parts.launcher) {
    mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
    copyFileSync(LAUNCHER, join(pkg, 'build', 'Release', 'usernet-launcher'));
  }
  for (const t of parts.texts) copyFileSync(join(TEXTS, t), join(pkg, 'dist', 'launcher', t));
  return join(pkg, 'bin', 'usernet');
}

describe.skipIf(skip)('bin/usernet and its launcher', () => {
  it('dist/launcher was generated with the Node these tests run (else -v goes through Node)', () => {
    const st = statSync(process.execPath, { bigint: true });
    expect(readFileSync(join(TEXTS, 'node-id.txt'), 'utf8')).toBe(`${st.dev} ${st.ino} ${st.size} ${st.mtimeNs}\n`);
  });

  describe.each(LOCAL)('%s alone is answered without Node, as parseArgs answers it', (flag) => {
    it('named by its full path', () => {
      expect(run(BIN, [flag], { env: NO_NODE })).toEqual(expected([flag], BIN));
    });

    it('through a symlink named slirp4netns, by full path and by bare name', () => {
      const bindir = join(dir, `bare${flag}`);
      mkdirSync(bindir);
      const link = join(bindir, 'slirp4netns');
      symlinkSync(BIN, link);
      expect(run(link, [flag], { env: NO_NODE })).toEqual(expected([flag], link));
      // env's execvp turns PATH's empty first entry into the bare name, which
      // the kernel passes to sh as $0 (a symlink in the current directory).
      const bare = run('/usr/bin/env', [`PATH=:${PATH}`, 'slirp4netns', flag], { cwd: bindir, env: NO_NODE });
      expect(bare).toEqual(expected([flag], 'slirp4netns'));
    });

    it('the launcher run directly uses its own argv[0]', () => {
      expect(run(LAUNCHER, [flag], { argv0: 'slirp4netns', env: NO_NODE })).toEqual(expected([flag], 'slirp4netns'));
    });
  });

  const viaNode: string[][] = [
    ['--he'],
    ['--vers'],
    ['--bogus'],
    ['-x'],
    ['-h', '-v'],
    ['-hv'],
    ['--help', 'extra'],
    ['-v', '--bogus'],
    ['--help=foo'],
    ['--mtu=0', '1', 'tap0'],
    ['--no-host-loopback', '-h'],
    [],
    [''],
  ];
  it.each(viaNode.map((argv) => ({ argv, name: JSON.stringify(argv) })))('$name goes to Node, which answers as parseArgs', ({ argv }) => {
    expect(run(BIN, argv)).toEqual(expected(argv, BIN));
    expect(nodeStarted(run(BIN, argv, { env: NO_NODE }))).toBe(true);
  });

  it('the name reaches Node: the launcher run directly, and through a bare-named symlink', () => {
    expect(run(LAUNCHER, ['--bogus'], { argv0: 'slirp4netns' })).toEqual(expected(['--bogus'], 'slirp4netns'));
    const bindir = join(dir, 'bare-node');
    mkdirSync(bindir);
    symlinkSync(BIN, join(bindir, 'slirp4netns'));
    expect(run('/usr/bin/env', [`PATH=:${PATH}`, 'slirp4netns', '--he'], { cwd: bindir })).toEqual(expected(['--he'], 'slirp4netns'));
  });

  it('a stale USERNET_ARGV0 in the environment is replaced by the name bin/usernet was run as', () => {
    expect(run(BIN, ['--help'], { env: { USERNET_ARGV0: 'stale' } })).toEqual(expected(['--help'], BIN));
    expect(run(BIN, ['--bogus'], { env: { USERNET_ARGV0: 'stale' } })).toEqual(expected(['--bogus'], BIN));
  });

  it('-v goes to Node when the node in PATH is not the one the text was generated with', () => {
    const fake = join(dir, 'other-node');
    mkdirSync(fake);
    writeFileSync(join(fake, 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`, { mode: 0o755 });
    const env = { PATH: `${fake}:${PATH}` };
    expect(run(BIN, ['-v'], { env })).toEqual(expected(['-v'], BIN));
    expect(nodeStarted(run(BIN, ['-v'], { env: { ...env, ...NO_NODE } }))).toBe(true);
    // --help does not depend on Node's version.
    expect(run(BIN, ['--help'], { env: { ...env, ...NO_NODE } })).toEqual(expected(['--help'], BIN));
  });

  it('a missing text file: Node answers, byte for byte the same', () => {
    const bin = partialPackage('no-texts', { launcher: true, texts: ['node-id.txt'] });
    for (const flag of LOCAL) {
      expect(run(bin, [flag])).toEqual(expected([flag], bin));
      expect(nodeStarted(run(bin, [flag], { env: NO_NODE }))).toBe(true);
    }
    const noId = partialPackage('no-node-id', { launcher: true, texts: ['help.txt', 'version.txt'] });
    expect(run(noId, ['-v'])).toEqual(expected(['-v'], noId));
    expect(nodeStarted(run(noId, ['-v'], { env: NO_NODE }))).toBe(true);
    expect(run(noId, ['-h'], { env: NO_NODE })).toEqual(expected(['-h'], noId));
  });

  it('no launcher built: bin/usernet runs Node itself', () => {
    const bin = partialPackage('no-launcher', { launcher: false, texts: [] });
    // Without the launcher there is no sandbox: --help leaves --enable-sandbox out.
    for (const argv of [['--help'], ['-v'], ['--bogus']]) expect(run(bin, argv)).toEqual(expected(argv, bin, { supported: { enableSandbox: false } }));
  });

  it('no node in PATH: exit 127 and a message naming it, as `env node` gave', () => {
    const r = run(BIN, ['--bogus'], { env: { PATH: '/nonexistent' } });
    expect(r).toEqual({ status: 127, stdout: '', stderr: `${BIN}: node: no executable named node in PATH\n` });
    // Help needs no Node at all.
    expect(run(BIN, ['--help'], { env: { PATH: '/nonexistent' } })).toEqual(expected(['--help'], BIN));
  });
});

const skipRun = !skip && announceSkip('bin/usernet launcher: run mode', e2eUnavailable());

describe.skipIf(skip || skipRun)('bin/usernet -- COMMAND through the launcher', () => {
  it("runs COMMAND with its exit status, without USERNET_ARGV0 in COMMAND's environment", () => {
    const r = run(BIN, ['--', 'sh', '-c', 'printf "%s\\n" "${USERNET_ARGV0-unset}"; exit 3']);
    expect(r.stdout).toBe('unset\n');
    expect(r.status).toBe(3);
  });
});

const skipUser = !skip && announceSkip('bin/usernet launcher as an unprivileged user', rootlessUnavailable());

describe.skipIf(skip || skipUser)('the copy installForUser makes, run by an unprivileged user', () => {
  it('answers --help without Node and hands anything else to Node', async () => {
    const user = await ensureRootlessUser();
    const home = userTempDir(user, 'usernet-launcher-user-');
    try {
      const bin = installForUser(BIN, home, user);
      const env = userEnv(home);
      const help = await runAsUser(user, [bin, '--help'], { env: { ...env, ...NO_NODE }, cwd: home });
      expect({ status: help.code, stdout: help.stdout, stderr: help.stderr }).toEqual(expected(['--help'], bin));
      const bogus = await runAsUser(user, [bin, '--bogus'], { env, cwd: home });
      expect({ status: bogus.code, stdout: bogus.stdout, stderr: bogus.stderr }).toEqual(expected(['--bogus'], bin));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
