import {
  contains,
  decodeChangeCursor,
  encodeChangeCursor,
  includes,
  ORIGIN,
  positionsAfter,
  same,
  union,
  visible,
  type ChangeKey,
  type ChangePosition,
} from '../../src/modules/tasks/change-position.js';

/** A small deterministic generator, so that a failure can be replayed by its seed. */
function random(seed: number) {
  let state = seed >>> 0 || 1;
  return (n: number) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
}

/**
 * PostgreSQL as far as positions see it: transactions get ids as they start, write changes with ids from one
 * sequence, and commit or roll back in any order; a snapshot is the next id and the ids still running.
 */
const key = (change: ChangeKey) => `${change.xid}.${change.id}`;

class Cluster {
  nextXid = 3;
  nextId = 1;
  readonly running = new Map<number, ChangeKey[]>();
  /** Every committed change. */
  readonly committed: ChangeKey[] = [];

  begin(): number {
    this.running.set(this.nextXid, []);
    return this.nextXid++;
  }

  write(xid: number): void {
    this.running.get(xid)!.push({ xid, id: this.nextId++ });
  }

  end(xid: number, commit: boolean): void {
    if (commit) this.committed.push(...this.running.get(xid)!);
    this.running.delete(xid);
  }

  snapshot(): ChangePosition {
    return { xmax: this.nextXid, xip: [...this.running.keys()].sort((a, b) => a - b), partial: null };
  }

  /** What the log's query answers: the committed changes `position` does not include, in reading order. */
  read(position: ChangePosition, limit: number) {
    const partial = position.partial?.xid;
    const found = this.committed
      .filter((change) => !includes(position, change))
      .sort((a, b) => Number(b.xid === partial) - Number(a.xid === partial) || a.xid - b.xid || a.id - b.id)
      .slice(0, limit);
    return { found, ...positionsAfter(position, this.snapshot(), found, found.length < limit) };
  }

  /** A position includes exactly `delivered` of what exists, and nothing of what is running or yet to start. */
  check(position: ChangePosition, delivered: ReadonlySet<string>): void {
    const wrong = [
      ...this.committed.filter((change) => includes(position, change) !== delivered.has(key(change))).map(key),
      ...[...this.running.keys(), this.nextXid, this.nextXid + 5].filter((xid) => visible(position, xid)),
      ...[...this.running.values()]
        .flat()
        .filter((change) => includes(position, change))
        .map(key),
    ];
    if (wrong.length > 0) expect({ position, wrong }).toEqual({ position, wrong: [] });
  }
}

describe('change positions', () => {
  it.each(Array.from({ length: 30 }, (_, i) => i + 1))(
    'deliver every committed change once, to a reader of its own and to one that joins another’s reads (seed %i)',
    (seed) => {
      const pick = random(seed);
      const cluster = new Cluster();
      // A reads on its own; B reads on its own until it may join A's reads (UserLog.join), then takes A's batches.
      const a = { position: ORIGIN, delivered: new Set<string>(), order: [] as ChangeKey[] };
      const b = { position: ORIGIN, delivered: new Set<string>(), order: [] as ChangeKey[], joined: false };
      const take = (reader: typeof a, change: ChangeKey, after: ChangePosition) => {
        if (reader.delivered.has(key(change))) expect({ twice: key(change) }).toBeUndefined();
        reader.delivered.add(key(change));
        reader.order.push(change);
        reader.position = union(reader.position, after);
      };
      const readA = () => {
        const { found, afters, through } = cluster.read(a.position, 1 + pick(4));
        found.forEach((change, i) => {
          take(a, change, afters[i]!);
          if (b.joined && !includes(b.position, change)) take(b, change, afters[i]!);
          cluster.check(a.position, a.delivered);
        });
        a.position = through;
        if (b.joined) b.position = union(b.position, through);
      };
      const readB = () => {
        const { found, afters, through } = cluster.read(b.position, 1 + pick(4));
        found.forEach((change, i) => take(b, change, afters[i]!));
        b.position = union(b.position, through);
        if (found.length === 0 && contains(b.position, a.position)) b.joined = true;
      };
      for (let step = 0; step < 400; step++) {
        const running = [...cluster.running.keys()];
        const any = running[pick(Math.max(1, running.length))];
        const action = pick(10);
        if (action < 2 || any === undefined) cluster.begin();
        else if (action < 5) cluster.write(any);
        else if (action < 7) cluster.end(any, pick(5) > 0);
        else if (action < 9) readA();
        else if (!b.joined) readB();
        cluster.check(a.position, a.delivered);
        cluster.check(b.position, b.delivered);
        // A cursor names the same position.
        if (step % 20 === 0) expect(decodeChangeCursor(encodeChangeCursor(b.position))).toEqual(b.position);
      }
      for (const xid of [...cluster.running.keys()]) cluster.end(xid, true);
      for (let i = 0; i < 1000 && a.delivered.size < cluster.committed.length; i++) readA();
      if (!b.joined) for (let i = 0; i < 1000 && b.delivered.size < cluster.committed.length; i++) readB();
      for (const reader of [a, b]) {
        expect([...reader.delivered].sort()).toEqual(cluster.committed.map(key).sort());
        // A transaction's changes in the order it wrote them.
        for (const xid of new Set(cluster.committed.map((change) => change.xid))) {
          const ids = reader.order.filter((change) => change.xid === xid).map((change) => change.id);
          expect(ids).toEqual([...ids].sort((x, y) => x - y));
        }
      }
    },
  );

  it('compare by the changes they include', () => {
    const early: ChangePosition = { xmax: 10, xip: [7], partial: null };
    const later: ChangePosition = { xmax: 12, xip: [11], partial: null };
    expect(contains(later, early)).toBe(true);
    expect(contains(early, later)).toBe(false);
    expect(contains(early, { ...early, partial: { xid: 7, id: 3 } })).toBe(false);
    expect(same(union(early, later), later)).toBe(true);
    expect(same(ORIGIN, { xmax: 1, xip: [], partial: null })).toBe(true);
  });
});

describe('change cursors', () => {
  const positions: ChangePosition[] = [
    ORIGIN,
    { xmax: 1000, xip: [], partial: null },
    { xmax: 1000, xip: [3, 999], partial: { xid: 999, id: 42 } },
    { xmax: 4_294_967_296 + 42, xip: [4_294_967_296], partial: { xid: 4_294_967_296 + 42, id: Number.MAX_SAFE_INTEGER } },
    { xmax: Number.MAX_SAFE_INTEGER, xip: [1, 2, Number.MAX_SAFE_INTEGER - 1], partial: null },
    { xmax: 5_000_000, xip: Array.from({ length: 10_000 }, (_, i) => 4_000_000 + i * 7), partial: null },
  ];

  it('round-trip a position', () => {
    for (const position of positions) expect(decodeChangeCursor(encodeChangeCursor(position))).toEqual(position);
  });

  it('cost about two characters for each transaction still running', () => {
    expect(encodeChangeCursor(positions[5]!).length).toBeLessThan(40_000);
  });

  it('answer a cursor of the log before snapshots with RESYNC_REQUIRED', () => {
    for (const old of ['c:5', 'p:12:3']) {
      expect(() => decodeChangeCursor(Buffer.from(old).toString('base64url'))).toThrow(
        expect.objectContaining({ extensions: { code: 'RESYNC_REQUIRED' } }),
      );
    }
  });

  const text = (value: string) => Buffer.from(value).toString('base64url');
  it.each([
    ['empty', ''],
    ['not base64url', 'a+b/'],
    ['a task list cursor', text(JSON.stringify(['CREATED_AT', 'DESC', null, 'x']))],
    ['a zero xmax', text('s:0::')],
    ['a zero gap', text('s:a:0:')],
    ['a transaction below 1', text('s:a:a:')],
    ['a leading zero', text('s:0a::')],
    ['a partial transaction the snapshot sees', text('s:a:1:2.1')],
    ['a partial transaction without an id', text('s:a:1:1')],
    ['a number past the safe integers', text('s:zzzzzzzzzzz::')],
    ['upper case', text('s:A::')],
    ['more transactions than a cursor may name', text(`s:${(20_000).toString(36)}:${Array(10_001).fill('1').join('.')}:`)],
    // "s:a::" is 40 bits in 7 characters: the last one's two low bits are padding, which the decoder ignores.
    ['other padding bits', encodeChangeCursor({ xmax: 10, xip: [], partial: null }).replace(/o$/, 'p')],
  ])('reject %s as BAD_USER_INPUT on after', (_, cursor) => {
    expect(() => decodeChangeCursor(cursor)).toThrow(expect.objectContaining({ extensions: { code: 'BAD_USER_INPUT', field: 'after' } }));
  });
});
