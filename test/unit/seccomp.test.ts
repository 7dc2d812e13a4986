/**
 * native/seccomp.c, each case in a child `node` (the filter cannot be taken
 * off again): after installSeccomp() every thread is filtered and has
 * no_new_privs; what Node does for the helper (fs, dns.lookup, crypto, zlib,
 * TCP and UDP on loopback, a Worker, timers, GC) still runs; the blocked
 * syscalls kill the process with SIGSYS. Node cannot call mount or unshare
 * itself, so a tiny shared object, built here with cc, makes the call from
 * its constructor when process.dlopen() loads it after the filter is in.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNative } from '../../src/link/native.js';

const ADDON = fileURLToPath(new URL('../../build/Release/usernet_native.node', import.meta.url));
const native = loadNative();

/** Runs `body` in a fresh node after the filter is installed; `addon` is the addon there. */
function afterInstall(body: string, env: Record<string, string> = {}, nodeArgs: string[] = []) {
  const script =
    `const addon = require(${JSON.stringify(ADDON)});\n` +
    `const r = addon.installSeccomp();\n` +
    `if (r !== 0) { console.log('install failed ' + r); process.exit(3); }\n` +
    body;
  return spawnSync(process.execPath, [...nodeArgs, '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
}

const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Runs when process.dlopen() maps this object; prints what it survived. */
__attribute__((constructor)) static void probe(void) {
  const char *p = getenv("USERNET_PROBE");
  long r = -2;
  if (p == NULL) return;
  if (!strcmp(p, "getpid")) r = getpid() > 0 ? 0 : -1;
  else if (!strcmp(p, "unshare")) r = unshare(CLONE_NEWUTS);
  else if (!strcmp(p, "mount")) r = mount("none", "/nonexistent-usernet", "tmpfs", 0, NULL);
  else if (!strcmp(p, "umount2")) r = umount2("/nonexistent-usernet", 0);
  else if (!strcmp(p, "setns")) r = setns(-1, 0);
  else if (!strcmp(p, "ptrace")) r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
  else if (!strcmp(p, "execve")) { char *argv[] = {"/bin/true", NULL}; r = execve("/bin/true", argv, NULL); }
  else if (!strcmp(p, "pivot_root")) r = syscall(SYS_pivot_root, "/", "/");
  else if (!strcmp(p, "prctl-set-name")) r = prctl(PR_SET_NAME, "probe", 0, 0, 0);
  else if (!strcmp(p, "prctl-get-name")) { char n[16]; r = prctl(PR_GET_NAME, n, 0, 0, 0); }
  else if (!strcmp(p, "prctl-dumpable")) r = prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#ifdef __x86_64__
  else if (!strcmp(p, "x32-getpid")) r = syscall(0x40000000 | SYS_getpid);
  else if (!strcmp(p, "i386-getpid")) {
    /* int 0x80 takes i386 numbers: 20 is getpid there. */
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    r = ret > 0 ? 0 : ret;
  }
#endif
  printf("survived %s %ld\n", p, r);
  fflush(stdout);
}
`;

let dir = '';
let probeSo: string | null = null;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-seccomp-'));
  writeFileSync(join(dir, 'probe.c'), PROBE_C);
  try {
    execFileSync('cc', ['-shared', '-fPIC', '-O1', '-o', join(dir, 'probe.so'), join(dir, 'probe.c')], { stdio: 'pipe' });
    probeSo = join(dir, 'probe.so');
  } catch (err) {
    // The addon itself needs a C compiler to build, so this should not happen.
    console.warn(`seccomp.test: cannot build the probe (${(err as Error).message}); syscall cases skipped`);
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Loads the probe after installSeccomp(); dlopen then fails ("did not self-register"), which is expected. */
function probe(name: string) {
  return afterInstall(
    `try { process.dlopen({ exports: {} }, ${JSON.stringify(probeSo)}); } catch {}\nconsole.log('node alive');\n`,
    { USERNET_PROBE: name },
  );
}

describe('installSeccomp', () => {
  it('names the blocked syscalls in slirp4netns order, prctl among them, and the prctl options kept', () => {
    const names = native.seccompBlocked();
    for (const n of ['execve', 'execveat', 'ptrace', 'mount', 'umount2', 'setns', 'unshare', 'prctl', 'pivot_root', 'reboot']) {
      expect(names).toContain(n);
    }
    expect(names[0]).toBe('execve');
    expect(names.at(-1)).toBe('name_to_handle_at');
    expect(native.seccompPrctlAllowed()).toEqual(['PR_SET_NAME', 'PR_GET_NAME']);
  });

  it('filters every thread, present and later, with no_new_privs, and Node keeps working', () => {
    const body = String.raw`
const fs = require('fs'), dns = require('dns'), crypto = require('crypto'), zlib = require('zlib');
const net = require('net'), dgram = require('dgram'), { Worker } = require('worker_threads');
const path = require('path'), os = require('os');
const threads = () => fs.readdirSync('/proc/self/task').map((t) => {
  const s = fs.readFileSync('/proc/self/task/' + t + '/status', 'utf8');
  return { seccomp: s.match(/^Seccomp:\s*(\d+)/m)[1], nnp: s.match(/^NoNewPrivs:\s*(\d+)/m)[1] };
});
const step = (p) => p;
(async () => {
  const out = { before: threads() };
  const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'usernet-sc-')), 'x');
  await fs.promises.writeFile(f, 'hello');
  out.fs = await fs.promises.readFile(f, 'utf8');
  fs.rmSync(path.dirname(f), { recursive: true });
  out.dns = (await dns.promises.lookup('localhost')).address !== undefined;
  out.crypto = crypto.pbkdf2Sync('a', 'b', 1000, 16, 'sha256').length === 16 &&
    (await new Promise((res, rej) => crypto.scrypt('a', 'b', 16, (e, k) => (e ? rej(e) : res(k.length))))) === 16 &&
    crypto.randomBytes(8).length === 8;
  out.zlib = zlib.gunzipSync(await new Promise((res, rej) => zlib.gzip('abc'.repeat(1000), (e, b) => (e ? rej(e) : res(b))))).length;
  out.tcp = await new Promise((res, rej) => {
    const srv = net.createServer((s) => s.end('pong')).listen(0, '127.0.0.1', () => {
      const c = net.connect(srv.address().port, '127.0.0.1');
      let got = '';
      c.on('data', (d) => (got += d)).on('end', () => { srv.close(); res(got); }).on('error', rej);
    });
  });
  out.udp = await new Promise((res) => {
    const a = dgram.createSocket('udp4'), b = dgram.createSocket('udp4');
    a.on('message', (m) => { a.close(); b.close(); res(String(m)); });
    a.bind(0, '127.0.0.1', () => b.send('ping', a.address().port, '127.0.0.1'));
  });
  out.worker = await new Promise((res, rej) => {
    const w = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
    w.on('message', (m) => { w.terminate(); res(m); }).on('error', rej);
  });
  out.timer = await new Promise((res) => setTimeout(() => res('fired'), 5));
  const junk = []; for (let i = 0; i < 1e5; i++) junk.push({ i }); junk.length = 0;
  globalThis.gc(); out.gc = true;
  out.after = threads();
  console.log(JSON.stringify(out));
})().catch((e) => { console.log('error ' + e.stack); process.exit(2); });
`;
    const r = afterInstall(body, {}, ['--expose-gc']);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    for (const t of [...out.before, ...out.after]) expect(t).toEqual({ seccomp: '2', nnp: '1' });
    // The libuv pool and the Worker's threads started after the install.
    expect(out.after.length).toBeGreaterThan(out.before.length);
    expect(out).toMatchObject({ fs: 'hello', dns: true, crypto: true, zlib: 3000, tcp: 'pong', udp: 'ping', worker: 42, timer: 'fired', gc: true });
  });

  it('kills a spawned child on its execve; the helper itself survives', () => {
    const r = afterInstall(
      `const c = require('child_process').spawnSync('/bin/true');\nconsole.log(JSON.stringify({ signal: c.signal, status: c.status }));\n`,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ signal: 'SIGSYS', status: null });
  });

  const killed = ['execve', 'unshare', 'mount', 'umount2', 'setns', 'ptrace', 'pivot_root', 'prctl-dumpable'];
  if (arch() === 'x64') killed.push('x32-getpid', 'i386-getpid');
  it.each(killed)('kills the process on %s', (name) => {
    if (probeSo === null) return;
    const r = probe(name);
    expect(r.stdout).not.toContain('survived');
    expect(r.stdout).not.toContain('node alive');
    expect(r.signal).toBe('SIGSYS');
  });

  it.each(['getpid', 'prctl-set-name', 'prctl-get-name'])('lets %s through', (name) => {
    if (probeSo === null) return;
    const r = probe(name);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.stdout).toBe(`survived ${name} 0\nnode alive\n`);
  });
});
