/** A real PgBouncer in transaction mode in front of `target`, listening on 127.0.0.1:`port` (see pgbouncer.js). */
export function startPgBouncer(options: {
  dir: string;
  target: string;
  port: number;
  user: { uid?: number; gid?: number };
}): Promise<{ stop(): void }>;
