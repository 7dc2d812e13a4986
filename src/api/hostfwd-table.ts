/**
 * The table of host forwards behind `add_hostfwd` / `list_hostfwd` /
 * `remove_hostfwd`, and the rules for ids when requests overlap.
 *
 * slirp4netns handles one request at a time, so its rules are simple: an id
 * is taken from a counter starting at 1 when slirp_add_hostfwd succeeded, a
 * failed add takes none, ids are never reused, and the list is in insertion
 * order. Here requests from different clients run concurrently (opening a
 * host listener is asynchronous), so the same rules are stated per event:
 *
 * - An id is assigned when the forwarder's `add` resolves, so ids increase in
 *   the order adds *succeed*, which is also list order. A failed or still
 *   pending add has no id.
 * - Hence a `remove_hostfwd` naming the id an in-progress add is going to get
 *   finds nothing ("bad arguments.id"), exactly as it would in slirp4netns
 *   had it arrived before the add. No client can know that id before the
 *   add's reply anyway.
 * - An entry stays listed while its removal is in progress (its listener is
 *   still open) and leaves the list when the forwarder's `remove` resolves.
 *   If `remove` rejects, the entry stays, as in slirp4netns.
 * - Removes of the same id are serialised: a second remove waits for the
 *   first and then runs against the table as the first left it, so two
 *   concurrent removes of one id answer like two sequential ones (success,
 *   then "bad arguments.id") and the forwarder sees one `remove` per entry.
 */

export interface HostForwardRequest {
  proto: 'tcp' | 'udp';
  /** IPv4 dotted quad or an IPv6 literal (RFC 5952 form). */
  hostAddr: string;
  hostPort: number;
  /** IPv4 dotted quad or an IPv6 literal (RFC 5952 form). */
  guestAddr: string;
  guestPort: number;
}

export interface HostForwardEntry extends HostForwardRequest {
  id: number;
}

/** Implemented by the stack: opens and closes the host listener of a forward. */
export interface HostForwarder {
  /** Rejects (e.g. EADDRINUSE) when the host side cannot be opened. */
  add(req: HostForwardRequest): Promise<void>;
  /** Rejects when the host side cannot be closed; the entry then stays. */
  remove(entry: HostForwardEntry): Promise<void>;
}

export const RemoveResult = {
  REMOVED: 0,
  /** No such id (never assigned, or already removed). */
  UNKNOWN_ID: 1,
  /** The forwarder's remove rejected. */
  FAILED: 2,
} as const;

export type RemoveResultCode = (typeof RemoveResult)[keyof typeof RemoveResult];

export class HostForwardTable {
  private nextId = 1;
  /** Insertion order is id order is list order. */
  private readonly entries = new Map<number, Readonly<HostForwardEntry>>();
  private readonly removals = new Map<number, Promise<RemoveResultCode>>();

  constructor(private readonly forwarder: HostForwarder) {}

  /** The id of the new entry, or undefined when the forwarder refused. */
  async add(req: HostForwardRequest): Promise<number | undefined> {
    const spec: HostForwardRequest = {
      proto: req.proto,
      hostAddr: req.hostAddr,
      hostPort: req.hostPort,
      guestAddr: req.guestAddr,
      guestPort: req.guestPort,
    };
    try {
      await this.forwarder.add({ ...spec });
    } catch {
      return undefined;
    }
    const id = this.nextId++;
    this.entries.set(id, Object.freeze({ id, ...spec }));
    return id;
  }

  async remove(id: number): Promise<RemoveResultCode> {
    // Wait for any removal of this id in flight, then look again.
    for (let inFlight = this.removals.get(id); inFlight !== undefined; inFlight = this.removals.get(id)) {
      await inFlight;
    }
    const entry = this.entries.get(id);
    if (entry === undefined) return RemoveResult.UNKNOWN_ID;
    const removal = this.removeEntry(entry);
    this.removals.set(id, removal);
    try {
      return await removal;
    } finally {
      if (this.removals.get(id) === removal) this.removals.delete(id);
    }
  }

  /** Copies of the entries, in list order (keys in slirp4netns's order: id first). */
  list(): HostForwardEntry[] {
    return Array.from(this.entries.values(), (e) => ({ ...e }));
  }

  private async removeEntry(entry: Readonly<HostForwardEntry>): Promise<RemoveResultCode> {
    try {
      await this.forwarder.remove({ ...entry });
    } catch {
      return RemoveResult.FAILED;
    }
    this.entries.delete(entry.id);
    return RemoveResult.REMOVED;
  }
}
