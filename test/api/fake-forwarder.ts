/**
 * A HostForwarder for API tests: records every call, refuses what Linux bind()
 * would refuse (the same proto and port on the same or a wildcard address),
 * fails on demand, and can hold calls until a test releases them.
 */
import type { HostForwardEntry, HostForwarder, HostForwardRequest } from '../../src/api/api-server.js';

export type ForwarderCall = { op: 'add'; req: HostForwardRequest } | { op: 'remove'; entry: HostForwardEntry };

export class FakeForwarder implements HostForwarder {
  readonly calls: ForwarderCall[] = [];
  /** Open host listeners, as `proto host port`. */
  readonly open = new Set<string>();
  /** Return true to make this add reject. */
  failAdd: (req: HostForwardRequest) => boolean = () => false;
  /** Return true to make this remove reject. */
  failRemove: (entry: HostForwardEntry) => boolean = () => false;
  /** Awaited before each call completes; a test can hold calls with it. */
  gate: (call: ForwarderCall) => Promise<void> = async () => {};
  /** Order in which adds completed successfully, as `host port`. */
  readonly addOrder: number[] = [];

  async add(req: HostForwardRequest): Promise<void> {
    const call: ForwarderCall = { op: 'add', req: { ...req } };
    this.calls.push(call);
    await this.gate(call);
    if (this.failAdd(req)) throw Object.assign(new Error('injected failure'), { code: 'EIO' });
    if (this.conflicts(req)) throw Object.assign(new Error('address in use'), { code: 'EADDRINUSE' });
    this.open.add(key(req));
    this.addOrder.push(req.hostPort);
  }

  async remove(entry: HostForwardEntry): Promise<void> {
    const call: ForwarderCall = { op: 'remove', entry: { ...entry } };
    this.calls.push(call);
    await this.gate(call);
    if (this.failRemove(entry)) throw Object.assign(new Error('injected failure'), { code: 'EIO' });
    this.open.delete(key(entry));
  }

  adds(): HostForwardRequest[] {
    return this.calls.flatMap((c) => (c.op === 'add' ? [c.req] : []));
  }

  removes(): HostForwardEntry[] {
    return this.calls.flatMap((c) => (c.op === 'remove' ? [c.entry] : []));
  }

  private conflicts(req: HostForwardRequest): boolean {
    for (const k of this.open) {
      const [proto, addr, port] = k.split(' ');
      if (proto !== req.proto || Number(port) !== req.hostPort) continue;
      if (addr === req.hostAddr || isWildcard(addr) || isWildcard(req.hostAddr)) return true;
    }
    return false;
  }
}

function key(r: HostForwardRequest): string {
  return `${r.proto} ${r.hostAddr} ${r.hostPort}`;
}

function isWildcard(addr: string): boolean {
  return addr === '0.0.0.0' || addr === '::';
}

/** A promise with its resolve function, for holding a forwarder call. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
