import type { RequestHandler } from 'express';

/**
 * At most `limit` requests past this point at once; the others wait their turn, first come first served, but
 * never longer than `maxWaitMs`: then they go in over the limit (without taking a place), so that what needs no
 * pooled connection (`health`, a refusal) still answers when every place is held by requests stuck on the
 * database.
 *
 * Under 200 clients and a pool of 10, every request in progress holds its parsed document, context, EntityManager
 * and promises while it waits for a connection; they live long enough to be promoted to V8's old generation, which
 * then grows by megabytes a second (measured with heap snapshots under `npm run bench:load`; docs/performance.md,
 * "The admission gate").
 * Waiting here, a request holds its socket and its parsed body only.
 *
 * Placed after the body is read, so that a client trickling its body cannot hold a place; a place is given back
 * when the response has been handed to the socket (`prefinish`, not when a slow reader has taken it all) or when
 * the client goes away (its work may still be finishing then, as it would without the gate: a place must never
 * wait on a response nobody will take). A client that left while waiting is skipped.
 */
export function admission(limit: number, maxWaitMs: number): RequestHandler {
  let active = 0;
  // In arrival order.
  const waiting = new Set<() => void>();
  const release = () => {
    const [next] = waiting;
    if (!next) {
      active -= 1;
      return;
    }
    waiting.delete(next);
    next();
  };
  return (req, res, next) => {
    const enter = (counted: boolean) => {
      const leave = counted ? release : () => undefined;
      if (res.writableEnded || req.socket.destroyed) return leave();
      let left = false;
      const done = () => {
        if (left) return;
        left = true;
        leave();
      };
      res.once('prefinish', done);
      res.once('close', done);
      next();
    };
    if (active < limit) {
      active += 1;
      return enter(true);
    }
    const admit = () => {
      clearTimeout(timer);
      enter(true);
    };
    const timer = setTimeout(() => {
      waiting.delete(admit);
      enter(false);
    }, maxWaitMs);
    waiting.add(admit);
  };
}
