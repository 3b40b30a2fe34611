import { badUserInput, resyncRequired } from '../../graphql/errors.js';

/**
 * A place in the change log, as the set of changes it includes (what a client holding it has seen): the
 * changes of every transaction visible in a PostgreSQL snapshot, and, of one transaction that is not, those up
 * to an id. Reading "after" it takes what has become visible since, so a transaction that stays open delays
 * only its own changes (PgQ batches events by txid_snapshot the same way).
 *
 * A position is a snapshot's `xmax` (transactions at or above it are not visible) and `xip` (those below it
 * that were still running), as pg_current_snapshot() gives them. Transaction ids are 64-bit (xid8); their
 * numbers stay below 2^53 for 2^21 wraparounds of the 32-bit counter.
 */
export interface ChangePosition {
  readonly xmax: number;
  /** Ascending, each below `xmax`. */
  readonly xip: readonly number[];
  /** Of transaction `xid`, which the snapshot does not include, the changes up to `id`. */
  readonly partial: { readonly xid: number; readonly id: number } | null;
}

/** A change's place in the log: its transaction and its order within the log. */
export interface ChangeKey {
  readonly xid: number;
  readonly id: number;
}

/** Includes nothing: every change is after it. */
export const ORIGIN: ChangePosition = { xmax: 1, xip: [], partial: null };

/** Every transaction below it is visible. */
export const xminOf = (position: ChangePosition): number => position.xip[0] ?? position.xmax;

function has(sorted: readonly number[], value: number): boolean {
  let low = 0;
  let high = sorted.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const at = sorted[middle]!;
    if (at === value) return true;
    if (at < value) low = middle + 1;
    else high = middle - 1;
  }
  return false;
}

/** Whether the snapshot of `position` sees transaction `xid` as ended (committed, if it wrote a change). */
export const visible = (position: ChangePosition, xid: number): boolean => xid < position.xmax && !has(position.xip, xid);

/** Whether a client at `position` has seen this change. */
export const includes = (position: ChangePosition, change: ChangeKey): boolean =>
  visible(position, change.xid) || (position.partial !== null && position.partial.xid === change.xid && change.id <= position.partial.id);

/** The position of `pg_current_snapshot()::text` ("xmin:xmax:xip,..."). */
export function parseSnapshot(text: string): ChangePosition {
  const [, xmax, xip] = text.split(':');
  return { xmax: Number(xmax), xip: xip ? xip.split(',').map(Number) : [], partial: null };
}

/** Its snapshot in the text PostgreSQL reads as pg_snapshot (the partial transaction is passed apart). */
export const snapshotText = (position: ChangePosition): string => `${xminOf(position)}:${position.xmax}:${position.xip.join(',')}`;

/** The same position with its partial transaction wholly included (once every change of it has been read). */
export function folded(position: ChangePosition): ChangePosition {
  const { partial } = position;
  if (!partial) return position;
  // Not visible in the snapshot and at most xmax (after, union and decodeChangeCursor keep it so): xmax or in xip.
  if (partial.xid === position.xmax) return { xmax: partial.xid + 1, xip: position.xip, partial: null };
  return { xmax: position.xmax, xip: position.xip.filter((xid) => xid !== partial.xid), partial: null };
}

/**
 * The position right after `change`, read in order (by transaction, then id) from `base` (no partial) in the
 * snapshot `now`: every transaction below the change's is as `now` sees it, every one above as `base` does, and
 * of the change's own transaction, the changes up to it.
 */
export function after(base: ChangePosition, now: ChangePosition, change: ChangeKey): ChangePosition {
  const below = now.xip.filter((xid) => xid < change.xid);
  const partial = { xid: change.xid, id: change.id };
  if (change.xid >= base.xmax) return { xmax: change.xid, xip: below, partial };
  return { xmax: base.xmax, xip: [...below, ...base.xip.filter((xid) => xid >= change.xid)], partial };
}

/**
 * The positions after each change of a read from `position` in the snapshot `now` (the changes `position` does
 * not include, in reading order: the rest of its partial transaction, then by transaction and id), and where the
 * read leaves its reader: `now` when it read all there was (`complete`), else its last change's.
 */
export function positionsAfter(
  position: ChangePosition,
  now: ChangePosition,
  keys: readonly ChangeKey[],
  complete: boolean,
): { afters: ChangePosition[]; through: ChangePosition } {
  const base = folded(position);
  const afters = keys.map((key) =>
    key.xid === position.partial?.xid ? { ...position, partial: { xid: key.xid, id: key.id } } : after(base, now, key),
  );
  // Everything there was: the read is through its own snapshot, and so is its last change.
  if (complete && afters.length > 0) afters[afters.length - 1] = now;
  return { afters, through: complete ? now : (afters.at(-1) ?? position) };
}

/**
 * Every change either includes. A reader that joins another's batch holds the union of where it was and what it
 * took; the two never disagree about a partial transaction (see UserLog), so there is at most one.
 */
export function union(a: ChangePosition, b: ChangePosition): ChangePosition {
  // Mostly one includes the other (a subscriber that joined from a later snapshot, once the reader passes it).
  if (contains(b, a)) return b;
  if (contains(a, b)) return a;
  const xmax = Math.max(a.xmax, b.xmax);
  // Not visible in the union: not visible in either.
  const xip = [...new Set([...a.xip, ...b.xip])].sort((x, y) => x - y).filter((xid) => !visible(a, xid) && !visible(b, xid));
  const snapshot = { xmax, xip, partial: null };
  const partials = [a.partial, b.partial].filter((p) => p !== null && !visible(snapshot, p.xid));
  if (partials.length === 0) return snapshot;
  const [first, second] = partials as [{ xid: number; id: number }, { xid: number; id: number } | undefined];
  if (second && second.xid !== first.xid)
    throw new Error(`positions with two partial transactions (${first.xid}, ${second.xid}) cannot be joined`);
  return { xmax, xip, partial: { xid: first.xid, id: Math.max(first.id, second?.id ?? 0) } };
}

/** Whether `a` includes every change `b` does (judged by the snapshots, whatever changes exist). */
export function contains(a: ChangePosition, b: ChangePosition): boolean {
  // Each transaction `b` sees must be seen by `a`: those below b.xmax that a hides are in b's xip.
  for (const xid of a.xip) if (xid < b.xmax && !has(b.xip, xid)) return false;
  // Those from a.xmax up to b.xmax, which `a` hides, must all be in b's xip.
  if (b.xmax > a.xmax && b.xip.filter((xid) => xid >= a.xmax).length < b.xmax - a.xmax) return false;
  if (!b.partial) return true;
  return includes(a, b.partial);
}

/** Whether the two include the same changes. */
export const same = (a: ChangePosition, b: ChangePosition): boolean => contains(a, b) && contains(b, a);

/** Transactions still running when a cursor was issued, at most: past it, the cursor is refused as not ours. */
const MAX_XIP = 10_000;
const CURSOR_TEXT = /^s:([0-9a-z]{1,11}):((?:[0-9a-z]{1,11}\.)*[0-9a-z]{1,11})?:(?:([0-9a-z]{1,11})\.([0-9a-z]{1,11}))?$/;
/** Cursors issued before positions were snapshots: well formed, but they name another log. */
const OLD_CURSOR_TEXT = /^(?:c:\d{1,16}|p:\d{1,16}:\d{1,16})$/;
const base36 = (n: number) => n.toString(36);

/**
 * Opaque to clients: base64url of `s:<xmax>:<gaps>:<partial>`, in base 36, each transaction still running as its
 * distance below the one above it, the partial transaction as its distance below xmax and its last id.
 */
export function encodeChangeCursor(position: ChangePosition): string {
  let cursor = encoded.get(position);
  if (cursor === undefined) encoded.set(position, (cursor = encode(position)));
  return cursor;
}

/** One position is often every subscriber's cursor of a change (see UserLog): encoded once. */
const encoded = new WeakMap<ChangePosition, string>();

function encode({ xmax, xip, partial }: ChangePosition): string {
  const gaps: string[] = [];
  for (let i = xip.length - 1, above = xmax; i >= 0; above = xip[i]!, i--) gaps.push(base36(above - xip[i]!));
  const tail = partial ? `${base36(xmax - partial.xid)}.${base36(partial.id)}` : '';
  return Buffer.from(`s:${base36(xmax)}:${gaps.join('.')}:${tail}`).toString('base64url');
}

/**
 * The position a cursor names; anything we did not issue is BAD_USER_INPUT on `after`, a cursor of the log
 * before snapshots RESYNC_REQUIRED.
 */
export function decodeChangeCursor(cursor: string): ChangePosition {
  const invalid = () => badUserInput('after is not a cursor of this change feed', 'after');
  if (cursor.length > (12 * MAX_XIP * 4) / 3 + 64 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  const text = Buffer.from(cursor, 'base64url').toString('latin1');
  if (OLD_CURSOR_TEXT.test(text)) throw resyncRequired();
  const match = CURSOR_TEXT.exec(text);
  if (!match) throw invalid();
  const [, xmaxText, gapsText, partialXid, partialId] = match;
  const xmax = parseInt(xmaxText!, 36);
  const gaps = gapsText ? gapsText.split('.').map((gap) => parseInt(gap, 36)) : [];
  if (gaps.length > MAX_XIP) throw invalid();
  const xip: number[] = new Array<number>(gaps.length);
  for (let i = gaps.length - 1, above = xmax; i >= 0; i--) above = xip[i] = above - gaps[gaps.length - 1 - i]!;
  const partial = partialXid === undefined ? null : { xid: xmax - parseInt(partialXid, 36), id: parseInt(partialId!, 36) };
  const position: ChangePosition = { xmax, xip, partial };
  const numbers = [xmax, ...xip, ...(partial ? [partial.xid, partial.id] : [])];
  if (!numbers.every(Number.isSafeInteger) || xmax < 1 || (xip[0] ?? 1) < 1) throw invalid();
  // Positive gaps, a partial transaction the snapshot does not see, no leading zeros: exactly what we issue.
  if (gaps.some((gap) => gap < 1) || (partial && (partial.xid < 1 || visible(position, partial.xid)))) throw invalid();
  if (encode(position) !== cursor) throw invalid();
  return position;
}
