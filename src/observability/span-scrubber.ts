import { SpanStatusCode } from '@opentelemetry/api';
import type { Span, SpanProcessor } from '@opentelemetry/sdk-trace';

/**
 * A literal in PostgreSQL text (an E-string with backslash escapes, a plain or B/X/N string, a dollar-quoted body, a
 * number), a quoted identifier (kept), or a comment (dropped). An unterminated literal runs to the end of the text.
 */
const SQL_TOKEN =
  /(?<![\w$])[Ee]'(?:[^'\\]|\\[\s\S]|'')*(?:'|$)|(?:(?<![\w$])[BbXxNn])?'(?:[^']|'')*(?:'|$)|\$([A-Za-z_]\w*)?\$[\s\S]*?(?:\$\1\$|$)|"(?:[^"]|"")*"|\/\*[\s\S]*?(?:\*\/|$)|--[^\n]*|(?<![\w$.])\d+(?:\.\d+)?(?:[Ee][+-]?\d+)?/g;

/** The statement's shape: every literal becomes `?`. MikroORM inlines parameters, so the text holds the client's values. */
export function sqlShape(sql: string): string {
  return sql.replace(SQL_TOKEN, (token) => {
    if (token.startsWith('"')) return token;
    if (token.startsWith('/*') || token.startsWith('--')) return '';
    return '?';
  });
}

/** `a=1&b=2` becomes `a=REDACTED&b=REDACTED`: the names tell what was asked, the values (a whole GraphQL document) stay out. */
export function redactQuery(query: string): string {
  return [...new URLSearchParams(query).keys()].map((name) => `${encodeURIComponent(name)}=REDACTED`).join('&');
}

/** A URL (or a path) with its query values redacted. */
function redactUrl(url: string): string {
  const at = url.indexOf('?');
  return at === -1 ? url : `${url.slice(0, at)}?${redactQuery(url.slice(at + 1))}`;
}

/** A stack without its message: an error's message may quote what the client sent (a token, a JSON snippet, a literal). */
function framesOnly(stack: string): string {
  return stack
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .join('\n');
}

const SQL_TEXT = ['db.query.text', 'db.statement'];
const URLS = ['url.full', 'http.url', 'http.target'];

/**
 * What a span may say about a request, whatever an instrumentation recorded: SQL reduced to its shape, URL query
 * values redacted, exception messages and status descriptions dropped (the error and its trace id are in the log).
 */
export function scrubSpan(span: Span): void {
  for (const key of SQL_TEXT) {
    const text = span.attributes[key];
    if (typeof text === 'string') span.setAttribute(key, sqlShape(text));
  }
  for (const key of URLS) {
    const url = span.attributes[key];
    if (typeof url === 'string') span.setAttribute(key, redactUrl(url));
  }
  const query = span.attributes['url.query'];
  if (typeof query === 'string') span.setAttribute('url.query', redactQuery(query));
  for (const event of span.events) {
    const attributes = event.attributes as Record<string, unknown> | undefined;
    if (!attributes) continue;
    delete attributes['exception.message'];
    if (typeof attributes['exception.stacktrace'] === 'string')
      attributes['exception.stacktrace'] = framesOnly(attributes['exception.stacktrace']);
  }
  if (span.status.code === SpanStatusCode.ERROR && span.status.message !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
}

/** Scrubs every span while it can still be changed, before any exporter sees it. */
export class ScrubbingSpanProcessor implements SpanProcessor {
  onStart(): void {}
  onEnding(span: Span): void {
    scrubSpan(span);
  }
  onEnd(): void {}
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}
