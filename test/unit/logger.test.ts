import { Writable } from 'node:stream';
import { createLogger, redactText } from '../../src/observability/logger.js';

function capture(level = 'info') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ env: 'production', logLevel: level }, destination), lines };
}

describe('redaction', () => {
  it('removes passwords from connection strings, bearer tokens and JWTs', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl';
    const text = `connect to postgresql://app:s3cr%40t@db.example.com:5432/todo?sslmode=require with Bearer ${jwt} and ${jwt}, password=hunter2`;
    const redacted = redactText(text);
    expect(redacted).toBe(
      'connect to postgresql://app:[REDACTED]@db.example.com:5432/todo?sslmode=require with Bearer [REDACTED] and [REDACTED], password=[REDACTED]',
    );
  });

  it('leaves a URL without a password as it is', () => {
    expect(redactText('postgres://db.example.com/todo')).toBe('postgres://db.example.com/todo');
  });

  it('redacts secrets inside logged errors and fields, not only in messages', () => {
    const { logger, lines } = capture();
    const error = new Error('could not connect to postgres://app:topsecret@db.example.com/todo');
    logger.error({ err: error, password: 'hunter2', req: { headers: { authorization: 'Bearer abc.def.ghi' } } }, 'failed');
    const out = lines.join('');
    expect(out).not.toContain('topsecret');
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('abc.def.ghi');
    expect(JSON.parse(out)).toMatchObject({ level: 50, msg: 'failed', err: { message: expect.stringContaining('[REDACTED]') } });
  });
});
