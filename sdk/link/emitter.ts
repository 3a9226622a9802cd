type Listener = (...args: unknown[]) => void;

/** Event name → listener argument tuple. */
export type EventMap = { [event: string]: unknown[] };

/**
 * A minimal typed event emitter: `on` returns an unsubscribe function. Unlike Node's EventEmitter
 * an event named 'error' is not special, so a missing listener never crashes the process.
 */
export class TypedEmitter<E extends EventMap> {
  readonly #listeners = new Map<keyof E, Set<Listener>>();

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof E>(event: K, listener: (...args: E[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as unknown as Listener);
    return () => this.off(event, listener);
  }

  /** Subscribes for one emission. */
  once<K extends keyof E>(event: K, listener: (...args: E[K]) => void): () => void {
    const off = this.on(event, (...args: E[K]) => {
      off();
      listener(...args);
    });
    return off;
  }

  off<K extends keyof E>(event: K, listener: (...args: E[K]) => void): void {
    this.#listeners.get(event)?.delete(listener as unknown as Listener);
  }

  /** Number of listeners of an event. */
  listenerCount<K extends keyof E>(event: K): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Resolves with the arguments of the next `event`, or rejects after `timeoutMs` (for tests and scripts). */
  next<K extends keyof E>(event: K, timeoutMs = 5000): Promise<E[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no '${String(event)}' event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.once(event, (...args) => {
        clearTimeout(timer);
        resolve(args);
      });
    });
  }

  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const l of [...set]) l(...(args as unknown[]));
  }
}
