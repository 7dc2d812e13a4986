/**
 * Both ends of the e2e TCP tests: python3 programs that run as the guest inside
 * a namespace (through nsenter), and the Node servers they talk to on the
 * host's 127.0.0.1 (which the guest reaches as 10.0.2.2). Nothing here listens
 * on or connects to any other host address.
 *
 * Every guest program takes one JSON argument and prints one JSON line on
 * stdout (`{"error": …}` when something went wrong), so a test reads a result,
 * not a log. Every guest socket has a timeout: a broken stack makes a test
 * fail, never hang.
 *
 * Bulk data is a repeated block of a prime length (1,048,573 bytes) filled
 * from a seeded PRNG. Its period is not a multiple of any segment size, so a
 * lost, duplicated or reordered segment changes the sha256; and neither side
 * holds more than 2 MB of it. The sender hashes what it sent, the receiver
 * what it received; the two sides need not generate the same bytes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket as createDgramSocket, type Socket as DgramSocket } from 'node:dgram';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Stack, StackOptions } from '../../src/index.js';
import { spawnInNetns, userNetns, waitFor, type NetnsProcess, type UserNetns } from './netns.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Period of the bulk-data pattern (a prime just under 1 MiB). */
export const PATTERN_PERIOD = 1_048_573;

// ---------------------------------------------------------------------------
// Guest side (python3 inside the namespace)
// ---------------------------------------------------------------------------

const PRELUDE = String.raw`
import errno, hashlib, json, os, random, resource, selectors, socket, struct, sys, threading, time
ARGS = json.loads(sys.argv[1])
PERIOD = ${PATTERN_PERIOD}
CHUNK = 1 << 19
def out(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()
def pattern(seed):
    base = random.Random(seed).randbytes(PERIOD)
    return memoryview(base + base)
def send_pattern(s, seed, total):
    mv = pattern(seed)
    h = hashlib.sha256()
    pos = 0
    left = total
    while left > 0:
        n = min(CHUNK, left)
        chunk = mv[pos:pos + n]
        s.sendall(chunk)
        h.update(chunk)
        left -= n
        pos = (pos + n) % PERIOD
    return h.hexdigest()
def recv_all(s, h=None):
    h = h or hashlib.sha256()
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    n_total = 0
    while True:
        n = s.recv_into(buf)
        if n == 0:
            return n_total, h.hexdigest()
        h.update(mv[:n])
        n_total += n
def connect(host, port):
    # A short connect timeout (the relay answers within milliseconds when it
    # works), then the data timeout for every later call.
    s = socket.create_connection((host, port), timeout=ARGS.get('connectTimeout', 5))
    s.settimeout(ARGS['timeout'])
    return s
def err_name(e):
    return errno.errorcode.get(e.errno, str(e)) if getattr(e, 'errno', None) else type(e).__name__ + ': ' + str(e)
`;

/**
 * Bulk transfers against `TransferServer`, one thread per job, all at once.
 * args: { host, port, connectTimeout?, timeout, jobs: [{ id, dir: 'up'|'down', bytes, seed }] }
 * prints: { results: [{ id, dir, bytes, sha, seconds, reply? } | { id, error }] }
 */
export const TRANSFER_PY = PRELUDE + String.raw`
results = []
lock = threading.Lock()
def job(j):
    t0 = time.monotonic()
    try:
        s = connect(ARGS['host'], ARGS['port'])
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if j['dir'] == 'up':
            s.sendall(('UP %d %d\n' % (j['id'], j['bytes'])).encode())
            sha = send_pattern(s, j['seed'], j['bytes'])
            s.shutdown(socket.SHUT_WR)
            reply = b''
            while True:
                d = s.recv(4096)
                if not d: break
                reply += d
            r = {'id': j['id'], 'dir': 'up', 'bytes': j['bytes'], 'sha': sha, 'reply': reply.decode()}
        else:
            s.sendall(('DOWN %d %d %d\n' % (j['id'], j['bytes'], j['seed'])).encode())
            n, sha = recv_all(s)
            r = {'id': j['id'], 'dir': 'down', 'bytes': n, 'sha': sha}
        s.close()
        r['seconds'] = time.monotonic() - t0
    except Exception as e:
        r = {'id': j['id'], 'error': err_name(e), 'seconds': time.monotonic() - t0}
    with lock:
        results.append(r)
threads = [threading.Thread(target=job, args=(j,)) for j in ARGS['jobs']]
for t in threads: t.start()
for t in threads: t.join()
out({'results': sorted(results, key=lambda r: r['id'])})
`;

/**
 * Opens n connections to an echo server (at most `inflight` connects pending),
 * echoes one distinct message on each, keeps them all open, echoes a second
 * round on all of them at once, then closes them all.
 * args: { host, port, n, inflight, timeout, stallTimeout, msgBytes }
 * prints: { opened, round1, round2, connectSeconds, round2Seconds } or { error, … }
 */
export const MANY_ECHO_PY = PRELUDE + String.raw`
n = ARGS['n']
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 64
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
deadline = time.monotonic() + ARGS['timeout']
sel = selectors.DefaultSelector()
socks = [None] * n
rx = [b''] * n
def msg(rnd, i):
    m = ('r%d-conn%05d-' % (rnd, i)).encode()
    return m + b'x' * (ARGS['msgBytes'] - len(m) - 1) + b'\n'
def fail(what, i, e=None):
    out({'error': what, 'conn': i, 'errno': err_name(e) if e else None, 'progress': progress})
    os._exit(1)
progress = {'opened': 0, 'round1': 0, 'round2': 0}
last = [time.monotonic(), 0]
def check_stall(what):
    # Fail fast when nothing moves for stallTimeout, well before the deadline.
    now = time.monotonic()
    total = sum(progress.values())
    if total != last[1]:
        last[0], last[1] = now, total
    elif now - last[0] > ARGS['stallTimeout']:
        fail('no progress for %ds in %s' % (ARGS['stallTimeout'], what), -1)
    if now > deadline: fail('timeout in ' + what, -1)
def pump_reads(rnd, key):
    i = key.data
    s = socks[i]
    try:
        d = s.recv(65536)
    except BlockingIOError:
        return False
    except OSError as e:
        fail('recv round %d' % rnd, i, e)
    if not d: fail('EOF in round %d' % rnd, i)
    rx[i] += d
    m = msg(rnd, i)
    if len(rx[i]) < len(m): return False
    if rx[i] != m: fail('echo mismatch round %d: %r' % (rnd, rx[i][:80]), i)
    rx[i] = b''
    sel.unregister(s)
    return True
# Round 1: connect with a bounded number pending, then echo.
t0 = time.monotonic()
nxt = 0
pending = 0
while progress['round1'] < n:
    while pending < ARGS['inflight'] and nxt < n:
        s = socket.socket()
        s.setblocking(False)
        rc = s.connect_ex((ARGS['host'], ARGS['port']))
        if rc not in (0, errno.EINPROGRESS): fail('connect', nxt, OSError(rc, os.strerror(rc)))
        socks[nxt] = s
        sel.register(s, selectors.EVENT_WRITE, nxt)
        nxt += 1
        pending += 1
    check_stall('round 1')
    for key, ev in sel.select(timeout=1):
        i = key.data
        s = socks[i]
        if ev & selectors.EVENT_WRITE:
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e: fail('connect', i, OSError(e, os.strerror(e)))
            pending -= 1
            progress['opened'] += 1
            try:
                s.send(msg(1, i))
            except OSError as e:
                fail('send round 1', i, e)
            sel.modify(s, selectors.EVENT_READ, i)
        elif pump_reads(1, key):
            progress['round1'] += 1
connect_seconds = time.monotonic() - t0
# Round 2: every connection is still open; send on all of them, then read all echoes.
t1 = time.monotonic()
for i in range(n):
    try:
        if socks[i].send(msg(2, i)) != ARGS['msgBytes']: fail('short send round 2', i)
    except OSError as e:
        fail('send round 2', i, e)
    sel.register(socks[i], selectors.EVENT_READ, i)
while progress['round2'] < n:
    check_stall('round 2')
    for key, ev in sel.select(timeout=1):
        if pump_reads(2, key): progress['round2'] += 1
round2_seconds = time.monotonic() - t1
for s in socks: s.close()
out(dict(progress, connectSeconds=connect_seconds, round2Seconds=round2_seconds))
`;

/**
 * Half-close from either side.
 * mode 'guest-shut': send `request`, shutdown(SHUT_WR), read everything the host sends.
 *   prints { received, sha }
 * mode 'host-shut': read until the host's FIN, then send `bytes` of pattern, shutdown(SHUT_WR).
 *   prints { greeting, sent, sha }
 * args: { host, port, connectTimeout?, timeout, mode, request?, bytes?, seed? }
 */
export const HALF_CLOSE_PY = PRELUDE + String.raw`
try:
    s = connect(ARGS['host'], ARGS['port'])
    if ARGS['mode'] == 'guest-shut':
        s.sendall(ARGS['request'].encode())
        s.shutdown(socket.SHUT_WR)
        n, sha = recv_all(s)
        out({'received': n, 'sha': sha})
    else:
        greeting = b''
        while True:
            d = s.recv(4096)
            if not d: break
            greeting += d
        sha = send_pattern(s, ARGS['seed'], ARGS['bytes'])
        s.shutdown(socket.SHUT_WR)
        # The host has already closed its side; wait for it to finish with ours.
        tail = s.recv(4096)
        out({'greeting': greeting.decode(), 'sent': ARGS['bytes'], 'sha': sha, 'tail': len(tail)})
    s.close()
except Exception as e:
    out({'error': err_name(e)})
`;

/**
 * One connect attempt per target, each timed.
 * args: { targets: [[host, port]], timeout }
 * prints { results: [{ host, port, ok, errno?, seconds }] }
 */
export const CONNECT_PY = PRELUDE + String.raw`
res = []
for host, port in ARGS['targets']:
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    s.settimeout(ARGS['timeout'])
    t0 = time.monotonic()
    try:
        s.connect((host, port))
        res.append({'host': host, 'port': port, 'ok': True, 'seconds': time.monotonic() - t0})
    except OSError as e:
        res.append({'host': host, 'port': port, 'ok': False, 'errno': err_name(e), 'seconds': time.monotonic() - t0})
    s.close()
out({'results': res})
`;

/**
 * Resets in both directions.
 * mode 'host-resets': send a line, then read until an error or EOF (the host answers with RST).
 * mode 'guest-aborts': send a line, read the host's 'ok\n', then SO_LINGER {1, 0} and close (RST).
 * args: { host, port, connectTimeout?, timeout, mode }
 * prints { outcome: 'ECONNRESET' | 'EOF' | …, seconds }
 */
export const RESET_PY = PRELUDE + String.raw`
t0 = time.monotonic()
try:
    s = connect(ARGS['host'], ARGS['port'])
    s.sendall(b'hello\n')
    if ARGS['mode'] == 'host-resets':
        outcome = None
        while outcome is None:
            try:
                d = s.recv(4096)
                if not d: outcome = 'EOF'
            except OSError as e:
                outcome = err_name(e)
    else:
        got = b''
        while not got.endswith(b'\n'):
            d = s.recv(4096)
            if not d: raise OSError(0, 'EOF before ok')
            got += d
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()
        outcome = 'aborted'
    out({'outcome': outcome, 'seconds': time.monotonic() - t0})
except Exception as e:
    out({'error': err_name(e), 'seconds': time.monotonic() - t0})
`;

/** A raw AF_PACKET socket on ARGS['iface'] and the Internet checksum, for the hand-built SYNs below. */
const RAW_PRELUDE = PRELUDE + String.raw`
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
rs = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
rs.bind((ARGS['iface'], 0))
me = rs.getsockname()[4]
gw = bytes.fromhex('52550a000202')
`;

/**
 * Hand-built TCP SYNs sent straight onto the TAP (AF_PACKET) to the gateway's
 * MAC, for destinations the guest kernel itself would never send a SYN to
 * (broadcasts, 0.0.0.0, 127.0.0.1). The kernel answers any SYN-ACK with RST.
 * args: { iface, src, targets: [ip], port, repeat }
 * prints { sent }
 */
export const RAW_SYN_PY = RAW_PRELUDE + String.raw`
src = socket.inet_aton(ARGS['src'])
sent = 0
for k, target in enumerate(ARGS['targets']):
    dst = socket.inet_aton(target)
    for r in range(ARGS['repeat']):
        sport = 20000 + k * 16 + r  # below the guest's ephemeral range
        opts = struct.pack('!BBH', 2, 4, 1460)
        tcp = struct.pack('!HHIIBBHHH', sport, ARGS['port'], 0x1000 + sport, 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
        pseudo = src + dst + struct.pack('!BBH', 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0x1000 + sent, 0x4000, 64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
        rs.send(gw + me + b'\x08\x00' + ip + tcp)
        sent += 1
        time.sleep(0.05)
out({'sent': sent})
`;

/**
 * The IPv6 version of RAW_SYN_PY: SYNs built by hand and sent on the link
 * (AF_PACKET) to the router's MAC, so that destinations the guest's own
 * stack would never route (::1, ::ffff:127.0.0.1, ...) reach usernet.
 * args: { iface, src, targets: [ipv6], port, repeat } prints { sent }
 */
export const RAW6_SYN_PY = RAW_PRELUDE + String.raw`
src = socket.inet_pton(socket.AF_INET6, ARGS['src'])
sent = 0
for k, target in enumerate(ARGS['targets']):
    dst = socket.inet_pton(socket.AF_INET6, target)
    for r in range(ARGS['repeat']):
        sport = 20000 + k * 16 + r
        opts = struct.pack('!BBH', 2, 4, 1440)
        tcp = struct.pack('!HHIIBBHHH', sport, ARGS['port'], 0x1000 + sport, 0, (5 + len(opts) // 4) << 4, 0x02, 64240, 0, 0) + opts
        pseudo = src + dst + struct.pack('!IxxxB', len(tcp), 6)
        tcp = tcp[:16] + struct.pack('!H', csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack('!IHBB16s16s', 0x60000000, len(tcp), 6, 64, src, dst)
        rs.send(gw + me + b'\x86\xdd' + ip + tcp)
        sent += 1
        time.sleep(0.05)
out({'sent': sent})
`;

/**
 * GET a URL with urllib, proxies disabled.
 * args: { url, timeout } prints { status, length, sha, head }
 */
export const HTTP_GET_PY = PRELUDE + String.raw`
import urllib.request
try:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(ARGS['url'], timeout=ARGS['timeout']) as r:
        body = r.read()
        out({'status': r.status, 'length': len(body), 'sha': hashlib.sha256(body).hexdigest(), 'head': body[:64].decode('latin-1')})
except Exception as e:
    out({'error': err_name(e)})
`;

/** A running guest python program and its parsed JSON result. */
export interface GuestPython {
  proc: NetnsProcess;
  /** The last JSON line it printed; rejects with its stderr when there is none. */
  result<T = Record<string, unknown>>(): Promise<T>;
}

/** Starts `python3 -c script JSON(args)` inside the namespaces of `pid`. */
export function guestPython(pid: number, script: string, args: unknown, timeoutMs = 60_000): GuestPython {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/_proxy$/i.test(k)) delete env[k];
  const proc = spawnInNetns(pid, ['python3', '-c', script, JSON.stringify(args)], { timeoutMs, env });
  return {
    proc,
    async result<T>() {
      const r = await proc.done;
      const lines = r.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
      if (lines.length === 0) {
        throw new Error(`guest python exited ${r.code ?? r.signal} without a result: ${r.stderr.slice(-2000)}`);
      }
      return JSON.parse(lines[lines.length - 1]!) as T;
    },
  };
}

// ---------------------------------------------------------------------------
// Host side (Node, in the test process, on 127.0.0.1 only)
// ---------------------------------------------------------------------------

/** A period-long PRNG block (xorshift32), doubled so any chunk up to a period is one slice. */
const patterns = new Map<number, Buffer>();
export function hostPattern(seed: number): Buffer {
  let p = patterns.get(seed);
  if (p) return p;
  const base = Buffer.allocUnsafe(PATTERN_PERIOD);
  let x = (seed * 2654435761 + 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < PATTERN_PERIOD; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    base[i] = x & 0xff;
  }
  p = Buffer.concat([base, base]);
  patterns.set(seed, p);
  return p;
}

/**
 * Writes `total` bytes of the seed's pattern with backpressure, then calls
 * `done(sha)` (and ends the socket unless `end` is false).
 */
export function sendPattern(sock: Socket, seed: number, total: number, done: (sha: string) => void, end = true): void {
  const buf = hostPattern(seed);
  const hash = createHash('sha256');
  const chunkBytes = 256 * 1024;
  let left = total;
  let pos = 0;
  const pump = (): void => {
    while (left > 0) {
      if (sock.destroyed) return;
      const n = Math.min(chunkBytes, left);
      const chunk = buf.subarray(pos, pos + n);
      hash.update(chunk);
      left -= n;
      pos = (pos + n) % PATTERN_PERIOD;
      if (!sock.write(chunk)) {
        sock.once('drain', pump);
        return;
      }
    }
    const sha = hash.digest('hex');
    if (end) sock.end();
    done(sha);
  };
  pump();
}

export interface HostServer<R> {
  server: Server;
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections open now, and the most ever open at once. */
  open: number;
  maxOpen: number;
  results: Map<number, R>;
  errors: string[];
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1:<random> (or `host`) that tracks its sockets so close() leaves nothing behind. */
export async function hostServer<R = unknown>(
  onConnection: (sock: Socket, self: HostServer<R>) => void,
  options: { allowHalfOpen?: boolean; port?: number; host?: string } = {},
): Promise<HostServer<R>> {
  const sockets = new Set<Socket>();
  const self: HostServer<R> = {
    server: createServer({ allowHalfOpen: options.allowHalfOpen ?? true }),
    port: 0,
    accepted: 0,
    open: 0,
    maxOpen: 0,
    results: new Map(),
    errors: [],
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => self.server.close(() => r(null)));
    },
  };
  self.server.on('connection', (sock) => {
    sockets.add(sock);
    self.accepted++;
    self.open++;
    self.maxOpen = Math.max(self.maxOpen, self.open);
    sock.once('close', () => {
      sockets.delete(sock);
      self.open--;
    });
    onConnection(sock, self);
  });
  self.server.maxConnections = 10_000;
  await new Promise<void>((resolve, reject) => {
    self.server.once('error', reject);
    self.server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0, backlog: 4096 }, () => resolve());
  });
  self.port = (self.server.address() as AddressInfo).port;
  return self;
}

export interface TransferResult {
  dir: 'up' | 'down';
  bytes: number;
  sha: string;
}

/**
 * The peer of TRANSFER_PY. A connection starts with one header line:
 * `UP id bytes` — read `bytes` to the guest's FIN, answer `sha bytes\n`, close;
 * `DOWN id bytes seed` — send `bytes` of the pattern, close.
 * What the host hashed lands in `results` under the id.
 */
export function transferServer(host = '127.0.0.1'): Promise<HostServer<TransferResult>> {
  return hostServer<TransferResult>((sock, self) => {
    let header = '';
    let hash: ReturnType<typeof createHash> | null = null;
    let id = -1;
    let bytes = 0;
    sock.on('error', (e) => self.errors.push(`transfer ${id}: ${e.message}`));
    const onData = (d: Buffer): void => {
      if (hash) {
        hash.update(d);
        bytes += d.length;
        return;
      }
      header += d.toString('latin1');
      const nl = header.indexOf('\n');
      if (nl < 0) {
        if (header.length > 200) sock.destroy();
        return;
      }
      const [verb, idS, nS, seedS] = header.slice(0, nl).split(' ');
      id = Number(idS);
      const rest = d.subarray(d.length - (header.length - nl - 1));
      if (verb === 'UP') {
        hash = createHash('sha256');
        hash.update(rest);
        bytes = rest.length;
        sock.once('end', () => {
          const sha = hash!.digest('hex');
          self.results.set(id, { dir: 'up', bytes, sha });
          sock.end(`${sha} ${bytes}\n`);
        });
      } else if (verb === 'DOWN') {
        sock.off('data', onData);
        sock.resume();
        const total = Number(nS);
        sendPattern(sock, Number(seedS), total, (sha) => self.results.set(id, { dir: 'down', bytes: total, sha }));
      } else {
        sock.destroy();
      }
    };
    sock.on('data', onData);
  }, { host });
}

/** Echoes everything back; closes when the guest does. */
/** A TCP echo server on 127.0.0.1 (or `host`, e.g. '::1'):<random>. */
export function echoServer(host = '127.0.0.1'): Promise<HostServer<never>> {
  return hostServer<never>(
    (sock, self) => {
      sock.on('data', (d) => sock.write(d));
      sock.on('error', (e) => self.errors.push(e.message));
    },
    { allowHalfOpen: false, host },
  );
}

/** An HTTP server on 127.0.0.1:<random> (or `host`) serving `body` at every path. */
export async function httpServer(body: Buffer, host = '127.0.0.1'): Promise<{ server: HttpServer; port: number; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(null)));
    },
  };
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

// ---------------------------------------------------------------------------
// UDP, DNS and ICMP (issue 4): guest programs, host peers and launchers
// ---------------------------------------------------------------------------

/**
 * Datagrams of the given sizes, one at a time, each answered by an echo
 * server. The payload of size i is seeded by (seed, i), so both sides can
 * hash it; a reply counts only if it comes from the address written to.
 * args: { host, port, sizes: [n], seed?, timeout, bindPort? }
 * prints { local: [ip, port], results: [{ size, ok, from, sha, got, seconds } | { size, error, seconds }] }
 */
export const UDP_ECHO_PY = PRELUDE + String.raw`
v6 = ':' in ARGS['host']
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(('::' if v6 else '0.0.0.0', ARGS.get('bindPort', 0)))
dst = (ARGS['host'], ARGS['port'])
res = []
for k, size in enumerate(ARGS['sizes']):
    data = random.Random(ARGS.get('seed', 1) * 100003 + k).randbytes(size)
    r = {'size': size, 'sentSha': hashlib.sha256(data).hexdigest()}
    t0 = time.monotonic()
    deadline = t0 + ARGS['timeout']
    try:
        s.sendto(data, dst)
        while True:
            left = deadline - time.monotonic()
            if left <= 0: raise socket.timeout()
            s.settimeout(left)
            d, frm = s.recvfrom(70000)
            frm = frm[:2]
            if frm == dst: break
            r.setdefault('strays', []).append(list(frm))
        r.update({'ok': d == data, 'got': len(d), 'sha': hashlib.sha256(d).hexdigest(), 'from': list(frm)})
    except socket.timeout:
        r['error'] = 'timeout'
    except OSError as e:
        r['error'] = err_name(e)
    r['seconds'] = time.monotonic() - t0
    res.append(r)
out({'local': list(s.getsockname())[:2], 'results': res})
`;

/**
 * Endpoint-independent mapping and filtering: one socket sends 'eim <i>' to
 * each target and collects their replies, then waits for a datagram from a
 * source it never wrote to.
 * args: { targets: [[host, port]], timeout }
 * prints { local, replies: [{ from, data }], extra: { from, data } | null }
 */
export const UDP_EIM_PY = PRELUDE + String.raw`
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 0))
targets = [tuple(t) for t in ARGS['targets']]
for i, t in enumerate(targets):
    s.sendto(('eim %d' % i).encode(), t)
replies = []
extra = None
deadline = time.monotonic() + ARGS['timeout']
while extra is None:
    left = deadline - time.monotonic()
    if left <= 0: break
    s.settimeout(left)
    try:
        d, frm = s.recvfrom(2048)
    except socket.timeout:
        break
    rec = {'from': list(frm), 'data': d.decode('latin-1')}
    if frm in targets: replies.append(rec)
    else: extra = rec
out({'local': list(s.getsockname()), 'replies': replies, 'extra': extra})
`;

/**
 * One datagram from each of `count` source ports (firstPort, firstPort+1, …)
 * to an echo server, `batch` ports at a time: each batch's sockets send, wait
 * for their echoes (resending the missing ones up to `retries` times), and
 * are closed before the next batch. The echoes pace the guest to what the
 * relay can take, so the TAP's queue never overflows, and they prove every
 * mapping carries replies back.
 * args: { host, port, firstPort, count, batch, replyTimeout, retries }
 * prints { echoed, lostCount, lost: [first ports], resent, errors: { errno: n }, seconds }
 */
export const UDP_MANY_PORTS_PY = PRELUDE + String.raw`
import select
dst = (ARGS['host'], ARGS['port'])
n, first, batch = ARGS['count'], ARGS['firstPort'], ARGS['batch']
echoed = 0
resent = 0
lost = []
errors = {}
t0 = time.monotonic()
for base in range(0, n, batch):
    socks = {}
    for i in range(base, min(n, base + batch)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.bind(('0.0.0.0', first + i))
        socks[s] = b'port %05d' % i
    pending = set(socks)
    for attempt in range(ARGS['retries'] + 1):
        for s in pending:
            try:
                s.sendto(socks[s], dst)
                if attempt: resent += 1
            except OSError as e:
                errors[err_name(e)] = errors.get(err_name(e), 0) + 1
        deadline = time.monotonic() + ARGS['replyTimeout']
        while pending:
            left = deadline - time.monotonic()
            if left <= 0: break
            ready, _, _ = select.select(list(pending), [], [], left)
            for s in ready:
                try:
                    d, frm = s.recvfrom(2048)
                except BlockingIOError:
                    continue
                except OSError as e:
                    errors[err_name(e)] = errors.get(err_name(e), 0) + 1
                    continue
                if frm == dst and d == socks[s]:
                    pending.discard(s)
                    echoed += 1
        if not pending: break
    lost.extend(first + int(socks[s][5:]) for s in pending)
    for s in socks: s.close()
out({'echoed': echoed, 'lostCount': len(lost), 'lost': sorted(lost)[:20], 'resent': resent, 'errors': errors, 'seconds': time.monotonic() - t0})
`;

/**
 * DNS queries built and parsed here (no resolver library, no resolv.conf),
 * over UDP (a connected socket: only the server's datagrams count, and ICMP
 * errors surface as errnos) or TCP (RFC 7766 length prefix), one after the
 * other, each timed.
 * args: { server, port?, timeout, queries: [{ name, type: 'A'|'AAAA'|'TXT', transport: 'udp'|'tcp' }] }
 * prints { results: [{ name, type, transport, rcode, idOk, aa, tc, answers: [{ type, ttl, data }], seconds } | { …, error, seconds }] }
 */
export const DNS_PY = PRELUDE + String.raw`
TYPES = {'A': 1, 'AAAA': 28, 'TXT': 16}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED'}
def build(qid, name, qtype):
    q = struct.pack('!HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip('.').split('.'):
        b = label.encode()
        q += bytes([len(b)]) + b
    return q + b'\0' + struct.pack('!HH', TYPES[qtype], 1)
def skip_name(m, off):
    while True:
        l = m[off]
        if l & 0xc0 == 0xc0: return off + 2
        if l == 0: return off + 1
        off += 1 + l
def parse(m):
    qid, flags, qd, an, ns, ar = struct.unpack('!HHHHHH', m[:12])
    off = 12
    for _ in range(qd): off = skip_name(m, off) + 4
    answers = []
    for _ in range(an):
        off = skip_name(m, off)
        t, c, ttl, rdlen = struct.unpack('!HHIH', m[off:off + 10])
        off += 10
        rd = m[off:off + rdlen]
        off += rdlen
        if t == 1: data = socket.inet_ntoa(rd)
        elif t == 28: data = socket.inet_ntop(socket.AF_INET6, rd)
        elif t == 16:
            data, i = [], 0
            while i < len(rd):
                data.append(rd[i + 1:i + 1 + rd[i]].decode('latin-1'))
                i += 1 + rd[i]
        else: data = rd.hex()
        answers.append({'type': TYPE_NAMES.get(t, t), 'ttl': ttl, 'data': data})
    return {'id': qid, 'rcode': RCODES.get(flags & 15, flags & 15), 'qr': flags >> 15, 'aa': (flags >> 10) & 1, 'tc': (flags >> 9) & 1, 'answers': answers}
def ask_udp(q, server, deadline):
    s = socket.socket(socket.AF_INET6 if ':' in server[0] else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(server)
        s.send(q)
        while True:
            left = deadline - time.monotonic()
            if left <= 0: raise socket.timeout()
            s.settimeout(left)
            d = s.recv(65535)
            if d[:2] == q[:2]: return d
    finally:
        s.close()
def ask_tcp(q, server, deadline):
    s = socket.create_connection(server, timeout=max(0.01, deadline - time.monotonic()))
    try:
        s.sendall(struct.pack('!H', len(q)) + q)
        def readn(n):
            b = b''
            while len(b) < n:
                left = deadline - time.monotonic()
                if left <= 0: raise socket.timeout()
                s.settimeout(left)
                d = s.recv(n - len(b))
                if not d: raise OSError(0, 'EOF')
                b += d
            return b
        return readn(struct.unpack('!H', readn(2))[0])
    finally:
        s.close()
res = []
server = (ARGS['server'], ARGS.get('port', 53))
for qq in ARGS['queries']:
    qid = random.randrange(65536)
    q = build(qid, qq['name'], qq['type'])
    r = dict(qq)
    t0 = time.monotonic()
    try:
        m = (ask_tcp if qq['transport'] == 'tcp' else ask_udp)(q, server, t0 + ARGS['timeout'])
        p = parse(m)
        r.update(p)
        r['idOk'] = p['id'] == qid
    except socket.timeout:
        r['error'] = 'timeout'
    except OSError as e:
        r['error'] = err_name(e)
    except Exception as e:
        r['error'] = 'parse: ' + repr(e)
    r['seconds'] = time.monotonic() - t0
    res.append(r)
out({'results': res})
`;

export interface UdpDatagram {
  address: string;
  port: number;
  size: number;
  sha: string;
  data: Buffer;
}

export interface HostUdpServer {
  socket: DgramSocket;
  port: number;
  received: UdpDatagram[];
  /** Sends from this server's socket to 127.0.0.1:port. */
  sendTo(port: number, data: Buffer | string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A UDP socket on 127.0.0.1:<random> that records what arrives (payloads up
 * to `keepBytes` are kept) and, with `echo`, sends each datagram back to its
 * source. Nothing here sends to anything but 127.0.0.1.
 */
export async function udpServer(options: { echo?: boolean; keepBytes?: number; host?: string } = {}): Promise<HostUdpServer> {
  const host = options.host ?? '127.0.0.1';
  const socket = createDgramSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('error', () => {});
  await new Promise<void>((r) => socket.bind(0, host, () => r()));
  socket.setRecvBufferSize(4 << 20);
  socket.setSendBufferSize(4 << 20);
  const received: UdpDatagram[] = [];
  const keep = options.keepBytes ?? 256;
  socket.on('message', (msg, rinfo) => {
    received.push({ address: rinfo.address, port: rinfo.port, size: msg.length, sha: sha256(msg), data: msg.length <= keep ? msg : Buffer.alloc(0) });
    if (options.echo && rinfo.address === host) socket.send(msg, rinfo.port, rinfo.address);
  });
  let closed = false;
  return {
    socket,
    port: socket.address().port,
    received,
    sendTo: (port, data) => new Promise<void>((r, j) => socket.send(data, port, host, (e) => (e ? j(e) : r()))),
    close: () =>
      new Promise<void>((r) => {
        if (closed) return r();
        closed = true;
        socket.close(() => r());
      }),
  };
}

/** Registers a cleanup; tests run them in reverse order in afterEach. */
export type Defer = (fn: () => Promise<void> | void) => void;

export const USERNET_BIN = fileURLToPath(new URL('../../bin/usernet', import.meta.url));

/**
 * A resolv.conf whose only nameserver is a closed port on the host's
 * loopback: what every guest gets unless a test passes its own, so that
 * nothing ever asks the machine's real nameservers.
 */
export const NO_RESOLVER_CONF = '# usernet e2e: no resolver (a closed loopback port)\nnameserver 127.0.0.1#1\n';

export interface CliGuest {
  ns: UserNetns;
  child: ChildProcess;
  stderr(): string;
  /** Runs a guest python program (killed in cleanup if still running); checks the binary is still alive. */
  py<T = Record<string, unknown>>(script: string, args: unknown, timeoutMs?: number): Promise<T>;
}

/**
 * A fresh namespace with bin/usernet (or `bin`) attached to its tap0 with
 * `-c` (10.0.2.100/24 via 10.0.2.2), ready when the ready fd says so.
 * USERNET_RESOLV_CONF defaults to NO_RESOLVER_CONF.
 */
export async function startCliGuest(o: { defer: Defer; dir: string; bin?: string; args?: string[]; env?: Record<string, string> }): Promise<CliGuest> {
  const bin = o.bin ?? USERNET_BIN;
  const ns = await userNetns();
  o.defer(() => ns.close());
  const env: Record<string, string> = { ...o.env };
  if (env.USERNET_RESOLV_CONF === undefined) {
    env.USERNET_RESOLV_CONF = join(o.dir, 'no-resolver.conf');
    writeFileSync(env.USERNET_RESOLV_CONF, NO_RESOLVER_CONF);
  }
  const ready = join(o.dir, `ready-${ns.pid}`);
  const child = spawn('sh', ['-c', `exec "$0" "$@" 9>"${ready}"`, bin, '-c', '-r', '9', ...(o.args ?? []), String(ns.pid), 'tap0'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-50_000)));
  const exited = new Promise((r) => child.once('exit', r));
  o.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`${bin} exited ${child.exitCode}: ${err}`);
    return existsSync(ready) && readFileSync(ready, 'utf8') === '1';
  }, 15_000, `${bin} ready fd`);
  return {
    ns,
    child,
    stderr: () => err,
    async py<T>(script: string, args: unknown, timeoutMs = 60_000): Promise<T> {
      const g = guestPython(ns.pid, script, args, timeoutMs);
      o.defer(() => g.proc.kill());
      const r = await g.result<T>();
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${bin} died: ${err}`);
      return r;
    },
  };
}

export interface LibraryGuest {
  ns: UserNetns;
  stack: Stack;
  /** What the stack logged (options.log). */
  logs: string[];
  py<T = Record<string, unknown>>(script: string, args: unknown, timeoutMs?: number): Promise<T>;
}

/**
 * The library in this process on a real TAP in a fresh namespace (as in
 * stack-tap.test.ts), the guest configured as with `-c`, so a test can read
 * stack.stats(). `dns` defaults to a forwarder reading NO_RESOLVER_CONF.
 */
export async function startLibraryGuest(o: { defer: Defer; dir: string; offloads: boolean; options?: Partial<StackOptions> }): Promise<LibraryGuest> {
  const { createStack, TapLink } = await import('../../src/index.js');
  const ns = await userNetns();
  o.defer(() => ns.close());
  const link = TapLink.attach({
    netnsPath: `/proc/${ns.pid}/ns/net`,
    usernsPath: `/proc/${ns.pid}/ns/user`,
    tapName: 'tap0',
    mtu: 1500,
    offloads: o.offloads,
    configure: { addr: 0x0a000264, netmask: 0xffffff00, gateway: 0x0a000202, mac: null },
  });
  let dns = o.options?.dns;
  if (dns === undefined) {
    const path = join(o.dir, 'no-resolver.conf');
    writeFileSync(path, NO_RESOLVER_CONF);
    dns = { resolvConfPath: path };
  }
  const logs: string[] = [];
  const stack = createStack({ log: (m) => logs.push(m), ...o.options, dns, link });
  o.defer(() => stack.close());
  return {
    ns,
    stack,
    logs,
    async py<T>(script: string, args: unknown, timeoutMs = 60_000): Promise<T> {
      const g = guestPython(ns.pid, script, args, timeoutMs);
      o.defer(() => g.proc.kill());
      return g.result<T>();
    },
  };
}

/** The host's first IPv4 address of global scope (`ip -4 -o addr show scope global`), or null. */
export function hostGlobalAddress(): string | null {
  const r = spawnSync('ip', ['-4', '-o', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8', timeout: 5000 });
  const m = /\binet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout ?? '');
  return m === null ? null : m[1]!;
}

/** Connects, writes `message`, reads until it came back (or the peer closed); resolves with all it read. */
export function tcpExchange(host: string, port: number, message: string, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect({ host, port, localAddress });
    let got = '';
    c.on('data', (d) => {
      got += d;
      if (got.includes(message)) c.end();
    });
    c.on('end', () => resolve(got));
    c.on('error', reject);
    c.on('connect', () => c.write(message));
    c.setTimeout(10_000, () => c.destroy(new Error('timeout')));
  });
}
