/**
 * Clients of the API socket for tests, each talking the way a real client
 * does: RootlessKit (write, CloseWrite, ReadAll), Podman (write, CloseWrite,
 * one Read of up to 2048 bytes), ncat (stream until EOF), and misbehaving
 * ones (slow, silent, vanishing, endless).
 */
import net from 'node:net';

export interface Exchange {
  /** Everything read until EOF (latin1). */
  reply: string;
  /** The error code that ended reading, if it did not end at EOF. */
  error?: string;
}

const bytes = (r: string | Buffer): Buffer => (typeof r === 'string' ? Buffer.from(r, 'latin1') : r);

/**
 * One request written in one write, then CloseWrite, then read to EOF: what
 * RootlessKit's port driver and `echo … | ncat -U` do.
 */
export function exchange(path: string, request: string | Buffer): Promise<Exchange> {
  return exchangeInPieces(path, [bytes(request)]);
}

/**
 * The request in several writes, each after the event loop has had a turn
 * (so the server reads them separately), then CloseWrite, then read to EOF.
 */
export function exchangeInPieces(path: string, pieces: Buffer[], options: { halfClose?: boolean } = {}): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const socket = net.connect({ path, allowHalfOpen: true });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve({ reply: Buffer.concat(chunks).toString('latin1'), ...(error ? { error } : {}) }));
    socket.on('connect', async () => {
      for (const p of pieces) {
        if (socket.destroyed) return;
        await new Promise<void>((r) => socket.write(p, () => r()));
        await new Promise((r) => setImmediate(r));
      }
      if (options.halfClose !== false) socket.end();
    });
  });
}

/** Send a JSON request the way RootlessKit does: json.Encoder (compact + "\n"), CloseWrite, ReadAll. */
export function rootlesskitRequest(path: string, request: unknown): Promise<Exchange> {
  return exchange(path, JSON.stringify(request) + '\n');
}

/**
 * Podman: write the request, CloseWrite, then a single Read into a 2048-byte
 * buffer. Returns every read(2) the client made, in order: the first must
 * hold the whole reply. `onread` hands us each read as it happens, with no
 * buffering or coalescing by Node in between.
 */
export function podmanExchange(path: string, request: string): Promise<{ reads: Buffer[]; error?: string }> {
  return new Promise((resolve) => {
    const reads: Buffer[] = [];
    let error: string | undefined;
    const socket = net.connect({
      path,
      allowHalfOpen: true,
      onread: {
        buffer: Buffer.alloc(2048),
        callback: (n: number, buf: Uint8Array) => {
          reads.push(Buffer.from(buf.subarray(0, n)));
          return true;
        },
      },
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve({ reads, ...(error ? { error } : {}) }));
    socket.on('connect', () => socket.end(request));
  });
}

/** A connected client that sends nothing by itself; resolves once connected. */
export function connectIdle(path: string): Promise<{ socket: net.Socket; closed: Promise<Exchange> }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const socket = net.connect({ path, allowHalfOpen: true });
    const closed = new Promise<Exchange>((r) =>
      socket.on('close', () => r({ reply: Buffer.concat(chunks).toString('latin1'), ...(error ? { error } : {}) })),
    );
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => socket.end());
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

/** `cat /dev/zero | ncat -U`: NUL bytes as fast as the socket takes them, until the server closes. */
export function zeroStream(path: string): Promise<Exchange & { sentBytes: number }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const zeros = Buffer.alloc(65536);
    let sentBytes = 0;
    let error: string | undefined;
    const socket = net.connect({ path, allowHalfOpen: true });
    const pump = (): void => {
      while (!socket.destroyed && socket.writable) {
        sentBytes += zeros.length;
        if (!socket.write(zeros)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    socket.on('connect', pump);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.on('end', () => socket.destroy());
    socket.on('close', () =>
      resolve({ reply: Buffer.concat(chunks).toString('latin1'), sentBytes, ...(error ? { error } : {}) }),
    );
  });
}
