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

/** JSON lines, or readable ones in development; `destination` lets tests read what is logged. */
export function createLogger(config: Pick<Config, 'env' | 'logLevel'>, destination?: DestinationStream): Logger {
  const pretty = config.env === 'development' && !destination;
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'req.headers.authorization', 'req.headers.cookie', 'jwtSecret'],
      censor: '[REDACTED]',
    },
    // Every line passes through here after serialisation, so a secret inside an error message is caught too.
    hooks: { streamWrite: redactText },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}
