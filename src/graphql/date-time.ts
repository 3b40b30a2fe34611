import { DateTimeResolver } from 'graphql-scalars';
import { GraphQLScalarType } from 'graphql';

/**
 * graphql-scalars' `DateTime`, answering with the ISO string rather than the `Date` it validated: the same bytes
 * once serialised, but a `Date` in the result sends every `JSON.stringify` of an answer off V8's fast path (each
 * one a `toJSON` call), which made serialising a page of tasks five times slower than the same data as strings.
 * A valid `Date` is written by `isoDateTime`; anything else goes through graphql-scalars, which refuses what it
 * cannot represent.
 */
export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  ...DateTimeResolver.toConfig(),
  serialize: (value) =>
    (value instanceof Date ? isoDateTime(value) : undefined) ?? (DateTimeResolver.serialize(value) as Date).toISOString(),
});

const DAY_MS = 86_400_000;
/** 0000-01-01T00:00:00.000Z and 10000-01-01T00:00:00.000Z: the years `toISOString` writes with four digits. */
const FIRST_MS = -62_167_219_200_000;
const END_MS = 253_402_300_800_000;
const ZERO = 48;
// The day's part of the last answer, as character codes: Y Y Y Y - M M - D D.
let lastDay = Number.NaN;
let y1 = 0,
  y2 = 0,
  y3 = 0,
  y4 = 0,
  m1 = 0,
  m2 = 0,
  d1 = 0,
  d2 = 0;

/**
 * `date.toISOString()` for the years 0000 to 9999, or undefined (an invalid date, or a year `toISOString` writes
 * with a sign and six digits). Three times faster than V8's own (a call into C++ and a formatted print): a page of
 * 20 tasks writes 80 of them, which were 5% of the server's time on that page. The answer is made in one piece
 * from its 24 character codes: built by concatenation, each one cost a chain of intermediate strings, 22 KB of a
 * page's 215 KB of garbage (`npm run bench:alloc`). The day's part is kept for the next call, as a page's
 * timestamps mostly share a day.
 */
export function isoDateTime(date: Date): string | undefined {
  const ms = date.getTime();
  if (!(ms >= FIRST_MS && ms < END_MS)) return undefined;
  const day = Math.floor(ms / DAY_MS);
  if (day !== lastDay) {
    lastDay = day;
    const { year, month, dayOfMonth } = civilDate(day);
    y1 = ZERO + Math.floor(year / 1000);
    y2 = ZERO + (Math.floor(year / 100) % 10);
    y3 = ZERO + (Math.floor(year / 10) % 10);
    y4 = ZERO + (year % 10);
    m1 = ZERO + Math.floor(month / 10);
    m2 = ZERO + (month % 10);
    d1 = ZERO + Math.floor(dayOfMonth / 10);
    d2 = ZERO + (dayOfMonth % 10);
  }
  let rest = ms - day * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  return String.fromCharCode(
    y1,
    y2,
    y3,
    y4,
    0x2d,
    m1,
    m2,
    0x2d,
    d1,
    d2,
    0x54,
    ZERO + Math.floor(hours / 10),
    ZERO + (hours % 10),
    0x3a,
    ZERO + Math.floor(minutes / 10),
    ZERO + (minutes % 10),
    0x3a,
    ZERO + Math.floor(seconds / 10),
    ZERO + (seconds % 10),
    0x2e,
    ZERO + Math.floor(millis / 100),
    ZERO + (Math.floor(millis / 10) % 10),
    ZERO + (millis % 10),
    0x5a,
  );
}

/** The date of a day counted from 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's civil_from_days). */
function civilDate(day: number): { year: number; month: number; dayOfMonth: number } {
  const shifted = day + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const dayOfMonth = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, dayOfMonth };
}
