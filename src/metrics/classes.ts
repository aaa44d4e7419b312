// Metrics, per class: precision, recall, F1 and support of each class of a
// single-label classification head from argmax predictions and gold ids, their
// macro average, and a gold × predicted confusion count. The conventions are
// scikit-learn's `precision_recall_fscore_support`: a ratio whose denominator is
// zero is 0 (zero_division=0), and the macro average runs over the classes that
// occur in gold or predictions. Micro-F1 of single-label data equals accuracy.

/** Above this many classes no confusion matrix is kept (it is C² counts). */
export const CONFUSION_MAX_CLASSES = 64;

export interface PRF { precision: number; recall: number; f1: number }

export interface ClassRow extends PRF {
  label: string;
  /** Gold rows of this class. */
  support: number;
  /** Rows predicted as this class. */
  predicted: number;
}

export interface ClassReport {
  classes: ClassRow[];
  /** Mean F1 over the classes with gold or predicted rows (sklearn's macro). */
  macroF1: number;
  /** Σ true positives / rows: accuracy, for single-label data. */
  microF1: number;
  rows: number;
  /** counts[gold][pred], with `classes` as the axis labels; absent past CONFUSION_MAX_CLASSES. */
  confusion?: number[][];
}

/** Precision, recall and F1 from counts; a zero denominator gives 0. */
export function prf(correct: number, predicted: number, gold: number): PRF {
  const precision = predicted ? correct / predicted : 0;
  const recall = gold ? correct / gold : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

/** Streaming counts of (gold, predicted) class pairs. */
export class ClassCounts {
  readonly tp: Float64Array;
  readonly gold: Float64Array;
  readonly pred: Float64Array;
  readonly confusion?: Float64Array;
  rows = 0;

  constructor(readonly numClasses: number) {
    this.tp = new Float64Array(numClasses);
    this.gold = new Float64Array(numClasses);
    this.pred = new Float64Array(numClasses);
    if (numClasses <= CONFUSION_MAX_CLASSES) this.confusion = new Float64Array(numClasses * numClasses);
  }

  add(gold: number, pred: number): void {
    this.gold[gold]++;
    this.pred[pred]++;
    if (gold === pred) this.tp[gold]++;
    if (this.confusion) this.confusion[gold * this.numClasses + pred]++;
    this.rows++;
  }

  /** The per-class table; class c is named names[c], or its id when there are no names. */
  report(names?: readonly string[]): ClassReport {
    const C = this.numClasses;
    const classes: ClassRow[] = [];
    let f1Sum = 0;
    let present = 0;
    let hits = 0;
    for (let c = 0; c < C; c++) {
      const row = { label: names?.[c] ?? String(c), ...prf(this.tp[c], this.pred[c], this.gold[c]), support: this.gold[c], predicted: this.pred[c] };
      classes.push(row);
      hits += this.tp[c];
      if (this.gold[c] || this.pred[c]) {
        f1Sum += row.f1;
        present++;
      }
    }
    const confusion = this.confusion && Array.from({ length: C }, (_, g) => Array.from(this.confusion!.subarray(g * C, (g + 1) * C)));
    return { classes, macroF1: present ? f1Sum / present : 0, microF1: this.rows ? hits / this.rows : 0, rows: this.rows, ...(confusion ? { confusion } : {}) };
  }
}
