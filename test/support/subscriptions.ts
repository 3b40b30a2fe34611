import { contains, decodeChangeCursor, encodeChangeCursor, ORIGIN, same } from '../../src/modules/tasks/change-position.js';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { ApiError } from './api.js';
import { TASK_FIELDS, type TaskView } from './tasks.js';

export const TASK_CHANGES = `subscription Changes($after: String) {
  taskChanges(after: $after) { cursor kind taskId at task { ${TASK_FIELDS} } }
}`;

export interface ChangeView {
  cursor: string;
  kind: 'CREATED' | 'UPDATED' | 'DELETED';
  taskId: string;
  at: string;
  task: TaskView | null;
}

export interface Result {
  data?: { taskChanges: ChangeView } | null;
  errors?: ApiError[];
}

/**
 * What one subscription received, in order: `changes` (the events' data), `errors` (the error results), and how
 * it ended: `ended` resolves with nothing when the server completed it, or with what the transport threw
 * (a close event, an `error` message's errors).
 */
export class Received {
  readonly results: Result[] = [];
  readonly arrivals: number[] = [];
  ending: unknown;
  readonly ended: Promise<unknown>;
  #finish!: (reason: unknown) => void;
  #waiters = new Set<() => void>();

  constructor() {
    this.ended = new Promise((resolve) => (this.#finish = resolve));
  }

  get changes(): ChangeView[] {
    return this.results.flatMap((result) => (result.data?.taskChanges ? [result.data.taskChanges] : []));
  }

  get errors(): ApiError[] {
    return this.results.flatMap((result) => result.errors ?? []);
  }

  push(result: Result): void {
    this.results.push(result);
    this.arrivals.push(performance.now());
    for (const waiter of this.#waiters) waiter();
  }

  finish(reason?: unknown): void {
    this.ending = reason;
    this.#finish(reason);
    for (const waiter of this.#waiters) waiter();
  }

  /** Resolves once `n` results arrived (or the subscription ended); rejects after `timeoutMs`. */
  async resultsOf(n: number, timeoutMs = 10_000): Promise<Result[]> {
    await this.until(() => this.results.length >= n, timeoutMs, `${n} results`);
    return this.results;
  }

  /** Resolves once `n` changes arrived; rejects after `timeoutMs` with what did arrive. */
  async take(n: number, timeoutMs = 10_000): Promise<ChangeView[]> {
    await this.until(() => this.changes.length >= n, timeoutMs, `${n} changes`);
    return this.changes;
  }

  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`waited ${timeoutMs} ms for ${what}; received ${JSON.stringify(this.results)}, ending ${String(this.ending)}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }
}

export interface WsSession {
  client: Client;
  /** The raw socket, once open. */
  socket(): WebSocket | undefined;
  subscribe(variables?: Record<string, unknown>, query?: string): Received;
  close(): Promise<void>;
}

/** A graphql-ws client as a frontend runs one: lazy, no retries (tests watch each socket), token in connection_init. */
export function wsSession(
  serverUrl: string,
  token: string | undefined,
  options: { connectionParams?: Record<string, unknown> } = {},
): WsSession {
  let socket: WebSocket | undefined;
  const client = createClient({
    url: `${serverUrl.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: class extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        // eslint-disable-next-line @typescript-eslint/no-this-alias
        socket = this;
      }
    },
    connectionParams: options.connectionParams ?? (token ? { authorization: `Bearer ${token}` } : {}),
    retryAttempts: 0,
    lazy: true,
    lazyCloseTimeout: 0,
  });
  return {
    client,
    socket: () => socket,
    subscribe: (variables = {}, query = TASK_CHANGES) => {
      const received = new Received();
      client.subscribe<Result['data']>(
        { query, variables },
        {
          next: (result) => received.push(result as Result),
          error: (error) => received.finish(error),
          complete: () => received.finish(),
        },
      );
      return received;
    },
    close: () => client.dispose() as Promise<void>,
  };
}

/** A graphql-sse client in its distinct-connections mode, the token in the Authorization header. */
export function sseSubscribe(serverUrl: string, token: string | undefined, variables: Record<string, unknown> = {}, query = TASK_CHANGES) {
  const client = createSseClient({
    url: `${serverUrl}/graphql/stream`,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
  const received = new Received();
  const dispose = client.subscribe<Result['data']>(
    { query, variables },
    {
      next: (result) => received.push(result as Result),
      error: (error) => received.finish(error),
      complete: () => received.finish(),
    },
  );
  return {
    received,
    close: () => {
      dispose();
      client.dispose();
    },
  };
}

/** A cursor that includes no change: a replay of everything the log holds. */
export const FROM_START = encodeChangeCursor(ORIGIN);

/** The cursor right after the changes of transaction `xid`, when no older transaction of the user's is still open. */
export const cursorAfter = (xid: number | string) => encodeChangeCursor({ xmax: Number(xid) + 1, xip: [], partial: null });

/** Each change's cursor includes more than the one before it, as the feed issues them. */
export const inOrder = (changes: ChangeView[]) =>
  changes.every((change, i) => {
    if (i === 0) return true;
    const [position, previous] = [decodeChangeCursor(change.cursor), decodeChangeCursor(changes[i - 1]!.cursor)];
    return contains(position, previous) && !same(position, previous);
  });
