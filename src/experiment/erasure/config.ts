// Experiment (erasure), configuration: the defaults of `grl-onnx experiment`
// on the shipped pretrained encoder (MLM only, never trained on a POS label):
// the concept to remove (pos), the target task whose trainability we measure
// (ner), the removal methods side by side (GRL, INLP, LEACE, random directions
// of INLP's rank), their budgets, the seeds, and the --quick budget.
import * as path from 'path';
import { GrlError } from '../../onnx/errors';
import { DeepPartial, ProbeBudget, mergeConfig, packageRoot } from '../config';

export type RemovalMethod = 'grl' | 'inlp' | 'leace' | 'random' | 'random-leace';
/**
 * In dependency order: `random` removes as many random directions as INLP removed with the same
 * seed (amnesic probing's control), `random-leace` as many as LEACE removed (LEACE's control).
 */
export const REMOVAL_METHODS: readonly RemovalMethod[] = ['grl', 'inlp', 'leace', 'random', 'random-leace'];
/** The method whose rank a random control copies. */
export const RANK_OF: Partial<Record<RemovalMethod, RemovalMethod>> = { random: 'inlp', 'random-leace': 'leace' };

export interface ErasureConfig {
  kind: 'erasure';
  /** The pretrained encoder with its MLM head (`mlm_logits`). */
  model: string;
  /** Its tokenizer.json (the corpus files below are words; subword alignment happens in memory). */
  tokenizer: string;
  /** Corpus files with word-level labels for `concept` and `target` (JSONL with words, CoNLL-U, ...). */
  data: { train: string; dev: string; test: string };
  /** Label key (in the data) of the information to remove. */
  concept: string;
  /** Label key of the task whose trainability is measured after removal. */
  target: string;
  /** Hidden-state tensor where information is removed and probed (default: the one the MLM head reads). */
  at?: string;
  methods: RemovalMethod[];
  /** Amnesic training: a GRL concept head on `at`, trained with the MLM loss (the task to keep). */
  grl: { lambda: number; lambdaSchedule: string; steps: number; batchSize: number; lr: number; conceptWeight: number };
  /** INLP: at most this many classifiers; stop at majority + tolerance. */
  inlp: { iterations: number; tolerance: number; epochs: number };
  /** Post-hoc probes; the erasers are fit on the same training sentences and row cap. */
  probe: ProbeBudget;
  /** MLM accuracy on the masked positions of this many dev sentences (0 = all; one fixed masking). */
  mlm: { evalSentences: number; batchSize: number };
  /** A fresh target head fine-tuned on each encoder (encoder trainable, erasers frozen). */
  trainability: { steps: number; batchSize: number; lr: number; evalEvery: number; devSentences: number };
  /** `train` seeds GRL training, INLP's classifiers, random directions and the fresh heads' data order. */
  seeds: { train: number[]; probe: number; head: number; control: number; mask: number };
  threads?: number;
}

export const ERASURE_MODEL = 'models/pretrained/encoder-mlm.onnx';

export function defaultErasureConfig(root = packageRoot()): ErasureConfig {
  return {
    kind: 'erasure',
    model: path.join(root, ERASURE_MODEL),
    tokenizer: path.join(root, 'models/pretrained/tokenizer.json'),
    data: { train: path.join(root, 'data/words/train.jsonl'), dev: path.join(root, 'data/words/dev.jsonl'), test: path.join(root, 'data/words/test.jsonl') },
    concept: 'pos',
    target: 'ner',
    methods: [...REMOVAL_METHODS],
    grl: { lambda: 1, lambdaSchedule: 'dann', steps: 200, batchSize: 32, lr: 5e-4, conceptWeight: 1 },
    inlp: { iterations: 20, tolerance: 0.01, epochs: 2 },
    probe: { kind: 'linear', hidden: 128, epochs: 4, batchSize: 256, lr: 3e-3, trainSentences: 2000, evalSentences: 0, maxTrainRows: 15000 },
    mlm: { evalSentences: 0, batchSize: 32 },
    trainability: { steps: 200, batchSize: 32, lr: 1e-3, evalEvery: 25, devSentences: 500 },
    seeds: { train: [0, 1, 2], probe: 0, head: 0, control: 1, mask: 0 },
  };
}

/** --quick: every stage, tiny budgets, one seed (the tests use it). */
export function erasureQuickOverrides(): DeepPartial<ErasureConfig> {
  return {
    grl: { steps: 6, batchSize: 8 },
    inlp: { iterations: 3, epochs: 1 },
    probe: { epochs: 1, trainSentences: 200, evalSentences: 100, maxTrainRows: 3000 },
    mlm: { evalSentences: 40 },
    trainability: { steps: 4, batchSize: 8, evalEvery: 2, devSentences: 40 },
  };
}

const OPTIONAL = ['at', 'threads'];

export function resolveErasureConfig(file: DeepPartial<ErasureConfig> | undefined, quick: boolean, root?: string): ErasureConfig {
  let cfg = defaultErasureConfig(root);
  if (file) cfg = mergeConfig(cfg, file, 'config', OPTIONAL);
  if (quick) {
    cfg = mergeConfig(cfg, erasureQuickOverrides(), '--quick', OPTIONAL);
    if (file?.seeds?.train === undefined) cfg.seeds = { ...cfg.seeds, train: [cfg.seeds.train[0]] };
  }
  checkErasureConfig(cfg);
  return cfg;
}

/** Values mergeConfig cannot judge by type alone. */
export function checkErasureConfig(cfg: ErasureConfig): void {
  const seeds = typeof cfg.seeds.train === 'number' ? [cfg.seeds.train] : cfg.seeds.train;
  cfg.seeds = { ...cfg.seeds, train: seeds };
  const methods = typeof cfg.methods === 'string' ? [cfg.methods] : cfg.methods;
  for (const m of methods) if (!REMOVAL_METHODS.includes(m)) throw new GrlError(`config: unknown method '${m}' in methods (known: ${REMOVAL_METHODS.join(', ')})`);
  if (new Set(methods).size !== methods.length) throw new GrlError(`config: methods lists a method twice (${methods.join(', ')})`);
  for (const m of methods) {
    const of = RANK_OF[m];
    if (of && !methods.includes(of)) throw new GrlError(`config: ${m} copies the rank of ${of}: list ${of} in methods too`);
  }
  // random takes INLP's rank for the same seed: run INLP first when both are asked for.
  cfg.methods = [...methods].sort((a, b) => REMOVAL_METHODS.indexOf(a) - REMOVAL_METHODS.indexOf(b));
  if (cfg.concept === cfg.target) throw new GrlError(`config: concept and target are the same label ('${cfg.concept}')`);
  for (const [k, v] of Object.entries({ 'grl.steps': cfg.grl.steps, 'trainability.steps': cfg.trainability.steps, 'inlp.iterations': cfg.inlp.iterations })) {
    if (!Number.isInteger(v) || v < 1) throw new GrlError(`config: ${k} must be a positive integer, not ${v}`);
  }
}
