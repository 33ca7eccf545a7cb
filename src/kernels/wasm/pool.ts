// The wasm backend's thread pool: persistent worker_threads that each instantiate the same compiled
// kernel module over the one shared WebAssembly.Memory, plus the calling thread, which computes
// the first share of every task itself (threads = workers + 1).
//
// Dispatch (ARCHITECTURE.md §2): each worker owns a small SharedArrayBuffer control block:
//   Int32 [0] task sequence (main writes; -1 = shut down)  [1] sequence done (worker writes)
//         [2] kernel index  [3] argument count  [4] error flag
//         [5] 1 when the worker slept since its last task (it was woken for this one)
//   Float64 at byte 64: up to MAX_ARGS arguments (addresses, sizes, f32 values).
// The worker sleeps in Atomics.wait on [0] and the caller in Atomics.wait on [1]: no thread ever
// spins unconditionally; one round trip costs ~15 us, so callers only split tasks of >= ~100 us.
// Workers are unref'd: a forgotten dispose() does not keep the process alive.
// Not here: how a kernel's work is split (backend.ts), what the kernels are (assembly/).

import { Worker } from 'node:worker_threads';
import { wasmApi, type WasmMemory, type WasmModule } from './wasm-api.js';

const MAX_ARGS = 24;
const CTL_BYTES = 64 + MAX_ARGS * 8;
const SHUTDOWN = -1;
/**
 * Polls of the control word (~11 ns each, measured) before a thread sleeps in Atomics.wait: a
 * worker after finishing a task, the caller while workers finish their shares. ~200 us covers
 * the gaps between the kernels of a decoding step, so a worker is awake when the next task comes;
 * waking a sleeping one costs ~100 us on the 2-vCPU VMs measured (futex + IPI through the
 * hypervisor), as long as a 0.2 ms GEMV.
 */
const WORKER_SPIN_CHECKS = 20000;
const CALLER_SPIN_CHECKS = 20000;
/** Weight of the newest sample in the running mean of hand-off lag (see ThreadPool.handoffLagUs). */
const LAG_SMOOTHING = 0.2;

// Plain CommonJS run by `new Worker(..., { eval: true, execArgv: [] })`: no file to locate,
// identical whether the library runs from dist/ (compiled) or from src/ through tsx. execArgv is
// emptied so the host's --input-type=module or --import loaders do not change how it is parsed
// (V8 flags such as relaxed SIMD are process-wide and still apply).
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { module, memory, ctlBuffer, names } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('wasm abort'); } } });
const fns = names.map((n) => instance.exports[n]);
const ctl = new Int32Array(ctlBuffer, 0, 16);
const args = new Float64Array(ctlBuffer, 64, ${MAX_ARGS});
parentPort.postMessage('ready');
let seen = 0;
let woke = 1;
for (;;) {
  // Bounded spin before sleeping: decoding hands out tasks every ~100 us, and waking a sleeping
  // thread (futex + IPI, slower still under a hypervisor) costs about as much as the task.
  let seq = Atomics.load(ctl, 0);
  for (let i = 0; seq === seen && i < ${WORKER_SPIN_CHECKS}; i++) seq = Atomics.load(ctl, 0);
  if (seq === seen) {
    Atomics.wait(ctl, 0, seen);
    woke = 1;
    continue;
  }
  if (seq === ${SHUTDOWN}) break;
  seen = seq;
  ctl[5] = woke;
  woke = 0;
  try {
    fns[ctl[2]].apply(null, Array.prototype.slice.call(args, 0, ctl[3]));
  } catch (err) {
    ctl[4] = 1;
    parentPort.postMessage(String(err && err.stack || err));
  }
  Atomics.store(ctl, 1, seq);
  Atomics.notify(ctl, 1);
}
`;

interface WorkerSlot {
  readonly worker: Worker;
  readonly ctl: Int32Array;
  readonly args: Float64Array;
  seq: number;
}

// The kernel module's exports as the pool calls them.
type KernelFn = (...args: number[]) => number;

export class ThreadPool {
  readonly threads: number;
  /** The calling thread's instance of the module (thread 0). */
  readonly exports: Record<string, KernelFn>;
  private readonly names: string[];
  private readonly slots: WorkerSlot[];
  private disposed = false;
  private lagUs = 0;
  private lastWoken = true;

  private constructor(exports: Record<string, KernelFn>, names: string[], slots: WorkerSlot[]) {
    this.exports = exports;
    this.names = names;
    this.slots = slots;
    this.threads = slots.length + 1;
  }

  /** Instantiates the module here and in threads - 1 workers; resolves when all are ready. */
  static async create(module: WasmModule, memory: WasmMemory, names: string[], threads: number): Promise<ThreadPool> {
    const instance = new wasmApi!.Instance(module, { env: { memory, abort: wasmAbort } });
    const exports = instance.exports as unknown as Record<string, KernelFn>;
    for (const n of names) if (typeof exports[n] !== 'function') throw new Error(`wasm kernel module lacks export ${n}`);
    const slots: WorkerSlot[] = [];
    const ready: Promise<void>[] = [];
    for (let t = 1; t < threads; t++) {
      const ctlBuffer = new SharedArrayBuffer(CTL_BYTES);
      const worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { module, memory, ctlBuffer, names } });
      slots.push({ worker, ctl: new Int32Array(ctlBuffer, 0, 16), args: new Float64Array(ctlBuffer, 64, MAX_ARGS), seq: 0 });
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`kernel worker exited during start-up (code ${code})`)));
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await Promise.all(slots.map((s) => s.worker.terminate()));
      throw err;
    }
    for (const s of slots) {
      s.worker.removeAllListeners();
      // Failures are reported synchronously through the error flag; drop the async copies.
      s.worker.on('message', () => {});
      s.worker.on('error', () => {});
      s.worker.unref();
    }
    return new ThreadPool(exports, names, slots);
  }

  /**
   * Running mean (us) of how long the caller waits for the workers after finishing its own share
   * of a split task whose workers were awake (spinning). Small (a few us) when they get their own
   * core; large when they share a core with other load: then splitting short tasks loses.
   */
  get handoffLagUs(): number {
    return this.lagUs;
  }

  /** True when a worker of the last split task had gone to sleep (no lag sample was taken). */
  get lastTaskWokeWorker(): boolean {
    return this.lastWoken;
  }

  /**
   * Runs kernel `fn` once per entry of `parts` (at most `threads`): parts[0] on the calling thread,
   * parts[i] on worker i-1, and returns when all are done.
   */
  run(fn: string, parts: readonly (readonly number[])[]): void {
    if (this.disposed) throw new Error('kernel pool used after dispose()');
    if (parts.length === 0) return;
    if (parts.length > this.threads) throw new Error(`kernel task split into ${parts.length} parts for ${this.threads} threads`);
    const index = this.names.indexOf(fn);
    if (index < 0) throw new Error(`unknown wasm kernel ${fn}`);
    for (let i = 1; i < parts.length; i++) {
      const s = this.slots[i - 1];
      const a = parts[i];
      if (a.length > MAX_ARGS) throw new Error(`wasm kernel ${fn}: too many arguments`);
      for (let j = 0; j < a.length; j++) s.args[j] = a[j];
      s.ctl[2] = index;
      s.ctl[3] = a.length;
      s.seq = s.seq >= 0x3fffffff ? 1 : s.seq + 1;
      Atomics.store(s.ctl, 0, s.seq);
      Atomics.notify(s.ctl, 0);
    }
    let failure: unknown = null;
    try {
      this.exports[fn](...parts[0]);
    } catch (err) {
      failure = err;
    }
    const ownDone = parts.length > 1 ? performance.now() : 0;
    let woken = false;
    for (let i = 1; i < parts.length; i++) {
      const s = this.slots[i - 1];
      for (let spin = 0; ; spin++) {
        const done = Atomics.load(s.ctl, 1);
        if (done === s.seq) break;
        if (spin >= CALLER_SPIN_CHECKS) Atomics.wait(s.ctl, 1, done);
      }
      woken ||= s.ctl[5] !== 0;
      if (s.ctl[4] !== 0) {
        s.ctl[4] = 0;
        failure ??= new Error(`wasm kernel ${fn} failed in a worker`);
      }
    }
    // A woken worker's lag is its wake-up, not contention: such samples are left out.
    this.lastWoken = woken;
    if (parts.length > 1 && !woken) this.lagUs += LAG_SMOOTHING * ((performance.now() - ownDone) * 1000 - this.lagUs);
    if (failure !== null) throw failure;
  }

  /** Stops every worker (idempotent); resolves when they have exited. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        const exited = new Promise<void>((resolve) => s.worker.once('exit', () => resolve()));
        Atomics.store(s.ctl, 0, SHUTDOWN);
        Atomics.notify(s.ctl, 0);
        const timer = setTimeout(() => void s.worker.terminate(), 1000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

function wasmAbort(): never {
  throw new Error('wasm kernel aborted');
}
