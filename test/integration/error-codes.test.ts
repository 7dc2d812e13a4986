/**
 * The library's public errors carry the stable codes README.md (Library,
 * Errors) documents: callers branch on `code`, never on the message.
 */
import type { Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { addressPlan, createStack, ManualClock, MemoryLink, UsernetError, type HostNetwork, type Stack } from '../../src/index.js';
import { ApiServer } from '../../src/api/api-server.js';
import { noHost } from '../support/no-host.js';

/** A host whose TCP listeners open and close without touching the machine; nothing else may be used. */
const fakeHost: HostNetwork = {
  ...noHost,
  listenTcp: () => Promise.resolve({ on: () => undefined, close: () => undefined } as unknown as Server),
};

const stacks: Stack[] = [];

function stack(options: { mtu?: number; network?: string } = {}): Stack {
  const s = createStack({ link: new MemoryLink(), clock: new ManualClock(), dns: false, host: fakeHost, ...options });
  stacks.push(s);
  return s;
}

afterEach(() => {
  for (const s of stacks.splice(0)) s.close();
});

/** The UsernetError code `fn` throws (or its promise rejects with). */
async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UsernetError);
    return (err as UsernetError).code;
  }
  throw new Error('did not throw');
}

const FORWARD = { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestAddr: '10.0.2.100', guestPort: 80 } as const;

describe('UsernetError codes', () => {
  it('ERR_USERNET_INVALID_OPTION: createStack and addressPlan options', async () => {
    expect(await codeOf(() => stack({ mtu: 10 }))).toBe('ERR_USERNET_INVALID_OPTION');
    expect(await codeOf(() => stack({ network: '10.0.2.0/26' }))).toBe('ERR_USERNET_INVALID_OPTION');
    expect(await codeOf(() => addressPlan(0x0a000264, 24))).toBe('ERR_USERNET_INVALID_OPTION');
    expect(await codeOf(() => addressPlan(0x0a000200, 26))).toBe('ERR_USERNET_INVALID_OPTION');
  });

  it('ERR_USERNET_INVALID_OPTION: ApiServer options', async () => {
    expect(await codeOf(() => new ApiServer({ path: '/tmp/x', defaultGuestAddr: 'nope', forwarder: { add: async () => {}, remove: async () => {} } }))).toBe(
      'ERR_USERNET_INVALID_OPTION',
    );
  });

  it('ERR_USERNET_INVALID_POLICY: a policy with errors', async () => {
    expect(await codeOf(() => stack().setPolicy(['allow nonsense/99']))).toBe('ERR_USERNET_INVALID_POLICY');
  });

  it('ERR_USERNET_FORWARD_EXISTS and ERR_USERNET_FORWARD_NOT_FOUND', async () => {
    const s = stack();
    await s.addForward(FORWARD);
    expect(await codeOf(() => s.addForward(FORWARD))).toBe('ERR_USERNET_FORWARD_EXISTS');
    await s.removeForward(FORWARD);
    expect(await codeOf(() => s.removeForward(FORWARD))).toBe('ERR_USERNET_FORWARD_NOT_FOUND');
  });

  it('ERR_USERNET_INVALID_OPTION and ERR_USERNET_IPV6_DISABLED: forward guest addresses', async () => {
    const s = stack();
    expect(await codeOf(() => s.addForward({ ...FORWARD, guestAddr: 'guest' }))).toBe('ERR_USERNET_INVALID_OPTION');
    expect(await codeOf(() => s.addForward({ ...FORWARD, guestAddr: 'fd00::100' }))).toBe('ERR_USERNET_IPV6_DISABLED');
  });

  it('ERR_USERNET_CLOSED: a forward on a closed stack', async () => {
    const s = stack();
    s.close();
    expect(await codeOf(() => s.addForward(FORWARD))).toBe('ERR_USERNET_CLOSED');
  });
});
