/**
 * Node 20 cannot run TypeScript: for tests that run part of src/ in a child
 * process (with --expose-gc, or to watch it exit), strip the types of an entry
 * module and of every module it imports, relative imports followed
 * transitively, into a tree that mirrors the repository (with build/ linked, so
 * the addon loads from its usual place).
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RELATIVE_IMPORT = /\b(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)\.js['"]/g;

/** Writes `entries` (paths under the repository, `src/…/x.ts`) and their imports as .js under `dir`. */
export async function stripTypesTree(dir: string, entries: string[]): Promise<void> {
  const { transformWithOxc } = await import('vite');
  const seen = new Set<string>();
  const todo = entries.map((e) => normalize(e));
  while (todo.length > 0) {
    const rel = todo.pop()!;
    if (seen.has(rel)) continue;
    seen.add(rel);
    const source = readFileSync(join(ROOT, rel), 'utf8');
    for (const m of source.matchAll(RELATIVE_IMPORT)) {
      const dep = relative(ROOT, join(ROOT, dirname(rel), `${m[1]}.ts`));
      if (existsSync(join(ROOT, dep))) todo.push(dep);
    }
    const out = join(dir, rel.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, (await transformWithOxc(source, rel, { lang: 'ts' })).code);
  }
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  symlinkSync(join(ROOT, 'build'), join(dir, 'build'));
}
