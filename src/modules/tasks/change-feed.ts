import type { MikroORM } from '@mikro-orm/postgresql';
import { GraphQLError } from 'graphql';
import type { Config } from '../../config/config.js';
import type { SubscriberLink } from '../../graphql/context.js';
import { databaseUnavailable, ErrorCode, rateLimited, resyncRequired, unauthenticated } from '../../graphql/errors.js';
import { contains, includes, ORIGIN, union, type ChangePosition } from './change-position.js';
import {
  announce,
  CHANGES_CHANNEL,
  changesAfter,
  feedStart,
  oldestTransaction,
  ownersChangedSince,
  pruneChanges,
  type LogRead,
  type OldestTransaction,
  type TaskChange,
} from './task.changes.js';
import type { Logger } from '../../observability/logger.js';
import type { Listen, Listener } from '../../db/notifications.js';
import { BufferLedger, type Holder } from './buffer-ledger.js';

/**
 * What a subscription yields: a change and the subscriber's position right after it (its cursor), or the error
 * that ends it (the resolver throws it, then it completes).
 */
export type FeedItem =
  { change: TaskChange; position: ChangePosition; end?: undefined } | { end: GraphQLError; change?: undefined; position?: undefined };

interface Queued {
  change: TaskChange;
  position: ChangePosition;
}

export interface FeedLimits {
  /** Changes read from the log at once. */
  batch: number;
  /** Bytes of changes one subscription may hold for a consumer that does not take them; past it, it ends (retryable). */
  bufferBytes: number;
  /** A transaction open this long, holding delivery back, is named in a warning. */
  oldTransactionWarnMs: number;
}

/** A transaction holding delivery back this long is named in the log. */
const OLD_TRANSACTION_WARN_MS = 30_000;
/** While anyone subscribes, the oldest transaction is looked up every this many sweeps. */
const WATCH_EVERY_SWEEPS = 5;

/** Changes read from the log at once. */
const BATCH = 100;

/** Past its buffer: the client reconnects and resumes with its last cursor. */
export const slowConsumer = () =>
  new GraphQLError('The subscriber did not keep up: resume with the last cursor received', {
    extensions: { code: ErrorCode.RATE_LIMITED, retryAfterSeconds: 1 },
  });

export interface OpenOptions extends SubscriberLink {
  userId: string;
  /** The position to resume after, or null to start from now. */
  after: ChangePosition | null;
}

/** setTimeout's longest delay; a later expiry re-arms. */
const MAX_DELAY = 2 ** 31 - 1;
/** The log is pruned at most this often, after writes through this instance. */
const PRUNE_EVERY_MS = 5 * 60_000;
/** While anyone subscribes, the log is swept this often for changes nobody announced (see CHANGES_CHANNEL). */
const SWEEP_EVERY_MS = 1_000;

/**
 * One subscriber's view of one user's change log. Behind the head (a replay after a cursor) it reads the log on its
 * own, a batch when the consumer has taken the previous one. Once it has caught up it joins its user's shared
 * reader (UserLog), which reads each change once for every subscription of that user on this instance and offers
 * it to each; a subscription takes what is after its own position, so joining early or late neither skips nor
 * doubles a change. What it holds for a consumer that does not take it is counted in bytes, against its own
 * limit and the process's (BufferLedger).
 */
class FeedSubscription implements AsyncIterableIterator<FeedItem>, Holder {
  readonly #queue: Queued[] = [];
  #last: ChangePosition = ORIGIN;
  #started = false;
  #live = false;
  #dirty = true;
  #reading = false;
  #tookSinceOffer = false;
  #end: GraphQLError | undefined;
  #done = false;
  #waiter: (() => void) | undefined;
  #expiry: NodeJS.Timeout | undefined;
  /** The subscriber's session ended (signed out, revoked, the account deleted): it ends with the signal's reason. */
  readonly #sessionEnded = () => this.end(this.options.ended?.reason as GraphQLError);

  constructor(
    private readonly log: UserLog,
    private readonly feed: ChangeFeed,
    readonly options: OpenOptions,
  ) {
    this.#armExpiry();
    if (options.ended?.aborted) this.#sessionEnded();
    else options.ended?.addEventListener('abort', this.#sessionEnded, { once: true });
  }

  get started(): boolean {
    return this.#started;
  }

  get closed(): boolean {
    return this.#done || this.#end !== undefined;
  }

  /** What it has taken from the log: its consumer's position once the queue is delivered. */
  get last(): ChangePosition {
    return this.#last;
  }

  /** Starts reading after `position`, once the listener is in place. */
  start(position: ChangePosition): void {
    this.#last = position;
    this.#started = true;
    // Its own first read: it joins the shared reader once it has caught up.
    this.#pump();
  }

  /** A change of this user may have committed (the shared reader is woken apart). */
  wake(): void {
    if (this.#live) return;
    this.#dirty = true;
    this.#pump();
  }

  /**
   * From the shared reader: changes after its head, in order, and the position the read reached. Takes those its
   * own position does not include, as far as its buffer allows. A consumer that had not taken what it held did not keep up: it ends. One that had, but was
   * offered more than its buffer at once (a large write), keeps what fits and reads the rest on its own.
   */
  offer(changes: readonly TaskChange[], base: ChangePosition, through: ChangePosition): void {
    if (this.closed) return;
    // Keeping up: it holds nothing, or its consumer has taken something since the last offer.
    const keepingUp = this.#queue.length === 0 || this.#tookSinceOffer;
    this.#tookSinceOffer = false;
    let taken = false;
    let all = true;
    // At the reader's head (as it is unless it joined from a later snapshot): each change's position is its own.
    const aligned = this.#last === base;
    for (const change of changes) {
      if (!aligned && includes(this.#last, change.key)) continue;
      if (!this.#fits(change)) {
        if (!keepingUp) return this.end(slowConsumer());
        this.log.detach(this);
        this.#live = false;
        this.#dirty = true;
        all = false;
        break;
      }
      this.#push(change, aligned);
      taken = true;
    }
    if (all && !this.closed) this.#last = aligned ? through : union(this.#last, through);
    if (taken) this.#signal();
  }

  /** Ends the subscription with this error, dropping what it holds: the client resumes from what it received. */
  end(error: GraphQLError): void {
    if (this.#end || this.#done) return;
    this.#end = error;
    this.#drop();
    this.#release();
    this.#signal();
  }

  /** Over the process's limit (BufferLedger): ends it as a consumer that did not keep up. */
  cut(): void {
    this.end(slowConsumer());
  }

  async next(): Promise<IteratorResult<FeedItem>> {
    for (;;) {
      if (this.#done) return { done: true, value: undefined };
      if (this.#end) {
        const end = this.#end;
        this.#done = true;
        return { done: false, value: { end } };
      }
      if (this.#queue.length > 0) {
        if (this.options.writable) await this.options.writable();
        if (this.options.charge) {
          try {
            await this.options.charge();
          } catch (error) {
            // The budget is kept in PostgreSQL: when it cannot be read, the subscription ends and is resumed.
            if (!(error instanceof GraphQLError))
              this.feed.logger.warn({ err: error }, 'charging an event failed: ending the subscription');
            this.end(error instanceof GraphQLError ? error : databaseUnavailable());
            continue;
          }
        }
        const queued = this.#queue.shift();
        if (!queued) continue;
        this.#tookSinceOffer = true;
        this.feed.buffers.release(this, queued.change.bytes);
        if (this.#queue.length === 0) this.#pump();
        this.options.observer?.delivered();
        return { done: false, value: queued };
      }
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }

  async return(): Promise<IteratorResult<FeedItem>> {
    this.#done = true;
    this.#drop();
    this.#release();
    this.#signal();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** `aligned`: the change was read from this subscription's own position, so its position is the change's. */
  #push(change: TaskChange, aligned: boolean): void {
    // Cut while it was being handed a batch (BufferLedger): it holds nothing more.
    if (this.closed) return;
    // Else what it has delivered and this: it includes what the reader's read started from (UserLog.join).
    const position = aligned ? change.after : union(this.#last, change.after);
    this.#queue.push({ change, position });
    this.#last = position;
    this.feed.buffers.hold(this, change.bytes);
  }

  /** Whether it may hold `change` too: within its buffer, or as the one change it holds. */
  #fits(change: TaskChange): boolean {
    // What it holds is what the ledger holds for it: its queue.
    return this.#queue.length === 0 || this.feed.buffers.heldBy(this) + change.bytes <= this.feed.limits.bufferBytes;
  }

  #drop(): void {
    this.#queue.length = 0;
    this.feed.buffers.forget(this);
  }

  #signal(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  #release(): void {
    clearTimeout(this.#expiry);
    this.options.ended?.removeEventListener('abort', this.#sessionEnded);
    this.feed.unregister(this);
  }

  #armExpiry(): void {
    const delay = this.options.expiresAt - Date.now();
    this.#expiry = setTimeout(
      () => (Date.now() >= this.options.expiresAt ? this.end(unauthenticated('The token has expired')) : this.#armExpiry()),
      Math.max(0, Math.min(delay, MAX_DELAY)),
    );
    this.#expiry.unref();
  }

  /** Behind the head: reads its next batch once the consumer has taken the previous one. */
  #pump(): void {
    if (this.#live || this.#reading || !this.#started || this.closed || this.#queue.length > 0) return;
    this.#reading = true;
    void this.#read();
  }

  async #read(): Promise<void> {
    const { batch } = this.feed.limits;
    try {
      while (this.#dirty && !this.#live && !this.closed && this.#queue.length === 0) {
        this.#dirty = false;
        const { changes, through, pruned } = await this.feed.read(this.options.userId, this.#last, batch);
        if (this.closed) return;
        // Pruned between two batches of a replay.
        if (pruned) return this.end(resyncRequired());
        // What fits in its buffer; the rest is read again once the consumer has taken this.
        let kept = 0;
        while (kept < changes.length && this.#fits(changes[kept]!)) this.#push(changes[kept++]!, true);
        if (kept === changes.length) this.#last = through;
        // More waiting: read when the consumer has taken these. None: caught up with what has committed; it joins
        // the shared reader unless that has read something it has not (then it reads again, from a later snapshot).
        if (kept < changes.length || changes.length === batch || !this.log.join(this)) this.#dirty = true;
        if (kept > 0) this.#signal();
      }
    } catch (error) {
      this.feed.logger.warn({ err: error }, 'reading the change log failed: ending the subscription');
      this.end(databaseUnavailable());
    } finally {
      // In the same turn as the loop's end, so that a wake after it starts a read rather than being ignored.
      this.#reading = false;
    }
  }

  /** @internal Now fed by its user's shared reader. */
  joined(): void {
    this.#live = true;
  }
}

/**
 * The one reader of a user's change log on this instance for every subscription of theirs that has caught up:
 * one read per change, however many subscriptions, devices and transports the user has open here. It reads
 * eagerly, everything that has committed (see changesAfter), and offers each batch to its subscriptions, each of
 * which holds what its consumer has not taken yet, within its byte limit.
 *
 * A subscription joins only if its position includes everything the head does, so nothing the reader has read is
 * missing from it; it may include more (it read in a later snapshot), and skips those. Its position is then the
 * union of its own and the reader's: they agree on any partial transaction, which the reader reads first.
 */
class UserLog {
  readonly subscriptions = new Set<FeedSubscription>();
  readonly #live = new Set<FeedSubscription>();
  /** Where the last read reached; none while no subscription is live. */
  #head: ChangePosition | undefined;
  #dirty = false;
  #reading = false;
  /** Bumped when the head is forgotten: a read started before it answers for nobody now. */
  #generation = 0;

  constructor(
    readonly userId: string,
    private readonly feed: ChangeFeed,
  ) {}

  /**
   * Takes a subscription that has read up to its position, unless this reader has read something it has not (it
   * would miss that): true when it joined.
   */
  join(subscription: FeedSubscription): boolean {
    if (this.#head && !contains(subscription.last, this.#head)) return false;
    this.#live.add(subscription);
    subscription.joined();
    // A reader that is running reads on as changes are announced; a new one reads what is there now.
    if (!this.#head) {
      this.#head = subscription.last;
      this.wake();
    }
    return true;
  }

  leave(subscription: FeedSubscription): void {
    this.subscriptions.delete(subscription);
    this.detach(subscription);
  }

  /** No longer fed from here (it ended, or reads on its own); the last one out forgets the head. */
  detach(subscription: FeedSubscription): void {
    if (!this.#live.delete(subscription) || this.#live.size > 0) return;
    this.#head = undefined;
    this.#generation += 1;
  }

  /** A change of this user may have committed. */
  wake(): void {
    for (const subscription of this.subscriptions) subscription.wake();
    this.#dirty = true;
    if (this.#reading || !this.#head) return;
    this.#reading = true;
    void this.#read();
  }

  async #read(): Promise<void> {
    const { batch } = this.feed.limits;
    try {
      while (this.#dirty && this.#head) {
        this.#dirty = false;
        const generation = this.#generation;
        const base = this.#head;
        const { changes, through, pruned } = await this.feed.read(this.userId, base, batch);
        // Everyone it read for left meanwhile, and whoever joined since starts from their own position.
        if (generation !== this.#generation) {
          this.#dirty = true;
          continue;
        }
        if (pruned) return this.#endAll(resyncRequired());
        this.#head = through;
        if (changes.length > 0) for (const subscription of [...this.#live]) subscription.offer(changes, base, through);
        if (changes.length === batch) this.#dirty = true;
      }
    } catch (error) {
      this.feed.logger.warn({ err: error }, 'reading the change log failed: ending the subscriptions');
      this.#endAll(databaseUnavailable());
    } finally {
      // In the same turn as the loop's end, so that a join after it starts a read rather than being ignored.
      this.#reading = false;
    }
  }

  #endAll(error: GraphQLError): void {
    for (const subscription of [...this.#live]) subscription.end(error);
  }
}

/**
 * The change feed of one instance: its subscriptions by user, the one listening connection they share, the
 * per-user limit, and the log's pruning.
 */
export class ChangeFeed {
  readonly #byUser = new Map<string, UserLog>();
  /** What subscriptions and streams hold for slow readers, in bytes (SUBSCRIPTION_BUFFER_TOTAL_BYTES). */
  readonly buffers: BufferLedger;
  readonly limits: FeedLimits;
  readonly #listener: Listener;
  #count = 0;
  #reading = 0;
  readonly #readQueue: (() => void)[] = [];
  #lastPrune = 0;
  #pruning: Promise<void> | undefined;
  #closed = false;
  readonly #announcing = new Set<string>();
  readonly #announcements = new Set<Promise<void>>();
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  /** The snapshot of the last sweep: whatever commits after it is not included. */
  #swept: ChangePosition = ORIGIN;
  #sweeps = 0;
  #oldest: OldestTransaction | null = null;
  /** The transactions already named in a warning (pid and start), so that each is named once. */
  readonly #named = new Set<string>();

  constructor(
    private readonly orm: MikroORM,
    private readonly config: Pick<
      Config,
      'db' | 'changesRetentionHours' | 'subscriptionsPerUser' | 'subscriptionBufferBytes' | 'subscriptionBufferTotalBytes'
    >,
    listen: Listen,
    readonly logger: Logger,
    limits: Partial<FeedLimits> = {},
  ) {
    this.limits = { batch: BATCH, bufferBytes: config.subscriptionBufferBytes, oldTransactionWarnMs: OLD_TRANSACTION_WARN_MS, ...limits };
    this.buffers = new BufferLedger(config.subscriptionBufferTotalBytes);
    this.#listener = listen(CHANGES_CHANNEL, {
      notify: (ownerId) => this.#wake(ownerId),
      resumed: () => this.#each((log) => log.wake()),
      lost: () => this.#each((log) => [...log.subscriptions].forEach((subscription) => subscription.end(databaseUnavailable()))),
    });
  }

  /** Subscriptions on this instance that are reading (their start is known). */
  get size(): number {
    return this.#count;
  }

  /**
   * A subscription to `userId`'s changes after `after` (or from now). It is registered, and the listener in
   * place, before the log is read: whatever commits from then on wakes it, so the replay and the live changes
   * meet without a gap.
   */
  async open(options: OpenOptions): Promise<AsyncIterableIterator<FeedItem>> {
    if (this.#closed) throw databaseUnavailable();
    const { userId } = options;
    const log = this.#byUser.get(userId) ?? new UserLog(userId, this);
    if (log.subscriptions.size >= this.config.subscriptionsPerUser) {
      throw rateLimited(`At most ${this.config.subscriptionsPerUser} open subscriptions per user`, 5);
    }
    const subscription = new FeedSubscription(log, this, options);
    log.subscriptions.add(subscription);
    this.#byUser.set(userId, log);
    this.#sweeper ??= setInterval(() => void this.#sweep(), SWEEP_EVERY_MS).unref();
    try {
      await this.#listener.ready().catch((error: unknown) => {
        this.logger.warn({ err: error }, 'cannot listen for task changes');
        throw databaseUnavailable();
      });
      this.pruneIfDue();
      subscription.start(await feedStart(this.orm.em.fork(), userId, options.after, this.config.changesRetentionHours));
    } catch (error) {
      await subscription.return();
      throw error;
    }
    if (!subscription.closed) {
      this.#count += 1;
      options.observer?.opened();
    }
    return subscription;
  }

  /** @internal A subscription that ended or was closed. */
  unregister(subscription: FeedSubscription): void {
    const log = this.#byUser.get(subscription.options.userId);
    if (!log?.subscriptions.has(subscription)) return;
    log.leave(subscription);
    if (log.subscriptions.size === 0) this.#byUser.delete(log.userId);
    if (subscription.started) {
      this.#count -= 1;
      subscription.options.observer?.closed();
    }
    if (this.#byUser.size === 0) {
      this.#listener.release();
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /**
   * @internal The log after `after`. At most half the pool reads for subscriptions at once (a reconnect wakes
   * every subscription together; requests keep the other half); a failed read is tried twice more.
   */
  async read(userId: string, after: ChangePosition, limit: number): Promise<LogRead> {
    for (let attempt = 0; ; attempt++) {
      await this.#readSlot();
      try {
        return await changesAfter(this.orm.em.fork(), userId, after, limit);
      } catch (error) {
        if (attempt >= 2 || this.#closed) throw error;
      } finally {
        this.#releaseSlot();
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * 4 ** attempt));
    }
  }

  async #readSlot(): Promise<void> {
    if (this.#reading < Math.max(1, Math.floor(this.config.db.max / 2))) {
      this.#reading += 1;
      return;
    }
    // The slot is handed over by the read that releases it.
    await new Promise<void>((resolve) => this.#readQueue.push(resolve));
  }

  #releaseSlot(): void {
    const next = this.#readQueue.shift();
    if (next) next();
    else this.#reading -= 1;
  }

  /**
   * After a mutation of `ownerId`'s tasks committed through this instance: announces it to every instance's
   * subscribers (one NOTIFY statement for the owners of a turn of the event loop, outside any transaction; see
   * CHANGES_CHANNEL), and prunes the log when that is due.
   */
  committed(ownerId: string): void {
    if (this.#closed) return;
    if (this.#announcing.size === 0) setImmediate(() => void this.#announce());
    this.#announcing.add(ownerId);
    this.pruneIfDue();
  }

  /** Sends what is waiting to be announced; resolves when every announcement sent so far has been answered. */
  #announce(): Promise<void> {
    if (this.#announcing.size > 0) {
      const owners = [...this.#announcing];
      this.#announcing.clear();
      const sent: Promise<void> = announce(this.orm.em.fork(), owners)
        // The sweep delivers what an announcement failed to: a second later.
        .catch((error: unknown) => this.logger.warn({ err: error }, 'announcing task changes failed'))
        .finally(() => this.#announcements.delete(sent));
      this.#announcements.add(sent);
    }
    return Promise.all(this.#announcements).then(() => undefined);
  }

  #wake(ownerId: string): void {
    this.#byUser.get(ownerId)?.wake();
  }

  /** Wakes the subscribers of every user with a change since the last sweep, announced or not. */
  async #sweep(): Promise<void> {
    if (this.#sweeping || this.#closed || this.#byUser.size === 0) return;
    this.#sweeping = true;
    try {
      const { now, owners } = await ownersChangedSince(this.orm.em.fork(), [...this.#byUser.keys()], this.#swept);
      this.#swept = now;
      for (const owner of owners) this.#wake(owner);
      if (++this.#sweeps % WATCH_EVERY_SWEEPS === 0) await this.#watchOldest();
    } catch (error) {
      this.logger.debug({ err: error }, 'sweeping the change log failed');
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * How long the oldest transaction of this database has been open, while anyone subscribes (0 otherwise): the
   * feed waits for it, since whatever it has written reaches subscribers only when it commits. Other changes flow
   * meanwhile, but every cursor issued names it as still running, and it holds back vacuum.
   */
  get oldestTransactionSeconds(): number {
    return this.#byUser.size > 0 ? (this.#oldest?.ageSeconds ?? 0) : 0;
  }

  /** Looks up the oldest transaction, and names it in a warning once it has been open past the limit. */
  async #watchOldest(): Promise<void> {
    const oldest = (this.#oldest = await oldestTransaction(this.orm.em.fork()));
    if (!oldest || oldest.ageSeconds * 1000 < this.limits.oldTransactionWarnMs) return;
    const key = `${oldest.pid}:${Math.round(Date.now() / 1000 - oldest.ageSeconds)}`;
    if (this.#named.has(key)) return;
    if (this.#named.size > 100) this.#named.clear();
    this.#named.add(key);
    const { ageSeconds, ...named } = oldest;
    this.logger.warn(
      { ...named, openSeconds: Math.round(ageSeconds) },
      'a transaction has been open for a long time: subscribers get what it wrote only when it commits, and it holds back vacuum',
    );
  }

  /** After a new subscription or a commit: prunes the log in the background when due. */
  pruneIfDue(): void {
    if (!this.#closed && this.#pruneDue())
      void this.prune().catch((error: unknown) => this.logger.warn({ err: error }, 'pruning the change log failed'));
  }

  /** Deletes the changes past the retention (one run at a time per instance). */
  prune(): Promise<void> {
    this.#lastPrune = Date.now();
    this.#pruning ??= pruneChanges(this.orm.em.fork(), this.config.changesRetentionHours)
      .then((deleted) => {
        if (deleted > 0) this.logger.info({ deleted }, 'pruned the change log');
      })
      .finally(() => (this.#pruning = undefined));
    return this.#pruning;
  }

  /** Ends every subscription (their transports close first) and stops listening. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    // The changes of the last requests are announced before the ORM closes.
    await this.#announce();
    await Promise.all([...this.#byUser.values()].flatMap((log) => [...log.subscriptions].map((subscription) => subscription.return())));
    await this.#listener.stop();
    await this.#pruning?.catch(() => undefined);
  }

  #pruneDue(): boolean {
    return Date.now() - this.#lastPrune >= PRUNE_EVERY_MS;
  }

  #each(action: (log: UserLog) => void): void {
    for (const log of [...this.#byUser.values()]) action(log);
  }
}
