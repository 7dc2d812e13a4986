/**
 * What the process entries (entry.ts, and snapshot-entry.ts after
 * deserialization) do with the command line.
 *
 * USERNET_ARGV0 is the name the command was run as (bin/usernet's $0, or the
 * launcher's argv[0]); messages and the usage line print it, as slirp4netns
 * prints its argv[0]. It is removed before anything runs, so that the
 * programs usernet starts (run mode's COMMAND) do not inherit it. Without it
 * (`node dist/bundle/usernet.js` by hand) the name is `fallbackArgv0`.
 *
 * USERNET_LAUNCHER_TAP is the TAP the launcher already attached, or why that
 * failed (launcher-tap.ts); USERNET_LAUNCHER, _SANDBOX, _API and _PCAP what
 * it did for --enable-sandbox (launcher-sandbox.ts); all removed the same way.
 *
 * USERNET_NODE_EXTRA_CA_CERTS is NODE_EXTRA_CA_CERTS, which the launcher
 * hides from Node (whose start-up would parse the certificates for nothing:
 * usernet makes no TLS connection): put back under its own name, so that
 * the programs usernet starts see the environment they were given.
 */
import { LAUNCHER_TAP_ENV, parseLauncherTap } from './launcher-tap.js';
import { takeLauncherSandbox } from './launcher-sandbox.js';
import { main } from './main.js';

// Also in native/launcher.c and bin/usernet.
const ARGV0_ENV = 'USERNET_ARGV0';
// Also in native/launcher.c.
const CA_CERTS_ENV = 'NODE_EXTRA_CA_CERTS';
const HELD_CA_CERTS_ENV = 'USERNET_NODE_EXTRA_CA_CERTS';

export function startCli(args: string[], fallbackArgv0: string): void {
  const argv0 = process.env[ARGV0_ENV] || fallbackArgv0;
  const launcherTap = parseLauncherTap(process.env[LAUNCHER_TAP_ENV]);
  delete process.env[ARGV0_ENV];
  delete process.env[LAUNCHER_TAP_ENV];
  const held = process.env[HELD_CA_CERTS_ENV];
  if (held !== undefined) {
    process.env[CA_CERTS_ENV] = held;
    delete process.env[HELD_CA_CERTS_ENV];
  }
  main(args, argv0, launcherTap, takeLauncherSandbox(process.env));
}

/** The blob's path as Node got it: `--snapshot-blob PATH` or `--snapshot-blob=PATH`. */
export function snapshotBlobPath(execArgv: readonly string[]): string | null {
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i];
    if (a === '--snapshot-blob' && i + 1 < execArgv.length) return execArgv[i + 1];
    if (a.startsWith('--snapshot-blob=')) return a.slice('--snapshot-blob='.length);
  }
  return null;
}
