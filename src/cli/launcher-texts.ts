/**
 * The texts native/launcher.c prints for a lone `--help`, `-h`, `--version`
 * or `-v` without starting Node. `npm run build` runs this file
 * (`node dist/cli/launcher-texts.js dist/launcher`), so they come from the
 * same functions and SUPPORTED table parseArgs() uses and cannot drift from
 * what Node would print. The install script runs it again when dist/ is
 * already there (a package from the registry, built elsewhere), so that the
 * Node named in version.txt is the one of the machine it is installed on:
 *
 *   help.txt      usageText() with ARGV0_PLACEHOLDER where the program's name
 *                 goes; the launcher puts the name it was run as there
 *   version.txt   versionText() with the version of the Node running the build
 *   node-id.txt   which file that Node is, "dev ino size mtime_ns": the
 *                 launcher prints version.txt only while the `node` it would
 *                 run is still that file, and lets Node answer otherwise
 *
 * Each file is written to a temporary name and renamed, so a launcher
 * running during a rebuild reads an old text or a new one, never half of one.
 */
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { slirpConfigVersionMax, SUPPORTED, USERNET_VERSION, type Feature } from './features.js';
import { usageText, versionText } from './help.js';

/** Also in native/launcher.c. */
export const ARGV0_PLACEHOLDER = '@ARGV0@';

export interface LauncherTexts {
  'help.txt': string;
  'version.txt': string;
  'node-id.txt': string;
}

export function launcherTexts(
  nodeExecPath: string,
  nodeVersion: string,
  supported: Readonly<Record<Feature, boolean>> = SUPPORTED,
): LauncherTexts {
  const help = usageText(ARGV0_PLACEHOLDER, supported);
  // The launcher substitutes the placeholder wherever it occurs; that only
  // reproduces usageText() if the name is all the placeholder stands for.
  const probe = 'usernet-probe/argv0';
  if (help.split(ARGV0_PLACEHOLDER).join(probe) !== usageText(probe, supported)) {
    throw new Error(`usageText() output contains ${ARGV0_PLACEHOLDER} by itself; pick another placeholder`);
  }
  const st = statSync(nodeExecPath, { bigint: true });
  return {
    'help.txt': help,
    'version.txt': versionText(USERNET_VERSION, nodeVersion, slirpConfigVersionMax(supported)),
    'node-id.txt': `${st.dev} ${st.ino} ${st.size} ${st.mtimeNs}\n`,
  };
}

export function writeLauncherTexts(dir: string, texts: LauncherTexts): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(texts)) {
    const tmp = join(dir, `.${name}.${process.pid}`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(dir, name));
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write('usage: node dist/cli/launcher-texts.js DIR\n');
    process.exit(2);
  }
  writeLauncherTexts(dir, launcherTexts(process.execPath, process.versions.node));
}
