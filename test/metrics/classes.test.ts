// Per-class precision/recall/F1, macro-F1 and confusion counts on a hand-computed case.
import { ClassCounts, prf } from '../../src/metrics';

describe('ClassCounts: per-class scores (sklearn conventions)', () => {
  // 6 classes. gold/pred pairs, by position:
  //   gold 0 0 0 1 1 2 2 3 3 2
  //   pred 0 0 1 1 1 2 4 0 2 2
  // class 0: 3 gold, predicted at 0,1,7 → 3 predicted, tp 2: P 2/3, R 2/3, F1 2/3
  // class 1: 2 gold, predicted at 2,3,4 → 3 predicted, tp 2: P 2/3, R 1, F1 2·(2/3)/(5/3) = 4/5
  // class 2: 3 gold, predicted at 5,8,9 → 3 predicted, tp 2: P 2/3, R 2/3, F1 2/3
  // class 3: 2 gold, never predicted: P 0 (0/0 → 0), R 0, F1 0
  // class 4: no gold, predicted once: P 0, R 0 (0/0 → 0), F1 0
  // class 5: neither: all 0, and left out of the macro average
  // macro-F1 = (2/3 + 4/5 + 2/3 + 0 + 0) / 5 = 32/75; micro = 6 hits / 10 = 0.6
  const gold = [0, 0, 0, 1, 1, 2, 2, 3, 3, 2];
  const pred = [0, 0, 1, 1, 1, 2, 4, 0, 2, 2];
  const counts = new ClassCounts(6);
  gold.forEach((g, i) => counts.add(g, pred[i]));
  const r = counts.report(['A', 'B', 'C', 'D', 'E', 'F']);

  it('per class', () => {
    const rows = r.classes.map((c) => [c.label, c.precision, c.recall, c.f1, c.support, c.predicted]);
    const expected = [
      ['A', 2 / 3, 2 / 3, 2 / 3, 3, 3],
      ['B', 2 / 3, 1, 4 / 5, 2, 3],
      ['C', 2 / 3, 2 / 3, 2 / 3, 3, 3],
      ['D', 0, 0, 0, 2, 0],
      ['E', 0, 0, 0, 0, 1],
      ['F', 0, 0, 0, 0, 0],
    ];
    rows.forEach((row, i) => {
      expect(row[0]).toBe(expected[i][0]);
      for (let k = 1; k < 6; k++) expect(row[k]).toBeCloseTo(expected[i][k] as number, 12);
    });
  });

  it('macro-F1 over the classes in gold or predictions, micro-F1 = accuracy', () => {
    expect(r.macroF1).toBeCloseTo(32 / 75, 12);
    expect(r.microF1).toBe(0.6);
    expect(r.rows).toBe(10);
  });

  it('confusion[gold][pred]', () => {
    expect(r.confusion).toEqual([
      [2, 1, 0, 0, 0, 0],
      [0, 2, 0, 0, 0, 0],
      [0, 0, 2, 0, 1, 0],
      [1, 0, 1, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
    ]);
  });

  it('names default to ids; no confusion matrix past 64 classes', () => {
    const big = new ClassCounts(65);
    big.add(64, 3);
    const b = big.report();
    expect(b.classes[64].label).toBe('64');
    expect(b.confusion).toBeUndefined();
    // classes 3 (predicted) and 64 (gold), both F1 0
    expect(b.macroF1).toBe(0);
  });

  it('prf: zero denominators give 0, F1 is the harmonic mean', () => {
    expect(prf(0, 0, 0)).toEqual({ precision: 0, recall: 0, f1: 0 });
    expect(prf(1, 4, 2)).toEqual({ precision: 0.25, recall: 0.5, f1: (2 * 0.25 * 0.5) / 0.75 });
  });
});
