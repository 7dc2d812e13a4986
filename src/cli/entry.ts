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
 */
import { main } from './main.js';

// Also in native/launcher.c and bin/usernet.
const ARGV0_ENV = 'USERNET_ARGV0';

const argv0 = process.env[ARGV0_ENV] || process.argv[1];
delete process.env[ARGV0_ENV];
main(process.argv.slice(2), argv0);
