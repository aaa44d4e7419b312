// Metrics, spans: entity (chunk) precision, recall and F1 of BIO-style tagging
// (IOB1, IOB2, IOE, BIOES), counted exactly as seqeval's default mode, which is
// conlleval's: chunk boundaries follow `end_of_chunk` / `start_of_chunk` of
// chakki-works/seqeval, seqeval/metrics/sequence_labeling.py (get_entities, the
// non-suffix branch), a port of conlleval.pl's endOfChunk / startOfChunk. In
// particular an I- (or E-) tag after O, or after a chunk of another type, starts
// a chunk; a type change always ends one. A predicted chunk is correct when
// type, first and last position all equal a gold chunk's. Each sequence is one
// example; chunks never cross examples (seqeval joins sentences with an 'O').
import { PRF, prf } from './classes';

export interface Chunk { type: string; start: number; end: number }

/** A parsed tag: its prefix letter (B, I, E, S or O) and its type ('_' for O, as seqeval). */
export interface Tag { tag: string; type: string }

const SPAN_LABEL = /^[BIES]-./;

/**
 * Whether label names follow a BIO-family scheme: every name is `O` or B-/I-/E-/S- plus a
 * type, and at least one is not `O`. IO tags (bare types) and BILOU's U-/L- are not.
 */
export function isSpanLabelSet(names: readonly string[] | undefined): boolean {
  return !!names && names.some((n) => n !== 'O') && names.every((n) => n === 'O' || SPAN_LABEL.test(n));
}

/** seqeval's split of a tag: the first letter, and what follows the first '-' (or '_'). */
export function parseTag(name: string): Tag {
  const rest = name.slice(1);
  const dash = rest.indexOf('-');
  return { tag: name[0] ?? 'O', type: (dash >= 0 ? rest.slice(dash + 1) : rest) || '_' };
}

function endOfChunk(prev: Tag, cur: Tag): boolean {
  const p = prev.tag;
  const t = cur.tag;
  if (p === 'E' || p === 'S') return true;
  if ((p === 'B' || p === 'I') && (t === 'B' || t === 'S' || t === 'O')) return true;
  return p !== 'O' && p !== '.' && prev.type !== cur.type;
}

function startOfChunk(prev: Tag, cur: Tag): boolean {
  const p = prev.tag;
  const t = cur.tag;
  if (t === 'B' || t === 'S') return true;
  if ((p === 'E' || p === 'S' || p === 'O') && (t === 'E' || t === 'I')) return true;
  return t !== 'O' && t !== '.' && prev.type !== cur.type;
}

/** The chunks of one tag sequence (positions are indexes into `tags`), as seqeval's get_entities. */
export function chunks(tags: readonly Tag[]): Chunk[] {
  const out: Chunk[] = [];
  let prev: Tag = { tag: 'O', type: '' };
  let begin = 0;
  const end: Tag = { tag: 'O', type: '_' };
  for (let i = 0; i <= tags.length; i++) {
    const cur = i < tags.length ? tags[i] : end;
    if (endOfChunk(prev, cur)) out.push({ type: prev.type, start: begin, end: i - 1 });
    if (startOfChunk(prev, cur)) begin = i;
    prev = cur;
  }
  return out;
}

export interface SpanTypeRow extends PRF { type: string; support: number; predicted: number; correct: number }

export interface SpanReport extends PRF {
  /** Gold chunks, predicted chunks, and predicted chunks that match a gold one. */
  gold: number;
  predicted: number;
  correct: number;
  /** Per entity type, sorted by type (seqeval's classification_report rows, plus predicted-only types). */
  types: SpanTypeRow[];
}

/** Streaming chunk counts over examples, per entity type. */
export class SpanCounts {
  private readonly byType = new Map<string, { gold: number; pred: number; correct: number }>();

  private of(type: string) {
    let c = this.byType.get(type);
    if (!c) this.byType.set(type, (c = { gold: 0, pred: 0, correct: 0 }));
    return c;
  }

  /** One example's gold and predicted tags (same length; ignored positions already removed). */
  add(gold: readonly Tag[], pred: readonly Tag[]): void {
    const g = chunks(gold);
    const keys = new Set(g.map((c) => `${c.type}\u0000${c.start}\u0000${c.end}`));
    for (const c of g) this.of(c.type).gold++;
    for (const c of chunks(pred)) {
      const n = this.of(c.type);
      n.pred++;
      if (keys.has(`${c.type}\u0000${c.start}\u0000${c.end}`)) n.correct++;
    }
  }

  /** Micro-averaged span precision, recall and F1 (seqeval's f1_score default) and the per-type rows. */
  report(): SpanReport {
    let gold = 0;
    let predicted = 0;
    let correct = 0;
    const types: SpanTypeRow[] = [];
    for (const type of [...this.byType.keys()].sort()) {
      const c = this.byType.get(type)!;
      gold += c.gold;
      predicted += c.pred;
      correct += c.correct;
      types.push({ type, ...prf(c.correct, c.pred, c.gold), support: c.gold, predicted: c.pred, correct: c.correct });
    }
    return { ...prf(correct, predicted, gold), gold, predicted, correct, types };
  }
}
