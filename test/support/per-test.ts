/**
 * The per-test prelude of the e2e files: a fresh temp directory for each
 * test and cleanups run in reverse order after it (then the directory is
 * removed). Call once at the top level of a test file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

export type Defer = (fn: () => Promise<void> | void) => void;

export function perTest(prefix: string): { dir(): string; defer: Defer } {
  let dir = '';
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()!();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir: () => dir, defer: (fn) => cleanups.push(fn) };
}
