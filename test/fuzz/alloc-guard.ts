// Allocation guard for fuzz cases: while a case runs, every buffer a parser asks for (typed
// arrays, ArrayBuffer, Buffer.alloc*, `new Array(n)`) is checked against a byte budget
// proportional to the case's input size, before the memory is allocated. Measuring RSS after the
// fact would miss a parser that allocates from a huge length field: `new Uint8Array(2 ** 33)`
// is zero-filled lazily and freed again before anyone looks. A request over the budget throws
// AllocationBudgetError at the allocation site, which the harness counts as a failure.
//
// The constructors are replaced by Proxies on globalThis (so `instanceof`, statics and species
// still resolve to the originals); install once per worker, never in library code.

export class AllocationBudgetError extends Error {
  constructor(
    readonly requested: number,
    readonly limit: number,
    readonly what: string,
  ) {
    super(`allocation of ${requested} bytes (${what}) exceeds the case budget of ${limit} bytes`);
    this.name = 'AllocationBudgetError';
  }
}

export interface AllocationStats {
  /** Largest single request, bytes. */
  largest: number;
  /** Sum of all requests, bytes. */
  total: number;
  /** The first request over budget (also thrown, but a parser could catch and wrap it). */
  violation: string | null;
}

interface Budget {
  single: number;
  total: number;
  stats: AllocationStats;
}

let active: Budget | null = null;

function charge(bytes: number, what: string): void {
  const b = active;
  if (b === null || !Number.isFinite(bytes) || bytes <= 0) return;
  if (bytes > b.stats.largest) b.stats.largest = bytes;
  b.stats.total += bytes;
  let err: AllocationBudgetError | null = null;
  if (bytes > b.single) err = new AllocationBudgetError(bytes, b.single, what);
  else if (b.stats.total > b.total) err = new AllocationBudgetError(b.stats.total, b.total, `${what}, running total`);
  if (err === null) return;
  b.stats.violation ??= err.message;
  throw err;
}

/** Bytes a constructor call will allocate, when its first argument is a length. */
function requestedBytes(first: unknown, elementBytes: number): number {
  return typeof first === 'number' ? first * elementBytes : 0;
}

const TYPED_ARRAYS = [
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
] as const;

let installed = false;

/** Wraps the global allocators (idempotent). */
export function installAllocationGuard(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as unknown as Record<string, unknown>;
  const wrapCtor = (name: string, elementBytes: number): void => {
    const ctor = g[name] as new (...args: unknown[]) => object;
    g[name] = new Proxy(ctor, {
      construct(target, args: unknown[], newTarget) {
        charge(requestedBytes(args[0], elementBytes), `new ${name}(${String(args[0])})`);
        return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget) as object;
      },
      apply(target, thisArg, args: unknown[]) {
        // Array(n) without `new` allocates as well.
        if (name === 'Array' && args.length === 1) charge(requestedBytes(args[0], elementBytes), `Array(${String(args[0])})`);
        return Reflect.apply(target as unknown as (...a: unknown[]) => unknown, thisArg, args);
      },
    });
  };
  for (const name of TYPED_ARRAYS) {
    const ctor = g[name] as { BYTES_PER_ELEMENT: number };
    wrapCtor(name, ctor.BYTES_PER_ELEMENT);
  }
  wrapCtor('ArrayBuffer', 1);
  wrapCtor('SharedArrayBuffer', 1);
  wrapCtor('Array', 8);
  for (const fn of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
    const original = Buffer[fn] as (...args: unknown[]) => Buffer;
    (Buffer as unknown as Record<string, unknown>)[fn] = (...args: unknown[]): Buffer => {
      charge(requestedBytes(args[0], 1), `Buffer.${fn}(${String(args[0])})`);
      return original.apply(Buffer, args);
    };
  }
}

/** Runs `fn` with a per-request and a running-total budget; returns what it requested. */
export function withAllocationBudget<T>(single: number, total: number, fn: () => T): { value: T; stats: AllocationStats } {
  const stats: AllocationStats = { largest: 0, total: 0, violation: null };
  const outer = active;
  active = { single, total, stats };
  try {
    return { value: fn(), stats };
  } finally {
    active = outer;
  }
}
