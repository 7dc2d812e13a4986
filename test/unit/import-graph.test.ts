/**
 * The import rules of docs/architecture.md (Layout), checked on the source:
 * no import cycles between files, and no import that points up the layer
 * order. Type-only imports count: they couple the files as much as any other.
 *
 * Imports are read with a regular expression (static `import … from`,
 * `export … from`, side-effect `import '…'` and `import('…')`), relative
 * specifiers only; block comments are removed first so that the examples in
 * doc comments are not taken for imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');

/**
 * The layer order, lowest first: a file may import files of its own layer
 * and of the layers before it. A folder of src/ or a file directly in src/
 * belongs to the layer that names it.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['wire', 'errors.ts', 'clock.ts', 'stats.ts', 'timer-queue.ts'],
  ['link'],
  ['ethernet'],
  ['ip'],
  ['policy'],
  ['tcp'],
  ['udp'],
  ['dhcp'],
  ['dns'],
  ['nat'],
  ['api'],
  ['memory-reclaim.ts', 'stack.ts', 'index.ts'],
  ['cli'],
];

type Graph = ReadonlyMap<string, readonly string[]>;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT_RE = /(?:^|[\s;])(?:import|export)\s[^;]*?\bfrom\s*['"]([^'"]+)['"]|(?:^|[\s;])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The relative specifiers `text` imports, resolved to paths relative to src/ (`nat/host.ts`). */
function importsOf(file: string, text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '');
  const out: string[] = [];
  for (const m of code.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith('.')) continue;
    out.push(posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
  }
  return out;
}

function sourceGraph(): Graph {
  const graph = new Map<string, string[]>();
  for (const path of sourceFiles(SRC)) {
    const file = relative(SRC, path).split('\\').join('/');
    graph.set(file, importsOf(file, readFileSync(path, 'utf8')));
  }
  return graph;
}

/** Every cycle as a path `a → b → … → a`, one per strongly connected component (Tarjan). */
function findCycles(graph: Graph): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    const selfLoop = (graph.get(v) ?? []).includes(v);
    if (component.length > 1 || selfLoop) cycles.push(cyclePath(graph, new Set(component), v));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** One concrete cycle through `start` inside its component, for the message. */
function cyclePath(graph: Graph, component: ReadonlySet<string>, start: string): string {
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (w === start) {
        const path = [v];
        for (let u = v; u !== start; ) path.unshift((u = parent.get(u)!));
        return [...path, start].join(' → ');
      }
      if (component.has(w) && !parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return start;
}

function layerOf(file: string): number {
  const top = file.split('/')[0];
  return LAYERS.findIndex((names) => names.includes(top));
}

/** Files outside every layer, and imports from a lower layer to a higher one. */
function layerViolations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [file, imports] of graph) {
    const from = layerOf(file);
    if (from < 0) {
      out.push(`${file} is in no layer (add it to LAYERS and docs/architecture.md)`);
      continue;
    }
    for (const target of imports) {
      const to = layerOf(target);
      if (to > from) out.push(`${file} imports ${target}: ${LAYERS[from][0]} is below ${LAYERS[to][0]}`);
    }
  }
  return out;
}

describe('the checks themselves', () => {
  it('read import and export statements, type-only and multi-line ones included', () => {
    const text = [
      "import { a } from './a.js';",
      "import type {\n  B,\n  C,\n} from '../ip/b.js';",
      "export { d } from './d.js';",
      "import './side.js';",
      "const m = await import('./lazy.js');",
      "import { readFileSync } from 'node:fs';",
      "/**\n * import { e } from './in-a-comment.js';\n */",
    ].join('\n');
    expect(importsOf('nat/x.ts', text)).toEqual(['nat/a.ts', 'ip/b.ts', 'nat/d.ts', 'nat/side.ts', 'nat/lazy.ts']);
  });

  it('find a cycle, however long', () => {
    const graph = new Map([
      ['nat/host.ts', ['nat/native-stream.ts']],
      ['nat/native-stream.ts', ['link/native.ts', 'nat/stream-types.ts']],
      ['nat/stream-types.ts', ['nat/host.ts']],
      ['link/native.ts', []],
    ]);
    expect(findCycles(graph)).toEqual(['nat/host.ts → nat/native-stream.ts → nat/stream-types.ts → nat/host.ts']);
    expect(findCycles(new Map([['a.ts', ['a.ts']]]))).toEqual(['a.ts → a.ts']);
    expect(findCycles(new Map([['a.ts', ['b.ts']], ['b.ts', []]]))).toEqual([]);
  });

  it('find an upward import, and a file in no layer', () => {
    const graph = new Map([
      ['ip/ipv4-input.ts', ['udp/udp-input.ts', 'wire/ipv4.ts']],
      ['udp/udp-input.ts', ['ip/ipv4-output.ts']],
      ['new-folder/x.ts', []],
    ]);
    expect(layerViolations(graph)).toEqual([
      'ip/ipv4-input.ts imports udp/udp-input.ts: ip is below udp',
      'new-folder/x.ts is in no layer (add it to LAYERS and docs/architecture.md)',
    ]);
  });
});

describe('src/', () => {
  const graph = sourceGraph();

  it('has every import resolve to a file', () => {
    const missing = [...graph].flatMap(([file, imports]) => imports.filter((t) => !graph.has(t)).map((t) => `${file} → ${t}`));
    expect(missing).toEqual([]);
  });

  it('has no import cycle', () => {
    expect(findCycles(graph)).toEqual([]);
  });

  it('imports only down the layer order of docs/architecture.md', () => {
    expect(layerViolations(graph)).toEqual([]);
  });

  it('keeps the wire layer free of Node imports', () => {
    const nodeImports = [...graph.keys()]
      .filter((f) => f.startsWith('wire/'))
      .filter((f) => /\bfrom\s*['"]node:|\bimport\s*['"]node:/.test(readFileSync(join(SRC, f), 'utf8')));
    expect(nodeImports).toEqual([]);
  });
});
