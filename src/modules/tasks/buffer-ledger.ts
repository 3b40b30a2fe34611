/** Something that holds bytes for a slow reader and can be made to let go of them. */
export interface Holder {
  /** Drops what it holds (ending its subscription or closing its stream) and releases it from the ledger. */
  cut(): void;
}

/**
 * The bytes every subscription and stream of the process holds for readers that have not taken them yet: changes
 * queued in a subscription, events written to a socket that has not drained. Past `limit`, the largest holders are
 * cut until the total is back within it, so that memory is bounded by configuration, not by clients
 * (SUBSCRIPTION_BUFFER_TOTAL_BYTES).
 */
export class BufferLedger {
  readonly #held = new Map<Holder, number>();
  #total = 0;
  #cuts = 0;

  constructor(readonly limit: number) {}

  /** Holders cut so far because the process held too much. */
  get cuts(): number {
    return this.#cuts;
  }

  /** Bytes held now, by everyone. */
  get total(): number {
    return this.#total;
  }

  heldBy(holder: Holder): number {
    return this.#held.get(holder) ?? 0;
  }

  hold(holder: Holder, bytes: number): void {
    this.#held.set(holder, this.heldBy(holder) + bytes);
    this.#total += bytes;
    if (this.#total > this.limit) this.#cutLargest();
  }

  release(holder: Holder, bytes: number): void {
    const held = this.#held.get(holder);
    if (held === undefined) return;
    const released = Math.min(held, bytes);
    this.#total -= released;
    if (held - released > 0) this.#held.set(holder, held - released);
    else this.#held.delete(holder);
  }

  /** Releases everything `holder` holds. */
  forget(holder: Holder): void {
    this.release(holder, Infinity);
  }

  #cutLargest(): void {
    const largestFirst = [...this.#held].sort((a, b) => b[1] - a[1]);
    for (const [holder] of largestFirst) {
      if (this.#total <= this.limit) return;
      // A holder that is cut releases what it holds; make sure of it even if it does not.
      holder.cut();
      this.forget(holder);
      this.#cuts += 1;
    }
  }
}
