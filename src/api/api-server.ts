/**
 * The slirp4netns JSON API (`--api-socket`) on a UNIX stream socket, as
 * slirp4netns 1.2 speaks it: one request per connection,
 * one reply in one write with no newline, then the connection is closed.
 *
 * slirp4netns serves the socket from its one poll loop: while it waits for a
 * client's single read, no packet moves. Here every connection is its own
 * asynchronous conversation (api-connection.ts), bounded in size
 * (`maxRequestBytes`), in time (`requestTimeoutMs`) and in number
 * (`maxConnections`), so a slow or hostile client stalls nothing else.
 *
 * Where this differs from slirp4netns on purpose is listed in
 * api-requests.ts (validation), hostfwd-table.ts (concurrent requests),
 * api-connection.ts (reading to a complete object, draining before close)
 * and below (connection limit, socket file removal, log lines).
 */
import net from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { UsernetError } from '../errors.js';
import { ApiConnection } from './api-connection.js';
import { ApiErrorText, errorReply, handleRequest, type ExtraCommand, type RequestContext } from './api-requests.js';
import { HostForwardTable, type HostForwarder, type HostForwardEntry } from './hostfwd-table.js';
import { isInetPton4 } from '../wire/inet-pton.js';

export type { HostForwarder, HostForwardEntry, HostForwardRequest } from './hostfwd-table.js';
export { ApiErrorText } from './api-requests.js';

export interface ApiServerOptions {
  /** The socket path; must be shorter than 108 bytes (sizeof sun_path). */
  path: string;
  /**
   * A UNIX stream socket already bound to `path` and listening, taken over:
   * listen() then neither unlinks nor binds, and close() leaves the file
   * (for a process that can no longer reach the path: the CLI's
   * --enable-sandbox).
   */
  fd?: number;
  forwarder: HostForwarder;
  /** `guest_addr` when a request leaves it out or sends "" (net+100). */
  defaultGuestAddr: string;
  /** Receives slirp4netns's stderr lines (`api_handler: got request: …`); no logging when absent. */
  log?: (line: string) => void;
  /**
   * Commands beyond add/list/remove_hostfwd. A handler gets the request's
   * `arguments` (undefined when absent; objects have a null prototype); what
   * it returns is sent as `{"return":value}`; what it throws as
   * `{"error":{"desc":"bad request: <name>: <message>"}}`.
   */
  extraCommands?: Record<string, (args: unknown) => unknown | Promise<unknown>>;
  /** A request of this many bytes is "too large message". Default 4096, as slirp4netns. */
  maxRequestBytes?: number;
  /** A client must complete its request within this; also how long we wait for its EOF after replying. Default 5000. */
  requestTimeoutMs?: number;
  /** Clients served at once; one more is answered with an error and closed. Default 128. */
  maxConnections?: number;
}

/** sizeof(((struct sockaddr_un *)0)->sun_path) on Linux. */
const SUN_PATH_BYTES = 108;
const BUILTIN_COMMANDS = ['add_hostfwd', 'list_hostfwd', 'remove_hostfwd'];
/** Not a slirp4netns text (it never has more than one client); same prefix and shape. */
export const TOO_MANY_CONNECTIONS = 'bad request: too many connections';

const ServerState = {
  NEW: 0,
  LISTENING: 1,
  CLOSED: 2,
} as const;

type ServerStateCode = (typeof ServerState)[keyof typeof ServerState];

export class ApiServer {
  private readonly path: string;
  private readonly fd: number | undefined;
  private readonly log: ((line: string) => void) | undefined;
  private readonly maxRequestBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly maxConnections: number;
  private readonly table: HostForwardTable;
  private readonly context: RequestContext;
  private readonly connections = new Set<ApiConnection>();
  private server: net.Server | undefined;
  /** The socket file we bound, to avoid unlinking someone else's at close. */
  private boundFile: { dev: number; ino: number } | undefined;
  private state: ServerStateCode = ServerState.NEW;

  constructor(options: ApiServerOptions) {
    const { path, forwarder, defaultGuestAddr } = options;
    if (typeof path !== 'string' || path === '') invalid('ApiServer: path must be a non-empty string');
    if (forwarder === null || typeof forwarder !== 'object') invalid('ApiServer: forwarder is required');
    if (typeof defaultGuestAddr !== 'string' || !isInetPton4(defaultGuestAddr)) {
      invalid('ApiServer: defaultGuestAddr must be an IPv4 dotted quad');
    }
    if (options.fd !== undefined && !(Number.isInteger(options.fd) && options.fd >= 0)) invalid('ApiServer: fd must be a non-negative integer');
    this.fd = options.fd;
    this.maxRequestBytes = positiveInteger(options.maxRequestBytes, 4096, 'maxRequestBytes');
    this.requestTimeoutMs = positiveInteger(options.requestTimeoutMs, 5000, 'requestTimeoutMs');
    this.maxConnections = positiveInteger(options.maxConnections, 128, 'maxConnections');
    const extra: Record<string, ExtraCommand> = Object.create(null) as Record<string, ExtraCommand>;
    for (const [name, fn] of Object.entries(options.extraCommands ?? {})) {
      if (BUILTIN_COMMANDS.includes(name)) invalid(`ApiServer: extraCommands cannot replace ${name}`);
      if (typeof fn !== 'function') invalid(`ApiServer: extraCommands.${name} must be a function`);
      extra[name] = fn;
    }
    this.path = path;
    this.log = options.log;
    this.table = new HostForwardTable(forwarder);
    this.context = { table: this.table, defaultGuestAddr, extraCommands: extra };
  }

  /**
   * Binds and listens. Like slirp4netns, first unlinks whatever is at the
   * path (a stale socket of an earlier run, or any other file).
   */
  async listen(): Promise<void> {
    if (this.state !== ServerState.NEW) throw new UsernetError('ERR_USERNET_INVALID_OPTION', 'ApiServer: listen() may be called once');
    // slirp4netns's own message and check (strlen >= sizeof sun_path).
    if (Buffer.byteLength(this.path) >= SUN_PATH_BYTES) {
      throw new UsernetError('ERR_USERNET_INVALID_OPTION', `the specified API socket path is too long (>= ${SUN_PATH_BYTES})`);
    }
    this.state = ServerState.LISTENING;
    if (this.fd === undefined) await unlink(this.path).catch(() => {});
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        const done = (): void => {
          server.off('error', reject);
          resolve();
        };
        if (this.fd === undefined) server.listen(this.path, done);
        else server.listen({ fd: this.fd }, done);
      });
    } catch (err) {
      this.state = ServerState.CLOSED;
      this.server = undefined;
      throw err;
    }
    // accept() failures (EMFILE) must not become an unhandled 'error'.
    server.on('error', (err) => this.log?.(`api_handler: accept: ${err.message}`));
    if (this.fd !== undefined) return;
    const st = await lstat(this.path).catch(() => undefined);
    if (st !== undefined) this.boundFile = { dev: st.dev, ino: st.ino };
  }

  /**
   * Stops listening, closes every client connection (a command already
   * handed to the forwarder still completes and updates the table) and
   * removes the socket file. Forwards are left to their owner: close() does
   * not call the forwarder.
   */
  async close(): Promise<void> {
    if (this.state === ServerState.CLOSED) return;
    this.state = ServerState.CLOSED;
    const server = this.server;
    this.server = undefined;
    for (const conn of [...this.connections]) conn.destroy();
    if (server === undefined) return;
    // libuv unlinks a bound pipe's path when it closes it (uv__pipe_close), even
    // when another process has put its own socket there since; the check below
    // only matters should that ever change.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const st = await lstat(this.path).catch(() => undefined);
    const mine = this.boundFile;
    if (st !== undefined && mine !== undefined && st.dev === mine.dev && st.ino === mine.ino) {
      await unlink(this.path).catch(() => {});
    }
  }

  /** The forwards in list_hostfwd order. */
  list(): HostForwardEntry[] {
    return this.table.list();
  }

  private accept(socket: net.Socket): void {
    socket.on('error', () => {});
    if (this.state !== ServerState.LISTENING) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.maxConnections) {
      this.log?.(`api_handler: too many connections (${this.maxConnections}), refusing one`);
      socket.end(errorReply(TOO_MANY_CONNECTIONS), () => socket.destroy());
      setTimeout(() => socket.destroy(), this.requestTimeoutMs).unref();
      return;
    }
    const conn = new ApiConnection(socket, {
      maxRequestBytes: this.maxRequestBytes,
      requestTimeoutMs: this.requestTimeoutMs,
      lingerMs: this.requestTimeoutMs,
      handle: (request) => this.handle(request),
      tooLargeReply: errorReply(ApiErrorText.TOO_LARGE),
      log: this.log,
      onClose: (c) => this.connections.delete(c),
    });
    this.connections.add(conn);
    conn.start();
  }

  private async handle(request: Buffer): Promise<string> {
    // slirp4netns handles the request as a C string.
    const nul = request.indexOf(0);
    const text = (nul < 0 ? request : request.subarray(0, nul)).toString('utf8');
    this.log?.(`api_handler: got request: ${printable(text)}`);
    try {
      return await handleRequest(text, this.context);
    } catch (err) {
      // handleRequest answers every bad input itself; this is a bug, not a client error.
      this.log?.(`api_handler: internal error: ${err instanceof Error ? err.message : String(err)}`);
      return errorReply('bad request: internal error');
    }
  }
}

function invalid(message: string): never {
  throw new UsernetError('ERR_USERNET_INVALID_OPTION', message);
}

function positiveInteger(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!(Number.isInteger(v) && v >= 1)) invalid(`ApiServer: ${name} must be a positive integer`);
  return v;
}

/**
 * The request as one log line. slirp4netns prints the raw bytes (and its
 * trailing newline, giving a blank line); we drop trailing whitespace and
 * escape control characters so a client cannot forge log lines.
 */
function printable(text: string): string {
  return text
    .trimEnd()
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
