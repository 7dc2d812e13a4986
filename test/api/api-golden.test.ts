/**
 * Every reply slirp4netns 1.2.0 gave (slirp4netns-goldens.ts), replayed over
 * the socket against usernet: same bytes, in the same order, from a fresh
 * server whose forwarder refuses what bind() refused there.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ApiErrorText } from '../../src/api/api-server.js';
import { exchange } from './api-client.js';
import { startServer, type Fixture } from './server-fixture.js';
import { SLIRP4NETNS_DEVIATIONS, SLIRP4NETNS_TRANSCRIPT, padded } from './slirp4netns-goldens.js';

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.dispose();
  fx = undefined;
});

const err = (desc: string): string => `{"error":{"desc":"${desc}"}}`;

describe('the slirp4netns 1.2.0 transcript', () => {
  it('is replayed byte for byte', async () => {
    fx = await startServer();
    const got: Array<{ name: string; reply: string }> = [];
    for (const g of SLIRP4NETNS_TRANSCRIPT) {
      const { reply } = await exchange(fx.path, g.request);
      got.push({ name: g.name, reply });
    }
    expect(got).toEqual(SLIRP4NETNS_TRANSCRIPT.map((g) => ({ name: g.name, reply: g.reply })));
  });

  it('covers every error text of compat spec §3', () => {
    const replies = new Set(SLIRP4NETNS_TRANSCRIPT.map((g) => g.reply));
    // slirp_remove_hostfwd failing cannot be provoked in slirp4netns; api-server.test.ts checks it with the fake forwarder.
    const provokable = Object.values(ApiErrorText).filter((t) => t !== ApiErrorText.REMOVE_FAILED);
    for (const text of provokable) expect(replies, text).toContain(err(text));
    expect(Object.values(ApiErrorText)).toHaveLength(13);
  });

  it('tells the forwarder exactly what slirp4netns gave slirp_add_hostfwd', async () => {
    fx = await startServer();
    for (const g of SLIRP4NETNS_TRANSCRIPT) await exchange(fx.path, g.request);
    expect(fx.forwarder.adds()).toEqual([
      { proto: 'tcp', hostAddr: '0.0.0.0', hostPort: 38080, guestAddr: '10.0.2.100', guestPort: 80 },
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 38200, guestAddr: '10.0.2.100', guestPort: 80 },
      { proto: 'udp', hostAddr: '0.0.0.0', hostPort: 38201, guestAddr: '10.0.2.100', guestPort: 53 },
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 38090, guestAddr: '1.2.3.4', guestPort: 80 },
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 38200, guestAddr: '10.0.2.100', guestPort: 81 },
      { proto: 'tcp', hostAddr: '0.0.0.0', hostPort: 38203, guestAddr: '0.0.0.0', guestPort: 80 },
      { proto: 'udp', hostAddr: '0.0.0.0', hostPort: 38204, guestAddr: '10.0.2.100', guestPort: 5353 },
      { proto: 'udp', hostAddr: '127.0.0.1', hostPort: 38200, guestAddr: '10.0.2.100', guestPort: 80 },
      { proto: 'tcp', hostAddr: '0.0.0.0', hostPort: 38080, guestAddr: '10.0.2.100', guestPort: 80 },
    ]);
    expect(fx.forwarder.removes().map((e) => e.id)).toEqual([1, 2]);
  });
});

/** What usernet answers where it differs from slirp4netns on purpose (issue 5). */
const OURS: Record<string, string> = {
  'host_port -1': err(ApiErrorText.BAD_HOST_PORT),
  'host_port 65536': err(ApiErrorText.BAD_HOST_PORT),
  'host_port 70000': err(ApiErrorText.BAD_HOST_PORT),
  'host_port 1e5': err(ApiErrorText.BAD_HOST_PORT),
  'host_port 1.e5': err(ApiErrorText.BAD_HOST_PORT),
  'host_port 2147483648': err(ApiErrorText.BAD_HOST_PORT),
  'host_port 4294967296': err(ApiErrorText.BAD_HOST_PORT),
  'host_port 1e10': err(ApiErrorText.BAD_HOST_PORT),
  'host_port -65535': err(ApiErrorText.BAD_HOST_PORT),
  // IPv6 host addresses are accepted; the request then fails at guest_addr "bad".
  'host_addr "::"': err(ApiErrorText.BAD_GUEST_ADDR),
  'host_addr "::1"': err(ApiErrorText.BAD_GUEST_ADDR),
  'host_addr "::ffff:1.2.3.4"': err(ApiErrorText.BAD_GUEST_ADDR),
  'host_addr "fe80::1"': err(ApiErrorText.BAD_GUEST_ADDR),
  // An IPv6 guest address is accepted too (slirp4netns #253); this one then fails at its port.
  'guest_addr "::1"': err(ApiErrorText.BAD_GUEST_PORT),
  // A non-string address is refused instead of silently becoming the default.
  'host_addr 5': err(ApiErrorText.BAD_HOST_ADDR),
  'host_addr true': err(ApiErrorText.BAD_HOST_ADDR),
  'host_addr []': err(ApiErrorText.BAD_HOST_ADDR),
  'host_addr {}': err(ApiErrorText.BAD_HOST_ADDR),
  'guest_addr 7': err(ApiErrorText.BAD_GUEST_ADDR),
  'guest_addr false': err(ApiErrorText.BAD_GUEST_ADDR),
  'guest_addr ["1.2.3.4"]': err(ApiErrorText.BAD_GUEST_ADDR),
  // The size bound counts the request, not the newline after it.
  '4095-byte object plus newline': '{"entries":[]}',
};

describe('deliberate differences from slirp4netns', () => {
  it.each(SLIRP4NETNS_DEVIATIONS.map((g) => [g.name, g] as const))('%s', async (name, g) => {
    fx = await startServer();
    const ours = OURS[name];
    expect(ours, 'every deviation has a stated answer').toBeDefined();
    expect(ours).not.toBe(g.reply);
    expect((await exchange(fx.path, g.request)).reply).toBe(ours);
    expect(fx.forwarder.calls).toEqual([]);
  });

  it('the 4095-byte boundary itself is the same as slirp4netns', async () => {
    fx = await startServer();
    expect((await exchange(fx.path, padded(4095))).reply).toBe('{"entries":[]}');
    expect((await exchange(fx.path, padded(4096))).reply).toBe(err(ApiErrorText.TOO_LARGE));
  });
});
