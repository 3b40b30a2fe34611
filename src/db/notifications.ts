/**
 * PostgreSQL notifications as the features use them: one `LISTEN` connection per channel and instance
 * (realtime/change-listener.ts), wanted while a feature needs it and released when it does not.
 */

/** What a listener tells the feature that wanted it. */
export interface ListenerEvents {
  /** A notification arrived on the channel, with its payload. */
  notify(payload: string): void;
  /** Listening again after a break: anything may have been notified meanwhile. */
  resumed(): void;
  /** The connection broke and could not be made again in time. */
  lost(): void;
}

/** The listening connection, as a feature uses it. */
export interface Listener {
  /**
   * Whether notifications arrive now: `LISTEN` is in place on a connection not known to be broken and, when the
   * listener confirms delivery (`confirmEveryMs`), it has recently heard its own probe.
   */
  readonly listening: boolean;
  /** Resolves once `LISTEN` is in place (connecting first if needed); rejects when that attempt fails. */
  ready(): Promise<void>;
  /** Nobody needs it now: it closes after a linger, unless wanted again by then. */
  release(): void;
  stop(): Promise<void>;
}

export interface ListenOptions {
  /** Prove delivery this often, by notifying the channel and hearing it back (see Listener.listening). */
  confirmEveryMs?: number;
}

/** Makes the listener of one channel. */
export type Listen = (channel: string, events: ListenerEvents, options?: ListenOptions) => Listener;
