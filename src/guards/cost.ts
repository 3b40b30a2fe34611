import { Extensions } from 'type-graphql';

/** What a field makes the server do, beyond being a field. Read by the query limits from `extensions.cost`. */
export interface FieldCost {
  /** SQL round trips the field's resolver makes. */
  sql?: number;
  /** Password hashes it computes (bcrypt). */
  hash?: number;
  /**
   * The limits each call counts against: a password check (AUTH_RATE_LIMIT per client address, and a limit per
   * account when signed in), or a refresh (per client address). At most one such field per request.
   */
  attempt?: 'password' | 'refresh';
  /** The field returns a page of `arg` items (at most `max`): its list children are charged once per item. */
  page?: { arg: string; max: number };
}

/** Points: one per field; a round trip to PostgreSQL and a bcrypt hash weigh what they cost next to a field. */
export const COST_WEIGHTS = { field: 1, sql: 10, hash: 100 } as const;

/** Declares a field's cost beside its resolver, so the limits charge what the server does. */
export const Cost = (cost: FieldCost) => Extensions({ cost });
