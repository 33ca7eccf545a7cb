// Next-token selection: a seeded PRNG, the Hugging Face logits processors used for sampling, and
// the sampler that chains them. Pure functions over a Float32Array of logits [V]; no model here.
//
// Semantics follow huggingface/transformers `src/transformers/generation/logits_process.py`
// (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
// MinPLogitsWarper) in the order `GenerationMixin._get_logits_processor` applies them with
// min_tokens_to_keep = 1: repetition penalty, then (sampling only) temperature, top-k, top-p, min-p.
// Removed tokens get -Infinity, as in HF. Greedy decoding (temperature 0, HF's do_sample=False)
// applies only the repetition penalty, then takes the first maximum (torch.argmax).
//
// The random draw cannot match torch.multinomial (a different generator), so it is defined here:
// probabilities = softmax of the processed logits computed in f64; one uniform u in [0, 1) from the
// PRNG; the token is the first index (in vocabulary order) whose running sum exceeds u · total.
//
// PRNG: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c), its
// 128-bit state filled from the seed by SplitMix64 (https://prng.di.unimi.it/splitmix64.c), the
// seeding the authors recommend. All 32-bit arithmetic, deterministic on every platform.
// Uniform doubles take 53 bits from two outputs: (a >>> 5) · 2^26 + (b >>> 6), divided by 2^53.

import { ConfigError, NumericError } from '../errors.js';

// ---- PRNG ------------------------------------------------------------------------------------------

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 (Steele, Lea, Flood): a 64-bit generator used only to expand a seed into a state. */
export class SplitMix64 {
  private state: bigint;

  constructor(seed: bigint) {
    this.state = BigInt.asUintN(64, seed);
  }

  next(): bigint {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }
}

function rotl32(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** xoshiro128** 1.1: 32-bit outputs, period 2^128 − 1. */
export class Rng {
  private readonly s = new Uint32Array(4);

  /** Raw state (not all zero); use Rng.fromSeed for normal seeding. */
  constructor(state: ArrayLike<number>) {
    if (state.length !== 4) throw new ConfigError('xoshiro128** state needs 4 words', { got: String(state.length) });
    for (let i = 0; i < 4; i++) this.s[i] = state[i] >>> 0;
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) throw new ConfigError('xoshiro128** state must not be all zero');
  }

  /** The state is two SplitMix64 outputs, low word first. */
  static fromSeed(seed: number | bigint): Rng {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
      throw new ConfigError('the seed must be an integer', { field: 'seed', got: String(seed) });
    }
    const sm = new SplitMix64(BigInt(seed));
    const a = sm.next();
    const b = sm.next();
    const words = [Number(a & 0xffffffffn), Number(a >> 32n), Number(b & 0xffffffffn), Number(b >> 32n)];
    // SplitMix64 never yields two zero outputs in a row, so the state is never all zero.
    return new Rng(words);
  }

  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl32(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl32(s[3], 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const a = this.nextU32() >>> 5;
    const b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

// ---- logits processors (in place on logits[V]) -----------------------------------------------------

/**
 * HF RepetitionPenaltyLogitsProcessor: every token id present in `previousIds` (prompt and
 * generated so far, each counted once) has its logit divided by `penalty` when positive and
 * multiplied by it when negative. penalty 1 is a no-op; > 1 discourages repetition.
 */
export function applyRepetitionPenalty(logits: Float32Array, previousIds: ArrayLike<number>, penalty: number): void {
  if (penalty === 1) return;
  const seen = new Set<number>();
  for (let i = 0; i < previousIds.length; i++) {
    const id = previousIds[i];
    if (id < 0 || id >= logits.length || seen.has(id)) continue;
    seen.add(id);
    const x = logits[id];
    logits[id] = x < 0 ? x * penalty : x / penalty;
  }
}

/** HF TemperatureLogitsWarper: logits / temperature (temperature > 0). */
export function applyTemperature(logits: Float32Array, temperature: number): void {
  if (temperature === 1) return;
  for (let i = 0; i < logits.length; i++) logits[i] = logits[i] / temperature;
}

/**
 * HF TopKLogitsWarper: remove every logit strictly below the k-th largest value, so ties with the
 * k-th value are all kept. k >= V is a no-op.
 */
export function applyTopK(logits: Float32Array, k: number): void {
  if (k <= 0 || k >= logits.length) return;
  const kth = kthLargest(logits, k);
  for (let i = 0; i < logits.length; i++) if (logits[i] < kth) logits[i] = -Infinity;
}

/**
 * HF TopPLogitsWarper: sort ascending, cumulative softmax; remove the tokens whose cumulative
 * probability is <= 1 − p, always keeping the largest one. Among equal logits the lower id comes
 * first in the ascending order, so it is removed first (torch leaves that order unspecified).
 */
export function applyTopP(logits: Float32Array, p: number): void {
  if (p >= 1) return;
  const order = finiteIdsAscending(logits);
  const probs = softmaxOf(logits, order);
  const threshold = 1 - p;
  let cumulative = 0;
  // The last (largest) entry is always kept (min_tokens_to_keep = 1).
  for (let j = 0; j < order.length - 1; j++) {
    cumulative += probs[j];
    if (cumulative <= threshold) logits[order[j]] = -Infinity;
    else break;
  }
}

/**
 * HF MinPLogitsWarper: remove tokens whose probability is below p · (largest probability), i.e.
 * logit < max + ln(p); the most likely token is always kept.
 */
export function applyMinP(logits: Float32Array, p: number): void {
  if (p <= 0) return;
  const ids = finiteIdsAscending(logits);
  if (ids.length === 0) return;
  const probs = softmaxOf(logits, ids);
  const top = probs[probs.length - 1];
  const cut = p * top;
  for (let j = 0; j < ids.length - 1; j++) if (probs[j] < cut) logits[ids[j]] = -Infinity;
}

/** Index of the first maximum (torch.argmax); NaN logits are never chosen. */
export function argmax(logits: Float32Array): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (x > bestValue || (best < 0 && x === -Infinity)) {
      best = i;
      bestValue = x;
    }
  }
  if (best < 0) throw new NumericError('cannot pick a token: every logit is NaN', { field: 'logits' });
  return best;
}

/**
 * Draw one token from softmax(logits) (f64) with the uniform `u` in [0, 1): the first id whose
 * running probability sum exceeds u · total. -Infinity logits have probability 0 and are never drawn.
 */
export function drawFromLogits(logits: Float32Array, u: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  if (max === -Infinity) return argmax(logits);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += Math.exp(logits[i] - max);
  const target = u * total;
  let running = 0;
  let last = -1;
  for (let i = 0; i < logits.length; i++) {
    const x = logits[i];
    if (x === -Infinity || Number.isNaN(x)) continue;
    running += Math.exp(x - max);
    last = i;
    if (running > target) return i;
  }
  // u · total can reach the sum's last bits through rounding: the last possible token.
  return last;
}

// ---- sampler ---------------------------------------------------------------------------------------

export interface SamplingOptions {
  /** 0 = greedy (HF do_sample=False). Default 0. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 0. */
  topK?: number;
  /** Nucleus sampling mass; 1 = off. Default 1. */
  topP?: number;
  /** Minimum probability relative to the top token; 0 = off. Default 0. */
  minP?: number;
  /** HF repetition penalty; 1 = off. Default 1. */
  repetitionPenalty?: number;
  /** PRNG seed (integer). Default 0. */
  seed?: number;
}

export interface SamplingConfig {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly seed: number;
}

function checkRange(field: string, value: number, ok: boolean, expected: string): void {
  if (!Number.isFinite(value) || !ok) throw new ConfigError(`invalid sampling option ${field}`, { field, expected, got: String(value) });
}

/** Validate the options and resolve every default into a frozen config. */
export function resolveSampling(opts: SamplingOptions = {}): SamplingConfig {
  const c = {
    temperature: opts.temperature ?? 0,
    topK: opts.topK ?? 0,
    topP: opts.topP ?? 1,
    minP: opts.minP ?? 0,
    repetitionPenalty: opts.repetitionPenalty ?? 1,
    seed: opts.seed ?? 0,
  };
  checkRange('temperature', c.temperature, c.temperature >= 0, '>= 0 (0 = greedy)');
  checkRange('topK', c.topK, Number.isInteger(c.topK) && c.topK >= 0, 'an integer >= 0 (0 = off)');
  checkRange('topP', c.topP, c.topP > 0 && c.topP <= 1, 'in (0, 1] (1 = off)');
  checkRange('minP', c.minP, c.minP >= 0 && c.minP <= 1, 'in [0, 1] (0 = off)');
  checkRange('repetitionPenalty', c.repetitionPenalty, c.repetitionPenalty > 0, '> 0 (1 = off)');
  checkRange('seed', c.seed, Number.isSafeInteger(c.seed), 'an integer');
  return Object.freeze(c);
}

/** Picks tokens one at a time; owns the PRNG, so one Sampler serves one generated sequence. */
export class Sampler {
  readonly config: SamplingConfig;
  private readonly rng: Rng;

  constructor(opts: SamplingOptions | SamplingConfig = {}) {
    this.config = resolveSampling(opts);
    this.rng = Rng.fromSeed(this.config.seed);
  }

  /**
   * The next token from `logits` [V] (modified in place: pass a scratch copy if the caller needs
   * them) given every token id of the sequence so far (for the repetition penalty).
   */
  next(logits: Float32Array, previousIds: ArrayLike<number>): number {
    const c = this.config;
    applyRepetitionPenalty(logits, previousIds, c.repetitionPenalty);
    if (c.temperature === 0) return argmax(logits);
    applyTemperature(logits, c.temperature);
    applyTopK(logits, c.topK);
    applyTopP(logits, c.topP);
    applyMinP(logits, c.minP);
    return drawFromLogits(logits, this.rng.nextFloat());
  }
}

// ---- helpers ---------------------------------------------------------------------------------------

/** Ids of the finite logits (NaN and -Infinity excluded), by ascending logit, ties by ascending id. */
function finiteIdsAscending(logits: Float32Array): Int32Array {
  let n = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) n++;
  const ids = new Int32Array(n);
  n = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) ids[n++] = i;
  // Array.prototype.sort is stable (ES2019); the id tiebreak makes it explicit.
  return ids.sort((a, b) => logits[a] - logits[b] || a - b);
}

/** Softmax (f64) of logits at `ids`, in the order of `ids`, over those ids only. */
function softmaxOf(logits: Float32Array, ids: Int32Array): Float64Array {
  let max = -Infinity;
  for (let j = 0; j < ids.length; j++) max = Math.max(max, logits[ids[j]]);
  const probs = new Float64Array(ids.length);
  let total = 0;
  for (let j = 0; j < ids.length; j++) {
    probs[j] = Math.exp(logits[ids[j]] - max);
    total += probs[j];
  }
  for (let j = 0; j < ids.length; j++) probs[j] /= total;
  return probs;
}

/** The k-th largest value (1-based) of the finite logits; -Infinity when fewer than k are finite. */
function kthLargest(logits: Float32Array, k: number): number {
  const finite: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] > -Infinity) finite.push(logits[i]);
  if (finite.length < k) return -Infinity;
  finite.sort((a, b) => b - a);
  return finite[k - 1];
}
