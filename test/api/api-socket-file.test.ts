/** The socket file: replaced at listen (as slirp4netns does), removed at close, path length checked. */
import { existsSync, lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/api/api-server.js';
import { UsernetError } from '../../src/errors.js';
import { connectIdle, exchange } from './api-client.js';
import { FakeForwarder } from './fake-forwarder.js';

let dir: string;
const servers: ApiServer[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'usernet-api-'));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

function make(path: string, extra: Partial<ConstructorParameters<typeof ApiServer>[0]> = {}): ApiServer {
  const s = new ApiServer({ path, forwarder: new FakeForwarder(), defaultGuestAddr: '10.0.2.100', ...extra });
  servers.push(s);
  return s;
}

const LIST = '{"execute":"list_hostfwd"}';

describe('socket file lifecycle', () => {
  it('replaces a regular file at the path', async () => {
    const path = join(dir, 'api.sock');
    writeFileSync(path, 'stale');
    await make(path).listen();
    expect(lstatSync(path).isSocket()).toBe(true);
    expect((await exchange(path, LIST)).reply).toBe('{"entries":[]}');
  });

  it('replaces a socket someone else is listening on, as slirp4netns does', async () => {
    const path = join(dir, 'api.sock');
    const other = net.createServer((c) => c.end('other'));
    await new Promise<void>((r) => other.listen(path, r));
    await make(path).listen();
    expect((await exchange(path, LIST)).reply).toBe('{"entries":[]}');
    await new Promise((r) => other.close(r));
  });

  it('removes the file on close, closing connected clients', async () => {
    const path = join(dir, 'api.sock');
    const s = make(path);
    await s.listen();
    const idle = await connectIdle(path);
    await s.close();
    expect(existsSync(path)).toBe(false);
    expect((await idle.closed).reply).toBe('');
    await expect(exchange(path, LIST)).resolves.toMatchObject({ error: 'ENOENT' });
    await s.close();
  });

  it('refuses a path of 108 bytes or more with slirp4netns message; 107 bytes work', async () => {
    const at = (len: number): string => join(dir, 'a'.repeat(len - dir.length - 1));
    const long = at(108);
    expect(Buffer.byteLength(long)).toBe(108);
    const s = make(long);
    await expect(s.listen()).rejects.toMatchObject({
      message: 'the specified API socket path is too long (>= 108)',
      code: 'ERR_USERNET_INVALID_OPTION',
    });
    expect(existsSync(long)).toBe(false);
    // Multi-byte characters count as bytes.
    const wide = join(dir, 'é'.repeat(Math.ceil((108 - dir.length - 1) / 2)));
    await expect(make(wide).listen()).rejects.toThrow('the specified API socket path is too long (>= 108)');
    const ok = at(107);
    await make(ok).listen();
    expect((await exchange(ok, LIST)).reply).toBe('{"entries":[]}');
  });

  it('rejects listen() in a missing directory, and close() still resolves', async () => {
    const s = make(join(dir, 'missing', 'api.sock'));
    await expect(s.listen()).rejects.toMatchObject({ code: expect.any(String) });
    await s.close();
  });

  it('refuses a second listen()', async () => {
    const s = make(join(dir, 'api.sock'));
    await s.listen();
    await expect(s.listen()).rejects.toBeInstanceOf(UsernetError);
  });
});

describe('options', () => {
  it('refuses bad options with ERR_USERNET_INVALID_OPTION', () => {
    const path = join(dir, 'api.sock');
    const forwarder = new FakeForwarder();
    const bad = [
      { path, forwarder, defaultGuestAddr: '::1' },
      { path, forwarder, defaultGuestAddr: '10.0.2' },
      { path: '', forwarder, defaultGuestAddr: '10.0.2.100' },
      { path, forwarder, defaultGuestAddr: '10.0.2.100', maxRequestBytes: 0 },
      { path, forwarder, defaultGuestAddr: '10.0.2.100', requestTimeoutMs: 1.5 },
      { path, forwarder, defaultGuestAddr: '10.0.2.100', maxConnections: -1 },
      { path, forwarder, defaultGuestAddr: '10.0.2.100', extraCommands: { list_hostfwd: () => 1 } },
    ];
    for (const o of bad) expect(() => new ApiServer(o), JSON.stringify(o)).toThrow(expect.objectContaining({ code: 'ERR_USERNET_INVALID_OPTION' }));
  });
});
