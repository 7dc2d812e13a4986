import { getSystemErrorName } from 'node:util';

/** The symbolic name of a positive errno (`111` → `ECONNREFUSED`), for messages and `code`s. */
export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}
