/**
 * The process entry of the `usernet` command, bundled with everything it
 * imports into dist/bundle/usernet.js. native/launcher.c (or bin/usernet,
 * when the launcher was not built) runs it as
 * `node --max-semi-space-size=2 <pkg>/dist/bundle/usernet.js ARG...`, unless
 * the launcher can start Node from the startup snapshot of the same code
 * (snapshot-entry.ts).
 */
import { startCli } from './start.js';

startCli(process.argv.slice(2), process.argv[1]);
