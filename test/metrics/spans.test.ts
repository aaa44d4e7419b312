// Entity spans counted as seqeval's default (conlleval) mode: hand-derived chunks
// for BIO/IOB1/BIOES sequences, sentence boundaries and ignored positions.
import { HeadScorer, SpanCounts, chunks, isSpanLabelSet, parseTag, scoreRows } from '../../src/metrics';
import { scorePredictions } from '../../src/probe/probe';

const tags = (s: string) => s.split(' ').map(parseTag);
const spans = (s: string) => chunks(tags(s)).map((c) => `${c.type}:${c.start}-${c.end}`);

describe('chunks (seqeval get_entities, conlleval rules)', () => {
  it('IOB2', () => {
    expect(spans('B-PER I-PER O B-LOC')).toEqual(['PER:0-1', 'LOC:3-3']);
  });
  it('B-X I-Y: the type change ends PER and starts LOC', () => {
    expect(spans('B-PER I-LOC')).toEqual(['PER:0-0', 'LOC:1-1']);
    expect(spans('B-PER I-PER I-LOC I-LOC O')).toEqual(['PER:0-1', 'LOC:2-3']);
  });
  it('I- without B- starts a chunk (after O, at the start, after another type)', () => {
    expect(spans('O I-PER I-PER O')).toEqual(['PER:1-2']);
    expect(spans('I-PER O')).toEqual(['PER:0-0']);
    expect(spans('I-ORG I-PER')).toEqual(['ORG:0-0', 'PER:1-1']);
  });
  it('IOB1: B- after I- of the same type starts a new chunk', () => {
    expect(spans('I-PER I-PER B-PER O')).toEqual(['PER:0-1', 'PER:2-2']);
  });
  it('BIOES: E- and S- close chunks; I-/E- after E-/S- start one', () => {
    expect(spans('B-LOC I-LOC E-LOC S-PER E-PER')).toEqual(['LOC:0-2', 'PER:3-3', 'PER:4-4']);
    expect(spans('B-LOC E-LOC I-LOC')).toEqual(['LOC:0-1', 'LOC:2-2']);
    expect(spans('S-LOC S-LOC')).toEqual(['LOC:0-0', 'LOC:1-1']);
    expect(spans('O E-LOC O')).toEqual(['LOC:1-1']);
  });
  it('a chunk running to the end of the sequence is closed there', () => {
    expect(spans('O B-PER I-PER')).toEqual(['PER:1-2']);
  });
});

describe('SpanCounts: micro P/R/F1 and per type', () => {
  it("seqeval's README example: P = R = F1 = 0.5", () => {
    // gold MISC 3-5, PER 0-1; pred MISC 2-5 (wrong start), PER 0-1: 1 correct of 2 and 2.
    const c = new SpanCounts();
    c.add(tags('O O O B-MISC I-MISC I-MISC O'), tags('O O B-MISC I-MISC I-MISC I-MISC O'));
    c.add(tags('B-PER I-PER O'), tags('B-PER I-PER O'));
    const r = c.report();
    expect([r.precision, r.recall, r.f1, r.gold, r.predicted, r.correct]).toEqual([0.5, 0.5, 0.5, 2, 2, 1]);
    expect(r.types.map((t) => [t.type, t.precision, t.recall, t.f1, t.support])).toEqual([['MISC', 0, 0, 0, 1], ['PER', 1, 1, 1, 1]]);
  });

  it('chunks never cross examples', () => {
    // Joined, O B-PER | I-PER O would be one chunk PER 1-2; per example it is two
    // chunks (PER 1-1 in the first, PER 0-0 in the second), both predicted exactly.
    const c = new SpanCounts();
    c.add(tags('O B-PER'), tags('O B-PER'));
    c.add(tags('I-PER O'), tags('I-PER O'));
    const r = c.report();
    expect([r.gold, r.predicted, r.correct, r.f1]).toEqual([2, 2, 2, 1]);
  });

  it('a type error is wrong for both precision and recall', () => {
    // gold PER 0-0, LOC 1-1; pred PER 0-1 matches neither: P 0/1, R 0/2.
    const c = new SpanCounts();
    c.add(tags('B-PER I-LOC'), tags('B-PER I-PER'));
    const r = c.report();
    expect([r.gold, r.predicted, r.correct, r.precision, r.recall, r.f1]).toEqual([2, 1, 0, 0, 0, 0]);
  });

  it('mixed: P 2/3, R 2/4, F1 4/7', () => {
    // gold: PER 0-1, LOC 3-3 | ORG 0-2, PER 4-4      (4 chunks)
    // pred: PER 0-1, LOC 3-4 | ORG 0-2               (3 chunks; PER 0-1 and ORG 0-2 correct)
    // P = 2/3, R = 2/4, F1 = 2·(2/3)(1/2)/(2/3 + 1/2) = (2/3)/(7/6) = 4/7
    const c = new SpanCounts();
    c.add(tags('B-PER I-PER O B-LOC O'), tags('B-PER I-PER O B-LOC I-LOC'));
    c.add(tags('B-ORG I-ORG I-ORG O S-PER'), tags('B-ORG I-ORG I-ORG O O'));
    const r = c.report();
    expect(r.precision).toBeCloseTo(2 / 3, 12);
    expect(r.recall).toBe(0.5);
    expect(r.f1).toBeCloseTo(4 / 7, 12);
    // per type, sorted: LOC 0/1 pred, 0/1 gold; ORG 1/1, 1/1; PER 1/1 pred, 1/2 gold
    expect(r.types.map((t) => [t.type, t.correct, t.predicted, t.support])).toEqual([['LOC', 0, 1, 1], ['ORG', 1, 1, 1], ['PER', 1, 1, 2]]);
  });
});

describe('label sets and the head scorer', () => {
  it('BIO-family names are detected; IO, BILOU and plain classes are not', () => {
    expect(isSpanLabelSet(['O', 'B-PER', 'I-PER'])).toBe(true);
    expect(isSpanLabelSet(['O', 'B-LOC', 'I-LOC', 'E-LOC', 'S-LOC'])).toBe(true);
    expect(isSpanLabelSet(['O', 'DATE', 'TIME'])).toBe(false);
    expect(isSpanLabelSet(['O', 'U-PER', 'B-PER'])).toBe(false);
    expect(isSpanLabelSet(['O'])).toBe(false);
    expect(isSpanLabelSet(undefined)).toBe(false);
  });

  it('skips ignored (-100) positions, so spans are over words, and splits a batch into examples', () => {
    const names = ['O', 'B-LOC', 'I-LOC'];
    // Three examples of 4 positions (B = 3, T = 4):
    // 0: New York is (York's second subword ignored): gold B-LOC I-LOC -100 O, pred B-LOC I-LOC O O
    //    → words: gold LOC 0-1, pred LOC 0-1.
    // 1: New -## York (the ignored subword sits inside the entity): gold B-LOC -100 I-LOC O, pred B-LOC O I-LOC O
    //    → words: B-LOC I-LOC O both: correct. Counting the ignored O would make the
    //    prediction LOC 0-0 and LOC 2-2 (an I- after O starts a chunk): 0 of 2 correct.
    // 2: one word and padding: gold O -100 -100 -100, pred O I-LOC I-LOC I-LOC (pads never count).
    const labels = [1, 2, -100, 0, 1, -100, 2, 0, 0, -100, -100, -100].map(BigInt);
    const predIds = [1, 2, 0, 0, 1, 0, 2, 0, 0, 2, 2, 2];
    const logits = new Float32Array(predIds.length * 3);
    predIds.forEach((c, i) => (logits[i * 3 + c] = 1));
    const s = new HeadScorer(3, { names });
    expect(s.spans).toBe(true);
    expect(s.addBatch(labels, logits, 3)).toBe(true);
    const r = s.report();
    expect(r.spans).toMatchObject({ gold: 2, predicted: 2, correct: 2, f1: 1 });
    // 3 + 3 + 1 labelled positions, all predicted right.
    expect([r.classes.rows, r.classes.microF1]).toEqual([7, 1]);
    expect(s.addBatch(labels, logits.subarray(3), 3)).toBe(false);
  });

  it('pooled heads: one row per example; no spans without BIO names', () => {
    const s = new HeadScorer(2, { names: ['neg', 'pos'] });
    expect(s.spans).toBe(false);
    // rows: gold 1 pred 1, gold 0 pred 1, gold -100 (ignored)
    s.addBatch([1, 0, -100], new Float32Array([0, 1, 0, 2, 5, 0]), 3);
    const r = s.report();
    expect(r.spans).toBeUndefined();
    expect(r.classes.classes.map((c) => [c.label, c.support, c.predicted])).toEqual([['neg', 1, 0], ['pos', 1, 2]]);
    // neg F1 0; pos P 1/2 R 1 F1 2/3 → macro 1/3
    expect(r.classes.macroF1).toBeCloseTo(1 / 3, 12);
  });

  it('scoreRows / the probe: consecutive rows of one example form a sequence', () => {
    const names = ['O', 'B-PER', 'I-PER'];
    // rows: B-PER I-PER | I-PER O | O  (examples 4, 4, 7, 7, 9)
    // gold chunks: PER 0-1 in example 4, PER 0-0 in example 7 (I- after the boundary starts one) → 2.
    // pred: B-PER O | I-PER O | I-PER → PER 0-0 (wrong end), PER 0-0 (right), PER 0-0 in example 9 (spurious):
    // correct 1 of 3 predicted and 2 gold: P 1/3, R 1/2, F1 2/5.
    const gold = [1, 2, 2, 0, 0];
    const pred = [1, 0, 2, 0, 2];
    const example = [4, 4, 7, 7, 9];
    const r = scoreRows(gold, pred, 3, { names, example });
    expect(r.spans).toMatchObject({ gold: 2, predicted: 3, correct: 1 });
    expect(r.spans!.f1).toBeCloseTo(2 / 5, 12);
    // Without examples every row is its own sequence: gold PER×3 (rows 0, 1, 2), pred PER×3 (rows 0, 2, 4); rows 0 and 2 agree.
    expect(scoreRows(gold, pred, 3, { names }).spans).toMatchObject({ gold: 3, predicted: 3, correct: 2 });
    const p = scorePredictions(gold, pred, 3, 0, { names, example });
    expect([p.accuracy, p.spans?.correct]).toEqual([3 / 5, 1]);
    expect(scorePredictions(gold, pred, 3, 0, { names }).spans).toBeUndefined();
  });
});
