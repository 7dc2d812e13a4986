/** Run mode's own arguments (src/cli/run-mode.ts): IPv6 on by default, --publish with [IPv6] host addresses, egress policy flags. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePublish, parseRunArgs } from '../../src/cli/run-mode.js';

describe('run mode arguments', () => {
  it('has IPv6 on unless --disable-ipv6', () => {
    const on = parseRunArgs(['--', 'true']);
    expect(on).toMatchObject({ kind: 'run', config: { enableIpv6: true, outboundAddr6: null } });
    expect(parseRunArgs(['--disable-ipv6', '--', 'true'])).toMatchObject({ kind: 'run', config: { enableIpv6: false } });
  });

  it('--outbound-addr6 takes an IPv6 literal or an interface with one', () => {
    expect(parseRunArgs(['--outbound-addr6=2001:db8::5', '--', 'true'])).toMatchObject({ kind: 'run', config: { outboundAddr6: '2001:db8::5' } });
    expect(parseRunArgs(['--outbound-addr6', 'lo', '--', 'true'])).toMatchObject({ kind: 'run', config: { outboundAddr6: '::1' } });
    const bad = parseRunArgs(['--outbound-addr6=10.0.0.1', '--', 'true']);
    expect(bad).toMatchObject({ kind: 'exit', status: 1 });
  });

  it('--publish takes IPv4 or [IPv6] host addresses', () => {
    expect(parsePublish('8080:80')).toEqual({ proto: 'tcp', hostAddr: '0.0.0.0', hostPort: 8080, guestPort: 80 });
    expect(parsePublish('127.0.0.1:8080:80/udp')).toEqual({ proto: 'udp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 });
    expect(parsePublish('[::1]:8080:80')).toEqual({ proto: 'tcp', hostAddr: '::1', hostPort: 8080, guestPort: 80 });
    expect(parsePublish('[::]:53:53/udp')).toEqual({ proto: 'udp', hostAddr: '::', hostPort: 53, guestPort: 53 });
    for (const bad of ['::1:8080:80', '[::1:8080:80', '[1.2.3.4]:1:2', '[fe80::1%lo]:1:2', 'x:1:2', '1:0', '1:2/sctp']) {
      expect(typeof parsePublish(bad), bad).toBe('string');
    }
  });

  it('--policy FILE, --allow, --deny and --default-deny build the policy in command-line order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'usernet-run-policy-'));
    try {
      const file = join(dir, 'policy');
      writeFileSync(file, '# registry only\nallow tcp:198.51.100.0/24:443\n');
      const r = parseRunArgs(['--deny', 'private', `--policy=${file}`, '--default-deny', '--allow=udp:[2001:db8::/32]:53', '--', 'true']);
      expect(r).toMatchObject({
        kind: 'run',
        config: { policy: ['default deny', 'deny private', '# registry only', 'allow tcp:198.51.100.0/24:443', '', 'allow udp:[2001:db8::/32]:53'] },
      });
      expect(parseRunArgs(['--', 'true'])).toMatchObject({ kind: 'run', config: { policy: null } });
      const bad = parseRunArgs(['--allow', 'tcp:10.0.0.0/33', '--deny=sometimes:x:y', '--', 'true']);
      expect(bad).toMatchObject({ kind: 'exit', status: 1 });
      expect((bad as { stderr: string }).stderr).toMatch(/^usernet: invalid egress policy:\n {2}line 1: "allow tcp:10\.0\.0\.0\/33": /);
      expect((bad as { stderr: string }).stderr).toContain('line 2: "deny sometimes:x:y"');
      const missing = parseRunArgs([`--policy=${join(dir, 'nope')}`, '--', 'true']);
      expect((missing as { stderr: string }).stderr).toMatch(/^usernet: --policy .*nope: ENOENT\n/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
