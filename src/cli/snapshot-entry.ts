/**
 * The entry of the `usernet` command's V8 startup snapshot
 * (dist/launcher/usernet.blob, built by build-snapshot.ts from this file's
 * CommonJS bundle). Building the snapshot evaluates every module the CLI
 * imports, the Node built-ins included, and stores the heap; a process started
 * with `node --snapshot-blob usernet.blob ARG...` begins with that heap and
 * runs only the function below, instead of reading, compiling and evaluating
 * the ~500 KB bundle (measured in bench/ready-latency.py).
 *
 * Nothing may depend on the build's process at module evaluation: no
 * environment, pid, time or file read at the top level of any module. The
 * native addon is not in the snapshot (V8 cannot store it); it is loaded, as
 * always, on first use, from the package the blob lies in: the blob path is
 * on Node's own command line (process.execArgv).
 *
 * native/launcher.c passes the blob only when dist/launcher/snapshot-node-id.txt says
 * it was built by the very `node` it is about to run (Node refuses a blob
 * from another build), and the bundle otherwise.
 */
import { dirname, join, resolve } from 'node:path';
import { startupSnapshot } from 'node:v8';
import { useAddonFile } from '../link/native.js';
import { snapshotBlobPath, startCli } from './start.js';

startupSnapshot.setDeserializeMainFunction(() => {
  const blob = snapshotBlobPath(process.execArgv);
  // <pkg>/dist/launcher/usernet.blob; a relative path is Node's cwd's, which nothing changed yet.
  if (blob !== null) useAddonFile(join(dirname(dirname(dirname(resolve(blob)))), 'build/Release/usernet_native.node'));
  // No script path in argv: the arguments follow the executable.
  startCli(process.argv.slice(1), 'usernet');
});
