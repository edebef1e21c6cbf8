// The outcome of a read done on the thread pool (parts-prefetch.ts), held until the caller
// takes it: a promise is made only where the caller gets there before the outcome.

export interface PendingResult<T> {
  result?: T;
  /** an internal error instead (never a bad file's) */
  failure?: { err: unknown };
  waiting?: Promise<T>;
  resolve?: (r: T) => void;
  reject?: (err: unknown) => void;
}

/** the outcome came in */
export function settle<T>(p: PendingResult<T>, r: T): void {
  p.result = r;
  p.resolve?.(r);
}

/** the read failed (an internal error) */
export function fail<T>(p: PendingResult<T>, err: unknown): void {
  p.failure = { err };
  p.reject?.(err);
}

/** the outcome at once where it is in, else a promise of it */
export function outcome<T>(p: PendingResult<T>): T | Promise<T> {
  if (p.result !== undefined) return p.result;
  if (p.failure !== undefined) return Promise.reject(p.failure.err);
  p.waiting ??= new Promise<T>((resolve, reject) => {
    p.resolve = resolve;
    p.reject = reject;
  });
  return p.waiting;
}
