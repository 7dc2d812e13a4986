/**
 * Builds the `usernet` command's V8 startup snapshot: `npm run build` (and the
 * install script, for a package built elsewhere) runs
 * `node dist/cli/build-snapshot.js dist/bundle/usernet-snapshot.cjs dist/launcher`,
 * the first file being the CommonJS bundle of snapshot-entry.ts. It writes
 *
 *   usernet.blob            the snapshot
 *   snapshot-node-id.txt    which file the Node that built it is, "dev ino
 *                           size mtime_ns" (launcher-texts.ts's node-id.txt)
 *
 * native/launcher.c passes the blob to Node only while the `node` it runs is
 * that file: Node refuses a blob from another build with an error. The blob
 * is built by this process's own executable, with the V8 flag the launcher
 * runs it with (--max-semi-space-size=2), and tried once (`--version`) before
 * the id is written; when anything fails, neither file is left and the
 * launcher runs the bundle.
 *
 * Node 20 warns, while building, that it has not verified node:dgram,
 * node:child_process and node:module in snapshots; the e2e tests run the
 * command through the launcher, so through the snapshot, and exercise all three
 * (UDP NAT, run mode, the addon). The warnings are shown only when the build
 * fails.
 */
import { spawnSync } from 'node:child_process';
import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SNAPSHOT_BLOB = 'usernet.blob';
export const SNAPSHOT_ID = 'snapshot-node-id.txt';
/** Also in native/launcher.c's exec_node(). */
export const SNAPSHOT_NODE_FLAGS = ['--max-semi-space-size=2'];

export function nodeId(nodeExecPath: string): string {
  const st = statSync(nodeExecPath, { bigint: true });
  return `${st.dev} ${st.ino} ${st.size} ${st.mtimeNs}\n`;
}

export function buildSnapshot(entryCjs: string, dir: string, node: string = process.execPath): void {
  const blob = join(dir, SNAPSHOT_BLOB);
  const id = join(dir, SNAPSHOT_ID);
  rmSync(id, { force: true });
  rmSync(blob, { force: true });
  const tmp = join(dir, `.${SNAPSHOT_BLOB}.${process.pid}`);
  try {
    const built = spawnSync(node, [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', tmp, '--build-snapshot', entryCjs], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`building the snapshot failed (${built.error?.message ?? `status ${built.status}`}):\n${built.stderr}`);
    const tried = spawnSync(node, [...SNAPSHOT_NODE_FLAGS, '--snapshot-blob', tmp, '--', '--version'], { encoding: 'utf8' });
    if (tried.status !== 0 || !tried.stdout.startsWith('usernet version ')) {
      throw new Error(`the snapshot does not run (status ${tried.status}):\n${tried.stdout}${tried.stderr}`);
    }
    renameSync(tmp, blob);
    const idTmp = join(dir, `.${SNAPSHOT_ID}.${process.pid}`);
    writeFileSync(idTmp, nodeId(node));
    renameSync(idTmp, id);
  } finally {
    rmSync(tmp, { force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [entryCjs, dir] = process.argv.slice(2);
  if (entryCjs === undefined || dir === undefined) {
    process.stderr.write('usage: node dist/cli/build-snapshot.js SNAPSHOT_ENTRY.cjs DIR\n');
    process.exit(2);
  }
  buildSnapshot(entryCjs, dir);
}
