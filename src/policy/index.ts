/**
 * The egress policy: rules (rules.ts), the matcher the stack asks at flow
 * creation (egress-policy.ts) and the name-to-address table the DNS
 * forwarder feeds (name-bindings.ts). Not exported from src/index.ts yet.
 */
export { DEFAULT_POLICY, PROTO_MASK_ALL, PROTO_MASK_PORTED, PolicyError, Proto, formatPolicy, formatRule, formatTarget, parseLine, parsePolicy, parsePolicyOrThrow } from './rules.js';
export type { Action, Policy, PolicyLineError, PolicyParseResult, ProtocolName, Rule, Target } from './rules.js';
export { EgressPolicy, isPrivate4, isPrivate6, newPolicyDecision } from './egress-policy.js';
export type { Ipv6Bytes, PolicyCounters, PolicyDecision, RuleCounters } from './egress-policy.js';
export { NameBindings, exactName, nameMatches, normalizeName, suffixPattern } from './name-bindings.js';
export type { AddressEntry, BoundAddress, NameBindingsOptions, NamePattern } from './name-bindings.js';
