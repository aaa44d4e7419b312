// Tokenizers: a thin adapter over @huggingface/tokenizers (the Hugging Face
// tokenizer.json: WordPiece, byte-level BPE, Unigram, with the normaliser,
// pre-tokeniser and post-processor the file declares). The library encodes text
// but does not say which word a token came from, so pre-split words are encoded
// one at a time and the post-processor's special tokens are put around them:
// word i > 0 is encoded as " " + word, exactly the piece of the sentence text
// `words.join(' ')` it stands for, so byte-level BPE gets its leading-space
// symbol (Ġ) on every word but the first, as in running text, and the first word
// gets one only when the tokenizer declares add_prefix_space. A load-time probe
// checks that this reproduces the library's own encoding of joined text, and
// falls back to encoding words bare for tokenizers whose normaliser prepends the
// space itself (SentencePiece-style `Prepend("▁")`).
import * as fs from 'fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { GrlError } from '../onnx/errors';

export interface Encoding {
  /** Including the special tokens the post-processor adds ([CLS] … [SEP], <s> … </s>). */
  ids: number[];
  /** Per token: index of the source word (encodeWords) or null for special tokens. */
  wordIds: (number | null)[];
  /** 1 for special tokens. */
  specialTokensMask: number[];
}

export interface TextTokenizer {
  readonly file: string;
  /** Model vocab + added tokens (max id + 1). */
  readonly vocabSize: number;
  /** [MASK] / <mask>, null if the tokenizer has none. */
  readonly maskTokenId: number | null;
  /** [PAD] / <pad>; 0 if none. */
  readonly padTokenId: number;
  /** Every special / added-special token id. */
  readonly specialIds: ReadonlySet<number>;
  encodeWords(words: string[], opts?: { addSpecialTokens?: boolean }): Encoding;
  encodeText(text: string, opts?: { addSpecialTokens?: boolean }): Encoding;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

/** The library's post-processor, called positionally as Tokenizer.tokenize_helper does. */
type PostProcess = (tokens: string[], pair: string[] | null, addSpecialTokens: boolean) => { tokens: string[] };

const MODEL_TYPES = ['WordPiece', 'BPE', 'Unigram'];
const SENTINEL = '\u0000grl-onnx-sequence\u0000';
/** Word cache size before it is cleared (a corpus vocabulary rarely comes near it). */
const CACHE_LIMIT = 500_000;
/** Sentences the load-time probe uses to pick how words after the first are encoded. */
const PROBES = [['hello', 'world'], ['The', 'cat', 'sat.'], ['a', 'b']];

class HfTextTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly maskTokenId: number | null;
  readonly padTokenId: number;
  readonly specialIds: ReadonlySet<number>;
  private readonly prefix: number[];
  private readonly suffix: number[];
  /** How word i > 0 is encoded: with the separating space (usual) or bare. */
  private spaceBefore = true;
  private readonly cache = new Map<string, number[]>();

  constructor(readonly file: string, private readonly tok: Tokenizer, added: AddedTokenJson[]) {
    const vocab = tok.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) if (id > maxId) maxId = id;
    for (const a of added) if (a.id > maxId) maxId = a.id;
    this.vocabSize = maxId + 1;
    const first = (...names: string[]) => names.map((n) => tok.token_to_id(n)).find((id) => id !== undefined);
    this.maskTokenId = first('[MASK]', '<mask>') ?? null;
    this.padTokenId = first('[PAD]', '<pad>') ?? 0;
    [this.prefix, this.suffix] = this.template();
    this.specialIds = new Set([...added.filter((a) => a.special).map((a) => a.id), ...this.prefix, ...this.suffix]);
    this.spaceBefore = this.pickWordJoin();
  }

  /** The special tokens the post-processor puts before and after one sequence. */
  private template(): [number[], number[]] {
    const post = (this.tok as unknown as { post_processor: PostProcess | null }).post_processor;
    if (!post) return [[], []];
    const tokens = post([SENTINEL], null, true).tokens;
    const at = tokens.indexOf(SENTINEL);
    if (at < 0 || tokens.indexOf(SENTINEL, at + 1) >= 0) throw new GrlError(`${this.file}: the post-processor does not keep a single sequence in place; cannot align words`, { file: this.file });
    const id = (t: string) => {
      const v = this.tok.token_to_id(t);
      if (v === undefined) throw new GrlError(`${this.file}: the post-processor adds '${t}', which is not in the vocabulary`, { file: this.file });
      return v;
    };
    return [tokens.slice(0, at).map(id), tokens.slice(at + 1).map(id)];
  }

  /** Word-by-word encoding must equal the library's encoding of the joined text; choose the join that does. */
  private pickWordJoin(): boolean {
    const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    const matches = (space: boolean) => {
      this.spaceBefore = space;
      this.cache.clear();
      return PROBES.every((ws) => same(this.encodeWords(ws, { addSpecialTokens: false }).ids, this.raw(ws.join(' '))));
    };
    const result = matches(true) || !matches(false);
    this.cache.clear();
    return result;
  }

  private raw(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  private wordPieces(word: string, index: number): number[] {
    const key = index === 0 || !this.spaceBefore ? word : ` ${word}`;
    let ids = this.cache.get(key);
    if (ids === undefined) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      ids = this.raw(key);
      this.cache.set(key, ids);
    }
    return ids;
  }

  encodeWords(words: string[], opts: { addSpecialTokens?: boolean } = {}): Encoding {
    const add = opts.addSpecialTokens ?? true;
    const ids: number[] = [];
    const wordIds: (number | null)[] = [];
    const mask: number[] = [];
    const special = (list: number[]) => {
      for (const id of list) {
        ids.push(id);
        wordIds.push(null);
        mask.push(1);
      }
    };
    if (add) special(this.prefix);
    for (let w = 0; w < words.length; w++) {
      for (const id of this.wordPieces(words[w], w)) {
        ids.push(id);
        wordIds.push(w);
        mask.push(this.specialIds.has(id) ? 1 : 0);
      }
    }
    if (add) special(this.suffix);
    return { ids, wordIds, specialTokensMask: mask };
  }

  encodeText(text: string, opts: { addSpecialTokens?: boolean } = {}): Encoding {
    const add = opts.addSpecialTokens ?? true;
    const body = this.raw(text);
    const ids = add ? [...this.prefix, ...body, ...this.suffix] : body;
    return {
      ids,
      wordIds: ids.map(() => null),
      specialTokensMask: ids.map((id, i) => (this.specialIds.has(id) || (add && (i < this.prefix.length || i >= ids.length - this.suffix.length)) ? 1 : 0)),
    };
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}

/** Load a Hugging Face tokenizer.json. Synchronous; a GrlError naming the file on bad input. */
export function loadTokenizer(file: string): TextTokenizer {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new GrlError(`${file}: ${err.code ? `cannot read tokenizer (${err.code})` : `not a tokenizer.json (${err.message})`}`, { file });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json) || typeof json.model !== 'object' || json.model === null) {
    throw new GrlError(`${file}: not a tokenizer.json (no "model" object; expected the Hugging Face fast-tokenizer file)`, { file });
  }
  const type = (json.model as { type?: unknown }).type;
  if (!MODEL_TYPES.includes(type as string)) {
    throw new GrlError(`${file}: unsupported tokenizer model type ${JSON.stringify(type)} (supported: ${MODEL_TYPES.join(', ')})`, { file });
  }
  const added = Array.isArray(json.added_tokens) ? (json.added_tokens as AddedTokenJson[]) : [];
  let tok: Tokenizer;
  try {
    tok = new Tokenizer({ normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...json, added_tokens: added }, {});
  } catch (e) {
    throw new GrlError(`${file}: unsupported tokenizer.json (${(e as Error).message})`, { file, cause: e });
  }
  return new HfTextTokenizer(file, tok, added);
}
