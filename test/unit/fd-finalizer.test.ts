/**
 * fd-owning wrappers dropped without close(): the garbage collector closes
 * their fd (src/link/fd-finalizer.ts), and a wrapper that was closed never
 * closes the number again once another file holds it. In a child process run
 * with --expose-gc, on the wrappers' modules with their types stripped
 * (Node 20 cannot run TypeScript).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../../src/link/native.js';
import { stripTypesTree } from '../support/strip-types.js';


let dir = '';

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-fd-finalizer-'));
  await stripTypesTree(dir, ['src/link/tap.ts', 'src/nat/native-udp.ts']);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `body` as an ES module with --expose-gc; `target(fd)` is what /proc/self/fd/N names, null when not open. */
function run(body: string): unknown {
  const script = `
    import fs from 'node:fs';
    import { TapLink } from ${JSON.stringify(join(dir, 'src/link/tap.js'))};
    import { NativeUdpSocket } from ${JSON.stringify(join(dir, 'src/nat/native-udp.js'))};
    const target = (fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd); } catch { return null; } };
    const collect = async (done) => {
      for (let i = 0; i < 100 && !done(); i++) {
        globalThis.gc();
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    ${body}`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

describe.skipIf(!nativeAvailable())('fds of dropped wrappers', () => {
  it('closes the fd of a TapLink and a NativeUdpSocket collected without close()', () => {
    const fifo = join(dir, 'tap');
    execFileSync('mkfifo', [fifo]);
    const out = run(`
      const dropped = [];
      (() => {
        const fd = fs.openSync(${JSON.stringify(fifo)}, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
        TapLink.fromFd(fd);
        dropped.push([fd, target(fd)]);
        const s = NativeUdpSocket.open('127.0.0.1');
        dropped.push([s.fd, target(s.fd)]);
      })();
      // Control: one still referenced keeps its fd.
      const kept = NativeUdpSocket.open('127.0.0.1');
      const keptTarget = target(kept.fd);
      const open = () => dropped.filter(([fd, t]) => target(fd) === t).length;
      const before = open();
      await collect(() => open() === 0);
      console.log(JSON.stringify({ before, after: open(), kept: target(kept.fd) === keptTarget }));`);
    expect(out).toEqual({ before: 2, after: 0, kept: true });
  });

  it('never closes a number again after close(), when another file has taken it', () => {
    const out = run(`
      const closedFd = (() => {
        const s = NativeUdpSocket.open('127.0.0.1');
        s.close();
        return s.fd;
      })();
      const reuse = fs.openSync('/dev/null', 'r');
      // Something to wait for: a dropped socket's fd closing shows that finalizers ran.
      const probe = (() => { const s = NativeUdpSocket.open('127.0.0.1'); return [s.fd, target(s.fd)]; })();
      await collect(() => target(probe[0]) !== probe[1]);
      console.log(JSON.stringify({ finalized: target(probe[0]) !== probe[1], sameNumber: reuse === closedFd, reuseOpen: target(reuse) === '/dev/null' }));`);
    expect(out).toEqual({ finalized: true, sameNumber: true, reuseOpen: true });
  });
});
