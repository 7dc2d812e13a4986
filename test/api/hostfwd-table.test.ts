/** The id rules, and what they mean when requests overlap (hostfwd-table.ts states them). */
import { describe, expect, it } from 'vitest';
import { HostForwardTable, RemoveResult, type HostForwardRequest } from '../../src/api/hostfwd-table.js';
import { FakeForwarder, deferred, type ForwarderCall } from './fake-forwarder.js';

const fwd = (hostPort: number, extra: Partial<HostForwardRequest> = {}): HostForwardRequest => ({
  proto: 'tcp',
  hostAddr: '127.0.0.1',
  hostPort,
  guestAddr: '10.0.2.100',
  guestPort: 80,
  ...extra,
});

/** Holds every forwarder call until released, keyed by `op port`. */
function holdAll(f: FakeForwarder): Map<string, () => void> {
  const held = new Map<string, () => void>();
  f.gate = (call: ForwarderCall) => {
    const d = deferred();
    const port = call.op === 'add' ? call.req.hostPort : call.entry.hostPort;
    held.set(`${call.op} ${port}`, d.resolve);
    return d.promise;
  };
  return held;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('HostForwardTable', () => {
  it('numbers from 1, one per successful add; a failed add takes no id; ids are never reused', async () => {
    const f = new FakeForwarder();
    const t = new HostForwardTable(f);
    expect(await t.add(fwd(1000))).toBe(1);
    expect(await t.add(fwd(1000))).toBeUndefined(); // EADDRINUSE
    f.failAdd = () => true;
    expect(await t.add(fwd(1001))).toBeUndefined();
    f.failAdd = () => false;
    expect(await t.add(fwd(1001))).toBe(2);
    expect(await t.remove(1)).toBe(RemoveResult.REMOVED);
    expect(await t.remove(2)).toBe(RemoveResult.REMOVED);
    expect(await t.add(fwd(1000))).toBe(3);
    expect(t.list().map((e) => e.id)).toEqual([3]);
  });

  it('lists entries in id order with keys in slirp4netns order, as copies', () => {
    const f = new FakeForwarder();
    const t = new HostForwardTable(f);
    return (async () => {
      await t.add(fwd(2000, { proto: 'udp' }));
      await t.add(fwd(2001, { hostAddr: '::1' }));
      const list = t.list();
      expect(list.map((e) => Object.keys(e))).toEqual([
        ['id', 'proto', 'hostAddr', 'hostPort', 'guestAddr', 'guestPort'],
        ['id', 'proto', 'hostAddr', 'hostPort', 'guestAddr', 'guestPort'],
      ]);
      list[0].hostPort = 1;
      expect(t.list()[0].hostPort).toBe(2000);
    })();
  });

  it('assigns ids in the order adds succeed, not the order they started', async () => {
    const f = new FakeForwarder();
    const held = holdAll(f);
    const t = new HostForwardTable(f);
    const a = t.add(fwd(3000));
    const b = t.add(fwd(3001));
    const c = t.add(fwd(3002));
    await tick();
    held.get('add 3002')!();
    held.get('add 3000')!();
    await tick();
    held.get('add 3001')!();
    expect(await Promise.all([a, b, c])).toEqual([2, 3, 1]);
    expect(t.list().map((e) => e.hostPort)).toEqual([3002, 3000, 3001]);
  });

  it('does not know the id of an add still in progress: removing it is "bad arguments.id"', async () => {
    const f = new FakeForwarder();
    const held = holdAll(f);
    const t = new HostForwardTable(f);
    const pending = t.add(fwd(4000));
    await tick();
    expect(await t.remove(1)).toBe(RemoveResult.UNKNOWN_ID);
    expect(t.list()).toEqual([]);
    held.get('add 4000')!();
    expect(await pending).toBe(1);
    expect(t.list().map((e) => e.id)).toEqual([1]);
    expect(f.removes()).toEqual([]);
  });

  it('keeps an entry listed until its removal completes, and keeps it when removal fails', async () => {
    const f = new FakeForwarder();
    const t = new HostForwardTable(f);
    await t.add(fwd(5000));
    const held = holdAll(f);
    const removal = t.remove(1);
    await tick();
    expect(t.list().map((e) => e.id)).toEqual([1]);
    held.get('remove 5000')!();
    expect(await removal).toBe(RemoveResult.REMOVED);
    expect(t.list()).toEqual([]);

    f.gate = async () => {};
    await t.add(fwd(5001));
    f.failRemove = () => true;
    expect(await t.remove(2)).toBe(RemoveResult.FAILED);
    expect(t.list().map((e) => e.id)).toEqual([2]);
    f.failRemove = () => false;
    expect(await t.remove(2)).toBe(RemoveResult.REMOVED);
  });

  it('serialises removes of one id: the second answers as if it came after the first', async () => {
    const f = new FakeForwarder();
    const t = new HostForwardTable(f);
    await t.add(fwd(6000));
    const held = holdAll(f);
    const first = t.remove(1);
    const second = t.remove(1);
    await tick();
    held.get('remove 6000')!();
    expect(await Promise.all([first, second])).toEqual([RemoveResult.REMOVED, RemoveResult.UNKNOWN_ID]);
    expect(f.removes()).toHaveLength(1);
  });

  it('retries the second remove when the first failed', async () => {
    const f = new FakeForwarder();
    const t = new HostForwardTable(f);
    await t.add(fwd(6100));
    const held = holdAll(f);
    let failures = 1;
    f.failRemove = () => failures-- > 0;
    const first = t.remove(1);
    const second = t.remove(1);
    await tick();
    held.get('remove 6100')!();
    await tick();
    held.get('remove 6100')!();
    expect(await Promise.all([first, second])).toEqual([RemoveResult.FAILED, RemoveResult.REMOVED]);
    expect(f.removes()).toHaveLength(2);
  });

  it('survives a forwarder that throws synchronously', async () => {
    const t = new HostForwardTable({
      add: () => {
        throw new Error('sync');
      },
      remove: () => {
        throw new Error('sync');
      },
    });
    expect(await t.add(fwd(7000))).toBeUndefined();
    expect(await t.remove(1)).toBe(RemoveResult.UNKNOWN_ID);
  });
});
