// CLI: the per-class tables `train` prints at the end of a run (and `probe`
// beside its accuracy): precision, recall, F1 and support per class with label
// names, the most frequent confusions, and seqeval-style entity-span scores.
import { prf } from '../metrics/classes';
import type { ClassRow, SpanReport, SpanTypeRow } from '../metrics';

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** Rows of label, precision, recall, F1, support and predicted count, columns aligned. */
export function prfTable(first: string, rows: readonly (ClassRow | SpanTypeRow)[]): string[] {
  const names = rows.map((r) => ('label' in r ? r.label : r.type));
  const w = Math.max(first.length, ...names.map((n) => n.length));
  const line = (cells: string[]) => `  ${cells[0].padEnd(w)}  ${cells.slice(1).map((c) => c.padStart(9)).join('  ')}`;
  return [
    line([first, 'precision', 'recall', 'f1', 'support', 'predicted']),
    ...rows.map((r, i) => line([names[i], pct(r.precision), pct(r.recall), pct(r.f1), String(r.support), String(r.predicted)])),
  ];
}

/** The `n` largest off-diagonal confusion counts as `gold→predicted count`. */
export function topConfusions(confusion: readonly (readonly number[])[], labels: readonly string[], n = 5): string[] {
  const pairs: [number, number, number][] = [];
  confusion.forEach((row, g) => row.forEach((k, p) => {
    if (g !== p && k > 0) pairs.push([k, g, p]);
  }));
  pairs.sort((a, b) => b[0] - a[0] || a[1] - b[1] || a[2] - b[2]);
  return pairs.slice(0, n).map(([k, g, p]) => `${labels[g]}→${labels[p]} ${k}`);
}

/** One line of span scores: `span P x R y F1 z (g gold, p predicted, c correct)`. */
export function spanLine(s: Pick<SpanReport, 'precision' | 'recall' | 'f1' | 'gold' | 'predicted' | 'correct'>): string {
  return `entity spans (seqeval/conlleval): precision ${pct(s.precision)} recall ${pct(s.recall)} F1 ${pct(s.f1)} (${s.gold} gold, ${s.predicted} predicted, ${s.correct} correct)`;
}

export interface ClassTableInput {
  per_class: ClassRow[];
  macro_f1: number;
  accuracy: number;
  count: number;
  confusion?: number[][];
  span_types?: SpanTypeRow[];
}

/** The end-of-run block for one CE head. */
export function classTable(head: string, m: ClassTableInput): string[] {
  const out = [`${head}: ${m.count} labels, accuracy (micro-F1) ${pct(m.accuracy)}, macro-F1 ${pct(m.macro_f1)}`, ...prfTable('label', m.per_class)];
  if (m.confusion) {
    const top = topConfusions(m.confusion, m.per_class.map((r) => r.label));
    if (top.length) out.push(`  most confused (gold→predicted): ${top.join(', ')}`);
  }
  if (m.span_types) {
    const t = m.span_types;
    const sum = (k: 'support' | 'predicted' | 'correct') => t.reduce((a, r) => a + r[k], 0);
    out.push(`  ${spanLine({ ...prf(sum('correct'), sum('predicted'), sum('support')), gold: sum('support'), predicted: sum('predicted'), correct: sum('correct') })}`, ...prfTable('type', t));
  }
  return out;
}
