// A frontend's view of the API: typed operations generated from schema.graphql (`npm run codegen`), sent by
// their sha256 (`documentId`) from the persisted-documents manifest codegen writes beside them, so that a
// server started with TRUSTED_DOCUMENTS=examples/client/gql/persisted-documents.json runs them and nothing else.
// `npm run typecheck` proves that this compiles against the generated types.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { createClient } from 'graphql-ws';
import {
  ChangePasswordDocument,
  CompleteTaskDocument,
  CreateTaskDocument,
  RefreshSessionDocument,
  SignUpDocument,
  TaskChangesDocument,
  TaskDocument,
  TaskListDocument,
  TaskPageDocument,
  UpdateTaskDocument,
} from './gql/graphql.js';
import type {
  CreateTaskInput,
  TaskCardFragment,
  TaskChangesSubscription,
  TaskChangesSubscriptionVariables,
  TaskListQuery,
  TaskPageQuery,
  UpdateTaskInput,
} from './gql/graphql.js';

export class ApiError extends Error {
  constructor(readonly errors: { message: string; extensions?: { code?: string } }[]) {
    super(errors.map((error) => error.message).join('; '));
  }
}

const hashOf = (document: unknown) => {
  const { hash } = (document as { __meta__?: { hash: string } }).__meta__ ?? {};
  if (!hash) throw new Error('the document has no hash: generate it with persistedDocuments on');
  return hash;
};

/** Sends an operation by its hash: the document's text never travels, and the server looks it up. */
export function persistedClient(url: string, token?: string) {
  return async <Result, Variables>(document: TypedDocumentNode<Result, Variables>, variables: Variables): Promise<Result> => {
    const hash = hashOf(document);
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ documentId: hash, variables }),
    });
    const { data, errors } = (await response.json()) as { data?: Result; errors?: ConstructorParameters<typeof ApiError>[0] };
    if (errors?.length || !data) throw new ApiError(errors ?? [{ message: `HTTP ${response.status}` }]);
    return data;
  };
}

export type Request = ReturnType<typeof persistedClient>;

/** A session's tokens as signUp, signIn, refreshSession and changePassword answer them. */
export interface TokenPair {
  token: string;
  expiresAt: string;
  refreshToken: string;
}

const isUnauthenticated = (error: unknown) =>
  error instanceof ApiError && error.errors.some((e) => e.extensions?.code === 'UNAUTHENTICATED');

/**
 * A signed-in session's tokens. The access token lives minutes: it is refreshed shortly before it expires, or
 * when the server refuses it. However many requests want a fresh token at once, one refresh runs and they all
 * wait for it: a refresh token is single use, and a second refresh with the same one would be taken for theft
 * and end the session.
 */
export class SessionTokens {
  #pair: TokenPair;
  #refreshing: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    pair: TokenPair,
    /** Called when the session has ended (signed out elsewhere, or its refresh token refused): sign in again. */
    private readonly onEnded: () => void = () => undefined,
    /** Refresh this long before the access token expires. */
    private readonly earlyMs = 30_000,
  ) {
    this.#pair = pair;
  }

  /** The access token to send now. */
  get token(): string {
    return this.#pair.token;
  }

  /** Takes a pair the server answered otherwise (changePassword): the old refresh token is spent. */
  replace(pair: TokenPair): void {
    this.#pair = pair;
  }

  /** The access token, refreshed first when it is about to expire. */
  async fresh(): Promise<string> {
    if (Date.parse(this.#pair.expiresAt) - this.earlyMs <= Date.now()) await this.refresh(this.#pair.token);
    return this.#pair.token;
  }

  /** Replaces `stale` by a new pair, unless a refresh already did (then it waits for that one). */
  refresh(stale: string): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    if (this.#pair.token !== stale) return Promise.resolve();
    this.#refreshing = persistedClient(this.url)(RefreshSessionDocument, { refreshToken: this.#pair.refreshToken })
      .then(({ refreshSession }) => void (this.#pair = refreshSession))
      .catch((error: unknown) => {
        if (isUnauthenticated(error)) this.onEnded();
        throw error;
      })
      .finally(() => (this.#refreshing = undefined));
    return this.#refreshing;
  }
}

/** Operations whose UNAUTHENTICATED may mean a wrong password rather than a refused token: never sent twice. */
const CHECKS_A_PASSWORD = new Set([hashOf(ChangePasswordDocument)]);

/**
 * Sends operations with the session's access token, refreshing it when it is about to expire or is refused
 * (then the operation is sent once more with the new one).
 */
export function sessionClient(url: string, tokens: SessionTokens): Request {
  return async (document, variables) => {
    const token = await tokens.fresh();
    try {
      return await persistedClient(url, token)(document, variables);
    } catch (error) {
      if (!isUnauthenticated(error) || CHECKS_A_PASSWORD.has(hashOf(document))) throw error;
      await tokens.refresh(token);
      return persistedClient(url, tokens.token)(document, variables);
    }
  };
}

/** A failure worth sending the same create again: no answer at all, or a database that is away for now. */
const worthRetrying = (error: unknown) =>
  !(error instanceof ApiError) || error.errors.some((e) => e.extensions?.code === 'DATABASE_UNAVAILABLE');

/**
 * Creates a task under an id chosen here, and sends the same create again when its answer is lost (a mobile
 * network, a proxy's timeout): the server makes one task however often it arrives, and answers it as it is now.
 */
export async function createTaskOnce(request: Request, input: Omit<CreateTaskInput, 'id'>, attempts = 3): Promise<TaskCardFragment> {
  const id = crypto.randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      return (await request(CreateTaskDocument, { input: { ...input, id } })).createTask;
    } catch (error) {
      if (attempt >= attempts || !worthRetrying(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

/**
 * Saves an edit of `task` as this device last saw it. When another device changed it first, nothing is written:
 * the answer is the task as it is now, to show the user, who decides again.
 */
export async function saveTask(
  request: Request,
  task: TaskCardFragment,
  input: UpdateTaskInput,
): Promise<{ saved: TaskCardFragment; conflict?: undefined } | { conflict: TaskCardFragment; saved?: undefined }> {
  try {
    return { saved: (await request(UpdateTaskDocument, { id: task.id, input, expectedVersion: task.version })).updateTask };
  } catch (error) {
    if (!(error instanceof ApiError) || error.errors[0]?.extensions?.code !== 'CONFLICT') throw error;
    const { task: current } = await request(TaskDocument, { id: task.id });
    // Deleted meanwhile: nothing to show.
    if (!current) throw error;
    return { conflict: current };
  }
}

export async function firstOverduePage(url: string, email: string, password: string): Promise<TaskCardFragment[]> {
  const { signUp } = await persistedClient(url)(SignUpDocument, { input: { email, password } });
  const request = persistedClient(url, signUp.token);

  const done = await request(CreateTaskDocument, {
    input: { title: 'Call the bank', priority: 'HIGH', tags: ['admin'], dueDate: '2020-01-01T00:00:00Z' },
  });
  await request(CompleteTaskDocument, { id: done.createTask.id });
  await request(CreateTaskDocument, { input: { title: 'Renew the passport', tags: ['admin'], dueDate: '2020-02-02T00:00:00Z' } });

  const page: TaskPageQuery = await request(TaskPageDocument, {
    filter: { overdue: true },
    orderBy: { field: 'DUE_DATE', direction: 'ASC' },
    first: 20,
  });
  return page.tasks.edges.map((edge) => edge.node);
}

export type TaskChange = TaskChangesSubscription['taskChanges'];

export interface TaskChangeHandlers {
  /** Each committed change of the user's tasks, once; each task's changes in the order they committed. */
  change(change: TaskChange): void;
  /**
   * The server's log no longer reaches back to our last cursor: refetch the list and answer its `changesCursor`,
   * which the feed continues after. When it fails, the next attempt to subscribe asks again.
   */
  resync(): Promise<string>;
}

/** Ends of a subscription after which subscribing again from the last cursor is right. */
const RESUMABLE = new Set(['DATABASE_UNAVAILABLE', 'RATE_LIMITED', 'UNAUTHENTICATED']);

/**
 * Keeps a task list current over WebSocket (graphql-ws), from `after` (a cursor of a change already applied) or
 * from now. The subscription's variables always hold the last cursor received: graphql-ws sends the same payload
 * again when it reconnects (a deploy's "going away", a network change), and every resubscription here uses it,
 * so the server replays exactly what was missed. `token()` is asked on every connection, so a refreshed token
 * is used once the old one expires.
 */
export function followTaskChanges(url: string, token: () => string, handlers: TaskChangeHandlers, after: string | null = null) {
  const client = createClient({
    url,
    connectionParams: () => ({ authorization: `Bearer ${token()}` }),
    lazy: true,
    // Reconnect whatever closed the socket, with graphql-ws's randomised exponential backoff.
    retryAttempts: Number.MAX_SAFE_INTEGER,
    shouldRetry: () => true,
  });
  const variables: TaskChangesSubscriptionVariables = { after };
  // Sent by hash (the server may run trusted documents only); graphql-ws wants a `query`, which stays empty.
  const payload = { query: '', documentId: hashOf(TaskChangesDocument), variables };
  let stopped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let resyncing: Promise<unknown> = Promise.resolve();
  let unsubscribe = () => {};
  const subscribe = () => {
    unsubscribe = client.subscribe<TaskChangesSubscription>(payload, {
      next: ({ data, errors }) => {
        if (data) {
          variables.after = data.taskChanges.cursor;
          handlers.change(data.taskChanges);
        }
        const code = errors?.[0]?.extensions?.code;
        if (code === 'RESYNC_REQUIRED') {
          resyncing = handlers.resync().then(
            (cursor) => (variables.after = cursor),
            () => undefined,
          );
        }
        // An expired token: the next connection asks token() again.
        if (code === 'UNAUTHENTICATED') client.terminate();
        if (typeof code === 'string' && !RESUMABLE.has(code) && code !== 'RESYNC_REQUIRED') stopped = true;
      },
      // The server ended the subscription (its error came just before): subscribe again from the last cursor.
      complete: () => {
        void resyncing.then(() => {
          if (!stopped) retry = setTimeout(subscribe, 500);
        });
      },
      error: () => {
        if (!stopped) retry = setTimeout(subscribe, 1000);
      },
    });
  };
  subscribe();
  return {
    /** The cursor to resume from later (for example after a reload). */
    get cursor() {
      return variables.after ?? null;
    },
    stop: async () => {
      stopped = true;
      clearTimeout(retry);
      unsubscribe();
      await client.dispose();
    },
  };
}

/**
 * A device's copy of the user's tasks that ends up exactly the server's, whatever other devices write meanwhile:
 *
 * 1. load every page, keeping the first page's `changesCursor` (the snapshot that page was read in);
 * 2. follow `taskChanges(after: changesCursor)`: it delivers every change the first page does not reflect;
 * 3. apply each change by version: a task is replaced only by a newer version of it (a later page may already
 *    hold what the feed replays), and a deletion removes it.
 *
 * After RESYNC_REQUIRED (the device was away longer than the server keeps changes) it loads again and follows
 * from the new cursor.
 */
export class TaskListCopy {
  readonly tasks = new Map<string, TaskCardFragment>();

  constructor(
    private readonly request: Request,
    private readonly pageSize = 100,
  ) {}

  /** Loads every page; answers the first page's `changesCursor`. */
  async load(): Promise<string> {
    const tasks = new Map<string, TaskCardFragment>();
    let cursor: string | undefined;
    let after: string | null = null;
    do {
      const page: TaskListQuery = await this.request(TaskListDocument, { first: this.pageSize, after });
      cursor ??= page.tasks.changesCursor;
      for (const { node } of page.tasks.edges) tasks.set(node.id, node);
      after = page.tasks.pageInfo.hasNextPage ? (page.tasks.pageInfo.endCursor ?? null) : null;
    } while (after);
    this.tasks.clear();
    for (const task of tasks.values()) this.tasks.set(task.id, task);
    return cursor;
  }

  apply(change: TaskChange): void {
    if (change.kind === 'DELETED') {
      this.tasks.delete(change.taskId);
      return;
    }
    const task = change.task!;
    const held = this.tasks.get(task.id);
    if (!held || held.version < task.version) this.tasks.set(task.id, task);
  }

  /** Loads the list, then keeps it current over WebSocket at `wsUrl` until `stop()`. */
  async follow(wsUrl: string, token: () => string): Promise<{ stop: () => Promise<void> }> {
    const cursor = await this.load();
    return followTaskChanges(wsUrl, token, { change: (change) => this.apply(change), resync: () => this.load() }, cursor);
  }
}
