/**
 * The egress policy's matcher: whether a new guest flow (TCP, UDP or ICMP
 * echo) may go to a destination, and which rule said so.
 *
 * Theory of operation
 * -------------------
 * Built once from a parsed policy (rules.ts) and the name-binding table
 * the DNS forwarder feeds (name-bindings.ts); a new policy (set_policy) is
 * a new EgressPolicy over the same table, swapped in whole, so a flow sees
 * either the old policy or the new one.
 *
 * Called once per new flow, so cheap but not per packet: no strings and
 * no allocation. Addresses come as the stack holds them: IPv4 as a u32 in
 * host order (`check4`), IPv6 as 16 bytes at an offset (`check6`), or the
 * stack's single number, IPv4 u32 or negative IPv6 id with the table that
 * resolves it (`check`, src/ip/ipv6-ids.ts). The protocol is a Proto
 * number; the port is the destination port (ignored for ICMP, for which no
 * rule has ports). The result fills a caller-owned PolicyDecision: allowed,
 * and the index of the deciding rule, or -1 for the default.
 *
 * Each rule is compiled to one flat object of one shape: the protocol bit
 * set, the port range (0-65535 when the rule has none), and its target as a
 * kind with a IPv4 network and mask, an IPv6 network and prefix length, or
 * a name pattern. Rules are tried in order; the first whose protocol, port
 * and target all match decides, else the default. The families never
 * cross: an IPv4 rule never matches an IPv6 address (IPv4-mapped ones
 * included) and the other way round; `any` and `private` cover both.
 *
 * A name rule matches an address when the name table holds a live binding
 * of that address to a name the rule's pattern matches; the address is
 * looked up once per check, at the first name rule that gets that far.
 *
 * `allowsName(name)` answers the forwarder's question before it resolves:
 * could any flow to this name be allowed? Walking the rules in order, the
 * first name rule matching the name (or `any`) that allows decides yes;
 * one that denies every protocol and port decides no (narrower denials
 * are passed over); if none decides, the default does. Address rules are
 * not consulted (the addresses are not known yet): under `default deny`
 * a name that only an address rule would let through is refused.
 *
 * Counters: per rule and for the default, the flows allowed and denied by
 * `check*`, in Float64Arrays (no overflow in practice); `counters()` gives
 * a plain object for `stats`, `resetCounters()` zeroes them. They belong to
 * this policy and start at zero with a new one.
 */
import { isLinkLocal6, prefixMatch6 } from '../wire/ipv6-address.js';
import { prefixToNetmask } from '../wire/ipv4-address.js';
import type { AddressEntry, NamePattern } from './name-bindings.js';
import { NameBindings, exactName, nameMatches, normalizeName, suffixPattern } from './name-bindings.js';
import type { Action, Policy, Proto } from './rules.js';
import { PROTO_MASK_ALL, formatPolicy, formatRule, parsePolicyOrThrow } from './rules.js';

/** What a check decided; the caller owns it and passes it in. */
export interface PolicyDecision {
  allowed: boolean;
  /** Index of the deciding rule in the policy's rules, or -1 for the default. */
  rule: number;
}

export function newPolicyDecision(): PolicyDecision {
  return { allowed: false, rule: -1 };
}

export interface RuleCounters {
  /** The rule's canonical text ("default allow" for the default). */
  rule: string;
  allowed: number;
  denied: number;
}

export interface PolicyCounters {
  default: RuleCounters;
  rules: RuleCounters[];
}

/** What `check` needs of src/ip/ipv6-ids.ts to resolve an IPv6 id. */
export interface Ipv6Bytes {
  bytes(id: number): Uint8Array;
}

const Kind = { ANY: 0, PRIVATE: 1, V4: 2, V6: 3, NAME: 4 } as const;

const NO_V6 = new Uint8Array(16);
const NO_NAME: NamePattern = { exact: null, dotSuffix: null };

class CompiledRule {
  constructor(
    readonly allow: boolean,
    readonly protocols: number,
    readonly portLo: number,
    readonly portHi: number,
    readonly kind: number,
    readonly v4Network: number,
    readonly v4Mask: number,
    readonly v6Network: Uint8Array,
    readonly v6PrefixLength: number,
    readonly name: NamePattern,
  ) {}
}

export class EgressPolicy {
  readonly policy: Policy;
  readonly defaultAllows: boolean;
  private readonly compiled: CompiledRule[];
  private readonly allowedCounts: Float64Array;
  private readonly deniedCounts: Float64Array;

  constructor(
    policy: Policy,
    readonly bindings: NameBindings = new NameBindings(),
  ) {
    this.policy = policy;
    this.defaultAllows = policy.defaultAction === 'allow';
    this.compiled = policy.rules.map(compile);
    // Slot rules.length is the default's.
    this.allowedCounts = new Float64Array(policy.rules.length + 1);
    this.deniedCounts = new Float64Array(policy.rules.length + 1);
  }

  /** Parses (throwing PolicyError, code ERR_USERNET_INVALID_POLICY, with every error) and builds. */
  static parse(input: string | readonly string[], bindings: NameBindings = new NameBindings()): EgressPolicy {
    return new EgressPolicy(parsePolicyOrThrow(input), bindings);
  }

  get defaultAction(): Action {
    return this.policy.defaultAction;
  }

  /** Canonical lines, `default …` first (get_policy). */
  rules(): string[] {
    return formatPolicy(this.policy);
  }

  /** A flow to the IPv4 address `addr` (u32, host order). Counts the decision. */
  check4(proto: Proto, addr: number, port: number, nowMs: number, out: PolicyDecision): PolicyDecision {
    return this.checkAddress(proto, addr, null, 0, port, nowMs, out);
  }

  /** A flow to the IPv6 address at buf[off..off+16]. Counts the decision. */
  check6(proto: Proto, buf: Uint8Array, off: number, port: number, nowMs: number, out: PolicyDecision): PolicyDecision {
    return this.checkAddress(proto, 0, buf, off, port, nowMs, out);
  }

  /** check4 (`v6` null, the address in `v4`) and check6 (the address at v6[off..off+16]). */
  private checkAddress(proto: Proto, v4: number, v6: Uint8Array | null, off: number, port: number, nowMs: number, out: PolicyDecision): PolicyDecision {
    const rules = this.compiled;
    const bit = 1 << proto;
    let entry: AddressEntry | null | undefined;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if ((r.protocols & bit) === 0 || port < r.portLo || port > r.portHi) continue;
      let hit: boolean;
      switch (r.kind) {
        case Kind.ANY:
          hit = true;
          break;
        case Kind.PRIVATE:
          hit = v6 === null ? isPrivate4(v4) : isPrivate6(v6, off);
          break;
        case Kind.V4:
          hit = v6 === null && ((v4 & r.v4Mask) >>> 0) === r.v4Network;
          break;
        case Kind.V6:
          hit = v6 !== null && prefixMatch6(v6, off, r.v6Network, 0, r.v6PrefixLength);
          break;
        case Kind.NAME:
          if (entry === undefined) entry = v6 === null ? this.bindings.find4(v4) : this.bindings.find6(v6, off);
          hit = entry !== null && this.bindings.boundTo(entry, r.name, nowMs);
          break;
        default:
          hit = false;
      }
      if (hit) return this.decide(i, r.allow, out);
    }
    return this.decide(-1, this.defaultAllows, out);
  }

  /** A flow to the stack's address number: an IPv4 u32 (>= 0) or an IPv6 id (< 0) of `ids`. */
  check(proto: Proto, dst: number, port: number, nowMs: number, ids: Ipv6Bytes, out: PolicyDecision): PolicyDecision {
    return dst < 0 ? this.check6(proto, ids.bytes(dst), 0, port, nowMs, out) : this.check4(proto, dst, port, nowMs, out);
  }

  /**
   * Whether some flow to `name` could be allowed (see the top of this file):
   * false tells the forwarder to answer NXDOMAIN.
   */
  allowsName(name: string): boolean {
    const n = normalizeName(name);
    const rules = this.compiled;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (r.kind !== Kind.ANY && !(r.kind === Kind.NAME && nameMatches(r.name, n))) continue;
      if (r.allow) return true;
      if (r.protocols === PROTO_MASK_ALL && r.portLo === 0 && r.portHi === 65535) return false;
    }
    return this.defaultAllows;
  }

  counters(): PolicyCounters {
    const n = this.compiled.length;
    return {
      default: { rule: `default ${this.policy.defaultAction}`, allowed: this.allowedCounts[n], denied: this.deniedCounts[n] },
      rules: this.policy.rules.map((r, i) => ({ rule: formatRule(r), allowed: this.allowedCounts[i], denied: this.deniedCounts[i] })),
    };
  }

  resetCounters(): void {
    this.allowedCounts.fill(0);
    this.deniedCounts.fill(0);
  }

  private decide(rule: number, allowed: boolean, out: PolicyDecision): PolicyDecision {
    const slot = rule < 0 ? this.compiled.length : rule;
    if (allowed) this.allowedCounts[slot]++;
    else this.deniedCounts[slot]++;
    out.allowed = allowed;
    out.rule = rule;
    return out;
  }
}

function compile(r: Policy['rules'][number]): CompiledRule {
  const lo = r.ports === null ? 0 : r.ports.lo;
  const hi = r.ports === null ? 65535 : r.ports.hi;
  const allow = r.action === 'allow';
  const t = r.target;
  switch (t.kind) {
    case 'any':
      return new CompiledRule(allow, r.protocols, lo, hi, Kind.ANY, 0, 0, NO_V6, 0, NO_NAME);
    case 'private':
      return new CompiledRule(allow, r.protocols, lo, hi, Kind.PRIVATE, 0, 0, NO_V6, 0, NO_NAME);
    case 'ipv4':
      return new CompiledRule(allow, r.protocols, lo, hi, Kind.V4, t.network, prefixToNetmask(t.prefixLength), NO_V6, 0, NO_NAME);
    case 'ipv6':
      return new CompiledRule(allow, r.protocols, lo, hi, Kind.V6, 0, 0, t.network, t.prefixLength, NO_NAME);
    case 'name':
      return new CompiledRule(allow, r.protocols, lo, hi, Kind.NAME, 0, 0, NO_V6, 0, exactName(t.name));
    case 'suffix':
      return new CompiledRule(allow, r.protocols, lo, hi, Kind.NAME, 0, 0, NO_V6, 0, suffixPattern(t.suffix));
  }
}

/**
 * `private`, IPv4: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
 * 100.64.0.0/10 (shared address space), 169.254.0.0/16 (link-local, with
 * the cloud metadata address 169.254.169.254).
 */
export function isPrivate4(a: number): boolean {
  const top = a >>> 24;
  if (top === 10) return true;
  const top16 = a >>> 16;
  return (a & 0xfff0_0000) >>> 0 === 0xac10_0000 || top16 === 0xc0a8 || (a & 0xffc0_0000) >>> 0 === 0x6440_0000 || top16 === 0xa9fe;
}

/** `private`, IPv6: fc00::/7 (unique local), fe80::/10 (link-local). */
export function isPrivate6(b: Uint8Array, o: number): boolean {
  return (b[o] & 0xfe) === 0xfc || isLinkLocal6(b, o);
}
