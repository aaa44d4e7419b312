// BERT masking (src/data/masking.ts): the rates over many tokens within binomial
// tolerance, the exact per-sequence count rule, specials/pads/attention-0 never
// touched, uniform random replacements that skip the special ids, determinism in
// (seed, stream, index), and one-line errors for a bad configuration.
import { EVAL_STREAM, Masker, maskingState } from '../../src/data/masking';
import { IGNORE_INDEX, Rng } from '../../src/data/jsonl';
import { GrlError } from '../../src/onnx/errors';

const PAD = 0;
const CLS = 101;
const SEP = 102;
const MASK = 103;
const UNK = 100;
const SPECIAL = [PAD, UNK, CLS, SEP, MASK];
const V = 1000;

/** [CLS] w… [SEP] with `n` ordinary ids (never special), plus an [UNK] in the middle when asked. */
function sentence(rng: Rng, n: number, unk = false): number[] {
  const words = Array.from({ length: n }, () => {
    let x: number;
    do x = Math.floor(rng.next() * V);
    while (SPECIAL.includes(x));
    return x;
  });
  if (unk) words.splice(n >> 1, 0, UNK);
  return [CLS, ...words, SEP];
}

const masker = (extra: Partial<ConstructorParameters<typeof Masker>[0]> = {}) => new Masker({ maskTokenId: MASK, vocabSize: V, specialIds: SPECIAL, padTokenId: PAD, seed: 7, ...extra });

/** |observed − p·n| ≤ 4.5 binomial standard deviations. */
function expectRate(hits: number, n: number, p: number): void {
  const sd = Math.sqrt(n * p * (1 - p));
  const dev = Math.abs(hits - p * n);
  if (dev > 4.5 * sd) throw new Error(`rate ${hits}/${n} = ${hits / n}, expected ${p} ± ${(4.5 * sd) / n}`);
}

describe('Masker rates over many tokens', () => {
  // 20,000 sentences of 7–40 ordinary tokens: p·n ≥ 1.05, so the at-least-one rule never lifts a count.
  const m = masker();
  const rng = new Rng(12345);
  let maskable = 0;
  let masked = 0;
  let toMask = 0;
  let toRandom = 0;
  let kept = 0;
  let violations = 0;
  const randomCounts = new Map<number, number>();
  beforeAll(() => {
    for (let i = 0; i < 20000; i++) {
      const ids = sentence(rng, 7 + Math.floor(rng.next() * 34), i % 3 === 0);
      const r = m.maskIds(ids, 0, i);
      maskable += ids.filter((x) => !SPECIAL.includes(x)).length;
      masked += r.masked;
      for (let t = 0; t < ids.length; t++) {
        if (r.labels[t] === IGNORE_INDEX) {
          if (r.ids[t] !== ids[t]) violations++;
          continue;
        }
        if (r.labels[t] !== ids[t]) violations++;
        if (r.ids[t] === MASK) toMask++;
        else if (r.ids[t] === ids[t]) kept++;
        else {
          toRandom++;
          randomCounts.set(r.ids[t], (randomCounts.get(r.ids[t]) ?? 0) + 1);
        }
      }
      if (r.replacedByMask + r.replacedByRandom > r.masked) violations++;
    }
  });

  it('changes ids only where it labels, and labels with the original id', () => expect(violations).toBe(0));

  it('predicts 15% of the maskable tokens', () => {
    expect(maskable).toBeGreaterThan(400000);
    expectRate(masked, maskable, 0.15);
  });

  it('replaces 80% by [MASK], 10% by a random id, keeps 10% (a random draw equal to the original counts as kept)', () => {
    expect(toMask + toRandom + kept).toBe(masked);
    expectRate(toMask, masked, 0.8);
    // A random replacement hits the original id with probability 1/995.
    expectRate(toRandom, masked, 0.1 * (1 - 1 / (V - SPECIAL.length)));
    expectRate(kept, masked, 0.1 + 0.1 / (V - SPECIAL.length));
  });

  it('draws random replacements uniformly over the non-special ids', () => {
    for (const s of SPECIAL) expect(randomCounts.has(s)).toBe(false);
    for (const id of randomCounts.keys()) expect(id >= 0 && id < V).toBe(true);
    // Ten bins of 100 ids: each holds its share of the 995 non-special ids (bin 1 has 4 specials, bin 0 one).
    const bins = new Array(10).fill(0);
    for (const [id, c] of randomCounts) bins[Math.floor(id / 100)] += c;
    const allowed = bins.map((_, b) => 100 - SPECIAL.filter((s) => Math.floor(s / 100) === b).length);
    let chi2 = 0;
    bins.forEach((c, b) => {
      const e = (toRandom * allowed[b]) / (V - SPECIAL.length);
      chi2 += (c - e) ** 2 / e;
    });
    // χ²(9): P(χ² > 27.9) = 0.001.
    expect(chi2).toBeLessThan(27.9);
  });
});

describe('Masker per sequence', () => {
  it('takes exactly p·n positions when p·n is whole, and ⌊p·n⌋ or ⌈p·n⌉ (half each at .5) otherwise', () => {
    const m = masker();
    const rng = new Rng(3);
    const ids20 = sentence(rng, 20);
    for (let i = 0; i < 200; i++) expect(m.maskIds(ids20, 0, i).masked).toBe(3);
    const ids10 = sentence(rng, 10);
    const ks = Array.from({ length: 4000 }, (_, i) => m.maskIds(ids10, 0, i).masked);
    expect(new Set(ks)).toEqual(new Set([1, 2]));
    expectRate(ks.filter((k) => k === 2).length, ks.length, 0.5);
  });

  it('predicts at least one token of every sequence that has one, none of a sequence without', () => {
    const m = masker();
    const rng = new Rng(4);
    for (let n = 1; n <= 6; n++) for (let i = 0; i < 50; i++) expect(m.maskIds(sentence(rng, n), 1, i).masked).toBe(1);
    const none = m.maskIds([CLS, UNK, PAD, SEP], 0, 0);
    expect(none.masked).toBe(0);
    expect(Array.from(none.labels)).toEqual([IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]);
    // atLeastOne: false gives plain stochastic rounding: short sequences are often left whole.
    const loose = masker({ atLeastOne: false });
    const zero = Array.from({ length: 400 }, (_, i) => loose.maskIds(sentence(rng, 3), 0, i).masked).filter((k) => k === 0).length;
    expectRate(zero, 400, 0.55);
  });

  it('never touches specials, the pad id, or attention-0 positions', () => {
    const m = masker({ probability: 1, maskFraction: 0, randomFraction: 1 });
    const ids = [CLS, 5, PAD, 6, UNK, 7, MASK, 8, SEP, 9, 10];
    const attention = [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    for (let i = 0; i < 100; i++) {
      const r = m.maskIds(ids, 0, i, attention);
      expect(r.masked).toBe(4);
      ids.forEach((x, t) => {
        const chosen = [1, 3, 5, 7].includes(t);
        expect(r.labels[t]).toBe(chosen ? x : IGNORE_INDEX);
        if (!chosen) expect(r.ids[t]).toBe(x);
        else expect(SPECIAL.includes(r.ids[t])).toBe(false);
      });
    }
  });

  it('skips every special id in the random draw, also at the edges of the vocabulary', () => {
    const m = new Masker({ maskTokenId: 3, vocabSize: 10, specialIds: [0, 9], probability: 1, maskFraction: 0, randomFraction: 1, seed: 1 });
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 7000; i++) for (const x of m.maskIds([1, 2, 4, 5], 0, i).ids) counts[x]++;
    expect([counts[0], counts[3], counts[9]]).toEqual([0, 0, 0]);
    // 28,000 draws over the 7 ids {1, 2, 4, 5, 6, 7, 8}.
    for (const id of [1, 2, 4, 5, 6, 7, 8]) expectRate(counts[id], 28000, 1 / 7);
  });

  it('is a pure function of (seed, stream, index)', () => {
    const rng = new Rng(9);
    const ids = sentence(rng, 30);
    const a = masker().maskIds(ids, 2, 17);
    const b = masker().maskIds(ids, 2, 17);
    expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
    expect(Array.from(b.labels)).toEqual(Array.from(a.labels));
    const pattern = (r: { labels: Float64Array }) => Array.from(r.labels, (x) => (x === IGNORE_INDEX ? 0 : 1)).join('');
    const others = [masker().maskIds(ids, 3, 17), masker().maskIds(ids, 2, 18), masker({ seed: 8 }).maskIds(ids, 2, 17), masker().maskIds(ids, EVAL_STREAM, 17)];
    // Four unrelated draws of 4–5 positions out of 30 all matching would be a broken key.
    expect(others.filter((o) => pattern(o) === pattern(a)).length).toBeLessThan(2);
    const states = new Set<number>();
    for (let s = 0; s < 20; s++) for (let st = 0; st < 20; st++) for (let i = 0; i < 20; i++) states.add(maskingState(s, st, i));
    expect(states.size).toBe(8000);
  });

  it('leaves the input example alone and labels every MLM head', () => {
    const ids = Int32Array.from([CLS, 5, 6, 7, 8, 9, 10, SEP]);
    const e = { line: 3, length: 8, inputs: { input_ids: ids, attention_mask: new Int32Array(8).fill(1) }, labels: { pos: 2 } };
    const out = masker().maskExample(e, 0, 0, 'input_ids', ['mlm', 'mlm2']);
    expect(Array.from(e.inputs.input_ids)).toEqual([CLS, 5, 6, 7, 8, 9, 10, SEP]);
    expect(out.labels.pos).toBe(2);
    expect(out.labels.mlm).toBe(out.labels.mlm2);
    const labels = out.labels.mlm as Float64Array;
    expect(labels.filter((x) => x !== IGNORE_INDEX).length).toBe(1);
    expect(out.inputs.attention_mask).toBe(e.inputs.attention_mask);
  });
});

describe('Masker configuration errors', () => {
  it.each([
    [{ maskTokenId: 1000 }, /mask token id 1000 is outside the vocabulary \[0, 1000\)/],
    [{ probability: 0 }, /probability must be in \(0, 1\]/],
    [{ maskFraction: 0.9, randomFraction: 0.2 }, /sum to at most 1/],
    [{ vocabSize: 0 }, /vocabulary size must be a positive integer/],
  ])('%j', (extra, re) => {
    expect(() => masker(extra)).toThrow(GrlError);
    expect(() => masker(extra)).toThrow(re);
  });
  it('a vocabulary of specials only has nothing to draw', () => {
    expect(() => new Masker({ maskTokenId: 1, vocabSize: 2, specialIds: [0], seed: 0 })).toThrow(/every id in \[0, 2\) is special/);
  });
});
