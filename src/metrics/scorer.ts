// Metrics, one head: feeds argmax predictions and gold class ids, one example
// at a time, into the per-class counts and (for heads whose label names are
// BIO-style) the span counts. The trainer's evaluation and the probe both score
// through this, so `train` and `probe` report the same numbers the same way.
import { ClassCounts, ClassReport } from './classes';
import { IGNORE_INDEX } from '../data/jsonl';
import { SpanCounts, SpanReport, Tag, isSpanLabelSet, parseTag } from './spans';

/** Heads with more classes than this (vocabulary-sized MLM decoders) get no class metrics. */
export const MAX_SCORED_CLASSES = 1024;

export interface HeadScores {
  classes: ClassReport;
  /** Present when the label names are BIO-style (or spans were asked for). */
  spans?: SpanReport;
}

export interface HeadScorerOptions {
  /** Label names by class id (metadata `grl-onnx.id2label.<head>`); ids are used without them. */
  names?: readonly string[];
  /** Span metrics: 'auto' (default) when the names are BIO-style, 'off' never. */
  spans?: 'auto' | 'off';
}

export class HeadScorer {
  readonly counts: ClassCounts;
  private readonly spanCounts?: SpanCounts;
  private readonly tags?: Tag[];

  constructor(readonly numClasses: number, private readonly opts: HeadScorerOptions = {}) {
    this.counts = new ClassCounts(numClasses);
    // A corpus vocabulary may name fewer classes than the head has; the unnamed ones are
    // never gold and count as O (no entity) when predicted.
    if ((opts.spans ?? 'auto') === 'auto' && isSpanLabelSet(opts.names) && opts.names!.length <= numClasses) {
      this.spanCounts = new SpanCounts();
      this.tags = Array.from({ length: numClasses }, (_, c) => (c < opts.names!.length ? parseTag(opts.names![c]) : { tag: 'O', type: '_' }));
    }
  }

  /** Whether this head gets span metrics. */
  get spans(): boolean {
    return !!this.spanCounts;
  }

  /** One example: its labelled positions in order (ignored positions left out), or one row for a pooled head. */
  addExample(gold: ArrayLike<number>, pred: ArrayLike<number>): void {
    for (let i = 0; i < gold.length; i++) this.counts.add(gold[i], pred[i]);
    if (!this.spanCounts || !this.tags) return;
    const tags = this.tags;
    this.spanCounts.add(Array.from(gold, (c) => tags[c]), Array.from(pred, (c) => tags[c]));
  }

  /**
   * A batch of logits, row-major [...labels' shape, C], and its gold ids (-100 = ignored):
   * `examples` rows, each one example whose non-ignored positions are scored in order
   * (a token head's [B, T]; non-first subwords are ignored, so spans are over words),
   * or one position each (a pooled head's [B]). False when the logits do not line up.
   */
  addBatch(labels: ArrayLike<number | bigint>, logits: ArrayLike<number>, examples: number): boolean {
    const C = this.numClasses;
    const per = labels.length / examples;
    if (logits.length !== labels.length * C || !Number.isInteger(per)) return false;
    for (let b = 0; b < examples; b++) {
      const gold: number[] = [];
      const pred: number[] = [];
      for (let t = b * per; t < (b + 1) * per; t++) {
        const y = Number(labels[t]);
        if (y === IGNORE_INDEX) continue;
        gold.push(y);
        pred.push(argmax(logits, t * C, C));
      }
      this.addExample(gold, pred);
    }
    return true;
  }

  report(): HeadScores {
    const classes = this.counts.report(this.opts.names);
    return this.spanCounts ? { classes, spans: this.spanCounts.report() } : { classes };
  }
}

/** Index of the largest of `n` logits from `offset` (the first on ties, like ArgMax). */
export function argmax(logits: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (logits[offset + c] > logits[offset + best]) best = c;
  return best;
}

/**
 * Scores of rows in order, `example[i]` naming the example row i belongs to (rows of one
 * example are consecutive, as a probe's token rows are): spans never cross examples.
 * Without `example` each row is its own example.
 */
export function scoreRows(gold: ArrayLike<number>, pred: ArrayLike<number>, numClasses: number, opts: HeadScorerOptions & { example?: ArrayLike<number> } = {}): HeadScores {
  const scorer = new HeadScorer(numClasses, opts);
  const ex = opts.example;
  let start = 0;
  for (let i = 1; i <= gold.length; i++) {
    if (i < gold.length && ex && ex[i] === ex[start]) continue;
    scorer.addExample(Array.prototype.slice.call(gold, start, i), Array.prototype.slice.call(pred, start, i));
    start = i;
  }
  return scorer.report();
}
