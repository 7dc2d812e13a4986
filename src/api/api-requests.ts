/**
 * One API request in, one reply out: the command layer of slirp4netns's
 * api.c, with its reply bytes and its order of checks.
 *
 * Order of checks, as api_handle_req() and api_handle_req_add_hostfwd() do
 * them: parse → is it an object → `execute` is a string → which command;
 * for add_hostfwd: proto → host_addr → host_port → guest_addr → guest_port →
 * the forwarder. The first failure answers.
 *
 * Field reads copy parson's dotget semantics: `arguments.x` is looked up only
 * when `arguments` is an object; a string field is used up to its first
 * U+0000 (C strings); a number field that is not a JSON number reads as 0,
 * and a number is truncated towards zero (the `(int)` cast), so `18090.7` is
 * port 18090 and `"18090"` is port 0, i.e. bad.
 *
 * Deliberately different from slirp4netns 1.2:
 * - a missing or non-string `proto` (or no `arguments` object at all) is
 *   "bad arguments.proto"; slirp4netns dereferences NULL and dies;
 * - ports must be 1..65535 after truncation, answered with the same
 *   "bad arguments.host_port" / "bad arguments.guest_port" texts;
 *   slirp4netns only refuses 0 and lets libslirp truncate to 16 bits;
 * - `host_addr` and `guest_addr` may also be IPv6 literals (inet_pton
 *   (AF_INET6); slirp4netns #253), kept and listed in RFC 5952 form
 *   (`2001:DB8::0:1` is `2001:db8::1`); an IPv6 `guest_addr` needs a stack
 *   running IPv6 (-6), else the add fails like any refused forward;
 * - a `host_addr` or `guest_addr` that is present but neither a string nor
 *   null (e.g. a number) is "bad arguments.host_addr" / "…guest_addr";
 *   slirp4netns treats it as missing and silently uses the default, which
 *   for host_addr means listening on every interface.
 */
import { cString, isJsonObject, parseParsonJson, type JsonObject, type JsonValue } from './parson-json.js';
import { isInetPton4, isInetPton6 } from '../wire/inet-pton.js';
import { ipv6ToString, parseIpv6 } from '../wire/ipv6-address.js';
import { RemoveResult, type HostForwardEntry, type HostForwardRequest, type HostForwardTable } from './hostfwd-table.js';

/** Every error text slirp4netns 1.2 sends, byte for byte. */
export const ApiErrorText = {
  CANNOT_PARSE: 'bad request: cannot parse JSON',
  NOT_AN_OBJECT: 'bad request: json_object() failed',
  NO_EXECUTE: 'bad request: no execute found',
  UNKNOWN_EXECUTE: 'bad request: unknown execute',
  BAD_PROTO: 'bad request: add_hostfwd: bad arguments.proto',
  BAD_HOST_ADDR: 'bad request: add_hostfwd: bad arguments.host_addr',
  BAD_HOST_PORT: 'bad request: add_hostfwd: bad arguments.host_port',
  BAD_GUEST_ADDR: 'bad request: add_hostfwd: bad arguments.guest_addr',
  BAD_GUEST_PORT: 'bad request: add_hostfwd: bad arguments.guest_port',
  ADD_FAILED: 'bad request: add_hostfwd: slirp_add_hostfwd failed',
  BAD_ID: 'bad request: remove_hostfwd: bad arguments.id',
  REMOVE_FAILED: 'bad request: remove_hostfwd: slirp_remove_hostfwd failed',
  TOO_LARGE: 'bad request: too large message',
} as const;

/** `{"error":{"desc":…}}`, compact, as slirp4netns writes it. */
export function errorReply(desc: string): string {
  return `{"error":{"desc":${JSON.stringify(desc)}}}`;
}

/** A command beyond slirp4netns's three; its value is sent as `{"return":value}`. */
export type ExtraCommand = (args: unknown) => unknown;

export interface RequestContext {
  table: HostForwardTable;
  /** Used when `guest_addr` is missing or "" (net+100). */
  defaultGuestAddr: string;
  extraCommands: Readonly<Record<string, ExtraCommand>>;
}

const DEFAULT_HOST_ADDR = '0.0.0.0';
const MAX_PORT = 65535;

/**
 * The reply to one request (already cut at its first NUL byte and decoded).
 * Never rejects: every failure is an `{"error":…}` reply.
 */
export async function handleRequest(text: string, ctx: RequestContext): Promise<string> {
  const root = parseParsonJson(text);
  if (root === undefined) return errorReply(ApiErrorText.CANNOT_PARSE);
  if (!isJsonObject(root)) return errorReply(ApiErrorText.NOT_AN_OBJECT);
  const execute = root.execute;
  if (typeof execute !== 'string') return errorReply(ApiErrorText.NO_EXECUTE);
  const command = cString(execute);
  const args = isJsonObject(root.arguments) ? root.arguments : undefined;
  switch (command) {
    case 'add_hostfwd':
      return addHostfwd(args, ctx);
    case 'list_hostfwd':
      return listReply(ctx.table.list());
    case 'remove_hostfwd':
      return removeHostfwd(args, ctx);
    default:
      if (Object.hasOwn(ctx.extraCommands, command)) return extraCommand(command, root.arguments, ctx);
      return errorReply(ApiErrorText.UNKNOWN_EXECUTE);
  }
}

/** The add_hostfwd arguments as a request, or the error text that refuses them. */
export function parseAddHostfwd(args: JsonObject | undefined, defaultGuestAddr: string): HostForwardRequest | string {
  const proto = stringField(args, 'proto');
  if (proto !== 'tcp' && proto !== 'udp') return ApiErrorText.BAD_PROTO;

  const hostAddr = canonicalAddress(addressField(args, 'host_addr', DEFAULT_HOST_ADDR));
  if (hostAddr === undefined) return ApiErrorText.BAD_HOST_ADDR;

  const hostPort = intField(args, 'host_port');
  if (!(hostPort >= 1 && hostPort <= MAX_PORT)) return ApiErrorText.BAD_HOST_PORT;

  const guestAddr = canonicalAddress(addressField(args, 'guest_addr', defaultGuestAddr));
  if (guestAddr === undefined) return ApiErrorText.BAD_GUEST_ADDR;

  const guestPort = intField(args, 'guest_port');
  if (!(guestPort >= 1 && guestPort <= MAX_PORT)) return ApiErrorText.BAD_GUEST_PORT;

  return { proto, hostAddr, hostPort, guestAddr, guestPort };
}

/** An IPv4 literal as given, an IPv6 one in RFC 5952 form; undefined for anything else. */
function canonicalAddress(addr: string | undefined): string | undefined {
  if (addr === undefined) return undefined;
  if (isInetPton4(addr)) return addr;
  if (!isInetPton6(addr)) return undefined;
  const bytes = parseIpv6(addr);
  return bytes === undefined ? undefined : ipv6ToString(bytes);
}

/** `{"entries":[…]}` with slirp4netns's key order and no `return` wrapper (what 1.2 really sends). */
export function listReply(entries: readonly HostForwardEntry[]): string {
  const items = entries.map(
    (e) =>
      `{"id":${e.id},"proto":${JSON.stringify(e.proto)},"host_addr":${JSON.stringify(e.hostAddr)},` +
      `"host_port":${e.hostPort},"guest_addr":${JSON.stringify(e.guestAddr)},"guest_port":${e.guestPort}}`,
  );
  return `{"entries":[${items.join(',')}]}`;
}

async function addHostfwd(args: JsonObject | undefined, ctx: RequestContext): Promise<string> {
  const req = parseAddHostfwd(args, ctx.defaultGuestAddr);
  if (typeof req === 'string') return errorReply(req);
  const id = await ctx.table.add(req);
  if (id === undefined) return errorReply(ApiErrorText.ADD_FAILED);
  return `{"return":{"id":${id}}}`;
}

async function removeHostfwd(args: JsonObject | undefined, ctx: RequestContext): Promise<string> {
  const id = intField(args, 'id');
  switch (await ctx.table.remove(id)) {
    case RemoveResult.REMOVED:
      return '{"return":{}}';
    case RemoveResult.FAILED:
      return errorReply(ApiErrorText.REMOVE_FAILED);
    default:
      return errorReply(ApiErrorText.BAD_ID);
  }
}

async function extraCommand(name: string, args: JsonValue | undefined, ctx: RequestContext): Promise<string> {
  let value: unknown;
  try {
    value = await ctx.extraCommands[name](args);
  } catch (err) {
    return errorReply(`bad request: ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let body: string | undefined;
  try {
    body = JSON.stringify(value ?? {});
  } catch {
    return errorReply(`bad request: ${name}: reply is not serialisable`);
  }
  return `{"return":${body ?? '{}'}}`;
}

/** json_object_dotget_string: the string (as a C string), or undefined for anything else. */
function stringField(args: JsonObject | undefined, key: string): string | undefined {
  const v = args === undefined ? undefined : args[key];
  return typeof v === 'string' ? cString(v) : undefined;
}

/**
 * An address field with slirp4netns's defaulting: missing, null or "" (also
 * "\u0000…", which is "" as a C string) take the default. Undefined for a
 * field of another type (our deviation: slirp4netns takes the default).
 */
function addressField(args: JsonObject | undefined, key: string, fallback: string): string | undefined {
  const v = args === undefined ? undefined : args[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') return undefined;
  const s = cString(v);
  return s === '' ? fallback : s;
}

/** `(int)json_object_dotget_number(…)`: 0 for a non-number, truncated towards zero otherwise. */
function intField(args: JsonObject | undefined, key: string): number {
  const v = args === undefined ? undefined : args[key];
  return typeof v === 'number' ? Math.trunc(v) + 0 : 0;
}
