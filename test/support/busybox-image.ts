/**
 * A container image without a registry, for the rootless container engine
 * tests: a root filesystem made of this machine's busybox (its applets as
 * symlinks, plus the libraries it links when it is not the static build),
 * as a tarball for `podman import` / `docker import`. Nothing is pulled.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Where `busybox` is on PATH, or null. */
export function busyboxPath(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * Builds the root filesystem in `dir`/rootfs (with empty /etc, /tmp, /proc,
 * /sys, /dev and /www) and returns the path of `dir`/rootfs.tar, mode 0644.
 * Throws when busybox is missing or tar fails.
 */
export function busyboxRootfsTarball(dir: string): string {
  const busybox = busyboxPath();
  if (busybox === null) throw new Error('busybox is not installed (apt-get install busybox)');
  const rootfs = join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'www']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(busybox, join(rootfs, 'bin', 'busybox'));
  chmodSync(join(rootfs, 'bin', 'busybox'), 0o755);
  const ldd = spawnSync('ldd', [busybox], { encoding: 'utf8' }).stdout ?? '';
  for (const lib of ldd.match(/\/\S+/g) ?? []) {
    mkdirSync(join(rootfs, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(rootfs, lib));
  }
  const applets = (spawnSync(busybox, ['--list'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((a) => /^[\w.[-]+$/.test(a));
  for (const a of applets) if (!existsSync(join(rootfs, 'bin', a))) symlinkSync('busybox', join(rootfs, 'bin', a));
  const tarball = join(dir, 'rootfs.tar');
  const tar = spawnSync('tar', ['-C', rootfs, '-cf', tarball, '.'], { encoding: 'utf8' });
  if (tar.status !== 0) throw new Error(`tar: ${tar.stderr}`);
  chmodSync(tarball, 0o644);
  return tarball;
}
