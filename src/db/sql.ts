/** SQL fragments and parameters every feature's hand-written statements share. */

/** A timestamp as epoch milliseconds: JavaScript dates from numbers, not from parsing text. */
export const epochMs = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`;

/**
 * A PostgreSQL array literal, for a `?::text[]` (or `?::uuid[]`) parameter: MikroORM's `execute` would spread a
 * JavaScript array into a list.
 */
export function textArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}
