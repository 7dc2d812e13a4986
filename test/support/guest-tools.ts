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
import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { spawnInNetns, type NetnsProcess } from './netns.js';

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
    s = socket.socket()
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

/**
 * Hand-built TCP SYNs sent straight onto the TAP (AF_PACKET) to the gateway's
 * MAC, for destinations the guest kernel itself would never send a SYN to
 * (broadcasts, 0.0.0.0, 127.0.0.1). The kernel answers any SYN-ACK with RST.
 * args: { iface, src, targets: [ip], port, repeat }
 * prints { sent }
 */
export const RAW_SYN_PY = PRELUDE + String.raw`
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
rs = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
rs.bind((ARGS['iface'], 0))
me = rs.getsockname()[4]
gw = bytes.fromhex('52550a000202')
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

/** A TCP server on 127.0.0.1:<random> that tracks its sockets so close() leaves nothing behind. */
export async function hostServer<R = unknown>(
  onConnection: (sock: Socket, self: HostServer<R>) => void,
  options: { allowHalfOpen?: boolean; port?: number } = {},
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
    self.server.listen({ host: '127.0.0.1', port: options.port ?? 0, backlog: 4096 }, () => resolve());
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
export function transferServer(): Promise<HostServer<TransferResult>> {
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
  });
}

/** Echoes everything back; closes when the guest does. */
export function echoServer(): Promise<HostServer<never>> {
  return hostServer<never>(
    (sock, self) => {
      sock.on('data', (d) => sock.write(d));
      sock.on('error', (e) => self.errors.push(e.message));
    },
    { allowHalfOpen: false },
  );
}

/** An HTTP server on 127.0.0.1:<random> serving `body` at every path. */
export async function httpServer(body: Buffer): Promise<{ server: HttpServer; port: number; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
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
