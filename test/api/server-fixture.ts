/** An ApiServer on a socket in a fresh temp dir, with a FakeForwarder and captured log lines. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer, type ApiServerOptions } from '../../src/api/api-server.js';
import { FakeForwarder } from './fake-forwarder.js';

export interface Fixture {
  server: ApiServer;
  path: string;
  dir: string;
  forwarder: FakeForwarder;
  logs: string[];
  /** Closes the server and removes the temp dir. */
  dispose(): Promise<void>;
}

export async function startServer(overrides: Partial<ApiServerOptions> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'usernet-api-'));
  const path = join(dir, 'api.sock');
  const forwarder = new FakeForwarder();
  const logs: string[] = [];
  const server = new ApiServer({
    path,
    forwarder,
    defaultGuestAddr: '10.0.2.100',
    log: (line) => logs.push(line),
    ...overrides,
  });
  await server.listen();
  return {
    server,
    path,
    dir,
    forwarder,
    logs,
    async dispose() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
