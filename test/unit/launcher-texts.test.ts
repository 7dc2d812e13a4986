/**
 * src/cli/launcher-texts.ts: what `npm run build` writes for native/launcher.c
 * is what parseArgs() prints, once the launcher puts the name in
 * (test/e2e/launcher.test.ts checks the built launcher itself).
 */
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';
import { SUPPORTED, type Feature } from '../../src/cli/features.js';
import { ARGV0_PLACEHOLDER, launcherTexts } from '../../src/cli/launcher-texts.js';

const ALL = Object.fromEntries(Object.keys(SUPPORTED).map((k) => [k, true])) as Record<Feature, boolean>;

describe('launcher texts', () => {
  it.each([
    { name: 'as shipped', supported: SUPPORTED },
    { name: 'with every feature on', supported: ALL },
  ])('$name: help.txt with the name put in, and version.txt, are parseArgs output', ({ supported }) => {
    const texts = launcherTexts(process.execPath, '99.1.2', supported);
    for (const argv0 of ['slirp4netns', '/usr/local/bin/usernet', './bin/usernet']) {
      expect(texts['help.txt'].split(ARGV0_PLACEHOLDER).join(argv0)).toBe(parseArgs(['--help'], {}, argv0, { supported }).stdout);
    }
    expect(texts['version.txt']).toBe(parseArgs(['-v'], {}, 'x', { supported, nodeVersion: '99.1.2' }).stdout);
  });

  it('node-id.txt is "dev ino size mtime_ns" of the Node binary', () => {
    expect(launcherTexts(process.execPath, process.versions.node)['node-id.txt']).toMatch(/^\d+ \d+ \d+ \d+\n$/);
  });
});
