/**
 * The startup snapshot (src/cli/snapshot-entry.ts, built by
 * src/cli/build-snapshot.ts into dist/launcher/usernet.blob): the launcher
 * starts Node from it when snapshot-node-id.txt names the `node` it runs, and
 * from the bundle otherwise (no blob, no id, another Node, a blob older than
 * the bundle), since Node refuses a blob another build wrote.
 *
 * Which one ran is read from Node's command line: run mode's COMMAND is a
 * child of the Node process, and prints /proc/$PPID/cmdline.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotBlobPath } from '../../src/cli/start.js';
import { announceSkip, e2eUnavailable } from '../support/netns.js';

const ROOT = resolve(__dirname, '../..');
const BIN = join(ROOT, 'bin', 'usernet');
const LAUNCHER = join(ROOT, 'build', 'Release', 'usernet-launcher');
const ADDON = join(ROOT, 'build', 'Release', 'usernet_native.node');
const TEXTS = join(ROOT, 'dist', 'launcher');
const BLOB = join(TEXTS, 'usernet.blob');
const ID = join(TEXTS, 'snapshot-node-id.txt');
const ENTRY_CJS = join(ROOT, 'dist', 'bundle', 'usernet-snapshot.cjs');
const PATH = `${dirname(process.execPath)}:/usr/bin:/bin`;

function nodeId(file: string): string {
  const st = statSync(file, { bigint: true });
  return `${st.dev} ${st.ino} ${st.size} ${st.mtimeNs}\n`;
}

describe('snapshotBlobPath', () => {
  it('reads both spellings of --snapshot-blob, and nothing else', () => {
    expect(snapshotBlobPath(['--max-semi-space-size=2', '--snapshot-blob', '/p/u.blob'])).toBe('/p/u.blob');
    expect(snapshotBlobPath(['--snapshot-blob=/p/u.blob'])).toBe('/p/u.blob');
    expect(snapshotBlobPath(['--max-semi-space-size=2'])).toBeNull();
    expect(snapshotBlobPath(['--snapshot-blob'])).toBeNull();
  });
});

const skipBuilt = announceSkip('startup snapshot', !existsSync(ENTRY_CJS) ? `${ENTRY_CJS} is not built (npm run build)` : null);

describe.skipIf(skipBuilt)('the snapshot entry', () => {
  it('draws no randomness while its modules are evaluated (it would be in every process started from the blob)', () => {
    // crypto.randomInt keeps a cache of random bytes: one drawn while the
    // snapshot is built leaves the rest of that cache in the blob, the same
    // for every process. Math.random is reseeded on deserialization.
    const drawn: string[] = [];
    const crypto = new Proxy(
      {},
      {
        get(_, name) {
          return (...args: unknown[]) => {
            drawn.push(String(name));
            return (require('node:crypto') as Record<string, (...a: unknown[]) => unknown>)[name as string](...args);
          };
        },
      },
    );
    let main: unknown = null;
    const v8 = { startupSnapshot: { setDeserializeMainFunction: (f: unknown) => (main = f), isBuildingSnapshot: () => true } };
    const req = (id: string): unknown => {
      const name = id.replace(/^node:/, '');
      if (name === 'crypto') return crypto;
      if (name === 'v8') return v8;
      return require(`node:${name}`);
    };
    runInNewContext(readFileSync(ENTRY_CJS, 'utf8'), { require: req, process, Buffer, performance, console, setTimeout, setImmediate, clearTimeout, URL, TextDecoder, TextEncoder, queueMicrotask }, { filename: ENTRY_CJS });
    expect(typeof main).toBe('function');
    expect(drawn).toEqual([]);
  });
});

const skipRun =
  skipBuilt ||
  announceSkip(
    'launcher and snapshot: run mode',
    e2eUnavailable() ?? (!existsSync(LAUNCHER) ? `${LAUNCHER} is not built (npm install)` : !existsSync(BLOB) ? `${BLOB} is not built (npm run build)` : null),
  );

describe.skipIf(skipRun)('the launcher and the snapshot', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'usernet-snapshot-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Node's command line as run mode's COMMAND sees it, and that COMMAND's exit status (3). */
  function nodeCmdline(bin: string, env: Record<string, string> = {}): string[] {
    const r = spawnSync(bin, ['--', 'sh', '-c', 'cat /proc/$PPID/cmdline; exit 3'], {
      env: { PATH, LC_ALL: 'C', ...env },
      encoding: 'utf8',
      timeout: 20_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (r.error) throw r.error;
    expect(r.status, r.stderr).toBe(3);
    return r.stdout.split('\0').slice(0, -1);
  }

  /** A copy of the package's runtime parts (bin, launcher, addon, dist/launcher); dist/bundle a symlink. */
  function copyPackage(name: string): string {
    const pkg = join(dir, name);
    mkdirSync(join(pkg, 'bin'), { recursive: true });
    mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
    mkdirSync(join(pkg, 'dist', 'launcher'), { recursive: true });
    copyFileSync(BIN, join(pkg, 'bin', 'usernet'));
    copyFileSync(LAUNCHER, join(pkg, 'build', 'Release', 'usernet-launcher'));
    copyFileSync(ADDON, join(pkg, 'build', 'Release', 'usernet_native.node'));
    symlinkSync(join(ROOT, 'dist', 'bundle'), join(pkg, 'dist', 'bundle'));
    for (const t of ['help.txt', 'version.txt', 'node-id.txt', 'usernet.blob', 'snapshot-node-id.txt']) {
      copyFileSync(join(TEXTS, t), join(pkg, 'dist', 'launcher', t));
    }
    return pkg;
  }

  const fromSnapshot = (pkg: string): string[] => ['--max-semi-space-size=2', '--snapshot-blob', join(pkg, 'dist', 'launcher', 'usernet.blob'), '--'];
  const fromBundle = (pkg: string): string[] => ['--max-semi-space-size=2', join(pkg, 'dist', 'bundle', 'usernet.js')];

  it('the build made the blob with the Node these tests run', () => {
    expect(readFileSync(ID, 'utf8')).toBe(nodeId(process.execPath));
  });

  it('Node starts from the snapshot, and runs the command', () => {
    expect(nodeCmdline(BIN).slice(1, 5)).toEqual(fromSnapshot(ROOT));
  });

  it("a copy of the package starts from its own blob and loads its own addon", () => {
    const pkg = copyPackage('copy');
    expect(nodeCmdline(join(pkg, 'bin', 'usernet')).slice(1, 5)).toEqual(fromSnapshot(pkg));
    // The addon is only found where the blob says the package is.
    rmSync(join(pkg, 'build', 'Release', 'usernet_native.node'));
    const r = spawnSync(join(pkg, 'bin', 'usernet'), ['--', 'true'], { env: { PATH, LC_ALL: 'C' }, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(join(pkg, 'build', 'Release', 'usernet_native.node'));
  });

  it('a blob from another Node (another file in PATH, or another id): the bundle', () => {
    const pkg = copyPackage('other-id');
    const [dev, ino, ...rest] = readFileSync(ID, 'utf8').trim().split(' ');
    writeFileSync(join(pkg, 'dist', 'launcher', 'snapshot-node-id.txt'), `${dev} ${BigInt(ino) + 1n} ${rest.join(' ')}\n`);
    expect(nodeCmdline(join(pkg, 'bin', 'usernet')).slice(1, 3)).toEqual(fromBundle(pkg));

    const fake = join(dir, 'other-node');
    mkdirSync(fake);
    writeFileSync(join(fake, 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`, { mode: 0o755 });
    expect(nodeCmdline(BIN, { PATH: `${fake}:${PATH}` }).slice(1, 3)).toEqual(fromBundle(ROOT));
  });

  it('no blob, or no id: the bundle', () => {
    const noBlob = copyPackage('no-blob');
    rmSync(join(noBlob, 'dist', 'launcher', 'usernet.blob'));
    expect(nodeCmdline(join(noBlob, 'bin', 'usernet')).slice(1, 3)).toEqual(fromBundle(noBlob));
    const noId = copyPackage('no-id');
    rmSync(join(noId, 'dist', 'launcher', 'snapshot-node-id.txt'));
    expect(nodeCmdline(join(noId, 'bin', 'usernet')).slice(1, 3)).toEqual(fromBundle(noId));
  });

  it('a bundle newer than the blob (rebuilt without it): the bundle', () => {
    const pkg = copyPackage('stale-blob');
    const bundleTime = statSync(join(ROOT, 'dist', 'bundle', 'usernet.js')).mtimeMs / 1000;
    utimesSync(join(pkg, 'dist', 'launcher', 'usernet.blob'), bundleTime - 10, bundleTime - 10);
    expect(nodeCmdline(join(pkg, 'bin', 'usernet')).slice(1, 3)).toEqual(fromBundle(pkg));
  });
});

describe.skipIf(skipRun)('NODE_EXTRA_CA_CERTS through the launcher', () => {
  function runMode(script: string, env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(BIN, ['--', 'sh', '-c', script], { env: { PATH, LC_ALL: 'C', ...env }, encoding: 'utf8', timeout: 20_000 });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('Node starts without it (no certificates parsed), and COMMAND gets it back as it was', () => {
    const certs = '/nonexistent/usernet-test-certs.pem';
    const r = runMode(
      'printf "%s|%s\\n" "${NODE_EXTRA_CA_CERTS-unset}" "${USERNET_NODE_EXTRA_CA_CERTS-unset}"; tr "\\0" "\\n" </proc/$PPID/environ | grep CA_CERTS',
      { NODE_EXTRA_CA_CERTS: certs },
    );
    expect(r.status).toBe(0);
    // Node's environment at exec: only the held name.
    expect(r.stdout).toBe(`${certs}|unset\nUSERNET_NODE_EXTRA_CA_CERTS=${certs}\n`);
    // Node would have warned that it cannot load the file.
    expect(r.stderr).not.toContain('extra certs');
  });

  it('a stale held value is not restored', () => {
    const r = runMode('printf "%s|%s\\n" "${NODE_EXTRA_CA_CERTS-unset}" "${USERNET_NODE_EXTRA_CA_CERTS-unset}"', { USERNET_NODE_EXTRA_CA_CERTS: '/stale' });
    expect(r.stdout).toBe('unset|unset\n');
  });

  it('an empty value stays empty', () => {
    expect(runMode('printf "[%s]\\n" "${NODE_EXTRA_CA_CERTS-unset}"', { NODE_EXTRA_CA_CERTS: '' }).stdout).toBe('[]\n');
  });
});
