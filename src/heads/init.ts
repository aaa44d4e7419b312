// Heads: seeded parameter initialisation, as PyTorch's nn.Linear does it:
// weight Kaiming-uniform with a = √5, which is U(±1/√fan_in), and bias
// U(±1/√fan_in). Each head draws from its own stream, seeded by (seed, head
// name), so a head's weights do not depend on which other heads are added.
import { Rng } from '../data/jsonl';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function headRng(seed: number, head: string): Rng {
  return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ fnv1a(head)) >>> 0);
}

/**
 * A Linear layer's parameters in the MatMul layout: weight [fanIn, fanOut] (the transpose
 * of torch's [out, in]), bias [fanOut]; both U(±1/√fanIn).
 */
export function linearInit(rng: Rng, fanIn: number, fanOut: number): { weight: Float32Array; bias: Float32Array } {
  const bound = 1 / Math.sqrt(fanIn);
  const u = () => (2 * rng.next() - 1) * bound;
  const weight = new Float32Array(fanIn * fanOut);
  for (let k = 0; k < weight.length; k++) weight[k] = u();
  const bias = new Float32Array(fanOut);
  for (let k = 0; k < bias.length; k++) bias[k] = u();
  return { weight, bias };
}
