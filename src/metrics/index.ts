export { ClassCounts, prf, CONFUSION_MAX_CLASSES } from './classes';
export type { ClassReport, ClassRow, PRF } from './classes';
export { SpanCounts, chunks, isSpanLabelSet, parseTag } from './spans';
export type { Chunk, SpanReport, SpanTypeRow, Tag } from './spans';
export { HeadScorer, MAX_SCORED_CLASSES, argmax, scoreRows } from './scorer';
export type { HeadScores, HeadScorerOptions } from './scorer';
