import { describe, expect, it } from 'vitest';
import { UsernetError } from '../../src/errors.js';
import { PROTO_MASK_ALL, PROTO_MASK_PORTED, PolicyError, Proto, formatPolicy, parsePolicy, parsePolicyOrThrow } from '../../src/policy/rules.js';
import type { Rule } from '../../src/policy/rules.js';

/** The canonical text of one rule line, or its error message. */
function canon(line: string): string {
  const r = parsePolicy([line]);
  if (!r.ok) return `ERROR ${r.errors.map((e) => e.message).join(' | ')}`;
  return formatPolicy(r.policy).slice(1).join(' | ');
}

function rule(line: string): Rule {
  const r = parsePolicy([line]);
  if (!r.ok) throw new Error(r.errors[0].message);
  expect(r.policy.rules).toHaveLength(1);
  return r.policy.rules[0];
}

describe('policy rules: valid lines and their canonical form', () => {
  const goldens: [string, string][] = [
    ['allow 10.1.2.3', 'allow 10.1.2.3'],
    ['allow 10.1.2.3/32', 'allow 10.1.2.3'],
    ['deny 10.0.0.0/8', 'deny 10.0.0.0/8'],
    ['deny 0.0.0.0/0', 'deny 0.0.0.0/0'],
    ['allow tcp:10.0.0.0/8:443', 'allow tcp:10.0.0.0/8:443'],
    ['allow udp:198.51.100.7:53-54', 'allow udp:198.51.100.7:53-54'],
    ['allow 198.51.100.7:443-443', 'allow 198.51.100.7:443'],
    ['allow 198.51.100.7:1-65535', 'allow 198.51.100.7:1-65535'],
    ['allow icmp:198.51.100.7', 'allow icmp:198.51.100.7'],
    ['allow 2001:db8::1', 'allow 2001:db8::1'],
    ['allow [2001:db8::1]', 'allow 2001:db8::1'],
    ['allow 2001:DB8:0:0:0:0:0:1', 'allow 2001:db8::1'],
    ['allow 2001:db8::/32', 'allow 2001:db8::/32'],
    ['allow [2001:db8::/32]:443', 'allow [2001:db8::/32]:443'],
    ['allow tcp:[2001:db8::1]:80-90', 'allow tcp:[2001:db8::1]:80-90'],
    ['allow 2001:db8::1/128', 'allow 2001:db8::1'],
    ['deny ::/0', 'deny ::/0'],
    // Without brackets every colon belongs to the address: this is an address, not port 443.
    ['deny 2001:db8::1:443', 'deny 2001:db8::1:443'],
    ['allow abc:def::1', 'allow abc:def::1'],
    ['allow registry.example', 'allow registry.example'],
    ['allow tcp:Registry.Example.:443', 'allow tcp:registry.example:443'],
    ['allow _srv.example', 'allow _srv.example'],
    ['allow localhost', 'allow localhost'],
    ['allow *.example.com', 'allow *.example.com'],
    ['allow udp:*.Example.COM.:53', 'allow udp:*.example.com:53'],
    ['deny any', 'deny any'],
    ['deny tcp:any:25', 'deny tcp:any:25'],
    ['deny private', 'deny private'],
    ['deny icmp:private', 'deny icmp:private'],
    ['ALLOW TCP:198.51.100.1:22', 'allow tcp:198.51.100.1:22'],
    ['  allow\t 198.51.100.1  ', 'allow 198.51.100.1'],
    ['allow 198.51.100.1 # trailing comment', 'allow 198.51.100.1'],
    ['allow 198.51.100.1\t#tab before the comment', 'allow 198.51.100.1'],
  ];
  for (const [input, expected] of goldens) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      expect(canon(input)).toBe(expected);
    });
  }

  it('reads the canonical form back to the same policy', () => {
    const text = goldens.map(([i]) => i).join('\n') + '\ndefault deny\n';
    const first = parsePolicyOrThrow(text);
    const again = parsePolicyOrThrow(formatPolicy(first));
    expect(again).toEqual(first);
    expect(formatPolicy(again)).toEqual(formatPolicy(first));
  });

  it('fills the structure: protocols, ports, targets', () => {
    expect(rule('allow 10.0.0.1')).toEqual({
      action: 'allow',
      protocol: null,
      protocols: PROTO_MASK_ALL,
      target: { kind: 'ipv4', network: 0x0a00_0001, prefixLength: 32 },
      ports: null,
    });
    // A port without a protocol is tcp and udp, not icmp.
    expect(rule('deny 10.0.0.1:53').protocols).toBe(PROTO_MASK_PORTED);
    expect(rule('deny 10.0.0.1:53').ports).toEqual({ lo: 53, hi: 53 });
    expect(rule('deny udp:10.0.0.1').protocols).toBe(1 << Proto.UDP);
    expect(rule('deny udp:10.0.0.1').ports).toBeNull();
    expect(rule('deny tcp:x.example:1-1024').protocols).toBe(1 << Proto.TCP);
    expect(rule('deny icmp:any').protocols).toBe(1 << Proto.ICMP);
    expect(rule('allow *.example.com').target).toEqual({ kind: 'suffix', suffix: 'example.com' });
    expect(rule('allow Example.COM.').target).toEqual({ kind: 'name', name: 'example.com' });
    const v6 = rule('allow [2001:db8:8000::/33]:443').target;
    expect(v6.kind).toBe('ipv6');
    if (v6.kind === 'ipv6') {
      expect(v6.prefixLength).toBe(33);
      expect(Array.from(v6.network.subarray(0, 5))).toEqual([0x20, 0x01, 0x0d, 0xb8, 0x80]);
    }
  });

  it('skips blank and comment lines and takes the default anywhere', () => {
    const r = parsePolicy('# egress for CI\n\n   \n  # indented comment\nallow tcp:registry.example:443\ndefault deny\ndeny private\n');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.policy.defaultAction).toBe('deny');
    expect(formatPolicy(r.policy)).toEqual(['default deny', 'allow tcp:registry.example:443', 'deny private']);
  });

  it('defaults to allow; an empty policy is valid', () => {
    expect(parsePolicyOrThrow('')).toEqual({ defaultAction: 'allow', rules: [] });
    expect(parsePolicyOrThrow([])).toEqual({ defaultAction: 'allow', rules: [] });
    expect(formatPolicy(parsePolicyOrThrow(['default allow']))).toEqual(['default allow']);
  });

  it('takes CRLF line ends', () => {
    expect(formatPolicy(parsePolicyOrThrow('default deny\r\nallow 10.0.0.1\r\n'))).toEqual(['default deny', 'allow 10.0.0.1']);
  });
});

describe('policy rules: invalid lines', () => {
  const goldens: [string, string][] = [
    ['allow tcp:10.0.0.0/33:443', 'prefix length 33 is out of range (0-32)'],
    ['allow 2001:db8::/129', 'prefix length 129 is out of range (0-128)'],
    ['allow 10.0.0.0/', 'invalid prefix length "" (expected 0-32)'],
    ['allow 10.0.0.0/x', 'invalid prefix length "x" (expected 0-32)'],
    ['allow 10.1.0.0/8', '10.1.0.0/8 has host bits set (did you mean 10.0.0.0/8?)'],
    ['allow 2001:db8::1/32', '2001:db8::1/32 has host bits set (did you mean 2001:db8::/32?)'],
    ['allow 10.0.0.256', 'invalid IPv4 address "10.0.0.256"'],
    ['allow 1.2.3', 'invalid IPv4 address "1.2.3"'],
    ['allow 1.2.3.4.5', 'invalid IPv4 address "1.2.3.4.5"'],
    ['allow 010.0.0.1', 'invalid IPv4 address "010.0.0.1" (leading zeros are ambiguous)'],
    ['allow host.123', 'invalid IPv4 address "host.123"'],
    ['allow 2001:db8:::1', 'invalid IPv6 address "2001:db8:::1" (an IPv6 address before a port goes in brackets: [2001:db8::1]:443)'],
    ['allow 10.0.0.1:80:90', 'invalid IPv6 address "10.0.0.1:80:90" (an IPv6 address before a port goes in brackets: [2001:db8::1]:443)'],
    ['allow [2001:db8::1', 'missing "]" after the IPv6 address'],
    ['allow [2001:db8::1]443', 'unexpected "443" after "]" (expected ":PORT")'],
    ['allow [gg::1]:443', 'invalid IPv6 address "gg::1"'],
    ['allow [10.0.0.1]:443', 'brackets are only for IPv6 addresses, not "10.0.0.1"'],
    ['allow [fe80::1%eth0]:22', 'invalid IPv6 address "fe80::1%eth0"'],
    ['allow 10.0.0.1:0', 'port 0 is out of range (1-65535)'],
    ['allow 10.0.0.1:65536', 'port 65536 is out of range (1-65535)'],
    ['allow 10.0.0.1:1-65536', 'port 65536 is out of range (1-65535)'],
    ['allow 10.0.0.1:90-80', 'port range 90-80 is reversed (the low port comes first)'],
    ['allow 10.0.0.1:', 'missing port after ":"'],
    ['allow 10.0.0.1:http', 'invalid port "http" (expected PORT or PORT-PORT, 1-65535)'],
    ['allow 10.0.0.1:80-', 'invalid port "80-" (expected PORT or PORT-PORT, 1-65535)'],
    ['allow :443', 'missing target before ":"'],
    ['allow icmp:10.0.0.1:8', 'icmp has no ports'],
    ['allow icmp:[2001:db8::1]:8', 'icmp has no ports'],
    ['allow tcp', '"tcp" is a protocol, not a target (write tcp:any)'],
    ['allow tcp:', 'missing target after "tcp:"'],
    ['allow sctp:10.0.0.1', 'unknown protocol "sctp" (expected tcp, udp or icmp)'],
    ['allow sctp:any', 'unknown protocol "sctp" (expected tcp, udp or icmp)'],
    ['allow', 'missing target after "allow"'],
    ['permit 10.0.0.1', 'unknown action "permit" (expected allow, deny or default)'],
    ['allow 10.0.0.1 10.0.0.2', 'unexpected "10.0.0.2" after the target (one target per rule)'],
    ['allow 10.0.0.1#comment', 'a comment needs white space before "#"'],
    ['default', '"default" takes one word: allow or deny'],
    ['default reject', '"default" takes one word: allow or deny'],
    ['default allow deny', '"default" takes one word: allow or deny'],
    ['allow *', 'invalid name pattern "*": "*" is allowed only as a whole first label ("*.example.com")'],
    ['allow *example.com', 'invalid name pattern "*example.com": "*" is allowed only as a whole first label ("*.example.com")'],
    ['allow a.*.example.com', 'invalid name pattern "a.*.example.com": "*" is allowed only as a whole first label ("*.example.com")'],
    ['allow *.*.example.com', 'invalid name pattern "*.*.example.com": "*" is allowed only as a whole first label ("*.example.com")'],
    ['allow *.', 'invalid name pattern "*.": empty name'],
    ['allow a..example', 'invalid name "a..example": empty label'],
    ['allow .example', 'invalid name ".example": empty label'],
    ['allow ex@mple.com', 'invalid name "ex@mple.com": character "@" is not allowed in a name'],
    ['allow bücher.example', 'invalid name "bücher.example": only ASCII is allowed (write an internationalized name in its xn-- form)'],
    [`allow ${'a'.repeat(64)}.example`, `invalid name "${'a'.repeat(64)}.example": a label is longer than 63 characters`],
    [`allow ${'abcdefghi.'.repeat(26)}com`, `invalid name "${'abcdefghi.'.repeat(26)}com": longer than 253 characters`],
    ['allow any.', 'invalid name "any.": "any" is a keyword'],
    ['allow udp.:53', 'invalid name "udp.": "udp" is a keyword'],
    ['allow [any]', 'brackets are only for IPv6 addresses, not "any"'],
  ];
  for (const [line, reason] of goldens) {
    it(`${JSON.stringify(line)}: ${reason}`, () => {
      const r = parsePolicy([line]);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.errors).toEqual([{ line: 1, text: line, reason, message: `line 1: ${JSON.stringify(line)}: ${reason}` }]);
    });
  }

  it('gives the example message of the spec word for word', () => {
    const r = parsePolicy('# x\n\nallow tcp:10.0.0.0/33:443\n');
    expect(r.ok ? [] : r.errors.map((e) => e.message)).toEqual(['line 3: "allow tcp:10.0.0.0/33:443": prefix length 33 is out of range (0-32)']);
  });

  it('reports every error of a file with its line number, and no policy', () => {
    const text = [
      '# registry only', // 1
      'default deny', // 2
      'allow tcp:registry.example:443', // 3
      'allow tcp:10.0.0.0/33:443', // 4
      '', // 5
      'deny privat e', // 6
      'allow icmp:any:1', // 7
      'default allow', // 8
      'allow 198.51.100.0/24', // 9
      'alow 1.2.3.4', // 10
    ].join('\n');
    const r = parsePolicy(text);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.message)).toEqual([
      'line 4: "allow tcp:10.0.0.0/33:443": prefix length 33 is out of range (0-32)',
      'line 6: "deny privat e": unexpected "e" after the target (one target per rule)',
      'line 7: "allow icmp:any:1": icmp has no ports',
      'line 8: "default allow": the default is already set on line 2',
      'line 10: "alow 1.2.3.4": unknown action "alow" (expected allow, deny or default)',
    ]);
    expect(r.errors.map((e) => e.line)).toEqual([4, 6, 7, 8, 10]);
  });

  it('numbers list elements from 1 and refuses a rule spanning lines', () => {
    const r = parsePolicy(['allow 10.0.0.1', 'allow 10.0.0.2\nallow 10.0.0.3', 'deny 10.0.0.300']);
    expect(r.ok ? [] : r.errors.map((e) => e.message)).toEqual([
      'line 2: "allow 10.0.0.2\\nallow 10.0.0.3": a rule must be a single line',
      'line 3: "deny 10.0.0.300": invalid IPv4 address "10.0.0.300"',
    ]);
  });

  it('refuses list elements that are not strings (API input is JSON)', () => {
    const r = parsePolicy(['allow 10.0.0.1', 42 as unknown as string, null as unknown as string]);
    expect(r.ok ? [] : r.errors.map((e) => e.message)).toEqual(['line 2: a rule must be a string', 'line 3: a rule must be a string']);
  });

  it('throws a UsernetError with a stable code and every error', () => {
    let caught: unknown;
    try {
      parsePolicyOrThrow(['allow 10.0.0.1', 'allow 10.0.0.0/40', 'deny x..y']);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PolicyError);
    expect(caught).toBeInstanceOf(UsernetError);
    const err = caught as PolicyError;
    expect(err.code).toBe('ERR_USERNET_INVALID_POLICY');
    expect(err.errors).toHaveLength(2);
    expect(err.message).toBe('line 2: "allow 10.0.0.0/40": prefix length 40 is out of range (0-32)\nline 3: "deny x..y": invalid name "x..y": empty label');
  });

  it('keeps the thrown message short when there are many errors', () => {
    const lines = Array.from({ length: 25 }, (_, i) => `bad ${i}`);
    const err = (() => {
      try {
        parsePolicyOrThrow(lines);
      } catch (e) {
        return e as PolicyError;
      }
      throw new Error('did not throw');
    })();
    expect(err.errors).toHaveLength(25);
    const shown = err.message.split('\n');
    expect(shown).toHaveLength(21);
    expect(shown[20]).toBe('... and 5 more errors');
  });
});
