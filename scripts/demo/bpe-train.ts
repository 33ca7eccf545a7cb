// A SentencePiece-style BPE tokenizer trained on a text, written as the tokenizer.json layout of
// Llama's fast tokenizer (FORMATS.md §9): <unk> <s> </s>, the 256 byte-fallback pieces <0x00>..<0xFF>,
// every character of the text, then one piece per merge. Spaces become "▁" and the text gets a
// leading "▁" (the normalizer); merges are learned inside "▁word" pieces only, so no merge spans a
// word boundary and encoding with the merges in rank order reproduces the training segmentation.
// Deterministic: ties go to the lexicographically smallest pair. Used by the demo model's script.

const SPACE = '\u2581';
const SPECIALS = ['<unk>', '<s>', '</s>'] as const;

export interface BpeTokenizerFiles {
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
}

/** "▁word" pieces of a text and how often each occurs (the normalizer's view of it). */
function wordCounts(text: string): Map<string, number> {
  const normalized = SPACE + text.replaceAll(' ', SPACE);
  const counts = new Map<string, number>();
  for (const w of normalized.split(new RegExp(`(?=${SPACE})`, 'u'))) if (w.length > 0) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

/** Trains `vocabSize` pieces on `text` and returns tokenizer.json + tokenizer_config.json objects. */
export function trainBpeTokenizer(text: string, vocabSize: number, modelMaxLength: number): BpeTokenizerFiles {
  const counts = wordCounts(text);
  const charFreq = new Map<string, number>();
  for (const [w, n] of counts) for (const c of w) charFreq.set(c, (charFreq.get(c) ?? 0) + n);
  const vocab: string[] = [...SPECIALS];
  for (let b = 0; b < 256; b++) vocab.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const chars = [...charFreq.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c]) => c);
  if (vocab.length + chars.length > vocabSize) throw new RangeError(`vocabulary of ${vocabSize} cannot hold ${chars.length} characters and ${vocab.length} special and byte pieces`);
  vocab.push(...chars);
  const words = [...counts.entries()].map(([w, n]) => ({ symbols: Array.from(w), n }));
  const merges: [string, string][] = [];
  const known = new Set(vocab);
  while (vocab.length < vocabSize) {
    const pairs = new Map<string, number>();
    for (const { symbols, n } of words) for (let i = 0; i + 1 < symbols.length; i++) {
      const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
      pairs.set(key, (pairs.get(key) ?? 0) + n);
    }
    let best: string | null = null;
    let bestN = 1;
    for (const [key, n] of pairs) if (n > bestN || (n === bestN && best !== null && key < best)) { best = key; bestN = n; }
    if (best === null) break; // every pair occurs once or less: nothing worth a piece
    const [a, b] = best.split('\u0000') as [string, string];
    const merged = a + b;
    merges.push([a, b]);
    if (!known.has(merged)) { vocab.push(merged); known.add(merged); }
    for (const w of words) {
      const s = w.symbols;
      const out: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { out.push(merged); i++; } else out.push(s[i]);
      }
      w.symbols = out;
    }
  }
  const special = (id: number): Record<string, unknown> => ({ id, content: SPECIALS[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((_, id) => special(id)),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: SPACE }, { type: 'Replace', pattern: { String: ' ' }, content: SPACE }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: SPACE }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
      vocab: Object.fromEntries(vocab.map((piece, id) => [piece, id])),
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null,
    clean_up_tokenization_spaces: false, legacy: true, model_max_length: modelMaxLength, tokenizer_class: 'LlamaTokenizerFast', sp_model_kwargs: {},
  };
  return { tokenizerJson, tokenizerConfig };
}
