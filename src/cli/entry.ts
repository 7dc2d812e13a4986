/**
 * The process entry of the `usernet` command, bundled with everything it
 * imports into dist/bundle/usernet.js. native/launcher.c (or bin/usernet,
 * when the launcher was not built) runs it as
 * `node --max-semi-space-size=2 <pkg>/dist/bundle/usernet.js ARG...`.
 *
 * USERNET_ARGV0 is the name the command was run as (bin/usernet's $0, or the
 * launcher's argv[0]); messages and the usage line print it, as slirp4netns
 * prints its argv[0]. It is removed before anything runs, so that the
 * programs usernet starts (run mode's COMMAND) do not inherit it. Without it
 * (`node dist/bundle/usernet.js` by hand) the name is the script's path.
 *
 * USERNET_LAUNCHER_TAP is the TAP the launcher already attached, or why that
 * failed (launcher-tap.ts); USERNET_LAUNCHER_SANDBOX, _API and _PCAP what it
 * did for --enable-sandbox (launcher-sandbox.ts); all removed the same way.
 */
import { LAUNCHER_TAP_ENV, parseLauncherTap } from './launcher-tap.js';
import { takeLauncherSandbox } from './launcher-sandbox.js';
import { main } from './main.js';

// Also in native/launcher.c and bin/usernet.
const ARGV0_ENV = 'USERNET_ARGV0';

const argv0 = process.env[ARGV0_ENV] || process.argv[1];
const launcherTap = parseLauncherTap(process.env[LAUNCHER_TAP_ENV]);
delete process.env[ARGV0_ENV];
delete process.env[LAUNCHER_TAP_ENV];
main(process.argv.slice(2), argv0, launcherTap, takeLauncherSandbox(process.env));
