import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { Ipv6Ids } from '../../src/ip/ipv6-ids.js';
import { EgressPolicy, NameBindings, Proto, isPrivate4, isPrivate6, newPolicyDecision } from '../../src/policy/index.js';
import type { PolicyDecision } from '../../src/policy/index.js';
import { parseIpv4 } from '../../src/wire/ipv4-address.js';
import { parseIpv6 } from '../../src/wire/ipv6-address.js';

const { TCP, UDP, ICMP } = Proto;
const v4 = (t: string): number => {
  const a = parseIpv4(t);
  if (a === undefined) throw new Error(`bad test address ${t}`);
  return a;
};
const v6 = (t: string): Uint8Array => {
  const a = parseIpv6(t);
  if (a === undefined) throw new Error(`bad test address ${t}`);
  return a;
};

/** "allow#2", "deny#-1": the verdict and the deciding rule. */
function verdict(p: EgressPolicy, proto: Proto, addr: string, port = 0, now = 0): string {
  const out: PolicyDecision = newPolicyDecision();
  if (addr.includes(':')) p.check6(proto, v6(addr), 0, port, now, out);
  else p.check4(proto, v4(addr), port, now, out);
  return `${out.allowed ? 'allow' : 'deny'}#${out.rule}`;
}

describe('EgressPolicy: order and default', () => {
  it('first match wins, then the default', () => {
    const p = EgressPolicy.parse(['allow tcp:198.51.100.7:443', 'deny 198.51.100.0/24', 'allow 198.51.100.8', 'default allow']);
    expect(verdict(p, TCP, '198.51.100.7', 443)).toBe('allow#0');
    expect(verdict(p, TCP, '198.51.100.7', 80)).toBe('deny#1');
    // Rule 2 never decides: rule 1 is first for the whole /24.
    expect(verdict(p, TCP, '198.51.100.8', 80)).toBe('deny#1');
    expect(verdict(p, TCP, '203.0.113.1', 80)).toBe('allow#-1');
  });

  it('defaults to allow, and to deny when told', () => {
    expect(verdict(EgressPolicy.parse([]), UDP, '203.0.113.1', 53)).toBe('allow#-1');
    expect(verdict(EgressPolicy.parse(['default deny']), UDP, '203.0.113.1', 53)).toBe('deny#-1');
    expect(verdict(EgressPolicy.parse(['default deny']), ICMP, '2001:db8::1')).toBe('deny#-1');
  });

  it('`any` covers both families, all protocols', () => {
    const p = EgressPolicy.parse(['deny any', 'allow 198.51.100.1']);
    expect(verdict(p, TCP, '198.51.100.1', 80)).toBe('deny#0');
    expect(verdict(p, ICMP, '2001:db8::1')).toBe('deny#0');
    expect(verdict(p, UDP, '::ffff:198.51.100.1', 53)).toBe('deny#0');
  });

  it('resolves the stack`s numbers: an IPv4 u32 or an IPv6 id', () => {
    const ids = new Ipv6Ids();
    const p = EgressPolicy.parse(['allow 2001:db8::/32', 'allow 198.51.100.1', 'default deny']);
    const out = newPolicyDecision();
    expect(p.check(TCP, ids.id(v6('2001:db8::5'), 0), 80, 0, ids, out)).toEqual({ allowed: true, rule: 0 });
    expect(p.check(TCP, ids.id(v6('2001:db9::5'), 0), 80, 0, ids, out)).toEqual({ allowed: false, rule: -1 });
    expect(p.check(TCP, v4('198.51.100.1'), 80, 0, ids, out)).toEqual({ allowed: true, rule: 1 });
  });
});

describe('EgressPolicy: CIDR edges', () => {
  it('/0 matches every address of its family and none of the other', () => {
    const p = EgressPolicy.parse(['deny 0.0.0.0/0', 'deny ::/0']);
    expect(verdict(p, TCP, '0.0.0.0', 1)).toBe('deny#0');
    expect(verdict(p, TCP, '255.255.255.255', 1)).toBe('deny#0');
    expect(verdict(p, TCP, '::', 1)).toBe('deny#1');
    expect(verdict(p, TCP, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 1)).toBe('deny#1');
  });

  it('/32 and /128 match exactly one address', () => {
    const p = EgressPolicy.parse(['deny 198.51.100.7/32', 'deny 2001:db8::7/128']);
    expect(verdict(p, TCP, '198.51.100.7', 1)).toBe('deny#0');
    expect(verdict(p, TCP, '198.51.100.6', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '198.51.100.8', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '2001:db8::7', 1)).toBe('deny#1');
    expect(verdict(p, TCP, '2001:db8::6', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '2001:db8::8', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '2001:db8::7:0', 1)).toBe('allow#-1');
  });

  it('matches the first and last address of a range, not the neighbours', () => {
    const p = EgressPolicy.parse(['deny 198.51.100.0/24', 'deny 2001:db8:8000::/33', 'deny 203.0.113.64/26']);
    expect(verdict(p, TCP, '198.51.99.255', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '198.51.100.0', 1)).toBe('deny#0');
    expect(verdict(p, TCP, '198.51.100.255', 1)).toBe('deny#0');
    expect(verdict(p, TCP, '198.51.101.0', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '2001:db8:7fff:ffff:ffff:ffff:ffff:ffff', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '2001:db8:8000::', 1)).toBe('deny#1');
    expect(verdict(p, TCP, '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 1)).toBe('deny#1');
    expect(verdict(p, TCP, '2001:db9::', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '203.0.113.63', 1)).toBe('allow#-1');
    expect(verdict(p, TCP, '203.0.113.64', 1)).toBe('deny#2');
    expect(verdict(p, TCP, '203.0.113.127', 1)).toBe('deny#2');
    expect(verdict(p, TCP, '203.0.113.128', 1)).toBe('allow#-1');
  });

  it('handles addresses with the top bit set (u32 above 2^31)', () => {
    const p = EgressPolicy.parse(['deny 240.0.0.0/4', 'deny 128.0.0.0/1']);
    expect(verdict(p, TCP, '255.255.255.254', 1)).toBe('deny#0');
    expect(verdict(p, TCP, '239.255.255.255', 1)).toBe('deny#1');
    expect(verdict(p, TCP, '127.255.255.255', 1)).toBe('allow#-1');
  });

  it('never crosses families: IPv4 rules and IPv4-mapped IPv6, IPv6 rules and IPv4', () => {
    const p = EgressPolicy.parse(['deny 198.51.100.0/24', 'deny ::/96', 'deny ::ffff:0:0/96', 'default allow']);
    expect(verdict(p, TCP, '::ffff:198.51.100.1', 1)).toBe('deny#2');
    expect(verdict(EgressPolicy.parse(['deny 198.51.100.0/24']), TCP, '::ffff:198.51.100.1', 1)).toBe('allow#-1');
    expect(verdict(EgressPolicy.parse(['deny ::/96', 'deny ::ffff:0:0/96']), TCP, '198.51.100.1', 1)).toBe('allow#-1');
    expect(verdict(EgressPolicy.parse(['deny ::/0']), TCP, '0.0.0.0', 1)).toBe('allow#-1');
  });
});

describe('EgressPolicy: protocols and ports', () => {
  it('a port without a protocol is tcp and udp, never icmp', () => {
    const p = EgressPolicy.parse(['allow 198.51.100.1:53', 'default deny']);
    expect(verdict(p, TCP, '198.51.100.1', 53)).toBe('allow#0');
    expect(verdict(p, UDP, '198.51.100.1', 53)).toBe('allow#0');
    expect(verdict(p, ICMP, '198.51.100.1', 53)).toBe('deny#-1');
    expect(verdict(p, ICMP, '198.51.100.1', 0)).toBe('deny#-1');
  });

  it('no protocol and no port is every protocol and every port, 0 included', () => {
    const p = EgressPolicy.parse(['allow 198.51.100.1', 'default deny']);
    expect(verdict(p, TCP, '198.51.100.1', 0)).toBe('allow#0');
    expect(verdict(p, UDP, '198.51.100.1', 65535)).toBe('allow#0');
    expect(verdict(p, ICMP, '198.51.100.1')).toBe('allow#0');
  });

  it('a protocol limits the rule to it', () => {
    const p = EgressPolicy.parse(['allow tcp:198.51.100.1', 'allow udp:[2001:db8::1]:53', 'allow icmp:any', 'default deny']);
    expect(verdict(p, TCP, '198.51.100.1', 22)).toBe('allow#0');
    expect(verdict(p, UDP, '198.51.100.1', 22)).toBe('deny#-1');
    expect(verdict(p, UDP, '2001:db8::1', 53)).toBe('allow#1');
    expect(verdict(p, TCP, '2001:db8::1', 53)).toBe('deny#-1');
    expect(verdict(p, ICMP, '198.51.100.1')).toBe('allow#2');
    expect(verdict(p, ICMP, '2001:db8::99')).toBe('allow#2');
  });

  it('port ranges include both ends', () => {
    const p = EgressPolicy.parse(['allow tcp:any:8000-8080', 'allow tcp:any:1', 'allow tcp:any:65535', 'default deny']);
    expect(verdict(p, TCP, '203.0.113.1', 7999)).toBe('deny#-1');
    expect(verdict(p, TCP, '203.0.113.1', 8000)).toBe('allow#0');
    expect(verdict(p, TCP, '203.0.113.1', 8080)).toBe('allow#0');
    expect(verdict(p, TCP, '203.0.113.1', 8081)).toBe('deny#-1');
    expect(verdict(p, TCP, '203.0.113.1', 0)).toBe('deny#-1');
    expect(verdict(p, TCP, '203.0.113.1', 1)).toBe('allow#1');
    expect(verdict(p, TCP, '203.0.113.1', 2)).toBe('deny#-1');
    expect(verdict(p, TCP, '203.0.113.1', 65535)).toBe('allow#2');
  });
});

describe('EgressPolicy: private', () => {
  const inside = [
    '10.0.0.0',
    '10.255.255.255',
    '172.16.0.0',
    '172.31.255.255',
    '192.168.0.0',
    '192.168.255.255',
    '100.64.0.0',
    '100.127.255.255',
    '169.254.0.0',
    '169.254.169.254',
    '169.254.255.255',
    'fc00::',
    'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    'fd00::2',
    'fe80::',
    'fe80::1',
    'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  ];
  const outside = [
    '9.255.255.255',
    '11.0.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '192.167.255.255',
    '192.169.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '169.253.255.255',
    '169.255.0.0',
    '127.0.0.1',
    '0.0.0.0',
    '198.51.100.1',
    'fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    'fe00::',
    'fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
    'fec0::',
    '::1',
    '::ffff:10.0.0.1',
    '2001:db8::1',
  ];
  const p = EgressPolicy.parse(['deny private']);
  for (const a of inside) {
    it(`${a} is private`, () => {
      expect(verdict(p, TCP, a, 443)).toBe('deny#0');
      expect(a.includes(':') ? isPrivate6(v6(a), 0) : isPrivate4(v4(a))).toBe(true);
    });
  }
  for (const a of outside) {
    it(`${a} is not private`, () => {
      expect(verdict(p, TCP, a, 443)).toBe('allow#-1');
      expect(a.includes(':') ? isPrivate6(v6(a), 0) : isPrivate4(v4(a))).toBe(false);
    });
  }
});

describe('EgressPolicy: name rules', () => {
  it('match an address the DNS answered for the name, for the rule`s protocol and ports only', () => {
    const names = new NameBindings();
    const clock = new ManualClock();
    const p = EgressPolicy.parse(['allow tcp:registry.example:443', 'default deny'], names);
    expect(verdict(p, TCP, '198.51.100.7', 443, clock.now())).toBe('deny#-1');
    names.record('registry.example', [v4('198.51.100.7'), v6('2001:db8::7')], 300, clock.now());
    expect(verdict(p, TCP, '198.51.100.7', 443, clock.now())).toBe('allow#0');
    expect(verdict(p, TCP, '2001:db8::7', 443, clock.now())).toBe('allow#0');
    expect(verdict(p, TCP, '198.51.100.7', 80, clock.now())).toBe('deny#-1');
    expect(verdict(p, UDP, '198.51.100.7', 443, clock.now())).toBe('deny#-1');
    expect(verdict(p, ICMP, '198.51.100.7', 0, clock.now())).toBe('deny#-1');
    expect(verdict(p, TCP, '198.51.100.8', 443, clock.now())).toBe('deny#-1');
    clock.advance(299_999);
    expect(verdict(p, TCP, '198.51.100.7', 443, clock.now())).toBe('allow#0');
    clock.advance(1);
    expect(verdict(p, TCP, '198.51.100.7', 443, clock.now())).toBe('deny#-1');
  });

  it('*. suffix rules match names below, not the apex; names are case-insensitive', () => {
    const names = new NameBindings();
    const p = EgressPolicy.parse(['allow *.example.com', 'default deny'], names);
    names.record('WWW.Example.COM.', [v4('198.51.100.1')], 300, 0);
    names.record('example.com', [v4('198.51.100.2')], 300, 0);
    names.record('notexample.com', [v4('198.51.100.3')], 300, 0);
    expect(verdict(p, TCP, '198.51.100.1', 443)).toBe('allow#0');
    expect(verdict(p, TCP, '198.51.100.2', 443)).toBe('deny#-1');
    expect(verdict(p, TCP, '198.51.100.3', 443)).toBe('deny#-1');
  });

  it('a CNAME chain lets a rule on the queried name match the final address', () => {
    const names = new NameBindings();
    const p = EgressPolicy.parse(['allow tcp:registry.example:443', 'default deny'], names);
    names.record(['registry.example', 'registry.example.cdn.example.net'], [v4('198.51.100.50')], 20, 0);
    expect(verdict(p, TCP, '198.51.100.50', 443, 59_999)).toBe('allow#0');
    expect(verdict(p, TCP, '198.51.100.50', 443, 60_000)).toBe('deny#-1'); // the 60 s floor is over
  });

  it('an earlier deny still wins over a name allow, and address rules after name rules still apply', () => {
    const names = new NameBindings();
    const p = EgressPolicy.parse(['deny private', 'allow registry.example', 'allow 198.51.100.0/24', 'default deny'], names);
    names.record('registry.example', [v4('10.1.2.3'), v4('203.0.113.9')], 300, 0);
    expect(verdict(p, TCP, '10.1.2.3', 443)).toBe('deny#0');
    expect(verdict(p, TCP, '203.0.113.9', 443)).toBe('allow#1');
    expect(verdict(p, TCP, '198.51.100.9', 443)).toBe('allow#2');
  });

  it('a new policy over the same table sees the same bindings', () => {
    const names = new NameBindings();
    names.record('registry.example', [v4('198.51.100.7')], 300, 0);
    const before = EgressPolicy.parse(['default deny'], names);
    const after = EgressPolicy.parse(['default deny', 'allow registry.example'], names);
    expect(verdict(before, TCP, '198.51.100.7', 443)).toBe('deny#-1');
    expect(verdict(after, TCP, '198.51.100.7', 443)).toBe('allow#0');
  });
});

describe('EgressPolicy: allowsName', () => {
  it('under default deny: only names an allow rule (or allow any) matches', () => {
    const p = EgressPolicy.parse(['default deny', 'allow tcp:registry.example:443', 'allow *.pkg.example', 'allow 198.51.100.0/24']);
    expect(p.allowsName('registry.example')).toBe(true);
    expect(p.allowsName('Registry.Example.')).toBe(true);
    expect(p.allowsName('a.pkg.example')).toBe(true);
    expect(p.allowsName('pkg.example')).toBe(false);
    expect(p.allowsName('other.example')).toBe(false);
    expect(EgressPolicy.parse(['default deny', 'allow tcp:any:443']).allowsName('other.example')).toBe(true);
  });

  it('a deny of every protocol and port before any allow refuses the name; a narrower one does not', () => {
    const full = EgressPolicy.parse(['deny evil.pkg.example', 'allow *.pkg.example', 'default deny']);
    expect(full.allowsName('evil.pkg.example')).toBe(false);
    expect(full.allowsName('good.pkg.example')).toBe(true);
    const narrow = EgressPolicy.parse(['deny tcp:evil.pkg.example:443', 'allow *.pkg.example', 'default deny']);
    expect(narrow.allowsName('evil.pkg.example')).toBe(true);
    const after = EgressPolicy.parse(['allow *.pkg.example', 'deny evil.pkg.example', 'default deny']);
    expect(after.allowsName('evil.pkg.example')).toBe(true);
  });

  it('under default allow: every name but those denied outright first', () => {
    const p = EgressPolicy.parse(['deny *.tracker.example', 'deny private', 'deny udp:dns.example']);
    expect(p.allowsName('x.tracker.example')).toBe(false);
    expect(p.allowsName('tracker.example')).toBe(true);
    expect(p.allowsName('dns.example')).toBe(true);
    expect(p.allowsName('anything.example')).toBe(true);
    expect(EgressPolicy.parse(['deny any', 'allow a.example']).allowsName('a.example')).toBe(false);
  });
});

describe('EgressPolicy: counters and canonical rules', () => {
  it('counts allows and denials per rule and for the default, and resets', () => {
    const p = EgressPolicy.parse(['deny 10.0.0.0/8', 'allow tcp:any:443', 'default deny']);
    verdict(p, TCP, '10.0.0.1', 443);
    verdict(p, UDP, '10.0.0.2', 53);
    verdict(p, TCP, '198.51.100.1', 443);
    verdict(p, TCP, '198.51.100.1', 80);
    verdict(p, TCP, '198.51.100.1', 80);
    verdict(p, ICMP, '2001:db8::1');
    expect(p.counters()).toEqual({
      default: { rule: 'default deny', allowed: 0, denied: 3 },
      rules: [
        { rule: 'deny 10.0.0.0/8', allowed: 0, denied: 2 },
        { rule: 'allow tcp:any:443', allowed: 1, denied: 0 },
      ],
    });
    p.resetCounters();
    expect(p.counters().default.denied).toBe(0);
    expect(p.counters().rules[0].denied).toBe(0);
    verdict(p, TCP, '198.51.100.1', 443);
    expect(p.counters().rules[1].allowed).toBe(1);
  });

  it('gives its rules back in canonical form', () => {
    const p = EgressPolicy.parse(['ALLOW TCP:Registry.Example.:443 # the registry', '', 'default deny', 'deny [2001:DB8::/32]:1-1024']);
    expect(p.rules()).toEqual(['default deny', 'allow tcp:registry.example:443', 'deny [2001:db8::/32]:1-1024']);
    expect(p.defaultAction).toBe('deny');
  });

  it('throws the parse errors with their code', () => {
    expect(() => EgressPolicy.parse(['allow 10.0.0.0/33'])).toThrow(expect.objectContaining({ code: 'ERR_USERNET_INVALID_POLICY' }));
  });
});
