/**
 * The egress policy at the command line and on the API socket (the stack
 * side is StackOptions.policy / Stack.setPolicy; the grammar src/policy/rules.ts):
 *
 * - slirp4netns grammar: USERNET_POLICY=FILE (new long options there would
 *   change which abbreviations slirp4netns's own options accept);
 * - run mode: --policy FILE, --allow RULE, --deny RULE, --default-deny, in
 *   command-line order (a file's lines where --policy stands);
 * - the API: {"execute":"get_policy"} → {"return":{"rules":[…]}} and
 *   {"execute":"set_policy","arguments":{"rules":[…]}} (the same lines as the
 *   file, replaced atomically: flows already open go on).
 */
import { readFileSync } from 'node:fs';
import type { Stack } from '../index.js';

/** USERNET_POLICY's file as rule lines, or null without it. Throws with the path in the message. */
export function policyFromEnv(env: NodeJS.ProcessEnv): string[] | null {
  const path = env.USERNET_POLICY;
  if (path === undefined || path === '') return null;
  return policyFile(path, 'USERNET_POLICY=');
}

/** A policy file's lines. Throws `PREFIXpath: reason` when it cannot be read. */
export function policyFile(path: string, prefix = ''): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${prefix}${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return text.split('\n');
}

/** get_policy and set_policy for ApiServer's extraCommands. */
export function policyCommands(stack: Stack): Record<string, (args: unknown) => unknown> {
  const current = (): { rules: string[] } => ({ rules: stack.policy() ?? ['default allow'] });
  return {
    get_policy: current,
    set_policy: (args) => {
      const rules = (args as { rules?: unknown } | undefined)?.rules;
      if (!Array.isArray(rules)) throw new Error('arguments.rules must be an array of rule lines');
      stack.setPolicy(rules as string[]);
      return current();
    },
  };
}
