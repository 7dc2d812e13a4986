/**
 * The API socket as the real clients and misbehaving ones use it: RootlessKit,
 * Podman, the upstream test's ncat pipes, slow/silent/vanishing/endless
 * clients, and what usernet does beyond slirp4netns.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiErrorText, TOO_MANY_CONNECTIONS } from '../../src/api/api-server.js';
import {
  connectIdle,
  exchange,
  exchangeInPieces,
  podmanExchange,
  rootlesskitRequest,
  zeroStream,
} from './api-client.js';
import { deferred } from './fake-forwarder.js';
import { startServer, type Fixture } from './server-fixture.js';
import { memoryHarness } from '../support/memory-harness.js';

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.dispose();
  fx = undefined;
});

/** Retries until the value is not "too many connections" (the server frees a slot a few loop turns after a client leaves). */
async function eventually(f: () => Promise<string>): Promise<string> {
  for (let i = 0; ; i++) {
    const v = await f();
    if (v !== err(TOO_MANY_CONNECTIONS) || i === 100) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A UDP port on 127.0.0.1 nobody holds (bound and released). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const err = (desc: string): string => `{"error":{"desc":"${desc}"}}`;
const add = (args: Record<string, unknown>): string => JSON.stringify({ execute: 'add_hostfwd', arguments: args });
const LIST = '{"execute":"list_hostfwd"}';

describe('RootlessKit (port driver slirp4netns)', () => {
  it('adds with its exact request + "\\n", CloseWrite, ReadAll, and removes', async () => {
    fx = await startServer();
    const request = {
      execute: 'add_hostfwd',
      arguments: { proto: 'tcp', host_addr: '127.0.0.1', host_port: 18200, guest_addr: '10.0.2.100', guest_port: 80 },
    };
    // The request bytes as observed from RootlessKit (compat spec §3).
    expect(JSON.stringify(request) + '\n').toBe(
      '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":18200,"guest_addr":"10.0.2.100","guest_port":80}}\n',
    );
    // ReadAll must end at EOF, not with ECONNRESET.
    expect(await rootlesskitRequest(fx.path, request)).toEqual({ reply: '{"return":{"id":1}}' });
    expect(await rootlesskitRequest(fx.path, { execute: 'remove_hostfwd', arguments: { id: 1 } })).toEqual({
      reply: '{"return":{}}',
    });
    expect(fx.forwarder.adds()).toEqual([
      { proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 18200, guestAddr: '10.0.2.100', guestPort: 80 },
    ]);
    expect(fx.forwarder.removes()).toEqual([
      { id: 1, proto: 'tcp', hostAddr: '127.0.0.1', hostPort: 18200, guestAddr: '10.0.2.100', guestPort: 80 },
    ]);
    expect(fx.logs).toContain(`api_handler: got request: ${JSON.stringify(request)}`);
  });

  it('gets a non-empty error (and EOF) for a port in use', async () => {
    // A real stack behind the API, so the kernel is what refuses the bind.
    const stackCleanups: Array<() => void> = [];
    const h = memoryHarness({ ipv6: false }, (fn) => stackCleanups.push(fn));
    const holder = dgram.createSocket('udp4');
    try {
      const refusals: unknown[] = [];
      fx = await startServer({
        forwarder: {
          add: (f) =>
            h.stack.addForward(f).catch((e: unknown) => {
              refusals.push((e as NodeJS.ErrnoException).code);
              throw e;
            }),
          remove: (f) => h.stack.removeForward(f),
        },
      });
      // A port another program holds.
      await new Promise<void>((r) => holder.bind(0, '127.0.0.1', r));
      const held = holder.address().port;
      const request = (port: number) => ({ execute: 'add_hostfwd', arguments: { proto: 'udp', host_addr: '127.0.0.1', host_port: port, guest_addr: '', guest_port: 53 } });
      expect(await rootlesskitRequest(fx.path, request(held))).toEqual({ reply: err(ApiErrorText.ADD_FAILED) });
      // A port the first request of the two took: the stack's own table refuses the
      // second before the kernel sees it.
      const free = await freeUdpPort();
      expect((await rootlesskitRequest(fx.path, request(free))).reply).toBe('{"return":{"id":1}}');
      expect(await rootlesskitRequest(fx.path, request(free))).toEqual({ reply: err(ApiErrorText.ADD_FAILED) });
      expect(refusals).toEqual(['EADDRINUSE', 'ERR_USERNET_FORWARD_EXISTS']);
    } finally {
      holder.close();
      for (const fn of stackCleanups) fn();
    }
  });
});

describe('Podman (port_handler=slirp4netns)', () => {
  const podmanAdd = (hostPort: number): string =>
    `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"0.0.0.0","host_port":${hostPort},"guest_addr":"","guest_port":80}}\n`;

  it('gets the whole reply in its single Read of 2048 bytes, then EOF', async () => {
    fx = await startServer();
    const { reads, error } = await podmanExchange(fx.path, podmanAdd(8080));
    expect(error).toBeUndefined();
    expect(reads.map((r) => r.toString())).toEqual(['{"return":{"id":1}}']);
    expect(fx.forwarder.adds()[0].guestAddr).toBe('10.0.2.100');
  });

  it('still gets one read when the listener takes a while to open', async () => {
    fx = await startServer();
    const hold = deferred();
    const entered = deferred();
    fx.forwarder.gate = () => {
      entered.resolve();
      return hold.promise;
    };
    const pending = podmanExchange(fx.path, podmanAdd(8081));
    // The server has the request and is opening the listener; the client is in its Read.
    await entered.promise;
    hold.resolve();
    expect((await pending).reads.map((r) => r.toString())).toEqual(['{"return":{"id":1}}']);
  });

  it('gets the error in one read too', async () => {
    fx = await startServer();
    await podmanExchange(fx.path, podmanAdd(8082));
    const { reads } = await podmanExchange(fx.path, podmanAdd(8082));
    expect(reads.map((r) => r.toString())).toEqual([err(ApiErrorText.ADD_FAILED)]);
  });

  it('uses the configured net+100 for guest_addr ""', async () => {
    fx = await startServer({ defaultGuestAddr: '10.0.135.228' });
    await podmanExchange(fx.path, podmanAdd(8083));
    expect((await exchange(fx.path, LIST)).reply).toBe(
      '{"entries":[{"id":1,"proto":"tcp","host_addr":"0.0.0.0","host_port":8083,"guest_addr":"10.0.135.228","guest_port":80}]}',
    );
  });
});

describe('reading a request', () => {
  it('assembles a request written one byte at a time', async () => {
    fx = await startServer();
    const text = add({ proto: 'tcp', host_port: 9000, guest_port: 80 }) + '\n';
    const r = await exchangeInPieces(fx.path, Array.from(Buffer.from(text), (byte) => Buffer.of(byte)));
    expect(r).toEqual({ reply: '{"return":{"id":1}}' });
    expect(fx.logs.filter((l) => l.startsWith('api_handler: got request:'))).toEqual([
      `api_handler: got request: ${text.trim()}`,
    ]);
  });

  it('answers a complete object without waiting for the client to CloseWrite', async () => {
    fx = await startServer();
    const r = await exchangeInPieces(fx.path, [Buffer.from('{"execute":'), Buffer.from('"list_hostfwd"}')], { halfClose: false });
    expect(r.reply).toBe('{"entries":[]}');
  });

  it('answers an endless stream of NUL bytes (cat /dev/zero | ncat -U) with "too large message"', async () => {
    fx = await startServer();
    const r = await zeroStream(fx.path);
    expect(r.reply).toBe(err(ApiErrorText.TOO_LARGE));
    expect(fx.logs).toContain('api_handler: too large message (>= 4096 bytes)');
    expect((await exchange(fx.path, LIST)).reply).toBe('{"entries":[]}');
  });

  it('honours a smaller maxRequestBytes', async () => {
    fx = await startServer({ maxRequestBytes: 32 });
    expect((await exchange(fx.path, LIST)).reply).toBe('{"entries":[]}');
    expect((await exchange(fx.path, '{"execute":"list_hostfwd","x":1}')).reply).toBe(err(ApiErrorText.TOO_LARGE));
  });

  it('closes a client that sends nothing after requestTimeoutMs, and serves others meanwhile', async () => {
    fx = await startServer({ requestTimeoutMs: 300 });
    const started = Date.now();
    const idle = await connectIdle(fx.path);
    let idleClosed = false;
    void idle.closed.then(() => (idleClosed = true));
    expect((await exchange(fx.path, LIST)).reply).toBe('{"entries":[]}');
    expect(idleClosed).toBe(false);
    expect(await idle.closed).toEqual({ reply: '' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(fx.logs).toContain('api_handler: no request within the deadline, closing');
  });

  it('answers what it has at the deadline when a client stalls mid-request', async () => {
    fx = await startServer({ requestTimeoutMs: 100 });
    const partial = await connectIdle(fx.path);
    partial.socket.write('{"execute":"add_hostfwd","arguments":{"proto":"tcp"');
    expect((await partial.closed).reply).toBe(err(ApiErrorText.CANNOT_PARSE));
    const scalar = await connectIdle(fx.path);
    scalar.socket.write('5');
    expect((await scalar.closed).reply).toBe(err(ApiErrorText.NOT_AN_OBJECT));
    expect(fx.forwarder.calls).toEqual([]);
  });

  it('survives a client that disconnects mid-request, and frees its slot', async () => {
    fx = await startServer({ maxConnections: 1 });
    const quitter = await connectIdle(fx.path);
    quitter.socket.write('{"execute":"add_hostfwd","argum');
    quitter.socket.destroy();
    await quitter.closed;
    // The server sees only EOF, answers the fragment ("cannot parse JSON"), gets EPIPE, and lets go.
    expect(await eventually(async () => (await exchange(fx!.path, LIST)).reply)).toBe('{"entries":[]}');
    expect(fx.forwarder.calls).toEqual([]);
  });

  it('survives a client that connects and leaves without a byte (slirp4netns would answer "cannot parse JSON")', async () => {
    fx = await startServer();
    const { socket, closed } = await connectIdle(fx.path);
    socket.end();
    expect((await closed).reply).toBe(err(ApiErrorText.CANNOT_PARSE));
    const gone = await connectIdle(fx.path);
    gone.socket.destroy();
    await gone.closed;
    expect((await exchange(fx.path, LIST)).reply).toBe('{"entries":[]}');
  });

  it('completes an add whose client left before the reply', async () => {
    fx = await startServer();
    const hold = deferred();
    fx.forwarder.gate = () => hold.promise;
    const { socket, closed } = await connectIdle(fx.path);
    socket.end(add({ proto: 'tcp', host_port: 9100, guest_port: 80 }));
    await new Promise((r) => setImmediate(r));
    socket.destroy();
    await closed;
    hold.resolve();
    // Ids go in the order adds succeed: id 2 for the next add means the held one got id 1 first.
    expect((await exchange(fx.path, add({ proto: 'tcp', host_port: 9101, guest_port: 80 }))).reply).toBe('{"return":{"id":2}}');
    expect(fx.server.list().map((e) => [e.id, e.hostPort])).toEqual([
      [1, 9100],
      [2, 9101],
    ]);
  });

  it('never throws on random input', async () => {
    fx = await startServer();
    const tokens = ['{', '}', '[', ']', '"', '\\', ':', ',', '"execute"', '"add_hostfwd"', '"remove_hostfwd"', '"list_hostfwd"',
      '"arguments"', '"proto"', '"tcp"', '"host_port"', '"guest_port"', '"id"', '1', '-0.5', '1e9', 'null', 'true', '\x00', '\xff', ' ', '\\u0000'];
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 200; i++) {
      let text = '';
      for (let k = rand(40); k > 0; k--) text += tokens[rand(tokens.length)];
      const { reply } = await exchange(fx.path, text);
      expect(reply, JSON.stringify(text)).toMatch(/^\{"(error|return|entries)":/);
    }
  });
});

describe('beyond slirp4netns', () => {
  it('answers a missing or non-string proto instead of crashing', async () => {
    fx = await startServer();
    for (const args of [
      { host_port: 8080, guest_port: 80 },
      { proto: null, host_port: 8080, guest_port: 80 },
      { proto: 6, host_port: 8080, guest_port: 80 },
    ]) {
      expect((await exchange(fx.path, add(args))).reply).toBe(err(ApiErrorText.BAD_PROTO));
    }
    expect((await exchange(fx.path, '{"execute":"add_hostfwd"}')).reply).toBe(err(ApiErrorText.BAD_PROTO));
    expect((await exchange(fx.path, '{"execute":"add_hostfwd","arguments":[1]}')).reply).toBe(err(ApiErrorText.BAD_PROTO));
    expect(fx.forwarder.calls).toEqual([]);
  });

  it('range-checks ports to 1..65535 after truncation', async () => {
    fx = await startServer();
    for (const p of [0, 0.9, -1, 65536, 70000, 1e10, -2147483648]) {
      expect((await exchange(fx.path, add({ proto: 'tcp', host_port: p, guest_port: 80 }))).reply, `host_port ${p}`).toBe(
        err(ApiErrorText.BAD_HOST_PORT),
      );
      expect((await exchange(fx.path, add({ proto: 'tcp', host_port: 80, guest_port: p }))).reply, `guest_port ${p}`).toBe(
        err(ApiErrorText.BAD_GUEST_PORT),
      );
    }
    expect(fx.forwarder.calls).toEqual([]);
    expect((await exchange(fx.path, add({ proto: 'tcp', host_port: 1, guest_port: 65535.9 }))).reply).toBe('{"return":{"id":1}}');
    expect((await exchange(fx.path, add({ proto: 'udp', host_port: 65535, guest_port: 1 }))).reply).toBe('{"return":{"id":2}}');
    expect(fx.server.list().map((e) => [e.hostPort, e.guestPort])).toEqual([
      [1, 65535],
      [65535, 1],
    ]);
  });

  it('takes IPv6 host_addr and guest_addr, listed in RFC 5952 form', async () => {
    fx = await startServer();
    const addrs = ['::', '::1', 'fe80::1', '::ffff:127.0.0.1', '2001:DB8::0:1', '2001:db8:0:0:1:0:0:1'];
    const canonical = ['::', '::1', 'fe80::1', '::ffff:127.0.0.1', '2001:db8::1', '2001:db8::1:0:0:1'];
    for (const [i, a] of addrs.entries()) {
      expect((await exchange(fx.path, add({ proto: 'tcp', host_addr: a, host_port: 7000 + i, guest_addr: a, guest_port: 80 }))).reply).toBe(
        `{"return":{"id":${i + 1}}}`,
      );
    }
    expect(fx.forwarder.adds().map((r) => r.hostAddr)).toEqual(canonical);
    expect(fx.forwarder.adds().map((r) => r.guestAddr)).toEqual(canonical);
    const listed = JSON.parse((await exchange(fx.path, LIST)).reply) as { entries: Array<{ host_addr: string; guest_addr: string }> };
    expect(listed.entries.map((e) => e.host_addr)).toEqual(canonical);
    expect(listed.entries.map((e) => e.guest_addr)).toEqual(canonical);
    for (const a of ['fe80::1%eth0', '[::1]', ':::', '::1 ']) {
      expect((await exchange(fx.path, add({ proto: 'tcp', host_addr: a, host_port: 7100, guest_port: 80 }))).reply, a).toBe(
        err(ApiErrorText.BAD_HOST_ADDR),
      );
      expect((await exchange(fx.path, add({ proto: 'tcp', host_port: 7100, guest_addr: a, guest_port: 80 }))).reply, a).toBe(
        err(ApiErrorText.BAD_GUEST_ADDR),
      );
    }
  });

  it('defaults host_addr to 0.0.0.0 and guest_addr to net+100 when missing, null or ""', async () => {
    fx = await startServer();
    await exchange(fx.path, add({ proto: 'tcp', host_port: 7200, guest_port: 80 }));
    await exchange(fx.path, add({ proto: 'tcp', host_addr: '', host_port: 7201, guest_addr: '', guest_port: 80 }));
    await exchange(fx.path, add({ proto: 'tcp', host_addr: null, host_port: 7202, guest_addr: null, guest_port: 80 }));
    expect(fx.forwarder.adds().map((r) => [r.hostAddr, r.guestAddr])).toEqual([
      ['0.0.0.0', '10.0.2.100'],
      ['0.0.0.0', '10.0.2.100'],
      ['0.0.0.0', '10.0.2.100'],
    ]);
  });

  it('says "slirp_remove_hostfwd failed" when the forwarder cannot remove, and keeps the entry', async () => {
    fx = await startServer();
    await exchange(fx.path, add({ proto: 'tcp', host_port: 7300, guest_port: 80 }));
    fx.forwarder.failRemove = () => true;
    const remove = '{"execute":"remove_hostfwd","arguments":{"id":1}}';
    expect((await exchange(fx.path, remove)).reply).toBe(err(ApiErrorText.REMOVE_FAILED));
    expect(fx.server.list().map((e) => e.id)).toEqual([1]);
    fx.forwarder.failRemove = () => false;
    expect((await exchange(fx.path, remove)).reply).toBe('{"return":{}}');
    expect(fx.server.list()).toEqual([]);
  });

  it('runs extra commands with a "return" wrapper and reports their failures', async () => {
    const seen: unknown[] = [];
    fx = await startServer({
      extraCommands: {
        stats: (args) => {
          seen.push(args);
          return { flows: 3 };
        },
        nothing: () => undefined,
        broken: async () => {
          throw new Error('no stats yet');
        },
        cyclic: () => {
          const o: Record<string, unknown> = {};
          o.self = o;
          return o;
        },
      },
    });
    expect((await exchange(fx.path, '{"execute":"stats","arguments":{"verbose":true}}')).reply).toBe('{"return":{"flows":3}}');
    expect(seen).toEqual([{ verbose: true }]);
    expect((await exchange(fx.path, '{"execute":"nothing"}')).reply).toBe('{"return":{}}');
    expect((await exchange(fx.path, '{"execute":"broken"}')).reply).toBe(err('bad request: broken: no stats yet'));
    expect((await exchange(fx.path, '{"execute":"cyclic"}')).reply).toBe(err('bad request: cyclic: reply is not serialisable'));
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect((await exchange(fx.path, JSON.stringify({ execute: name }))).reply, name).toBe(err(ApiErrorText.UNKNOWN_EXECUTE));
    }
  });

  it('refuses a client beyond maxConnections with an error, and serves again once one leaves', async () => {
    fx = await startServer({ maxConnections: 2 });
    const a = await connectIdle(fx.path);
    const b = await connectIdle(fx.path);
    expect(await exchange(fx.path, LIST)).toMatchObject({ reply: err(TOO_MANY_CONNECTIONS) });
    a.socket.end(LIST);
    expect((await a.closed).reply).toBe('{"entries":[]}');
    expect((await exchange(fx.path, LIST)).reply).toBe('{"entries":[]}');
    b.socket.destroy();
  });

  it('logs each request on one line, control characters escaped', async () => {
    fx = await startServer();
    await exchange(fx.path, '{"execute":"bad\\n","x":"\x1b[31m"}\r\n');
    expect(fx.logs).toEqual(['api_handler: got request: {"execute":"bad\\n","x":"\\x1b[31m"}']);
  });

  it('works without a log function', async () => {
    fx = await startServer({ log: undefined });
    expect((await exchange(fx.path, LIST)).reply).toBe('{"entries":[]}');
    expect((await zeroStream(fx.path)).reply).toBe(err(ApiErrorText.TOO_LARGE));
  });
});

describe('concurrent clients', () => {
  it('50 clients adding at once get ids 1..50, in the order their adds succeed', async () => {
    fx = await startServer();
    let seed = 7;
    fx.forwarder.gate = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      // Real delays on purpose: they mix the adds' completions with the socket I/O of the others.
      return new Promise((r) => setTimeout(r, seed % 20));
    };
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => exchange(fx!.path, add({ proto: 'tcp', host_port: 10000 + i, guest_port: 80 }))),
    );
    const ids = replies.map((r) => (JSON.parse(r.reply) as { return: { id: number } }).return.id);
    expect([...ids].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const list = fx.server.list();
    expect(list.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(list.map((e) => e.hostPort)).toEqual(fx.forwarder.addOrder);
    for (let i = 0; i < 50; i++) expect(list.find((e) => e.hostPort === 10000 + i)!.id).toBe(ids[i]);
  });

  it('50 clients adding and removing at once keep the table consistent', async () => {
    fx = await startServer();
    for (let i = 0; i < 25; i++) await exchange(fx.path, add({ proto: 'udp', host_port: 20000 + i, guest_port: 53 }));
    let seed = 99;
    fx.forwarder.gate = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      // Real delays on purpose, as above.
      return new Promise((r) => setTimeout(r, seed % 10));
    };
    const removes = Array.from({ length: 25 }, (_, i) =>
      exchange(fx!.path, JSON.stringify({ execute: 'remove_hostfwd', arguments: { id: i + 1 } })),
    );
    // Every other add collides with an existing forward or with another add.
    const adds = Array.from({ length: 25 }, (_, i) =>
      exchange(fx!.path, add({ proto: i % 2 ? 'udp' : 'tcp', host_port: i % 2 ? 20000 + i : 30000 + (i % 6), guest_port: 80 })),
    );
    const removed = await Promise.all(removes);
    const added = await Promise.all(adds);
    expect(removed.map((r) => r.reply)).toEqual(Array(25).fill('{"return":{}}'));
    const ids = added.flatMap((r) => {
      const v = JSON.parse(r.reply) as { return?: { id: number }; error?: { desc: string } };
      if (v.error) expect(v.error.desc).toBe(ApiErrorText.ADD_FAILED);
      return v.return ? [v.return.id] : [];
    });
    expect(new Set(ids).size).toBe(ids.length);
    expect(Math.min(...ids)).toBeGreaterThan(25);
    const list = fx.server.list();
    expect(list.map((e) => e.id)).toEqual([...ids].sort((x, y) => x - y));
    expect(list.filter((e) => e.id <= 25)).toEqual([]);
    // The ids that exist are exactly the adds that succeeded; the next add continues after the highest ever given.
    const next = await exchange(fx.path, add({ proto: 'tcp', host_port: 40000, guest_port: 80 }));
    expect(next.reply).toBe(`{"return":{"id":${26 + ids.length}}}`);
  });

  it('answers "bad arguments.id" for the id an add still in progress will get', async () => {
    fx = await startServer();
    const hold = deferred();
    const entered = deferred();
    fx.forwarder.gate = (call) => {
      if (call.op !== 'add') return Promise.resolve();
      entered.resolve();
      return hold.promise;
    };
    const pending = exchange(fx.path, add({ proto: 'tcp', host_port: 9500, guest_port: 80 }));
    // The add is in progress (otherwise "bad arguments.id" would prove nothing).
    await entered.promise;
    const remove = '{"execute":"remove_hostfwd","arguments":{"id":1}}';
    expect((await exchange(fx.path, remove)).reply).toBe(err(ApiErrorText.BAD_ID));
    hold.resolve();
    expect((await pending).reply).toBe('{"return":{"id":1}}');
    expect((await exchange(fx.path, remove)).reply).toBe('{"return":{}}');
  });

  it('a slow add stalls nobody else', async () => {
    fx = await startServer();
    const hold = deferred();
    fx.forwarder.gate = (call) => (call.op === 'add' && call.req.hostPort === 9999 ? hold.promise : Promise.resolve());
    const slow = exchange(fx.path, add({ proto: 'tcp', host_port: 9999, guest_port: 80 }));
    await new Promise((r) => setImmediate(r));
    expect((await exchange(fx.path, add({ proto: 'tcp', host_port: 9998, guest_port: 80 }))).reply).toBe('{"return":{"id":1}}');
    expect((await exchange(fx.path, LIST)).reply).toContain('"host_port":9998');
    expect((await exchange(fx.path, LIST)).reply).not.toContain('"host_port":9999');
    hold.resolve();
    expect((await slow).reply).toBe('{"return":{"id":2}}');
  });
});
