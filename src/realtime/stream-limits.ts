import { addressKey } from '../guards/rate-limits.js';
import type { Logger } from '../observability/logger.js';

/**
 * Open WebSocket and Server-Sent Events streams per client address (an IPv6 address by its /64, as the sign-in
 * limit counts), across both transports: MAX_STREAMS_PER_IP. Behind a proxy the address is the client's, as
 * TRUST_PROXY derives it, not the proxy's.
 */
export class StreamsPerIp {
  readonly #open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Whether `ip` may open another stream now. */
  hasRoom(ip: string): boolean {
    return this.max === 0 || (this.#open.get(addressKey(ip)) ?? 0) < this.max;
  }

  /** Takes a place for a stream from `ip`: the function that gives it back, or undefined when there is none. */
  take(ip: string): (() => void) | undefined {
    if (!this.hasRoom(ip)) return undefined;
    const key = addressKey(ip);
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left > 0) this.#open.set(key, left);
      else this.#open.delete(key);
    };
  }
}

/** What a transport fault is, for its log line: a client's doing (a bad frame, a reset) or ours. */
type Fault = 'client' | 'server';

/** One line per kind of fault per this period at most; the next one says how many were left out. */
const FAULT_LOG_PERIOD_MS = 10_000;

/**
 * Logs the faults of the transports' sockets through the JSON logger, never stderr: a client's at `info` with its
 * code and message and no stack, ours at `error` in full; each kind at most once per FAULT_LOG_PERIOD_MS, so that
 * nobody can fill the log by opening connections.
 */
export class TransportFaults {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly logger: Logger) {}

  report(fault: Fault, transport: string, error: unknown, msg: string): void {
    const code = (error as { code?: unknown } | undefined)?.code;
    const kind = `${fault}:${transport}:${typeof code === 'string' ? code : (error as Error | undefined)?.name}`;
    const now = Date.now();
    const last = this.#last.get(kind);
    if (last && now - last.at < FAULT_LOG_PERIOD_MS) {
      last.suppressed += 1;
      return;
    }
    if (this.#last.size > 1000) this.#last.clear();
    this.#last.set(kind, { at: now, suppressed: 0 });
    const suppressed = last?.suppressed || undefined;
    if (fault === 'server') this.logger.error({ err: error, transport, suppressed }, msg);
    else this.logger.info({ transport, code, reason: (error as Error | undefined)?.message, suppressed }, msg);
  }
}
