import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { epochMs, textArray } from '../../db/sql.js';
import { newRefreshToken, type RefreshSecret } from './tokens.js';

/**
 * The sessions' SQL (tables from Migration20261207120000_sessions). A session ends by being deleted; its refresh
 * tokens go with it. Whoever ends sessions announces their ids on SESSIONS_CHANNEL in the same transaction, so
 * that every instance hears of it once it has committed (SessionGate).
 */
export const SESSIONS_CHANNEL = 'sessions_ended';

/** A NOTIFY payload holds at most 8000 bytes: ids go out in groups well within it. */
const IDS_PER_NOTIFICATION = 150;

export interface SessionRow {
  id: string;
  created_at: Date;
  last_used_at: Date;
  user_agent: string | null;
}

/** A session's new refresh token, as the client gets it, and until when it may be spent. */
export interface IssuedRefresh {
  sessionId: string;
  refreshToken: string;
  refreshExpiresAt: Date;
}

/** Tells every instance (and this one, through its listener) that these sessions have ended. */
async function announceEnded(em: EntityManager, ids: readonly string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += IDS_PER_NOTIFICATION) {
    await em.execute(`select pg_notify('${SESSIONS_CHANNEL}', ?)`, [ids.slice(i, i + IDS_PER_NOTIFICATION).join(',')]);
  }
}

/** Marks the session used and starts its idle lifetime again; false when it has ended. */
async function renewSession(em: EntityManager, sessionId: string, ttlSeconds: number): Promise<boolean> {
  const rows = await em.execute<{ id: string }[]>(
    'update sessions set last_used_at = now(), expires_at = now() + make_interval(secs => ?) where id = ? returning id',
    [ttlSeconds, sessionId],
  );
  return rows.length > 0;
}

async function insertRefresh(em: EntityManager, sessionId: string, secret: RefreshSecret, ttlSeconds: number): Promise<Date> {
  const [row] = await em.execute<{ expires_at: number }[]>(
    `insert into refresh_tokens (hash, session_id, expires_at) values (?, ?, now() + make_interval(secs => ?))
     returning ${epochMs('expires_at')} as expires_at`,
    [secret.hash, sessionId, ttlSeconds],
  );
  return new Date(row!.expires_at);
}

/**
 * A new session of `userId` with its first refresh token. The user's row is locked first, so that sign-ins of one
 * user take turns: past `limit` live sessions, the least recently used end (and expired ones go). Returns the new
 * session, the ids of those it ended, or undefined when the user no longer exists.
 */
export async function createSession(
  em: EntityManager,
  { userId, userAgent, ttlSeconds, limit }: { userId: string; userAgent: string | null; ttlSeconds: number; limit: number },
): Promise<{ issued: IssuedRefresh; ended: string[] } | undefined> {
  const [user] = await em.execute<{ id: string }[]>('select id from users where id = ? for update', [userId]);
  if (!user) return undefined;
  const endedRows = await em.execute<{ id: string }[]>(
    `delete from sessions where id in (
       select id from sessions where user_id = ? order by expires_at > now() desc, last_used_at desc, id offset ?)
     returning id`,
    [userId, limit - 1],
  );
  const ended = endedRows.map((row) => row.id);
  await announceEnded(em, ended);
  const sessionId = randomUUID();
  await em.execute(`insert into sessions (id, user_id, expires_at, user_agent) values (?, ?, now() + make_interval(secs => ?), ?)`, [
    sessionId,
    userId,
    ttlSeconds,
    userAgent,
  ]);
  const secret = newRefreshToken();
  const refreshExpiresAt = await insertRefresh(em, sessionId, secret, ttlSeconds);
  return { issued: { sessionId, refreshToken: secret.token, refreshExpiresAt }, ended };
}

export type Rotation =
  | { kind: 'rotated'; userId: string; issued: IssuedRefresh }
  /** A spent token again: its session has ended (theft detection). */
  | { kind: 'reused'; sessionId: string }
  /** No such token, or it has expired. */
  | { kind: 'unknown' };

/**
 * Spends the refresh token whose hash is `hash` and gives its session a new one. The session's row is locked
 * first, as ending a session locks it (then its tokens, by cascade): a refresh and a sign-out take turns instead of
 * deadlocking. Two spends of one token take turns the same way: the first rotates, the second finds the token
 * spent, which is reuse, and ends the session.
 */
export async function rotateRefresh(em: EntityManager, hash: Buffer, ttlSeconds: number): Promise<Rotation> {
  const [token] = await em.execute<{ session_id: string }[]>('select session_id from refresh_tokens where hash = ?', [hash]);
  if (!token) return { kind: 'unknown' };
  const sessionId = token.session_id;
  const [session] = await em.execute<{ user_id: string }[]>('select user_id from sessions where id = ? for update', [sessionId]);
  // Ended meanwhile (and its tokens with it).
  if (!session) return { kind: 'unknown' };
  const [spent] = await em.execute<{ session_id: string }[]>(
    'update refresh_tokens set spent_at = now() where hash = ? and spent_at is null and expires_at > now() returning session_id',
    [hash],
  );
  if (spent) {
    await renewSession(em, sessionId, ttlSeconds);
    const secret = newRefreshToken();
    const refreshExpiresAt = await insertRefresh(em, sessionId, secret, ttlSeconds);
    return { kind: 'rotated', userId: session.user_id, issued: { sessionId, refreshToken: secret.token, refreshExpiresAt } };
  }
  const [known] = await em.execute<{ spent: boolean }[]>('select spent_at is not null as spent from refresh_tokens where hash = ?', [hash]);
  if (!known?.spent) return { kind: 'unknown' };
  await endSessions(em, { sessionIds: [sessionId] });
  return { kind: 'reused', sessionId };
}

/**
 * Spends every unspent refresh token of the session and gives it a new one (after a password change). The
 * session's row first, as everywhere; undefined when the session has ended meanwhile.
 */
export async function renewRefresh(em: EntityManager, sessionId: string, ttlSeconds: number): Promise<IssuedRefresh | undefined> {
  if (!(await renewSession(em, sessionId, ttlSeconds))) return undefined;
  await em.execute('update refresh_tokens set spent_at = now() where session_id = ? and spent_at is null', [sessionId]);
  const secret = newRefreshToken();
  return { sessionId, refreshToken: secret.token, refreshExpiresAt: await insertRefresh(em, sessionId, secret, ttlSeconds) };
}

/**
 * Ends sessions and announces it: those named, or every session of `userId` (but `except`). Returns their ids.
 * Ending a user's sessions takes the user's row first, as signing in and erasing do, so that two of them take
 * turns rather than deadlock over the sessions' rows.
 */
export async function endSessions(
  em: EntityManager,
  which: { sessionIds: readonly string[] } | { userId: string; except?: string },
): Promise<string[]> {
  const rows =
    'sessionIds' in which
      ? await em.execute<{ id: string }[]>('delete from sessions where id = any(?::uuid[]) returning id', [textArray(which.sessionIds)])
      : await em
          .execute('select id from users where id = ? for update', [which.userId])
          .then(() =>
            em.execute<{ id: string }[]>('delete from sessions where user_id = ? and id is distinct from ? returning id', [
              which.userId,
              which.except ?? null,
            ]),
          );
  const ended = rows.map((row) => row.id);
  await announceEnded(em, ended);
  return ended;
}

/** The user's live sessions, most recently used first. */
export async function liveSessions(em: EntityManager, userId: string): Promise<SessionRow[]> {
  const rows = await em.execute<{ id: string; created_at: number; last_used_at: number; user_agent: string | null }[]>(
    `select id, ${epochMs('created_at')} as created_at, ${epochMs('last_used_at')} as last_used_at, user_agent from sessions
     where user_id = ? and expires_at > now() order by last_used_at desc, id`,
    [userId],
  );
  return rows.map((row) => ({ ...row, created_at: new Date(row.created_at), last_used_at: new Date(row.last_used_at) }));
}

/**
 * Whether the session is live and `userId`'s. Marks it used, at most once a minute: the check runs when an
 * instance has not heard of the session for a while, not on every request (SessionGate).
 */
export async function isLive(em: EntityManager, sessionId: string, userId: string): Promise<boolean> {
  const [row] = await em.execute<{ live: boolean }[]>(
    `with s as (select id, last_used_at from sessions where id = ? and user_id = ? and expires_at > now()),
     touched as (update sessions set last_used_at = now() from s where sessions.id = s.id and s.last_used_at < now() - interval '1 minute')
     select exists (select 1 from s) as live`,
    [sessionId, userId],
  );
  return row!.live;
}

/** Which of these sessions are live. */
export async function liveAmong(em: EntityManager, sessionIds: readonly string[]): Promise<Set<string>> {
  const rows = await em.execute<{ id: string }[]>('select id from sessions where id = any(?::uuid[]) and expires_at > now()', [
    textArray(sessionIds),
  ]);
  return new Set(rows.map((row) => row.id));
}

/**
 * Erases a user: the user's row, and with it (by cascade) their tasks, change log, sessions and refresh tokens;
 * then their rate-limit rows, which name them only in their key. The row is locked first, so that a task being
 * created meanwhile either commits before (and is deleted with the rest) or finds no owner. Returns the ids of the
 * sessions that ended, or undefined when the user was already gone.
 */
export async function eraseUser(em: EntityManager, userId: string, rateLimitKeys: readonly string[]): Promise<string[] | undefined> {
  const [user] = await em.execute<{ id: string }[]>('select id from users where id = ? for update', [userId]);
  if (!user) return undefined;
  const sessions = await em.execute<{ id: string }[]>('select id from sessions where user_id = ?', [userId]);
  await em.execute('delete from users where id = ?', [userId]);
  await em.execute('delete from rate_limits where key = any(?::text[])', [textArray(rateLimitKeys)]);
  const ended = sessions.map((row) => row.id);
  await announceEnded(em, ended);
  return ended;
}

/** Rows one prune removes from each table at most: a backlog goes over several prunes, each within the timeout. */
const PRUNE_BATCH = 10_000;

/** Removes expired sessions and expired refresh tokens (spent ones are kept until then, to catch their reuse). */
export async function pruneSessions(em: EntityManager): Promise<{ sessions: number; refreshTokens: number }> {
  const prune = (table: string, key: string) =>
    em.execute<{ n: number }[]>(
      `with gone as (delete from ${table} where ${key} in (select ${key} from ${table} where expires_at < now() limit ${PRUNE_BATCH}) returning 1)
       select count(*)::int as n from gone`,
    );
  const sessions = await prune('sessions', 'id');
  const tokens = await prune('refresh_tokens', 'hash');
  return { sessions: sessions[0]!.n, refreshTokens: tokens[0]!.n };
}
