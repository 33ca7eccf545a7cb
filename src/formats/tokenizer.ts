// Text tokenizer of a model: tokenizer.json through @huggingface/tokenizers, tokenizer_config.json
// for the special tokens, and the chat template through @huggingface/jinja (FORMATS.md §13).
// What it is not: a tokenizer implementation (the library's BPE reproduces the Rust `tokenizers`
// crate, checked against llama.cpp's golden ids in the tests), nor a GGUF reader (formats/gguf
// builds a tokenizer.json object from GGUF metadata and calls `fromObjects`).

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { ConfigError, FormatError, IoError, QloraError, UnsupportedError } from '../errors.js';
import { isJsonObject, parseJsonStrict } from './json-strict.js';

export const TOKENIZER_JSON = 'tokenizer.json';
export const TOKENIZER_CONFIG_JSON = 'tokenizer_config.json';
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/** tokenizer_class values whose special tokens follow add_bos_token / add_eos_token. */
const LLAMA_TOKENIZER_CLASSES = /^(Code)?LlamaTokenizer(Fast)?$/;

export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the assistant header so the model answers next. */
  addGenerationPrompt?: boolean;
  /** Tool descriptions, passed to templates that use `tools`. */
  tools?: readonly unknown[];
}

/** Incremental detokenizer: push ids one at a time, get the new text (FORMATS.md §13.2). */
export interface StreamDecoder {
  /** Adds one id; returns the text it completes ('' while a multi-byte character is unfinished). */
  push(id: number): string;
  /** Text still held back (an unfinished byte sequence decodes to U+FFFD, as a full decode would). */
  flush(): string;
}

/** Where a tokenizer came from, for error messages. */
interface Origin {
  tokenizerFile: string;
  configFile: string;
  templateFile: string;
}

/** `"<s>"` or the older `{"__type": "AddedToken", "content": "<s>", ...}` (FORMATS.md §13.4). */
function specialTokenText(v: unknown, file: string, field: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (isJsonObject(v) && typeof v.content === 'string') return v.content;
  throw new FormatError('special token must be a string or an AddedToken object', { file, field, got: JSON.stringify(v) });
}

/** The chat template named `default` (or the only one) from tokenizer_config's `chat_template`. */
function templateFromConfig(v: unknown, file: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  const named = new Map<string, string>();
  if (Array.isArray(v)) {
    for (const t of v) {
      if (!isJsonObject(t) || typeof t.name !== 'string' || typeof t.template !== 'string') {
        throw new FormatError('chat_template list entries must be {name, template}', { file, field: 'chat_template', got: JSON.stringify(t).slice(0, 80) });
      }
      named.set(t.name, t.template);
    }
  } else if (isJsonObject(v)) {
    for (const [name, t] of Object.entries(v)) if (typeof t === 'string') named.set(name, t);
  } else {
    throw new FormatError('chat_template must be a string or a list of {name, template}', { file, field: 'chat_template' });
  }
  return named.get('default') ?? (named.size === 1 ? [...named.values()][0] : null);
}

/**
 * Token ids in tokenizer.json (model.vocab values, added_tokens ids) must be integers below the
 * number of entries: the library sizes its id -> token table by the largest id and walks it
 * whole (`get_vocab`), so one id of 2e9 in a 512-token vocabulary hangs it, and a fractional id
 * reaches `decode`, which refuses it with an untyped error.
 */
function checkTokenIds(tokenizerJson: Record<string, unknown>, model: Record<string, unknown>, file: string): void {
  const added = tokenizerJson.added_tokens;
  if (added !== undefined && added !== null && !Array.isArray(added)) {
    throw new FormatError('added_tokens is not a list', { file, field: 'added_tokens', got: typeof added });
  }
  const vocab = model.vocab;
  const vocabEntries = isJsonObject(vocab) ? Object.keys(vocab).length : Array.isArray(vocab) ? vocab.length : 0;
  const limit = vocabEntries + (added?.length ?? 0);
  const check = (id: unknown, field: string): void => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= limit) {
      throw new FormatError('token id is not an integer in [0, number of tokens)', { file, field, expected: `0 <= id < ${limit}`, got: JSON.stringify(id) });
    }
  };
  // Unigram vocabularies are lists of [piece, score]: their ids are the positions.
  if (isJsonObject(vocab)) for (const [token, id] of Object.entries(vocab)) check(id, `model.vocab.${token}`);
  added?.forEach((t: unknown, i: number) => {
    if (!isJsonObject(t) || typeof t.content !== 'string') throw new FormatError('added token is not {id, content, ...}', { file, field: `added_tokens[${i}]`, got: JSON.stringify(t)?.slice(0, 80) });
    check(t.id, `added_tokens[${i}].id`);
  });
}

function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new IoError(`cannot read ${what}`, { file, cause });
  }
  return parseJsonStrict(text, file, what);
}

export class TextTokenizer {
  /** Number of ids (largest id + 1, added tokens included). */
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly unkToken: string | null;
  readonly padToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly padTokenId: number | null;
  readonly unkTokenId: number | null;
  /** Jinja source of the chat template, or null. */
  readonly chatTemplate: string | null;
  /** Ids of added tokens marked special (skipped by decode with skipSpecialTokens). */
  readonly specialTokenIds: ReadonlySet<number>;

  private readonly tok: Tokenizer;
  private readonly cleanUpSpaces: boolean;
  /**
   * Llama tokenizer classes rebuild their post-processor from tokenizer_config's add_bos_token /
   * add_eos_token (transformers `LlamaTokenizerFast.update_post_processor`); the JS library reads
   * only tokenizer.json, so those flags are applied here. null: use tokenizer.json's post-processor.
   */
  private readonly llamaSpecials: { addBos: boolean; addEos: boolean } | null;
  private compiledTemplate: Template | null = null;

  private constructor(tokenizerJson: Record<string, unknown>, config: Record<string, unknown>, chatTemplate: string | null, private readonly origin: Origin) {
    try {
      this.tok = new Tokenizer(tokenizerJson, config);
    } catch (cause) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      throw new UnsupportedError('tokenizer.json could not be loaded', { file: origin.tokenizerFile, got: msg, cause });
    }
    // The JS library defaults this to true; transformers writes it explicitly and Llama uses false.
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    const special = new Set<number>();
    for (const [id, t] of this.tok.get_added_tokens_decoder()) if (t.special) special.add(id);
    this.specialTokenIds = special;

    const cfgFile = origin.configFile;
    this.bosToken = specialTokenText(config.bos_token, cfgFile, 'bos_token');
    this.eosToken = specialTokenText(config.eos_token, cfgFile, 'eos_token');
    this.unkToken = specialTokenText(config.unk_token, cfgFile, 'unk_token');
    this.padToken = specialTokenText(config.pad_token, cfgFile, 'pad_token');
    const idOf = (text: string | null, field: string): number | null => {
      if (text === null) return null;
      const id = this.tok.token_to_id(text);
      if (id === undefined) {
        throw new FormatError('special token is not in the vocabulary', { file: cfgFile, field, got: JSON.stringify(text) });
      }
      return id;
    };
    this.bosTokenId = idOf(this.bosToken, 'bos_token');
    const eos = idOf(this.eosToken, 'eos_token');
    this.eosTokenIds = Object.freeze(eos === null ? [] : [eos]);
    this.padTokenId = idOf(this.padToken, 'pad_token');
    this.unkTokenId = idOf(this.unkToken, 'unk_token');
    this.chatTemplate = chatTemplate;
    const addBos = config.add_bos_token;
    const addEos = config.add_eos_token;
    const llamaClass = typeof config.tokenizer_class === 'string' && LLAMA_TOKENIZER_CLASSES.test(config.tokenizer_class);
    this.llamaSpecials =
      llamaClass && (typeof addBos === 'boolean' || typeof addEos === 'boolean')
        ? { addBos: addBos !== false, addEos: addEos === true }
        : null;
  }

  /**
   * Loads `tokenizer.json` (required), `tokenizer_config.json` (optional) and the chat template
   * (`chat_template.jinja` first, then tokenizer_config's `chat_template`) from a model folder.
   */
  static fromFolder(dir: string): TextTokenizer {
    const root = resolve(dir);
    const origin: Origin = {
      tokenizerFile: join(root, TOKENIZER_JSON),
      configFile: join(root, TOKENIZER_CONFIG_JSON),
      templateFile: join(root, CHAT_TEMPLATE_FILE),
    };
    if (!existsSync(origin.tokenizerFile)) {
      throw new IoError('model folder has no tokenizer.json', {
        file: origin.tokenizerFile,
        hint: 'only fast-tokenizer folders (tokenizer.json) are supported; SentencePiece tokenizer.model alone is not',
      });
    }
    const tokenizerJson = readJsonFile(origin.tokenizerFile, 'tokenizer.json');
    const config = existsSync(origin.configFile) ? readJsonFile(origin.configFile, 'tokenizer_config.json') : null;
    let template: string | null = null;
    if (existsSync(origin.templateFile)) {
      try {
        template = readFileSync(origin.templateFile, 'utf8');
      } catch (cause) {
        throw new IoError('cannot read chat template', { file: origin.templateFile, cause });
      }
    }
    return TextTokenizer.build(tokenizerJson, config, template, origin);
  }

  /**
   * From already-parsed objects (e.g. a tokenizer.json built from GGUF metadata). A config's
   * `chat_template` is used unless `chatTemplate` is given.
   */
  static fromObjects(tokenizerJson: object, tokenizerConfig: object | null, chatTemplate: string | null = null): TextTokenizer {
    const origin: Origin = { tokenizerFile: 'tokenizer.json (object)', configFile: 'tokenizer_config (object)', templateFile: 'chat template' };
    return TextTokenizer.build(tokenizerJson, tokenizerConfig, chatTemplate, origin);
  }

  private static build(tokenizerJson: unknown, config: unknown, template: string | null, origin: Origin): TextTokenizer {
    if (!isJsonObject(tokenizerJson) || !isJsonObject(tokenizerJson.model)) {
      throw new FormatError('tokenizer.json has no model object', { file: origin.tokenizerFile, field: 'model' });
    }
    if (config !== null && !isJsonObject(config)) {
      throw new FormatError('tokenizer_config.json is not a JSON object', { file: origin.configFile });
    }
    checkTokenIds(tokenizerJson, tokenizerJson.model, origin.tokenizerFile);
    const cfg = config ?? {};
    const chatTemplate = template ?? templateFromConfig(cfg.chat_template, origin.configFile);
    return new TextTokenizer(tokenizerJson, cfg, chatTemplate, origin);
  }

  /**
   * Runs a library call; an untyped error from it comes from a tokenizer.json the library
   * accepted at load but cannot apply (a malformed post-processor, decoder...), so it is
   * reported as such.
   */
  private library<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (cause) {
      if (cause instanceof QloraError) throw cause;
      const msg = cause instanceof Error ? cause.message : String(cause);
      throw new UnsupportedError(`tokenizer.json could not be used to ${what}`, { file: this.origin.tokenizerFile, got: msg, cause });
    }
  }

  /** Token ids of `text`; special tokens (BOS...) per tokenizer.json's post-processor unless disabled. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const addSpecial = opts.addSpecialTokens ?? true;
    const s = this.llamaSpecials;
    if (!addSpecial || s === null) return this.library('encode', () => this.tok.encode(text, { add_special_tokens: addSpecial }).ids);
    const ids = this.library('encode', () => this.tok.encode(text, { add_special_tokens: false }).ids);
    if (s.addBos && this.bosTokenId !== null) ids.unshift(this.bosTokenId);
    if (s.addEos && this.eosTokenIds.length > 0) ids.push(this.eosTokenIds[0]);
    return ids;
  }

  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.library('decode', () => this.tok.decode(ids as number[], {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    }));
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** True when `encode(text)` puts the BOS id first by default (Llama), false otherwise (GPT-2). */
  get addsBosToken(): boolean {
    return this.bosTokenId !== null && this.encode('')[0] === this.bosTokenId;
  }

  private template(): Template {
    if (this.compiledTemplate !== null) return this.compiledTemplate;
    if (this.chatTemplate === null) {
      throw new ConfigError('tokenizer has no chat template', {
        file: this.origin.configFile,
        field: 'chat_template',
        hint: `add ${CHAT_TEMPLATE_FILE} to the model folder, or use a plain-text prompt format`,
      });
    }
    try {
      this.compiledTemplate = new Template(this.chatTemplate);
    } catch (cause) {
      throw new FormatError('chat template does not parse', {
        file: this.origin.templateFile,
        field: 'chat_template',
        got: cause instanceof Error ? cause.message : String(cause),
        cause,
      });
    }
    return this.compiledTemplate;
  }

  /** The chat template rendered to text (FORMATS.md §13.5: Jinja with trim/lstrip blocks). */
  renderChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    const vars: Record<string, unknown> = {
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
      unk_token: this.unkToken ?? '',
      pad_token: this.padToken ?? '',
    };
    if (opts.tools !== undefined) vars.tools = opts.tools;
    const template = this.template();
    try {
      return template.render(vars);
    } catch (cause) {
      // raise_exception(...) in the template, or a runtime error on these messages.
      throw new ConfigError('chat template refused the messages', {
        field: 'messages',
        got: cause instanceof Error ? cause.message : String(cause),
        cause,
      });
    }
  }

  /**
   * Renders the chat template and encodes the text without adding special tokens: the template
   * writes BOS itself, and special-token strings in it are matched as added tokens (§13.5).
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    return this.encode(this.renderChatTemplate(messages, opts), { addSpecialTokens: false });
  }

  /**
   * Incremental decoding as differences of decodes over a sliding window (as text-generation-
   * inference does): the text of ids[prefix..] minus that of ids[prefix..read). Both decodes start
   * at the same id, so the decoder's one-leading-space strip and byte fallback act on both alike,
   * and a delta is released only once it no longer ends in U+FFFD (an unfinished UTF-8 sequence).
   * `context`: ids already shown (a prompt's last few): the deltas continue their text, so the first
   * new token keeps its leading space (decoded alone, the strip would take it).
   */
  createStreamDecoder(opts: { skipSpecialTokens?: boolean; context?: readonly number[] } = {}): StreamDecoder {
    const ids: number[] = [...(opts.context ?? [])];
    let prefixStart = 0;
    let readStart = ids.length;
    const decodeOpts = { skipSpecialTokens: opts.skipSpecialTokens };
    const decodeFrom = (from: number, to: number): string => this.decode(ids.slice(from, to), decodeOpts);
    return {
      push: (id: number): string => {
        ids.push(id);
        const prefixText = decodeFrom(prefixStart, readStart);
        const fullText = decodeFrom(prefixStart, ids.length);
        if (fullText.length <= prefixText.length || fullText.endsWith('\uFFFD')) return '';
        const delta = fullText.slice(prefixText.length);
        prefixStart = readStart;
        readStart = ids.length;
        return delta;
      },
      flush: (): string => {
        const prefixText = decodeFrom(prefixStart, readStart);
        const fullText = decodeFrom(prefixStart, ids.length);
        prefixStart = readStart = ids.length;
        return fullText.slice(prefixText.length);
      },
    };
  }
}
