import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import express from 'express';
import { admission } from '../../src/http/admission.js';
import { waitFor } from '../support/wait.js';

/** A server whose handler holds each request until the test lets it go, and records what it saw. */
async function heldServer(limit: number, maxWaitMs = 60_000) {
  const held = new Map<string, () => void>();
  const started: string[] = [];
  let inside = 0;
  let most = 0;
  const app = express();
  app.use(admission(limit, maxWaitMs));
  app.get('/:name', (req, res) => {
    const name = String(req.params.name);
    started.push(name);
    inside += 1;
    most = Math.max(most, inside);
    const finish = () => {
      inside -= 1;
      held.delete(name);
      if (!res.writableEnded) res.end(name);
    };
    held.set(name, finish);
    res.once('close', () => held.has(name) && finish());
  });
  const server = http.createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  /** Sends a request on its own socket; `abort` destroys it. */
  const send = (name: string) => {
    const request = http.get({ host: '127.0.0.1', port, path: `/${name}`, agent: false });
    const answer = new Promise<string>((resolve, reject) => {
      request.on('response', (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve(body));
      });
      request.on('error', reject);
    });
    answer.catch(() => undefined);
    return { answer, abort: () => request.destroy() };
  };
  const release = (name: string) => held.get(name)!();
  return { server, send, release, started, held, most: () => most };
}

describe('admission to /graphql', () => {
  it('lets at most `limit` requests in at once, then the others in the order they came', async () => {
    const s = await heldServer(2);
    try {
      const answers = ['a', 'b', 'c', 'd', 'e'].map((name) => s.send(name));
      await waitFor(() => s.started.length === 2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(s.started).toEqual(['a', 'b']);
      s.release('b');
      await waitFor(() => s.started.length === 3);
      s.release('a');
      await waitFor(() => s.started.length === 4);
      for (const name of ['c', 'd']) s.release(name);
      await waitFor(() => s.started.length === 5);
      s.release('e');
      expect(await Promise.all(answers.map((request) => request.answer))).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(s.started).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(s.most()).toBe(2);
    } finally {
      s.server.close();
    }
  });

  it('gives the place of a client that left, waiting or inside, to the next one, and loses none', async () => {
    const s = await heldServer(1);
    try {
      const first = s.send('first');
      await waitFor(() => s.started.length === 1);
      const gone = s.send('gone');
      const next = s.send('next');
      await new Promise((resolve) => setTimeout(resolve, 100));
      gone.abort();
      // The one inside leaves too, without an answer.
      first.abort();
      await waitFor(() => s.started.includes('next'));
      expect(s.started).toEqual(['first', 'next']);
      s.release('next');
      expect(await next.answer).toBe('next');
      // Every place came back: one more goes straight in.
      const last = s.send('last');
      await waitFor(() => s.started.includes('last'));
      s.release('last');
      expect(await last.answer).toBe('last');
    } finally {
      s.server.close();
    }
  });

  it('lets a request in over the limit once it has waited the longest wait, without taking a place', async () => {
    const s = await heldServer(1, 300);
    try {
      const stuck = s.send('stuck');
      await waitFor(() => s.started.length === 1);
      const patient = s.send('patient');
      // Let in while the stuck one still holds the only place: past the longest wait, not for a freed place.
      await waitFor(() => s.started.includes('patient'));
      expect(s.held.has('stuck')).toBe(true);
      expect(s.most()).toBe(2);
      s.release('patient');
      expect(await patient.answer).toBe('patient');
      // The place is still the stuck one's: the next waits again.
      const after = s.send('after');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(s.started).toEqual(['stuck', 'patient']);
      s.release('stuck');
      expect(await stuck.answer).toBe('stuck');
      await waitFor(() => s.started.includes('after'));
      s.release('after');
      expect(await after.answer).toBe('after');
    } finally {
      s.server.close();
    }
  });
});
