import type { IncomingMessage } from 'node:http';

/**
 * The client's address as Express derives `req.ip` with `trust proxy` set to a number of hops: the socket's
 * address, or the entry `trustProxy` hops back in `X-Forwarded-For` (its first entry when it has fewer). The one
 * place it is derived, for `/graphql`, event streams and WebSocket upgrades (which Express never sees) alike.
 */
export function clientIp(req: Pick<IncomingMessage, 'headers' | 'socket'>, trustProxy: number): string {
  const socket = req.socket.remoteAddress ?? 'unknown';
  if (trustProxy === 0) return socket;
  const header = req.headers['x-forwarded-for'];
  const forwarded = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .reverse();
  const hops = [socket, ...forwarded];
  return hops[Math.min(trustProxy, hops.length - 1)]!;
}
