/**
 * Closes the fd of an fd-owning wrapper (TapLink, NativeUdpSocket,
 * PingSocket) that became garbage without close(), as Node closes the fd of a
 * FileHandle it collects. Without it, a wrapper dropped by mistake (an error
 * path that forgot close(), an embedder that drops a link) would hold its
 * socket or TAP until the process exits.
 *
 * What it covers: a wrapper that is not polling. A running poll holds its JS
 * callback, which holds the wrapper, so a polling wrapper is never garbage (a
 * net.Socket's handle keeps it alive the same way): it will still be called.
 * That is why NativeTcpStream is not registered: its fd and its poll start
 * and end together.
 *
 * The owner is its own unregister token, and close() unregisters before it
 * closes the fd: once the number is free the kernel reuses it, and a late
 * finalizer must never close whatever took it. A finalizer runs only after
 * the owner is unreachable, when nothing can call its close() any more.
 */
import { loadNative } from './native.js';

// One registry for the process: it must outlive every owner it watches, and
// it holds nothing but fd numbers.
const registry = new FinalizationRegistry<number>((fd) => {
  loadNative().fdClose(fd);
});

/** From now on `fd` is closed if `owner` is collected before closeOnCollectCancel(owner). */
export function closeOnCollect(owner: object, fd: number): void {
  registry.register(owner, fd, owner);
}

/** `owner` closes its fd itself (call it before the close). */
export function closeOnCollectCancel(owner: object): void {
  registry.unregister(owner);
}
