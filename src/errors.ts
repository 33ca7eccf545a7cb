// Typed errors shared by every layer. The library throws these; only the CLI turns them into a
// message and an exit code. Each error names where the problem is (file, field, offset, tensor),
// what was expected and what was found, and a hint where one exists.

export interface ErrorDetails {
  /** File the problem was found in, if any. */
  file?: string;
  /** JSON field, metadata key, tensor name or other named location. */
  field?: string;
  /** Byte offset in the file, if the problem is positional. */
  offset?: number | bigint;
  /** What the reader expected to find. */
  expected?: string;
  /** What it found instead. */
  got?: string;
  /** How the user might fix it. */
  hint?: string;
  /** Underlying error, if this one wraps another. */
  cause?: unknown;
}

/** Base class: a message assembled from the details, plus the details as fields. */
export class QloraError extends Error {
  readonly file?: string;
  readonly field?: string;
  readonly offset?: number | bigint;
  readonly expected?: string;
  readonly got?: string;
  readonly hint?: string;

  constructor(summary: string, details: ErrorDetails = {}) {
    super(QloraError.compose(summary, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.file = details.file;
    this.field = details.field;
    this.offset = details.offset;
    this.expected = details.expected;
    this.got = details.got;
    this.hint = details.hint;
  }

  private static compose(summary: string, d: ErrorDetails): string {
    const where: string[] = [];
    if (d.file !== undefined) where.push(d.file);
    if (d.field !== undefined) where.push(`field ${d.field}`);
    if (d.offset !== undefined) where.push(`offset ${d.offset}`);
    let msg = where.length > 0 ? `${where.join(', ')}: ${summary}` : summary;
    if (d.expected !== undefined) msg += `; expected ${d.expected}`;
    if (d.got !== undefined) msg += `, got ${d.got}`;
    if (d.hint !== undefined) msg += ` (hint: ${d.hint})`;
    return msg;
  }
}

/** A file's bytes or structure do not follow its format (truncated, bad offsets, bad JSON...). */
export class FormatError extends QloraError {}
/** A configuration (config.json, QuantizationConfig, CLI options) is missing or contradictory. */
export class ConfigError extends QloraError {}
/** Tensor shapes or sizes do not agree with each other or with a config. */
export class ShapeError extends QloraError {}
/** Valid input that this library does not implement (a dtype, architecture, GGUF type...). */
export class UnsupportedError extends QloraError {}
/** A numeric problem in the data itself (NaN or Inf in a weight, a diverging loss...). */
export class NumericError extends QloraError {}
/** An I/O failure reading or writing a file (wraps the system error). */
export class IoError extends QloraError {}
