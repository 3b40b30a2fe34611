import { trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config/config.js';

export type { Logger };

const URL_CREDENTIALS = /\b(postgres(?:ql)?:\/\/[^:/?#\s@"]*):[^@\s"]*@/gi;
const BEARER = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g;
const PASSWORD_PARAM = /\b(password=)[^&\s"]+/gi;

/** Removes credentials from any text: connection strings, bearer tokens, JWTs, password parameters. */
export function redactText(text: string): string {
  return text
    .replace(URL_CREDENTIALS, '$1:[REDACTED]@')
    .replace(BEARER, '$1[REDACTED]')
    .replace(JWT, '[REDACTED]')
    .replace(PASSWORD_PARAM, '$1[REDACTED]');
}

const ERROR_FIELDS = ['type', 'message', 'stack', 'code', 'detail', 'hint', 'constraint', 'table', 'column', 'routine', 'path', 'cause'];

/** What an error says about itself, without the objects hanging off it (a `pg` client, a socket). */
function serializeError(error: unknown): unknown {
  if (!error || typeof error !== 'object') return error;
  const full = pino.stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  const thrown = (error as { thrownValue?: unknown }).thrownValue;
  const kept = Object.fromEntries(ERROR_FIELDS.filter((key) => full[key] !== undefined).map((key) => [key, full[key]]));
  if (thrown === undefined) return kept;
  try {
    return { ...kept, thrownValue: JSON.parse(JSON.stringify(thrown) ?? 'null') };
  } catch {
    return { ...kept, thrownValue: String(thrown) };
  }
}

/** The ids of the active span, so that a request's log lines and its trace find each other; none without tracing. */
function traceIds(): { traceId?: string; spanId?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

/** JSON lines, or readable ones in development; `destination` lets tests read what is logged. */
export function createLogger(config: Pick<Config, 'env' | 'logLevel'>, destination?: DestinationStream): Logger {
  const pretty = config.env === 'development' && !destination;
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'req.headers.authorization', 'req.headers.cookie', 'jwtSecret'],
      censor: '[REDACTED]',
    },
    serializers: { err: serializeError },
    mixin: traceIds,
    // Every line passes through here after serialisation, so a secret inside an error message is caught too.
    hooks: { streamWrite: redactText },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}
