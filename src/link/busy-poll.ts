/**
 * Adaptive busy polling of the event loop: before Node's loop blocks in
 * epoll_wait, it polls for up to a window of microseconds, so that the next
 * frame or host reply of a request/response exchange finds the helper awake
 * instead of paying a sleep and a wake-up (on a VM the larger part of a round
 * trip's cost). The window adapts as KVM's halt polling does: it grows while
 * events keep coming within the maximum and shrinks to nothing once they come
 * later, so slow or idle traffic costs no spinning. native/poll.c has the
 * mechanism; docs/architecture.md the measurements.
 *
 * Process-wide (the loop is): the CLI turns it on with DEFAULT_BUSY_POLL_US
 * (KVM's halt_poll_ns default, 200 µs), USERNET_BUSY_POLL_US overrides it;
 * the library leaves it off unless busyPoll() is called.
 */
import { UsernetError } from '../errors.js';
import { loadNative } from './native.js';

/** The CLI's maximum window in microseconds. */
export const DEFAULT_BUSY_POLL_US = 200;
/** The largest window busyPoll() takes: one second. */
export const MAX_BUSY_POLL_US = 1_000_000;

export interface BusyPollStats {
  /** Times the loop was about to block and polled instead. */
  spins: number;
  /** Of those, times an event came within the window (the loop did not sleep). */
  hits: number;
  /** Times the loop went to sleep (after a missed window, or with a window of 0). */
  sleeps: number;
  /** Times the loop did not poll because the traffic was bulk (a moving average of over 16 KiB read per loop turn). */
  bulk: number;
  /** Nanoseconds spent polling, hits and misses together (the CPU the polling cost). */
  spinNs: number;
  /** The current window in nanoseconds (0: the loop sleeps at once). */
  windowNs: number;
}

/**
 * Busy-polls the calling thread's event loop for at most `maxMicroseconds`
 * before it blocks; 0 turns it off. Throws ERR_USERNET_INVALID_OPTION for
 * anything but a whole number from 0 to MAX_BUSY_POLL_US.
 */
export function busyPoll(maxMicroseconds: number): BusyPollStats {
  if (!Number.isInteger(maxMicroseconds) || maxMicroseconds < 0 || maxMicroseconds > MAX_BUSY_POLL_US) {
    throw new UsernetError('ERR_USERNET_INVALID_OPTION', `busyPoll: maxMicroseconds must be a whole number from 0 to ${MAX_BUSY_POLL_US}, not ${String(maxMicroseconds)}`);
  }
  return loadNative().setBusyPoll(maxMicroseconds);
}

/** The busy-poll counters since the process started. */
export function busyPollStats(): BusyPollStats {
  return loadNative().setBusyPoll();
}

/**
 * USERNET_BUSY_POLL_US for the CLI: unset or empty gives DEFAULT_BUSY_POLL_US.
 * Throws `USERNET_BUSY_POLL_US=VALUE: …` when it is not a whole number in range.
 */
export function busyPollFromEnv(env: NodeJS.ProcessEnv): number {
  const text = env.USERNET_BUSY_POLL_US;
  if (text === undefined || text === '') return DEFAULT_BUSY_POLL_US;
  const us = /^[0-9]{1,7}$/.test(text) ? Number(text) : NaN;
  if (!(us <= MAX_BUSY_POLL_US)) {
    throw new Error(`USERNET_BUSY_POLL_US=${text}: must be a whole number of microseconds from 0 to ${MAX_BUSY_POLL_US}`);
  }
  return us;
}
