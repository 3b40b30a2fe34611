/** What a database failure means for the caller. */
export type DbErrorKind = 'unavailable' | 'transient' | 'timeout' | 'constraint' | 'other';

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  previous?: unknown;
  thrownValue?: unknown;
  originalError?: unknown;
}

/** The error and everything wrapped inside it: causes, MikroORM's `previous`, values graphql-js wrapped. */
function* chain(error: unknown): Generator<ErrorLike> {
  const pending: unknown[] = [error];
  for (let seen = 0; pending.length > 0 && seen < 10; seen++) {
    const e = pending.shift();
    if (!e || typeof e !== 'object') continue;
    const like = e as ErrorLike;
    yield like;
    pending.push(like.cause, like.previous, like.thrownValue, like.originalError);
  }
}

/** The connection broke under a query (killed backend, restart, network): a fresh connection may well work. */
const TRANSIENT_SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const TRANSIENT_MESSAGE =
  /Connection terminated|server closed the connection|Client has encountered a connection error|no answer from the database/i;
/** No connection could be had in time: retrying would only wait longer. */
const ACQUIRE_TIMEOUT = /timeout exceeded when trying to connect|connection timeout/i;
/**
 * A pooler or a server that refuses for now: PgBouncer after a database restart (server_login_retry, 15 s by
 * default), at max_client_conn or past query_wait_timeout (all SQLSTATE 08P01), a server starting up or shutting
 * down (57P03), and Neon's proxy while the compute restarts. Retrying at once would only be refused again.
 */
const REFUSED_FOR_NOW =
  /server login has been failing|no more connections allowed|query_wait_timeout|pgbouncer cannot connect to server|database system is (starting up|shutting down|in recovery mode|not yet accepting connections)|couldn't connect to compute node|compute (node )?is (not available|unavailable|starting)|endpoint is (disabled|suspended)/i;

export function classifyDbError(error: unknown): DbErrorKind {
  let kind: DbErrorKind = 'other';
  for (const e of chain(error)) {
    const code = typeof e.code === 'string' ? e.code : '';
    const message = typeof e.message === 'string' ? e.message : '';
    if (ACQUIRE_TIMEOUT.test(message) || REFUSED_FOR_NOW.test(message)) return 'unavailable';
    if (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_CODES.has(code) || TRANSIENT_MESSAGE.test(message)) return 'transient';
    if (code === '57014') kind = 'timeout';
    if (/^23/.test(code)) kind = 'constraint';
  }
  return kind;
}

/** A failure worth another attempt on a fresh connection. */
export const isTransient = (error: unknown) => classifyDbError(error) === 'transient';

/**
 * PostgreSQL rolled the transaction back to resolve a conflict with another one: a deadlock (40P01) or a
 * serialization failure (40001). Nothing of it was written, so it may run again.
 */
export function isConflictRollback(error: unknown): boolean {
  for (const e of chain(error)) if (e.code === '40P01' || e.code === '40001') return true;
  return false;
}

/** A row refers to one that does not exist (SQLSTATE 23503), such as a task to a user deleted meanwhile. */
export function isForeignKeyViolation(error: unknown): boolean {
  for (const e of chain(error)) if (e.code === '23503') return true;
  return false;
}

/** The database cannot be reached right now: the client may try again later. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const kind = classifyDbError(error);
  return kind === 'transient' || kind === 'unavailable';
}

export interface RetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** No new attempt starts after this long since the first. */
  budgetMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 2, budgetMs: 2000 };

/** 50 ms, 150 ms, 450 ms..., with jitter. */
export function retryDelayMs(attempt: number, random = Math.random): number {
  return Math.round(50 * 3 ** attempt * (0.5 + random() / 2));
}
