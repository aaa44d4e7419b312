// Probing, baselines: the majority class, and the control task of Hewitt &
// Liang (2019): each word type gets a fixed random label drawn from the task's
// empirical label distribution, so a probe that scores well on it is
// memorising word identity rather than reading the property from the encoding.
import { Rng } from '../data/jsonl';

/** Label counts (index = class id). */
export function labelCounts(y: ArrayLike<number>, numClasses: number): number[] {
  const c = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < y.length; i++) c[y[i]]++;
  return c;
}

export interface Majority { label: number; accuracy: number }

/** The majority class of `train`, scored on `test`. */
export function majorityBaseline(train: ArrayLike<number>, test: ArrayLike<number>, numClasses: number): Majority {
  const counts = labelCounts(train, numClasses);
  const label = counts.indexOf(Math.max(...counts));
  let hit = 0;
  for (let i = 0; i < test.length; i++) if (test[i] === label) hit++;
  return { label, accuracy: test.length ? hit / test.length : 0 };
}

/**
 * Control labels: word type → a label sampled once (seeded) from the distribution of
 * `y` over all rows. Types are assigned in increasing id order so the mapping depends
 * only on the seed and the set of types, not on row order.
 */
export function controlTask(wordIds: ArrayLike<number>[], y: ArrayLike<number>, numClasses: number, seed: number): { map: Map<number, number>; labels: Int32Array[] } {
  const counts = labelCounts(y, numClasses);
  const total = counts.reduce((a, b) => a + b, 0);
  const cdf: number[] = [];
  let acc = 0;
  for (const c of counts) cdf.push((acc += c) / total);
  const types = new Set<number>();
  for (const ids of wordIds) for (let i = 0; i < ids.length; i++) types.add(ids[i]);
  const rng = new Rng(seed);
  const map = new Map<number, number>();
  for (const t of [...types].sort((a, b) => a - b)) {
    const u = rng.next();
    let k = cdf.findIndex((p) => u < p);
    if (k < 0) k = numClasses - 1;
    map.set(t, k);
  }
  return { map, labels: wordIds.map((ids) => Int32Array.from(ids, (id) => map.get(id) as number)) };
}
