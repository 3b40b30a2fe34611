import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { inSequence } from '../src/http/in-sequence.js';

/** `/:how` runs three middlewares in one layer; the second does as `how` says; what ran is the answer. */
async function sequenced() {
  const app = express();
  const step =
    (name: string): RequestHandler =>
    (req, res, next) => {
      res.locals.ran = [...(res.locals.ran ?? []), name];
      next();
    };
  const second: RequestHandler = (req, res, next) => {
    res.locals.ran.push('second');
    const how = req.params.how;
    if (how === 'throws') throw new Error('thrown');
    if (how === 'passes') return next(new Error('passed'));
    if (how === 'rejects') return Promise.reject(new Error('rejected')) as unknown as void;
    if (how === 'answers') return void res.send(res.locals.ran.join(' '));
    if (how === 'later') return void setTimeout(next, 10);
    next();
  };
  app.use('/:how', inSequence(step('first'), second, step('third')));
  app.use((req, res) => res.send([...res.locals.ran, 'after'].join(' ')));
  const errors: ErrorRequestHandler = (error: Error, req, res, _next) => res.status(500).send([...res.locals.ran, error.message].join(' '));
  app.use(errors);
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const get = async (how: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/${how}`);
    return `${response.status} ${await response.text()}`;
  };
  return { server, get };
}

describe('middlewares in sequence on one layer', () => {
  it('runs them in order and then the layers after, synchronously or not', async () => {
    const s = await sequenced();
    try {
      expect(await s.get('plain')).toBe('200 first second third after');
      expect(await s.get('later')).toBe('200 first second third after');
      expect(await s.get('answers')).toBe('200 first second');
    } finally {
      s.server.close();
    }
  });

  it('hands an error, thrown, passed on or rejected, to the error handlers, skipping the rest', async () => {
    const s = await sequenced();
    try {
      expect(await s.get('throws')).toBe('500 first second thrown');
      expect(await s.get('passes')).toBe('500 first second passed');
      expect(await s.get('rejects')).toBe('500 first second rejected');
    } finally {
      s.server.close();
    }
  });
});
