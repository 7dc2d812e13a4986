/**
 * The egress policy's grammar: rule text in, a structured policy out, and
 * back to canonical text (the form `get_policy` answers with).
 *
 * Theory of operation
 * -------------------
 * A policy is an ordered list of rules and a default. One rule per line:
 *
 *   allow|deny [tcp:|udp:|icmp:]TARGET[:PORT[-PORT]]
 *   default allow|deny
 *
 *   TARGET  an IPv4 address or CIDR          10.1.2.3   10.0.0.0/8
 *           an IPv6 address or CIDR          2001:db8::1   2001:db8::/32
 *             (in brackets when a port follows: [2001:db8::/32]:443;
 *             brackets are optional without one, and then every colon
 *             belongs to the address: 2001:db8::1:443 is an address)
 *           a DNS name                       registry.example   Registry.Example.
 *           a suffix pattern                 *.example.com  (names strictly
 *             below example.com: a.example.com and a.b.example.com, never
 *             example.com itself; add a second rule for the apex)
 *           any                              every address of both families
 *           private                          10.0.0.0/8, 172.16.0.0/12,
 *             192.168.0.0/16, 100.64.0.0/10, 169.254.0.0/16 (the cloud
 *             metadata address 169.254.169.254), fc00::/7, fe80::/10; exactly
 *             these, nothing else (not loopback, not 0.0.0.0/8)
 *   PORT    1-65535, a range lo-hi with lo <= hi
 *
 * Protocols: none written means every protocol (tcp, udp and icmp), or tcp
 * and udp when a port is given; a port after `icmp:` is an error. A rule
 * without a port matches every port (including 0, which no range can name).
 *
 * Keywords, protocols, names and IPv6 hex are case-insensitive; names lose
 * one trailing dot. IPv4 text is the strict dotted quad (no leading zeros,
 * which inet_aton would read as octal). A CIDR must not have host bits set
 * (10.1.0.0/8 is an error that names 10.0.0.0/8): a typo there would
 * otherwise silently widen or narrow a rule.
 *
 * Comments: blank lines and lines whose first non-blank character is `#`;
 * also a trailing comment, a `#` preceded by white space (no valid rule
 * contains `#`). `default` may appear once, anywhere; without it the default
 * is allow.
 *
 * Parsing is all or nothing: `parsePolicy` returns either the whole policy or
 * every error (1-based line number, the line, the reason), never a partial
 * policy. The input is a text (a policy file) or a list of rule strings (the
 * API's and the CLI's), where element i is line i + 1 and a string holding
 * a line break is an error.
 *
 * Canonical form (`formatRule`, `formatPolicy`): lower case; the protocol
 * only when written; addresses in their shortest text (RFC 5952 for IPv6),
 * a full-length prefix dropped (10.1.2.3/32 → 10.1.2.3); IPv6 in brackets
 * only before a port; a single-port range as one port; `default` first.
 * Parsing the canonical form gives back the same policy.
 */
import { UsernetError } from '../errors.js';
import { ipv4ToString, parseIpv4, prefixToNetmask } from '../wire/ipv4-address.js';
import { ipv6ToString, parseIpv6, prefixMatch6 } from '../wire/ipv6-address.js';

/** Flow protocols, as the matcher takes them (a small number, not a string). */
export const Proto = { TCP: 0, UDP: 1, ICMP: 2 } as const;
export type Proto = (typeof Proto)[keyof typeof Proto];

/** Bit sets of protocols (1 << Proto). */
export const PROTO_MASK_ALL = (1 << Proto.TCP) | (1 << Proto.UDP) | (1 << Proto.ICMP);
export const PROTO_MASK_PORTED = (1 << Proto.TCP) | (1 << Proto.UDP);

export type Action = 'allow' | 'deny';
export type ProtocolName = 'tcp' | 'udp' | 'icmp';

export type Target =
  | { readonly kind: 'any' }
  | { readonly kind: 'private' }
  /** network: host order u32 with no host bits; prefixLength 0-32. */
  | { readonly kind: 'ipv4'; readonly network: number; readonly prefixLength: number }
  /** network: 16 bytes with no host bits; prefixLength 0-128. */
  | { readonly kind: 'ipv6'; readonly network: Uint8Array; readonly prefixLength: number }
  /** name: lower case, no trailing dot. */
  | { readonly kind: 'name'; readonly name: string }
  /** `*.example.com`: suffix is `example.com` (lower case, no trailing dot). */
  | { readonly kind: 'suffix'; readonly suffix: string };

export interface Rule {
  readonly action: Action;
  /** The protocol as written, or null for none. */
  readonly protocol: ProtocolName | null;
  /** The protocols the rule applies to: a bit set of 1 << Proto. */
  readonly protocols: number;
  readonly target: Target;
  /** Inclusive port range, or null for every port (and for icmp). */
  readonly ports: { readonly lo: number; readonly hi: number } | null;
}

export interface Policy {
  readonly defaultAction: Action;
  readonly rules: readonly Rule[];
}

export interface PolicyLineError {
  /** 1-based line (or list element) number. */
  readonly line: number;
  /** The line as written (without its line break). */
  readonly text: string;
  readonly reason: string;
  /** `line 3: "allow tcp:10.0.0.0/33:443": prefix length 33 is out of range (0-32)` */
  readonly message: string;
}

export type PolicyParseResult = { readonly ok: true; readonly policy: Policy } | { readonly ok: false; readonly errors: readonly PolicyLineError[] };

/** Thrown by `parsePolicyOrThrow`: a UsernetError whose message lists the errors, one per line. */
export class PolicyError extends UsernetError {
  readonly errors: readonly PolicyLineError[];

  constructor(errors: readonly PolicyLineError[]) {
    const shown = errors.slice(0, MAX_ERRORS_IN_MESSAGE).map((e) => e.message);
    if (errors.length > MAX_ERRORS_IN_MESSAGE) shown.push(`... and ${errors.length - MAX_ERRORS_IN_MESSAGE} more errors`);
    super('ERR_USERNET_INVALID_POLICY', shown.join('\n'));
    this.errors = errors;
  }
}

const MAX_ERRORS_IN_MESSAGE = 20;

export const DEFAULT_POLICY: Policy = { defaultAction: 'allow', rules: [] };

/** A policy file's text, or a list of rule strings (element i is line i + 1). */
export function parsePolicy(input: string | readonly string[]): PolicyParseResult {
  const lines = typeof input === 'string' ? input.split(/\r?\n/) : input;
  const rules: Rule[] = [];
  const errors: PolicyLineError[] = [];
  let defaultAction: Action | null = null;
  let defaultLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i];
    const fail = (reason: string): void => {
      errors.push({ line: i + 1, text, reason, message: `line ${i + 1}: ${JSON.stringify(text)}: ${reason}` });
    };
    if (typeof text !== 'string') {
      errors.push({ line: i + 1, text: String(text), reason: 'a rule must be a string', message: `line ${i + 1}: a rule must be a string` });
      continue;
    }
    if (/[\r\n]/.test(text)) {
      fail('a rule must be a single line');
      continue;
    }
    const parsed = parseLine(text);
    if (parsed === null) continue;
    if (typeof parsed === 'string') {
      fail(parsed);
    } else if ('defaultAction' in parsed) {
      if (defaultAction !== null) fail(`the default is already set on line ${defaultLine}`);
      else {
        defaultAction = parsed.defaultAction;
        defaultLine = i + 1;
      }
    } else {
      rules.push(parsed);
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, policy: { defaultAction: defaultAction ?? 'allow', rules } };
}

/** As parsePolicy; throws PolicyError (code ERR_USERNET_INVALID_POLICY) listing every error. */
export function parsePolicyOrThrow(input: string | readonly string[]): Policy {
  const r = parsePolicy(input);
  if (!r.ok) throw new PolicyError(r.errors);
  return r.policy;
}

/**
 * One line: null for a blank or comment line, `{defaultAction}` for a
 * default line, the rule, or the reason it is invalid.
 */
export function parseLine(line: string): Rule | { defaultAction: Action } | string | null {
  let s = line.trim();
  if (s === '' || s.startsWith('#')) return null;
  const hash = s.search(/\s#/);
  if (hash >= 0) s = s.slice(0, hash).trim();
  if (s.includes('#')) return 'a comment needs white space before "#"';
  const words = s.split(/\s+/);
  const verb = words[0].toLowerCase();
  if (verb === 'default') {
    const what = words.length === 2 ? words[1].toLowerCase() : '';
    if (words.length !== 2 || (what !== 'allow' && what !== 'deny')) return '"default" takes one word: allow or deny';
    return { defaultAction: what };
  }
  if (verb !== 'allow' && verb !== 'deny') return `unknown action ${JSON.stringify(words[0])} (expected allow, deny or default)`;
  if (words.length === 1) return `missing target after ${JSON.stringify(verb)}`;
  if (words.length > 2) return `unexpected ${JSON.stringify(words[2])} after the target (one target per rule)`;
  return parseSpec(verb, words[1]);
}

const PROTOCOL_MASKS: Record<ProtocolName, number> = { tcp: 1 << Proto.TCP, udp: 1 << Proto.UDP, icmp: 1 << Proto.ICMP };

function parseSpec(action: Action, spec: string): Rule | string {
  let rest = spec.toLowerCase();
  let protocol: ProtocolName | null = null;
  const pm = /^(tcp|udp|icmp):/.exec(rest);
  if (pm !== null) {
    protocol = pm[1] as ProtocolName;
    rest = rest.slice(pm[0].length);
    if (rest === '') return `missing target after "${protocol}:"`;
  } else if (rest === 'tcp' || rest === 'udp' || rest === 'icmp') {
    return `"${rest}" is a protocol, not a target (write ${rest}:any)`;
  } else {
    const um = /^([a-z]+):(.*)$/.exec(rest);
    if (um !== null && /[.:[*]|^any$|^private$/.test(um[2]) && parseIpv6(rest.split('/')[0]) === undefined) return `unknown protocol ${JSON.stringify(um[1])} (expected tcp, udp or icmp)`;
  }

  let targetText: string;
  let portText: string | null = null;
  let bracketed = false;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return 'missing "]" after the IPv6 address';
    targetText = rest.slice(1, close);
    bracketed = true;
    const after = rest.slice(close + 1);
    if (after.startsWith(':')) portText = after.slice(1);
    else if (after !== '') return `unexpected ${JSON.stringify(after)} after "]" (expected ":PORT")`;
  } else {
    const colons = rest.split(':').length - 1;
    if (colons === 1) {
      const at = rest.indexOf(':');
      targetText = rest.slice(0, at);
      portText = rest.slice(at + 1);
      if (targetText === '') return 'missing target before ":"';
    } else {
      targetText = rest;
    }
  }

  const target = parseTarget(targetText, bracketed);
  if (typeof target === 'string') return target;

  let ports: { lo: number; hi: number } | null = null;
  if (portText !== null) {
    if (protocol === 'icmp') return 'icmp has no ports';
    const p = parsePorts(portText);
    if (typeof p === 'string') return p;
    ports = p;
  }
  const protocols = protocol !== null ? PROTOCOL_MASKS[protocol] : ports !== null ? PROTO_MASK_PORTED : PROTO_MASK_ALL;
  return { action, protocol, protocols, target, ports };
}

function parsePorts(text: string): { lo: number; hi: number } | string {
  if (text === '') return 'missing port after ":"';
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (m === null) return `invalid port ${JSON.stringify(text)} (expected PORT or PORT-PORT, 1-65535)`;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  for (const p of [lo, hi]) if (p < 1 || p > 65535) return `port ${p} is out of range (1-65535)`;
  if (lo > hi) return `port range ${lo}-${hi} is reversed (the low port comes first)`;
  return { lo, hi };
}

function parseTarget(text: string, bracketed: boolean): Target | string {
  if (text === '') return 'missing target';
  if (!bracketed && text === 'any') return { kind: 'any' };
  if (!bracketed && text === 'private') return { kind: 'private' };
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? null : text.slice(slash + 1);
  const v6 = bracketed || addrText.includes(':');
  if (!v6 && !bracketed && slash < 0 && !looksNumeric(text)) return parseNameTarget(text);
  if (v6) {
    const addr = parseIpv6(addrText);
    if (addr === undefined) {
      if (bracketed && !addrText.includes(':')) return `brackets are only for IPv6 addresses, not ${JSON.stringify(addrText)}`;
      return `invalid IPv6 address ${JSON.stringify(addrText)}${bracketed ? '' : ' (an IPv6 address before a port goes in brackets: [2001:db8::1]:443)'}`;
    }
    let prefixLength = 128;
    if (prefixText !== null) {
      const p = parsePrefix(prefixText, 128);
      if (typeof p === 'string') return p;
      prefixLength = p;
    }
    const network = new Uint8Array(16);
    copyPrefix6(addr, network, prefixLength);
    if (!equal16(addr, network)) {
      return `${ipv6ToString(addr)}/${prefixLength} has host bits set (did you mean ${ipv6ToString(network)}/${prefixLength}?)`;
    }
    return { kind: 'ipv6', network, prefixLength };
  }
  const addr = parseStrictIpv4(addrText);
  if (typeof addr === 'string') return addr;
  let prefixLength = 32;
  if (prefixText !== null) {
    const p = parsePrefix(prefixText, 32);
    if (typeof p === 'string') return p;
    prefixLength = p;
  }
  const network = (addr & prefixToNetmask(prefixLength)) >>> 0;
  if (network !== addr) {
    return `${ipv4ToString(addr)}/${prefixLength} has host bits set (did you mean ${ipv4ToString(network)}/${prefixLength}?)`;
  }
  return { kind: 'ipv4', network, prefixLength };
}

/** Digits and dots only, or a last label of digits: meant as an IPv4 address (no top-level domain is numeric). */
function looksNumeric(text: string): boolean {
  const t = text.endsWith('.') ? text.slice(0, -1) : text;
  return /^[\d.]+$/.test(t) || /(^|\.)\d+$/.test(t);
}

function parseStrictIpv4(text: string): number | string {
  const addr = parseIpv4(text);
  if (addr !== undefined) return addr;
  // parseIpv4 refuses leading zeros; say so when they are the only fault.
  const unpadded = text
    .split('.')
    .map((part) => (part.length <= 3 ? part.replace(/^0+(?=\d)/, '') : part))
    .join('.');
  if (unpadded !== text && parseIpv4(unpadded) !== undefined) {
    return `invalid IPv4 address ${JSON.stringify(text)} (leading zeros are ambiguous)`;
  }
  return `invalid IPv4 address ${JSON.stringify(text)}`;
}

function parsePrefix(text: string, max: number): number | string {
  if (!/^\d{1,3}$/.test(text)) return `invalid prefix length ${JSON.stringify(text)} (expected 0-${max})`;
  const n = Number(text);
  if (n > max) return `prefix length ${n} is out of range (0-${max})`;
  return n;
}

function parseNameTarget(text: string): Target | string {
  if (text.indexOf('*', 1) >= 0 || (text.startsWith('*') && !text.startsWith('*.'))) {
    return `invalid name pattern ${JSON.stringify(text)}: "*" is allowed only as a whole first label ("*.example.com")`;
  }
  if (text.startsWith('*.')) {
    const suffix = parseName(text.slice(2));
    if (suffix.startsWith('!')) return `invalid name pattern ${JSON.stringify(text)}: ${suffix.slice(1)}`;
    return { kind: 'suffix', suffix };
  }
  const name = parseName(text);
  if (name.startsWith('!')) return `invalid name ${JSON.stringify(text)}: ${name.slice(1)}`;
  if (KEYWORDS.has(name)) return `invalid name ${JSON.stringify(text)}: ${JSON.stringify(name)} is a keyword`;
  return { kind: 'name', name };
}

/** Words whose bare use means something else; no rule can name such a host (its canonical text would read back as the keyword). */
const KEYWORDS = new Set(['any', 'private', 'tcp', 'udp', 'icmp']);

/** A lower-case name without its trailing dot, or "!" and the reason it is invalid. */
function parseName(text: string): string {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name === '') return '!empty name';
  if (name.length > 253) return '!longer than 253 characters';
  if (/[^\x21-\x7e]/.test(name)) return '!only ASCII is allowed (write an internationalized name in its xn-- form)';
  const bad = /[^a-z0-9_.-]/.exec(name);
  if (bad !== null) return `!character ${JSON.stringify(bad[0])} is not allowed in a name`;
  for (const label of name.split('.')) {
    if (label === '') return '!empty label';
    if (label.length > 63) return '!a label is longer than 63 characters';
  }
  return name;
}

function copyPrefix6(addr: Uint8Array, out: Uint8Array, prefixLength: number): void {
  const whole = prefixLength >>> 3;
  out.set(addr.subarray(0, whole), 0);
  const rest = prefixLength & 7;
  if (rest !== 0) out[whole] = addr[whole] & ((0xff << (8 - rest)) & 0xff);
}

function equal16(a: Uint8Array, b: Uint8Array): boolean {
  return prefixMatch6(a, 0, b, 0, 128);
}

export function formatTarget(t: Target): string {
  switch (t.kind) {
    case 'any':
      return 'any';
    case 'private':
      return 'private';
    case 'ipv4':
      return t.prefixLength === 32 ? ipv4ToString(t.network) : `${ipv4ToString(t.network)}/${t.prefixLength}`;
    case 'ipv6':
      return t.prefixLength === 128 ? ipv6ToString(t.network) : `${ipv6ToString(t.network)}/${t.prefixLength}`;
    case 'name':
      return t.name;
    case 'suffix':
      return `*.${t.suffix}`;
  }
}

/** The canonical text of a rule (see the top of this file). */
export function formatRule(r: Rule): string {
  let target = formatTarget(r.target);
  let out = `${r.action} ${r.protocol !== null ? `${r.protocol}:` : ''}`;
  if (r.ports !== null) {
    if (r.target.kind === 'ipv6') target = `[${target}]`;
    out += `${target}:${r.ports.lo === r.ports.hi ? r.ports.lo : `${r.ports.lo}-${r.ports.hi}`}`;
  } else {
    out += target;
  }
  return out;
}

/** `default …` first, then every rule in order: the lines `parsePolicy` takes back. */
export function formatPolicy(p: Policy): string[] {
  return [`default ${p.defaultAction}`, ...p.rules.map(formatRule)];
}
