/**
 * `net.ipv4.ping_group_range` belongs to a network namespace, and every test
 * in the host's namespace shares it. Vitest runs test files in parallel
 * processes, so a test that narrows it ("1 0", to see ping sockets refused)
 * and one that widens it must not overlap, and whoever changed it must put it
 * back. This lock serialises them across processes.
 *
 * Theory of operation
 * -------------------
 * The lock is a file in os.tmpdir() created with O_CREAT|O_EXCL ('wx'): the
 * kernel lets exactly one creator win. It records the holder's PID, the
 * holder's start time (field 22 of /proc/PID/stat, so a recycled PID is not
 * mistaken for the holder) and the range it found before changing it.
 *
 * A waiter that finds the file retries every 20 ms up to a bounded wait. If
 * the holder is gone (no such PID, or a different process under that PID),
 * the lock is stale: the waiter puts the recorded original range back, since
 * the dead holder could not, and removes the file. Breaking a lock is itself
 * guarded by a second O_EXCL file (`.break`), held for microseconds, so two
 * waiters cannot both break the same stale lock and one of them delete the
 * lock the other has just taken. A `.break` file older than 10 s is from a
 * waiter that died mid-break and is removed.
 *
 * Within one process the lock is re-entrant along the async call chain
 * (AsyncLocalStorage): a nested withPingGroupRange sets its range and puts
 * the outer one back, without waiting for itself. Unrelated concurrent
 * callers in one process wait on the file like any other process (a live
 * PID is never stale).
 *
 * If the process exits while holding the lock (a worker torn down mid-test),
 * a synchronous 'exit' handler restores the range and removes the file.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { accessSync, constants as fsConstants, openSync, readFileSync, closeSync, statSync, unlinkSync, writeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PING_GROUP_RANGE_PATH = '/proc/sys/net/ipv4/ping_group_range';
/** Every gid: what "widened" means in the tests. */
export const PING_GROUP_RANGE_ALL = '0 2147483647';
/** The kernel's default: nobody. */
export const PING_GROUP_RANGE_NONE = '1 0';

const LOCK_PATH = join(tmpdir(), 'usernet-ping-group-range.lock');
const BREAK_PATH = `${LOCK_PATH}.break`;
const RETRY_MS = 20;
// Below Vitest's 60 s test and hook timeouts, so a stuck holder fails the waiter, not the run.
const DEFAULT_WAIT_MS = 30_000;
const BREAK_STALE_MS = 10_000;

interface LockRecord {
  pid: number;
  start: string;
  original: string;
}

export function readPingGroupRange(): string {
  return readFileSync(PING_GROUP_RANGE_PATH, 'utf8');
}

/** Normalises "1\t0\n" and "1 0" alike, for comparisons. */
export function normaliseRange(range: string): string {
  return range.trim().split(/\s+/).join(' ');
}

/** Why the range cannot be changed here, or null when it can (root, writable sysctl). */
export function pingGroupRangeUnsettable(): string | null {
  if (process.geteuid?.() !== 0) return 'not running as root';
  try {
    readPingGroupRange();
    accessSync(PING_GROUP_RANGE_PATH, fsConstants.W_OK);
  } catch (e) {
    return `${PING_GROUP_RANGE_PATH} is not writable (${(e as Error).message})`;
  }
  return null;
}

function writeRange(range: string): void {
  writeFileSync(PING_GROUP_RANGE_PATH, range);
}

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const MY_START = processStart(process.pid) ?? '?';

function readRecord(): LockRecord | null {
  try {
    return JSON.parse(readFileSync(LOCK_PATH, 'utf8')) as LockRecord;
  } catch {
    // Gone, or caught between create and write: treat as held (not stale) and retry.
    return null;
  }
}

function isStale(rec: LockRecord): boolean {
  const start = processStart(rec.pid);
  return start === null || start !== rec.start;
}

/**
 * One attempt; the range found, once we hold the file lock, else null. The
 * range is read only after winning: the previous holder restores its
 * original before it removes the file, so what we read now is the value to
 * restore ourselves.
 */
function tryCreate(): string | null {
  let fd: number;
  try {
    fd = openSync(LOCK_PATH, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw e;
  }
  try {
    const original = readPingGroupRange();
    writeSync(fd, JSON.stringify({ pid: process.pid, start: MY_START, original } satisfies LockRecord));
    return original;
  } catch (e) {
    unlinkSync(LOCK_PATH);
    throw e;
  } finally {
    closeSync(fd);
  }
}

/** Removes the lock of a dead holder, restoring the range it had changed. */
function breakIfStale(): void {
  const first = readRecord();
  if (first === null || !isStale(first)) return;
  let fd: number;
  try {
    fd = openSync(BREAK_PATH, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    try {
      if (Date.now() - statSync(BREAK_PATH).mtimeMs > BREAK_STALE_MS) unlinkSync(BREAK_PATH);
    } catch {
      // Someone else finished or removed it.
    }
    return;
  }
  try {
    // Under the break guard: only remove the very lock we judged stale.
    const rec = readRecord();
    if (rec !== null && rec.pid === first.pid && rec.start === first.start && isStale(rec)) {
      console.warn(`sysctl-lock: breaking a stale ping_group_range lock of dead pid ${rec.pid}, restoring "${normaliseRange(rec.original)}"`);
      try {
        writeRange(rec.original);
      } catch {
        // Best effort; the next holder restores what it finds anyway.
      }
      unlinkSync(LOCK_PATH);
    }
  } finally {
    closeSync(fd);
    try {
      unlinkSync(BREAK_PATH);
    } catch {
      // ignored
    }
  }
}

/**
 * Set along fn's async call chain while its lock is held. A mutable flag,
 * not a constant: async resources made inside fn (listeners, timers) keep
 * the store after fn returns, and must not count as holding the lock then.
 */
const holding = new AsyncLocalStorage<{ held: boolean }>();

export interface PingGroupRangeLock {
  /** The range found when the lock was taken. */
  readonly original: string;
  /** Sets the range (while holding the lock). */
  set(range: string): void;
  /** Restores the original range and releases the lock; idempotent. */
  release(): void;
}

/**
 * Takes the lock (waiting at most `waitMs`), sets `range`, and returns the
 * handle; for suites that hold it from beforeAll to afterAll. Prefer
 * withPingGroupRange.
 */
export async function lockPingGroupRange(range: string, waitMs = DEFAULT_WAIT_MS): Promise<PingGroupRangeLock> {
  const unsettable = pingGroupRangeUnsettable();
  if (unsettable !== null) throw new Error(`cannot set net.ipv4.ping_group_range: ${unsettable}`);
  const deadline = Date.now() + waitMs;
  let original: string | null;
  while ((original = tryCreate()) === null) {
    breakIfStale();
    if (Date.now() > deadline) {
      const rec = readRecord();
      throw new Error(`sysctl-lock: ${LOCK_PATH} held by pid ${rec?.pid ?? '?'} for more than ${waitMs} ms`);
    }
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
  const found = original;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.removeListener('exit', release);
    try {
      if (normaliseRange(readPingGroupRange()) !== normaliseRange(found)) writeRange(found);
    } finally {
      const rec = readRecord();
      if (rec !== null && rec.pid === process.pid) unlinkSync(LOCK_PATH);
    }
  };
  process.once('exit', release);
  const lock: PingGroupRangeLock = {
    original: found,
    set(next) {
      if (released) throw new Error('sysctl-lock: set() after release()');
      writeRange(next);
    },
    release,
  };
  try {
    lock.set(range);
  } catch (e) {
    release();
    throw e;
  }
  return lock;
}

/**
 * Runs `fn` with net.ipv4.ping_group_range set to `range` (e.g. "1 0" or
 * PING_GROUP_RANGE_ALL) under an exclusive cross-process lock; restores the
 * value found and releases the lock afterwards, whatever `fn` does. Nested
 * calls (inside `fn`) change the range without re-locking and restore the
 * outer range when they end.
 */
export async function withPingGroupRange<T>(range: string, fn: () => Promise<T> | T, waitMs = DEFAULT_WAIT_MS): Promise<T> {
  if (holding.getStore()?.held === true) {
    const outer = readPingGroupRange();
    writeRange(range);
    try {
      return await fn();
    } finally {
      writeRange(outer);
    }
  }
  const lock = await lockPingGroupRange(range, waitMs);
  const store = { held: true };
  try {
    return await holding.run(store, fn);
  } finally {
    store.held = false;
    lock.release();
  }
}
