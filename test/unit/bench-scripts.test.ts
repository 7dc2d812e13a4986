/**
 * bench/: the benchmark scripts are not run by the tests (a full run takes
 * half an hour and needs the peers), so at least each one must parse, and
 * bench/run.js must load its imports and answer --help. A quote slipped into
 * a string once left `npm run bench` dead on main with every test green.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BENCH = join(import.meta.dirname, '..', '..', 'bench');
const scripts = readdirSync(BENCH).filter((f) => f.endsWith('.js') || f.endsWith('.py'));

describe('bench scripts', () => {
  it('are there', () => {
    expect(scripts).toContain('run.js');
  });

  it.each(scripts)('%s parses', (f) => {
    const path = join(BENCH, f);
    if (f.endsWith('.js')) execFileSync(process.execPath, ['--check', path], { stdio: 'pipe' });
    else execFileSync('python3', ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])', path], { stdio: 'pipe' });
  });

  it('run.js --help prints its usage and exits 0', () => {
    const out = execFileSync(process.execPath, [join(BENCH, 'run.js'), '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(out).toMatch(/^usage: node bench\/run\.js /);
  });

  it('run.js --plan: each repetition starts one binary further along (no binary always first)', () => {
    const out = execFileSync(process.execPath, [join(BENCH, 'run.js'), '--plan', '--reps', '4', '--bins', 'usernet,kernel,veth', '--only', 'tput1500,rr'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out.trim().split('\n')).toEqual([
      'rep 1/4 tput1500: usernet kernel veth',
      'rep 1/4 rr: usernet kernel veth',
      'rep 2/4 tput1500: kernel veth usernet',
      'rep 2/4 rr: kernel veth usernet',
      'rep 3/4 tput1500: veth usernet kernel',
      'rep 3/4 rr: veth usernet kernel',
      'rep 4/4 tput1500: usernet kernel veth',
      'rep 4/4 rr: usernet kernel veth',
    ]);
  });
});
