// Data: BERT-style masking for masked-language-model training. Each example is
// masked on its own, before batching (so padding is never a candidate), by a
// PRNG seeded from (seed, stream, example index): training uses the epoch as the
// stream, so a resumed run redraws exactly the masks of the uninterrupted one and
// every epoch sees fresh masks (dynamic masking, as RoBERTa); eval uses one fixed
// stream, so every eval scores the same masked positions and evals are comparable.
//
// Per sequence with n maskable tokens (not special, not the pad id, attention 1):
//   k = ⌊p·n⌋ + Bernoulli(p·n − ⌊p·n⌋), so E[k] = p·n exactly, then k = max(k, 1);
//   k positions drawn uniformly without replacement (a partial Fisher–Yates shuffle).
// At least one: a sequence that predicts nothing costs a forward pass and teaches
// nothing; the original BERT data pipeline (create_pretraining_data.py) takes
// max(1, round(p·n)) for the same reason. Only sequences with n < 1/p (7 tokens at
// p = 0.15) are masked above the rate; stochastic rounding keeps the rest unbiased
// (BERT's plain rounding gives 3/18 = 16.7% on an 18-token sentence).
// Each chosen position: with probability 0.8 the mask id, 0.1 a random id drawn
// uniformly from [0, vocabSize) without the special ids, 0.1 unchanged. Its label
// is the original id; every other position's label is -100.
import { GrlError } from '../onnx/errors';
import { Example, IGNORE_INDEX, Rng } from './jsonl';

export interface MaskingOptions {
  maskTokenId: number;
  /** Ids in [0, vocabSize) are candidates for the random replacement (minus the special ids). */
  vocabSize: number;
  /** Never masked and never drawn as a random replacement ([CLS], [SEP], [PAD], [MASK], [UNK], ...). */
  specialIds: Iterable<number>;
  /** Never masked either (padding written into the data). */
  padTokenId?: number;
  /** Fraction of maskable tokens to predict (default 0.15). */
  probability?: number;
  /** Of those: replaced by the mask id (default 0.8), by a random id (default 0.1); the rest are kept. */
  maskFraction?: number;
  randomFraction?: number;
  /** At least one prediction per sequence that has a maskable token (default true). */
  atLeastOne?: boolean;
  seed: number;
}

/** Stream number of eval masking: fixed, and never an epoch number of training. */
export const EVAL_STREAM = 0xffffffff;

/** One 32-bit avalanche step (murmur3's fmix32) over a running hash. */
function mix(h: number, x: number): number {
  h = Math.imul((h ^ (x >>> 0)) >>> 0, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The PRNG state for (seed, stream, index): distinct keys give unrelated streams. */
export function maskingState(seed: number, stream: number, index: number): number {
  return mix(mix(mix(0x9e3779b9, seed), stream), index);
}

export interface MaskedIds {
  ids: Int32Array;
  /** Original id at predicted positions, -100 elsewhere. */
  labels: Float64Array;
  /** Predicted positions, replaced by the mask id, by a random id, or kept. */
  masked: number;
  replacedByMask: number;
  replacedByRandom: number;
}

export class Masker {
  readonly probability: number;
  readonly maskFraction: number;
  readonly randomFraction: number;
  private readonly special: Set<number>;
  /** Special ids inside [0, vocabSize), ascending: the random draw skips them. */
  private readonly skipped: number[];

  constructor(readonly opts: MaskingOptions) {
    this.probability = opts.probability ?? 0.15;
    this.maskFraction = opts.maskFraction ?? 0.8;
    this.randomFraction = opts.randomFraction ?? 0.1;
    const { maskTokenId, vocabSize } = opts;
    if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new GrlError(`MLM masking: vocabulary size must be a positive integer (got ${vocabSize})`);
    if (!Number.isInteger(maskTokenId) || maskTokenId < 0 || maskTokenId >= vocabSize) throw new GrlError(`MLM masking: mask token id ${maskTokenId} is outside the vocabulary [0, ${vocabSize})`);
    if (!(this.probability > 0 && this.probability <= 1)) throw new GrlError(`MLM masking: probability must be in (0, 1] (got ${this.probability})`);
    const f = [this.maskFraction, this.randomFraction];
    if (!f.every((x) => x >= 0) || f[0] + f[1] > 1) throw new GrlError(`MLM masking: mask and random fractions must be ≥ 0 and sum to at most 1 (got ${f.join(', ')})`);
    this.special = new Set(opts.specialIds);
    this.special.add(maskTokenId);
    this.skipped = [...this.special].filter((s) => s >= 0 && s < vocabSize).sort((a, b) => a - b);
    if (this.randomFraction > 0 && this.skipped.length >= vocabSize) throw new GrlError(`MLM masking: every id in [0, ${vocabSize}) is special; no random replacement to draw`);
  }

  isMaskable(id: number): boolean {
    return !this.special.has(id) && id !== this.opts.padTokenId;
  }

  /** A uniform id from [0, vocabSize) without the special ids. */
  private randomId(rng: Rng): number {
    let x = Math.floor(rng.next() * (this.opts.vocabSize - this.skipped.length));
    for (const s of this.skipped) {
      if (s > x) break;
      x++;
    }
    return x;
  }

  /** Mask one sequence; `attention` (when given) excludes its 0 positions. Deterministic in (seed, stream, index). */
  maskIds(ids: ArrayLike<number>, stream: number, index: number, attention?: ArrayLike<number>): MaskedIds {
    const rng = new Rng(maskingState(this.opts.seed, stream, index));
    const out = Int32Array.from(ids);
    const labels = new Float64Array(ids.length).fill(IGNORE_INDEX);
    const candidates: number[] = [];
    for (let t = 0; t < ids.length; t++) if (this.isMaskable(ids[t]) && (!attention || attention[t] !== 0)) candidates.push(t);
    const n = candidates.length;
    const res = { ids: out, labels, masked: 0, replacedByMask: 0, replacedByRandom: 0 };
    if (!n) return res;
    const expected = this.probability * n;
    let k = Math.floor(expected);
    if (rng.next() < expected - k) k++;
    if (this.opts.atLeastOne !== false) k = Math.max(k, 1);
    k = Math.min(k, n);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(rng.next() * (n - i));
      [candidates[i], candidates[j]] = [candidates[j], candidates[i]];
      const t = candidates[i];
      labels[t] = ids[t];
      const r = rng.next();
      if (r < this.maskFraction) {
        out[t] = this.opts.maskTokenId;
        res.replacedByMask++;
      } else if (r < this.maskFraction + this.randomFraction) {
        out[t] = this.randomId(rng);
        res.replacedByRandom++;
      }
    }
    res.masked = k;
    return res;
  }

  /**
   * The example with `inputKey` masked and the labels under every key of `labelKeys`
   * (the MLM heads). The input example is not changed.
   */
  maskExample(e: Example, stream: number, index: number, inputKey: string, labelKeys: string[]): Example {
    const ids = e.inputs[inputKey];
    if (!ids) throw new GrlError(`MLM masking: line ${e.line} has no '${inputKey}'`);
    const m = this.maskIds(ids, stream, index, e.inputs.attention_mask);
    const labels = { ...e.labels };
    for (const k of labelKeys) labels[k] = m.labels;
    return { ...e, inputs: { ...e.inputs, [inputKey]: m.ids }, labels };
  }
}
