import type { MikroORM } from '@mikro-orm/postgresql';
import type { GraphQLError } from 'graphql';
import { unauthenticated } from '../../graphql/errors.js';
import type { AccessClaims, TokenVerifier } from '../../graphql/viewer.js';
import type { Listen, Listener } from '../../db/notifications.js';
import type { Logger } from '../../observability/logger.js';
import { isLive, liveAmong, SESSIONS_CHANNEL } from './session.store.js';
import type { TokenService } from './tokens.js';

/** Without a listener to hear of its end, a session read live is believed this long, then read again. */
const BELIEVED_UNHEARD_MS = 1_000;
/** While the listener has been in place since the read, this long (the read also marks the session used). */
const BELIEVED_LISTENING_MS = 60_000;
/** After a failed attempt to listen, the next waits this long: requests meanwhile read the session instead. */
const LISTEN_RETRY_MS = 5_000;
/** The listener proves delivery this often; it counts as listening only while it hears itself (within 3× this). */
const CONFIRM_EVERY_MS = 400;
/** The listener is released after this long without a check or a subscriber. */
const IDLE_MS = 60_000;
/** Sessions remembered either way, at most; past it the oldest are forgotten (and read again when seen). */
const REMEMBERED_MAX = 100_000;
/** Followed sessions are read again this often while the listener is not in place (or has been away). */
const SWEEP_MS = 1_000;

export const sessionEnded = () => unauthenticated('The session has ended: sign in again');

type EndCallback = (error: GraphQLError) => void;

/**
 * Whether an access token's session is live, answered from memory on the hot path. Each instance listens on
 * SESSIONS_CHANNEL, where every ending is announced by the transaction that ends it: a session read live while the
 * listener was in place stays believed until an announcement says otherwise (or a minute passes). Without the
 * listener (connecting, broken, or behind a pooler), a session read live is believed for one second only, so an
 * ending reaches every instance within that second plus a read, whatever became of its announcement.
 *
 * Open subscriptions follow their session: on its end they are told at once. While the listener is away, the
 * followed sessions are read again every second, in one statement.
 *
 * When a session cannot be read (the database is away), the answer is 'unavailable', and the request fails with
 * DATABASE_UNAVAILABLE: a session that cannot be checked is not served. Ended sessions it knows of are refused from
 * memory, whatever the database's state.
 */
export class SessionGate implements TokenVerifier {
  /** Sessions read live: when the read started, and whether the listener was in place then (its epoch). */
  readonly #live = new Map<string, { at: number; epoch: number | undefined }>();
  /** Sessions known to have ended, until their access tokens have expired. */
  readonly #ended = new Map<string, number>();
  readonly #reads = new Map<string, Promise<boolean | 'unavailable'>>();
  readonly #followers = new Map<string, Set<EndCallback>>();
  /** Followed sessions not read while the listener was in place: read again at the next tick. */
  readonly #unconfirmed = new Set<string>();
  readonly #listener: Listener;
  /** Bumped whenever the listener may have missed an announcement: beliefs of an older epoch are read again. */
  #epoch = 0;
  #sweptEpoch = -1;
  #lastWanted = 0;
  #nextListenAttempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #sweeping = false;
  #released = false;
  #closed = false;

  constructor(
    private readonly orm: MikroORM,
    private readonly tokens: TokenService,
    listen: Listen,
    private readonly logger: Logger,
    /** How long an access token lives: an ended session is remembered that long. */
    private readonly accessTtlMs: number,
  ) {
    this.#listener = listen(
      SESSIONS_CHANNEL,
      {
        notify: (payload) => this.ended(payload.split(',')),
        resumed: () => (this.#epoch += 1),
        lost: () => (this.#epoch += 1),
      },
      { confirmEveryMs: CONFIRM_EVERY_MS },
    );
  }

  /** The claims of a valid access token of a live session; undefined otherwise; 'unavailable' when it cannot be told. */
  async verified(token: string): Promise<AccessClaims | 'unavailable' | undefined> {
    const claims = await this.tokens.verified(token);
    if (!claims) return undefined;
    const live = await this.check(claims.sessionId, claims.userId);
    return live === true ? claims : live === false ? undefined : live;
  }

  /** Whether the session is live: from memory when it can be believed, else read. */
  async check(sessionId: string, userId: string): Promise<boolean | 'unavailable'> {
    const now = Date.now();
    this.#want(now);
    if (this.#ended.has(sessionId)) return false;
    const belief = this.#live.get(sessionId);
    if (belief && (now - belief.at < BELIEVED_UNHEARD_MS || this.#believedListening(sessionId, now))) return true;
    let read = this.#reads.get(sessionId);
    if (!read) {
      read = this.#read(sessionId, userId).finally(() => this.#reads.delete(sessionId));
      this.#reads.set(sessionId, read);
    }
    return read;
  }

  /** These sessions have ended (announced, or ended here): refused from now on, and their subscribers told. */
  ended(sessionIds: readonly string[]): void {
    const until = Date.now() + this.accessTtlMs;
    for (const id of sessionIds) {
      this.#live.delete(id);
      this.#ended.delete(id);
      this.#ended.set(id, until);
      this.#trim(this.#ended);
      const followers = this.#followers.get(id);
      this.#followers.delete(id);
      for (const onEnd of followers ?? []) onEnd(sessionEnded());
    }
  }

  /** Calls `onEnd` once the session ends (at once if it is known to have); returns what stops following it. */
  follow(sessionId: string, onEnd: EndCallback): () => void {
    if (this.#ended.has(sessionId)) {
      queueMicrotask(() => onEnd(sessionEnded()));
      return () => undefined;
    }
    const followers = this.#followers.get(sessionId) ?? new Set();
    followers.add(onEnd);
    this.#followers.set(sessionId, followers);
    this.#want(Date.now());
    // Its last read may predate an ending the listener did not hear (it was away then): read it once more.
    if (!this.#believedListening(sessionId)) this.#unconfirmed.add(sessionId);
    return () => {
      followers.delete(onEnd);
      if (followers.size === 0 && this.#followers.get(sessionId) === followers) this.#followers.delete(sessionId);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#listener.stop();
  }

  /** Read live while the listener was in place, and heard nothing of it since: it would have heard an ending. */
  #believedListening(sessionId: string, now = Date.now()): boolean {
    const belief = this.#live.get(sessionId);
    return belief !== undefined && belief.epoch === this.#epoch && this.#listener.listening && now - belief.at < BELIEVED_LISTENING_MS;
  }

  async #read(sessionId: string, userId: string): Promise<boolean | 'unavailable'> {
    const at = Date.now();
    // Believed beyond a second only if the listener was in place before the read began: any later ending is heard.
    const epoch = this.#listener.listening ? this.#epoch : undefined;
    let live: boolean;
    try {
      live = await isLive(this.orm.em.fork(), sessionId, userId);
    } catch (error) {
      this.logger.warn({ err: error }, 'could not check a session: refusing its request for now');
      return 'unavailable';
    }
    if (this.#ended.has(sessionId)) return false;
    if (live) {
      this.#live.delete(sessionId);
      this.#live.set(sessionId, { at, epoch });
      this.#trim(this.#live);
    } else {
      this.ended([sessionId]);
    }
    return live;
  }

  /** Someone needs the answers: keep the listener (and the timer that releases it when idle). */
  #want(now: number): void {
    if (this.#closed) return;
    this.#lastWanted = now;
    this.#timer ??= setInterval(() => this.#tick(), SWEEP_MS).unref();
    // Released when idle, perhaps still lingering: wanted again, it stays (or comes back).
    let listen = this.#released;
    this.#released = false;
    if (!this.#listener.listening) {
      // Not in place: whatever it might have heard is unheard.
      this.#epoch += 1;
      if (now >= this.#nextListenAttempt) {
        this.#nextListenAttempt = now + LISTEN_RETRY_MS;
        listen = true;
      }
    }
    if (listen) this.#listener.ready().catch((error: unknown) => this.logger.warn({ err: error }, 'cannot listen for ended sessions'));
  }

  #tick(): void {
    const now = Date.now();
    for (const [id, until] of this.#ended) {
      if (until > now) break;
      this.#ended.delete(id);
    }
    if (this.#followers.size > 0) {
      this.#want(now);
      void this.#sweep();
      return;
    }
    // Nobody follows any session now: none is left to confirm.
    this.#unconfirmed.clear();
    if (now - this.#lastWanted > IDLE_MS) {
      // Idle: let the connection go (an idle Neon compute can then suspend); whatever it would hear is unheard.
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#live.clear();
      this.#epoch += 1;
      this.#released = true;
      this.#listener.release();
    }
  }

  /**
   * Reads the followed sessions again when the listener may have missed the end of one (all of them), or those
   * followed since the last tick without a belief the listener vouches for.
   */
  async #sweep(): Promise<void> {
    const all = !(this.#listener.listening && this.#sweptEpoch === this.#epoch);
    if (this.#sweeping || (!all && this.#unconfirmed.size === 0)) return;
    this.#sweeping = true;
    const epoch = this.#listener.listening ? this.#epoch : -1;
    const unconfirmed = [...this.#unconfirmed];
    this.#unconfirmed.clear();
    try {
      const followed = all ? [...this.#followers.keys()] : unconfirmed.filter((id) => this.#followers.has(id));
      const live = await liveAmong(this.orm.em.fork(), followed);
      this.ended(followed.filter((id) => !live.has(id)));
      if (all) this.#sweptEpoch = epoch;
    } catch (error) {
      for (const id of unconfirmed) this.#unconfirmed.add(id);
      this.logger.warn({ err: error }, 'could not check the sessions of open subscriptions');
    } finally {
      this.#sweeping = false;
    }
  }

  #trim(map: Map<string, unknown>): void {
    if (map.size > REMEMBERED_MAX) map.delete(map.keys().next().value!);
  }
}
