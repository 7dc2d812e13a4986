/**
 * NativeTcpStream (src/nat/native-stream.ts) against loopback net.Servers: the
 * net.Socket behaviour tcp-nat relies on (connect/error/close ordering,
 * half-close, resets, backpressure), ownership both ways (written chunks are
 * not kept, 'data' chunks are never overwritten), adopt() of a paused accepted
 * socket, and no fd leak; then IPv6 on ::1 (connect, refusals, binding,
 * IPV6_V6ONLY, mixed families, adopt from ::1 and :: listeners). Nothing
 * leaves the machine.
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, PollEvents } from '../../src/link/native.js';
import { realHost } from '../../src/nat/host.js';
import { HIGH_WATER_MARK, NativeTcpStream, pooledCopyBuffers, releaseNativeStreamMemory } from '../../src/nat/native-stream.js';
import { ipv6LoopbackUnavailable, NOT_OURS6 } from '../support/ipv6.js';

const NO_IPV6 = ipv6LoopbackUnavailable();
if (NO_IPV6 !== null) console.warn(`SKIPPED: native-stream IPv6 tests: ${NO_IPV6}`);

const servers: net.Server[] = [];
const accepted: net.Socket[] = [];
const streams: NativeTcpStream[] = [];

afterEach(async () => {
  for (const s of streams) s.destroy();
  streams.length = 0;
  for (const c of accepted) c.destroy();
  accepted.length = 0;
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  servers.length = 0;
});

async function listen(onConnection: (c: net.Socket) => void, options: net.ServerOpts = {}, host = '127.0.0.1'): Promise<number> {
  const server = net.createServer({ allowHalfOpen: true, ...options }, (c) => {
    accepted.push(c);
    c.on('error', () => {}); // our resets; tests that care listen themselves
    onConnection(c);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A stream with every event recorded in order. */
function record(s: NativeTcpStream): { events: string[]; data: Buffer[]; errors: NodeJS.ErrnoException[]; closed: Promise<void> } {
  streams.push(s);
  const events: string[] = [];
  const data: Buffer[] = [];
  const errors: NodeJS.ErrnoException[] = [];
  const closed = new Promise<void>((resolve) => {
    s.on('close', () => {
      events.push('close');
      resolve();
    });
  });
  s.on('connect', () => events.push('connect'));
  s.on('data', (d: Buffer) => {
    data.push(d);
    if (events[events.length - 1] !== 'data') events.push('data');
  });
  s.on('end', () => events.push('end'));
  s.on('drain', () => events.push('drain'));
  s.on('error', (e: NodeJS.ErrnoException) => {
    errors.push(e);
    events.push(`error:${e.code}`);
  });
  return { events, data, errors, closed };
}

function once(emitter: NodeJS.EventEmitter, event: string): Promise<unknown[]> {
  return new Promise((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args)));
}

async function until(probe: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const ticks = () => new Promise((r) => setImmediate(r));

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('connect', () => {
  it('connects, echoes, and emits connect asynchronously', async () => {
    const port = await listen((c) => c.pipe(c));
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    expect(r.events).toEqual([]);
    await once(s, 'connect');
    expect(s.write(Buffer.from('hello'))).toBe(true);
    await until(() => Buffer.concat(r.data).toString() === 'hello', 'the echo');
    s.end();
    expect(s.writableEnded).toBe(true);
    await r.closed; // the echo server ends too: both directions done, the stream closes itself
    expect(r.events).toEqual(['connect', 'data', 'end', 'close']);
  });

  it('queues writes and end() made before the connect completes', async () => {
    const got: Buffer[] = [];
    let ended = false;
    const port = await listen((c) => {
      c.on('data', (d) => got.push(d));
      c.on('end', () => {
        ended = true;
        c.end();
      });
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    s.write(Buffer.from('early '));
    s.write(Buffer.from('bytes'));
    s.end();
    await r.closed;
    expect(ended).toBe(true);
    expect(Buffer.concat(got).toString()).toBe('early bytes');
    // Loopback: the connect had completed when connect() returned, so the
    // writes went straight to the socket and nothing waited for a 'drain'
    // (the next test queues them behind a connect that is still pending).
    expect(r.events).toEqual(['connect', 'end', 'close']);
  });

  /** Records the event mask of every pollStart while `body` runs. */
  async function pollStartMasks(body: () => Promise<void>): Promise<number[]> {
    const native = loadNative();
    const orig = native.pollStart;
    const masks: number[] = [];
    native.pollStart = (fd, cb, events) => {
      masks.push(events ?? PollEvents.READABLE);
      return orig.call(native, fd, cb, events);
    };
    try {
      await body();
    } finally {
      native.pollStart = orig;
    }
    return masks;
  }

  it('a connect complete when connect() returns (loopback) polls READABLE at once, no round for UV_WRITABLE', async () => {
    const port = await listen((c) => c.pipe(c));
    const masks = await pollStartMasks(async () => {
      const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
      const r = record(s);
      expect(r.events).toEqual([]); // 'connect' still comes asynchronously
      s.write(Buffer.from('x'));
      await until(() => r.data.length > 0, 'the echo');
      expect(r.events).toEqual(['connect', 'data']);
    });
    expect(masks).toEqual([PollEvents.READABLE]);
  });

  it('a connect still pending waits for UV_WRITABLE, with writes and end() queued meanwhile', async () => {
    // A listener that does not accept and has room for one connection in its
    // accept queue: a second SYN is dropped, so our connect stays pending
    // until the listener accepts and the SYN is sent again (~1 s).
    const py = spawn('python3', ['-u', '-c', `
import socket, sys, threading
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(0)
print(l.getsockname()[1]); sys.stdin.readline()
def serve(c):
    got = b''
    while True:
        d = c.recv(65536)
        if not d: break
        got += d
    c.sendall(got); c.close()
while True:
    c, _ = l.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
`], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const port = Number((await once(py.stdout, 'data'))[0]);
      const filler = net.connect(port, '127.0.0.1');
      filler.on('error', () => {});
      await once(filler, 'connect');
      let r: ReturnType<typeof record> | undefined;
      const masks = await pollStartMasks(async () => {
        const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
        r = record(s);
        s.write(Buffer.from('queued '));
        s.write(Buffer.from('early'));
        s.end();
      });
      expect(masks).toEqual([PollEvents.WRITABLE]);
      await new Promise((res) => setTimeout(res, 100));
      expect(r!.events).toEqual([]); // still connecting
      py.stdin.write('\n'); // accept: the queue has room for the retransmitted SYN
      filler.end();
      await r!.closed;
      expect(Buffer.concat(r!.data).toString()).toBe('queued early');
      expect(r!.events).toEqual(['connect', 'drain', 'data', 'end', 'close']);
      filler.destroy();
    } finally {
      // Its pipes must be closed before a later test counts fds.
      const gone = once(py, 'close');
      py.kill();
      await gone;
    }
  }, 15_000);

  it('reports ECONNREFUSED like Node, then close exactly once', async () => {
    const port = await closedPort();
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await r.closed;
    await ticks();
    expect(r.events).toEqual(['error:ECONNREFUSED', 'close']);
    const e = r.errors[0];
    expect(e.errno).toBe(-111);
    expect(e.syscall).toBe('connect');
    expect(e.message).toBe(`connect ECONNREFUSED 127.0.0.1:${port}`);
    expect(s.destroyed).toBe(true);
  });

  it('emits an immediate failure (bind to a foreign address) asynchronously', async () => {
    const port = await listen(() => {});
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port, localAddress: '192.0.2.1' });
    const r = record(s); // listeners attached after connect() returned
    await r.closed;
    expect(r.events).toEqual(['error:EADDRNOTAVAIL', 'close']);
  });

  it('binds to localAddress', async () => {
    let remote = '';
    const port = await listen((c) => {
      remote = c.remoteAddress ?? '';
      c.end();
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
    const r = record(s);
    await once(s, 'end');
    s.end();
    await r.closed;
    expect(remote).toBe('127.0.0.2');
  });

  it('is what realHost.connectTcp dials with, net.Socket only for what it cannot take', async () => {
    const port = await listen(() => {});
    const s = realHost.connectTcp({ host: '127.0.0.1', port });
    expect(s).toBeInstanceOf(NativeTcpStream);
    expect(s.copiesOnWrite).toBe(true);
    const fallback = realHost.connectTcp({ host: 'localhost', port });
    expect(fallback).toBeInstanceOf(net.Socket);
    fallback.on('error', () => {});
    const closes = [new Promise((r) => s.once('close', r)), new Promise((r) => fallback.once('close', r))];
    s.destroy();
    fallback.destroy();
    await Promise.all(closes);
  });

  it('rejects what is not a literal, or literals of two families (host.ts falls back to net.Socket)', () => {
    expect(NativeTcpStream.canConnect({ host: 'localhost', port: 1 })).toBe(false);
    expect(NativeTcpStream.canConnect({ host: '127.0.0.1', port: 1, localAddress: '::1' })).toBe(false);
    expect(NativeTcpStream.canConnect({ host: '::1', port: 1, localAddress: '127.0.0.1' })).toBe(false);
    expect(NativeTcpStream.canConnect({ host: 'fe80::1%lo', port: 1 })).toBe(false);
    expect(NativeTcpStream.canConnect({ host: '[::1]', port: 1 })).toBe(false);
    expect(NativeTcpStream.canConnect({ host: '127.0.0.1', port: 1 })).toBe(true);
    expect(NativeTcpStream.canConnect({ host: '::1', port: 1 })).toBe(true);
    expect(NativeTcpStream.canConnect({ host: '::1', port: 1, localAddress: '::' })).toBe(true);
    expect(() => NativeTcpStream.connect({ host: 'localhost', port: 1 })).toThrow(TypeError);
    expect(() => NativeTcpStream.connect({ host: '::1', port: 1, localAddress: '127.0.0.1' })).toThrow(TypeError);
    // The addon itself refuses to bind a source of the other family.
    expect(() => loadNative().tcpConnect(new Uint8Array(16), 1, 0x7f000001)).toThrow(TypeError);
    expect(() => loadNative().tcpConnect(0x7f000001, 1, new Uint8Array(16))).toThrow(TypeError);
  });
});

describe('data', () => {
  it('moves 64 MiB each way intact, with backpressure and pause/resume, not keeping written chunks', async () => {
    const TOTAL = 64 * 1024 * 1024;
    const CHUNK = 256 * 1024;
    let serverHash = '';
    let serverGot = 0;
    const sentByServer = createHash('sha256');
    const port = await listen((c) => {
      const h = createHash('sha256');
      c.on('data', (d: Buffer) => {
        h.update(d);
        serverGot += d.length;
        // The host reads slowly now and then: our writes must queue and drain.
        if (serverGot % (8 * 1024 * 1024) < d.length) {
          c.pause();
          setTimeout(() => c.resume(), 20); // real time on purpose: the kernel buffers fill meanwhile
        }
      });
      // The host ends its side once it has sent everything and seen our end.
      let pending = 2;
      const done = (): void => {
        if (--pending === 0) c.end();
      };
      c.on('end', () => {
        serverHash = h.digest('hex');
        done();
      });
      let sent = 0;
      const pump = (): void => {
        while (sent < TOTAL) {
          const b = randomFillSync(Buffer.allocUnsafe(CHUNK));
          sentByServer.update(b);
          sent += CHUNK;
          if (!c.write(b)) {
            c.once('drain', pump);
            return;
          }
        }
        done();
      };
      pump();
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');

    // Our side pauses every few MiB and resumes a little later; every chunk
    // is kept until the end, so a slab region reused under a live chunk shows.
    let received = 0;
    let pauses = 0;
    s.on('data', (d: Buffer) => {
      received += d.length;
      if (received % (4 * 1024 * 1024) < d.length) {
        pauses++;
        s.pause();
        setTimeout(() => s.resume(), 5); // real time on purpose: the kernel buffers fill meanwhile
      }
    });

    // One buffer reused for every write and scribbled over right after: the
    // stream must have sent or copied it by then.
    const sentByUs = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    let drains = 0;
    let falseWrites = 0;
    for (let sent = 0; sent < TOTAL; sent += CHUNK) {
      randomFillSync(buf);
      sentByUs.update(buf);
      const ok = s.write(buf);
      buf.fill(0xa5);
      if (!ok) {
        falseWrites++;
        expect(s.writableLength).toBeGreaterThanOrEqual(HIGH_WATER_MARK);
        await once(s, 'drain');
        drains++;
      }
    }
    s.end();
    await r.closed;
    expect(r.errors).toEqual([]);
    expect(serverGot).toBe(TOTAL);
    expect(serverHash).toBe(sentByUs.digest('hex'));
    const all = Buffer.concat(r.data);
    expect(all.length).toBe(TOTAL);
    expect(createHash('sha256').update(all).digest('hex')).toBe(sentByServer.digest('hex'));
    expect(falseWrites).toBeGreaterThan(0);
    expect(drains).toBe(falseWrites);
    expect(pauses).toBeGreaterThan(0);
  }, 120_000);

  it('pause() stops data and end; resume() delivers what waited', async () => {
    let client!: net.Socket;
    const port = await listen((c) => {
      client = c;
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    await until(() => client !== undefined, 'the accept');
    s.pause();
    client.end('while paused');
    await new Promise((res) => client.once('finish', res));
    // The FIN is at our socket; a paused stream must not report it.
    for (let i = 0; i < 20; i++) await ticks();
    expect(r.events).toEqual(['connect']);
    s.resume();
    await once(s, 'end');
    expect(Buffer.concat(r.data).toString()).toBe('while paused');
  });

  it('turns an exception in a data listener into the stream\'s error', async () => {
    const port = await listen((c) => c.end('x'));
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    s.on('data', () => {
      throw new Error('listener bug');
    });
    await r.closed;
    expect(r.errors.map((e) => e.message)).toEqual(['listener bug']);
    expect(r.events).toEqual(['connect', 'data', 'error:undefined', 'close']);
  });
});

describe('half-close', () => {
  it('we end first; the host keeps sending, then ends', async () => {
    let peerEnded = false;
    const port = await listen((c) => {
      c.resume();
      c.on('end', () => {
        peerEnded = true;
        c.write('after your FIN');
        c.end();
      });
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    s.end();
    await r.closed;
    expect(peerEnded).toBe(true);
    expect(Buffer.concat(r.data).toString()).toBe('after your FIN');
    expect(r.events).toEqual(['connect', 'data', 'end', 'close']);
  });

  it('the host ends first; we keep sending, then end', async () => {
    const got: Buffer[] = [];
    let peerSawEnd = false;
    const port = await listen((c) => {
      c.on('data', (d) => got.push(d));
      c.on('end', () => {
        peerSawEnd = true;
      });
      c.end('bye');
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'end');
    expect(s.destroyed).toBe(false);
    expect(s.write(Buffer.from('still talking'))).toBe(true);
    await until(() => Buffer.concat(got).toString() === 'still talking', 'our bytes after the host FIN');
    expect(peerSawEnd).toBe(false);
    s.end();
    await r.closed;
    await until(() => peerSawEnd, "the host's end");
    expect(r.events).toEqual(['connect', 'data', 'end', 'close']);
  });

  it('ignores write() after end(): false, no error, nothing sent', async () => {
    const got: Buffer[] = [];
    const port = await listen((c) => {
      c.on('data', (d) => got.push(d));
      c.on('end', () => c.end());
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    s.write(Buffer.from('a'));
    s.end();
    expect(s.write(Buffer.from('b'))).toBe(false);
    await r.closed;
    expect(Buffer.concat(got).toString()).toBe('a');
    expect(r.errors).toEqual([]);
  });
});

describe('reset', () => {
  it('a reset from the host is error ECONNRESET, then close', async () => {
    let client!: net.Socket;
    const port = await listen((c) => {
      client = c;
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    await until(() => client !== undefined, 'the accept');
    client.resetAndDestroy();
    await r.closed;
    expect(r.events).toEqual(['connect', 'error:ECONNRESET', 'close']);
    expect(r.errors[0].errno).toBe(-104);
  });

  it('a reset from the host while we only write is EPIPE or ECONNRESET', async () => {
    let client!: net.Socket;
    const port = await listen((c) => {
      client = c;
      c.pause();
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    s.pause();
    await until(() => client !== undefined, 'the accept');
    client.resetAndDestroy();
    // Write until the stream notices (the first write after the RST may still be accepted).
    await until(() => {
      if (!s.destroyed) s.write(Buffer.alloc(1024));
      return s.destroyed;
    }, 'the write to fail');
    await r.closed;
    expect(r.errors).toHaveLength(1);
    expect(['EPIPE', 'ECONNRESET']).toContain(r.errors[0].code);
    expect(r.events[r.events.length - 1]).toBe('close');
  });

  it('resetAndDestroy() resets the host, and closes once', async () => {
    let peerError: NodeJS.ErrnoException | undefined;
    let accepted = false;
    const port = await listen((c) => {
      accepted = true;
      c.on('error', (e) => {
        peerError = e;
      });
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    await until(() => accepted, 'the accept');
    s.resetAndDestroy();
    s.resetAndDestroy();
    s.destroy();
    await r.closed;
    await until(() => peerError !== undefined, "the host's error");
    expect(peerError!.code).toBe('ECONNRESET');
    await ticks();
    expect(r.events).toEqual(['connect', 'close']);
  });
});

describe('destroy', () => {
  it('is idempotent: one close, nothing after it, writes ignored', async () => {
    let client!: net.Socket;
    const port = await listen((c) => {
      client = c;
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    await until(() => client !== undefined, 'the accept');
    client.write(Buffer.alloc(100_000));
    s.destroy();
    s.destroy();
    s.resetAndDestroy();
    expect(s.destroyed).toBe(true);
    expect(s.write(Buffer.from('x'))).toBe(false);
    await r.closed;
    for (let i = 0; i < 10; i++) await ticks();
    expect(r.events).toEqual(['connect', 'close']);
    expect(s.writableLength).toBe(0);
  });

  it('destroy() while connecting closes without connect or error', async () => {
    const port = await listen(() => {});
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    s.destroy();
    await r.closed;
    for (let i = 0; i < 10; i++) await ticks();
    expect(r.events).toEqual(['close']);
  });

  it('leaks no fd over many connects, refusals and resets', async () => {
    const port = await listen((c) => c.pipe(c));
    const refused = await closedPort();
    // Warm up whatever the runtime opens on first use (the addon, the slab).
    {
      const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
      const r = record(s);
      await once(s, 'connect');
      // On loopback 'connect' can come before the server's accept: wait for
      // it, or its socket opens after `before` is counted.
      await until(() => accepted.length > 0, 'the accept');
      s.destroy();
      await r.closed;
    }
    // The host side of the connections lives in this process too: count only once it is gone.
    const settle = async (): Promise<number> => {
      for (const c of accepted) c.destroy();
      accepted.length = 0;
      await ticks();
      return openFds();
    };
    const before = await settle();
    for (let round = 0; round < 20; round++) {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < 10; i++) {
        const ok = NativeTcpStream.connect({ host: '127.0.0.1', port });
        const ro = record(ok);
        ok.once('connect', () => {
          ok.write(Buffer.from('ping'));
          ok.once('data', () => (i % 2 === 0 ? ok.end() : i % 3 === 0 ? ok.resetAndDestroy() : ok.destroy()));
        });
        batch.push(ro.closed);
        const bad = NativeTcpStream.connect({ host: '127.0.0.1', port: refused });
        batch.push(record(bad).closed);
      }
      await Promise.all(batch);
    }
    streams.length = 0;
    expect(await settle()).toBe(before);
  }, 30_000);
});

describe('drain', () => {
  it('write() returns false from the high-water mark on, and drain follows the flush', async () => {
    let client!: net.Socket;
    const port = await listen((c) => {
      client = c;
      c.pause();
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    await until(() => client !== undefined, 'the accept');
    const chunk = Buffer.alloc(64 * 1024, 1);
    let total = 0;
    while (s.write(chunk)) total += chunk.length;
    total += chunk.length;
    expect(s.writableLength).toBeGreaterThanOrEqual(HIGH_WATER_MARK);
    let got = 0;
    client.on('data', (d) => {
      got += d.length;
    });
    client.resume();
    await once(s, 'drain');
    expect(s.writableLength).toBe(0);
    await until(() => got === total, 'every byte at the host');
    expect(r.errors).toEqual([]);
  });

  it('queues copies in pooled buffers that are reused, intact, and dropped by releaseNativeStreamMemory', async () => {
    releaseNativeStreamMemory();
    let client!: net.Socket;
    const received: Buffer[] = [];
    const port = await listen((c) => {
      client = c;
      c.pause();
      c.on('data', (d) => received.push(d));
    });
    const s = NativeTcpStream.connect({ host: '127.0.0.1', port });
    const r = record(s);
    await once(s, 'connect');
    await until(() => client !== undefined, 'the accept');
    const sent: Buffer[] = [];
    // Rounds of: fill the socket until write() queues, then let the host read it all.
    for (let round = 0; round < 4; round++) {
      const chunk = Buffer.alloc(48 * 1024);
      let queued = false;
      for (let i = 0; !queued; i++) {
        const c = Buffer.from(chunk.fill((round * 16 + i) & 0xff));
        sent.push(c);
        queued = !s.write(c);
      }
      expect(s.writableLength).toBeGreaterThan(0);
      client.resume();
      await once(s, 'drain');
      const want = sent.reduce((a, b) => a + b.length, 0);
      await until(() => received.reduce((a, b) => a + b.length, 0) === want, 'the host read it all');
      client.pause();
      expect(pooledCopyBuffers()).toBeGreaterThan(0); // back in the pool once sent
    }
    expect(Buffer.concat(received).equals(Buffer.concat(sent))).toBe(true);
    expect(pooledCopyBuffers()).toBeLessThanOrEqual(64);
    releaseNativeStreamMemory();
    expect(pooledCopyBuffers()).toBe(0);
    expect(r.errors).toEqual([]);
  });
});

describe('adopt', () => {
  it('takes over a paused accepted socket: no byte lost, no FIN or RST from the handover', async () => {
    let original: net.Socket | undefined;
    const port = await listen(
      (c) => {
        original = c;
      },
      { pauseOnConnect: true },
    );
    const client = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const clientGot: Buffer[] = [];
    let clientEvents = '';
    client.on('data', (d) => clientGot.push(d));
    client.on('end', () => (clientEvents += 'end '));
    client.on('error', (e: NodeJS.ErrnoException) => (clientEvents += `error:${e.code} `));
    const payload = randomFillSync(Buffer.alloc(300_000));
    await new Promise<void>((res) => client.write(payload, () => res()));
    await until(() => original !== undefined, 'the accept');
    // The client's bytes are in the kernel (or on their way) before the handover.
    const originalClosed = once(original!, 'close');
    const s = NativeTcpStream.adopt(original!);
    expect(original!.destroyed).toBe(true);
    await originalClosed;
    const r = record(s);
    // Starts paused: nothing is read before resume().
    for (let i = 0; i < 10; i++) await ticks();
    expect(r.events).toEqual([]);
    s.resume();
    await until(() => Buffer.concat(r.data).length === payload.length, 'the queued bytes');
    expect(Buffer.concat(r.data).equals(payload)).toBe(true);

    // The connection survived the net.Socket's destroy: a round trip works and
    // the client saw neither FIN nor RST.
    expect(s.write(Buffer.from('reply'))).toBe(true);
    await until(() => Buffer.concat(clientGot).toString() === 'reply', 'the reply');
    expect(clientEvents).toBe('');
    client.end();
    await once(s, 'end');
    s.end();
    await r.closed;
    await until(() => clientEvents === 'end ', "the client's end");
    client.destroy();
  });

  it('fails (error, close) for a socket without an fd', async () => {
    const s = NativeTcpStream.adopt(new net.Socket());
    const r = record(s);
    await r.closed;
    expect(r.events).toEqual(['error:EBADF', 'close']);
    expect(NativeTcpStream.canAdopt(new net.Socket())).toBe(false);
  });
});

describe('pollSetEvents', () => {
  it('switches a poll between writable, nothing and readable', async () => {
    const native = loadNative();
    let client!: net.Socket;
    const port = await listen((c) => {
      client = c;
    });
    const fd = native.tcpConnect(0x7f000001, port, 0);
    expect(fd).toBeGreaterThanOrEqual(0);
    const seen: number[] = [];
    const handle = native.pollStart(fd, (_status, events) => seen.push(events), PollEvents.WRITABLE);
    await until(() => seen.length > 0, 'writable');
    expect(seen[0] & PollEvents.WRITABLE).not.toBe(0);
    expect(native.sockError(fd)).toBe(0);
    expect(native.pollSetEvents(handle, 0)).toBe(0);
    seen.length = 0;
    for (let i = 0; i < 5; i++) await ticks();
    expect(seen).toEqual([]);
    await until(() => client !== undefined, 'the accept');
    client.write('x');
    expect(native.pollSetEvents(handle, PollEvents.READABLE)).toBe(0);
    await until(() => seen.length > 0, 'readable');
    expect(seen[0]).toBe(PollEvents.READABLE);
    const buf = Buffer.alloc(8);
    expect(native.tcpRead(fd, buf, 0, 8)).toBe(1);
    expect(native.tcpRead(fd, buf, 0, 8)).toBe(-11);
    expect(() => native.pollSetEvents(handle, 64)).toThrow(RangeError);
    native.pollStop(handle);
    expect(native.pollSetEvents(handle, PollEvents.READABLE)).toBe(0); // no-op after stop
    expect(native.fdClose(fd)).toBe(0);
    expect(() => native.tcpRead(fd, buf, 4, 8)).toThrow(RangeError);
  });
});

describe.skipIf(NO_IPV6 !== null)('IPv6 (::1)', () => {
  it('connects, echoes and ends like the IPv4 path', async () => {
    const port = await listen((c) => c.pipe(c), {}, '::1');
    const s = NativeTcpStream.connect({ host: '::1', port });
    const r = record(s);
    expect(r.events).toEqual([]);
    await once(s, 'connect');
    expect(s.write(Buffer.from('hello six'))).toBe(true);
    await until(() => Buffer.concat(r.data).toString() === 'hello six', 'the echo');
    s.end();
    await r.closed;
    expect(r.events).toEqual(['connect', 'data', 'end', 'close']);
  });

  it('reports ECONNREFUSED like Node (connect ECONNREFUSED ::1:port)', async () => {
    const port = await closedPort('::1');
    const s = NativeTcpStream.connect({ host: '::1', port });
    const r = record(s);
    await r.closed;
    expect(r.events).toEqual(['error:ECONNREFUSED', 'close']);
    const e = r.errors[0] as NodeJS.ErrnoException & { address?: string; port?: number };
    expect(e.errno).toBe(-111);
    expect(e.syscall).toBe('connect');
    expect(e.message).toBe(`connect ECONNREFUSED ::1:${port}`);
    expect(e.address).toBe('::1');
    expect(e.port).toBe(port);
  });

  it('binds to an IPv6 localAddress; EADDRNOTAVAIL for one that is not ours', async () => {
    let remote = '';
    const port = await listen(
      (c) => {
        remote = c.remoteAddress ?? '';
        c.end();
      },
      {},
      '::1',
    );
    const s = NativeTcpStream.connect({ host: '::1', port, localAddress: '::1' });
    const r = record(s);
    await once(s, 'end');
    s.end();
    await r.closed;
    expect(remote).toBe('::1');

    const bad = NativeTcpStream.connect({ host: '::1', port, localAddress: NOT_OURS6 });
    const rb = record(bad);
    await rb.closed;
    expect(rb.events).toEqual(['error:EADDRNOTAVAIL', 'close']);
  });

  it('IPV6_V6ONLY: ::ffff:127.0.0.1 fails with ENETUNREACH and never reaches an IPv4 listener', async () => {
    let reached = 0;
    const port = await listen(() => reached++);
    const s = NativeTcpStream.connect({ host: '::ffff:127.0.0.1', port });
    const r = record(s);
    await r.closed;
    expect(r.events).toEqual(['error:ENETUNREACH', 'close']);
    expect(r.errors[0].message).toBe(`connect ENETUNREACH ::ffff:127.0.0.1:${port}`);
    // A connection over IPv4 marks the end: the listener accepts in order, so one that
    // came from the mapped address would be counted by the time this one is.
    const marker = net.connect(port, '127.0.0.1');
    marker.on('error', () => {});
    await new Promise<void>((res) => {
      const check = () => (reached >= 1 ? res() : setImmediate(check));
      check();
    });
    marker.destroy();
    expect(reached).toBe(1);
  });

  it('realHost.connectTcp dials IPv6 literals natively; mixed families fall back to net.Socket, which refuses them (EINVAL)', async () => {
    const port = await listen(() => {}, {}, '::1');
    const s = realHost.connectTcp({ host: '::1', port });
    expect(s).toBeInstanceOf(NativeTcpStream);
    await once(s as NativeTcpStream, 'connect');
    const closes = [new Promise((res) => s.once('close', res))];
    s.destroy();
    const mixed = realHost.connectTcp({ host: '::1', port, localAddress: '127.0.0.1' });
    expect(mixed).toBeInstanceOf(net.Socket);
    const [err] = (await once(mixed as net.Socket, 'error')) as NodeJS.ErrnoException[];
    expect(err.code).toBe('EINVAL');
    expect(err.syscall).toBe('bind');
    await Promise.all(closes);
  });

  it.each([
    ['::1', '::1'],
    // A dual-stack listener on :: accepting an IPv6 client, and an IPv4 one (v4-mapped).
    ['::', '::1'],
    ['::', '127.0.0.1'],
  ])('adopts a paused connection accepted on %s from %s: no byte lost, both directions work', async (listenOn, from) => {
    let original: net.Socket | undefined;
    const port = await listen((c) => (original = c), { pauseOnConnect: true }, listenOn);
    const client = net.connect({ host: from, port, allowHalfOpen: true });
    const clientGot: Buffer[] = [];
    client.on('data', (d) => clientGot.push(d));
    const payload = randomFillSync(Buffer.alloc(100_000));
    await new Promise<void>((res) => client.write(payload, () => res()));
    await until(() => original !== undefined, 'the accept');
    expect(NativeTcpStream.canAdopt(original!)).toBe(true);
    const s = NativeTcpStream.adopt(original!);
    const r = record(s);
    s.resume();
    await until(() => Buffer.concat(r.data).length === payload.length, 'the queued bytes');
    expect(Buffer.concat(r.data).equals(payload)).toBe(true);
    expect(s.write(Buffer.from('reply'))).toBe(true);
    await until(() => Buffer.concat(clientGot).toString() === 'reply', 'the reply');
    client.end();
    await once(s, 'end');
    s.end();
    await r.closed;
    client.destroy();
  });
});
