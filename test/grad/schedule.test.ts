// The node order of training graphs (src/grad/schedule.ts): leaf tails move to the end,
// the earliest last, the result stays a topological order of the same nodes, and
// onnxruntime's own execution order (the order of its saved optimized model) then runs
// the weight gradients inside the backward pass instead of after it.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { loadModel, serializeModel } from '../../src/onnx/io';
import { NodeProto } from '../../src/onnx/proto';
import { buildTrainingGraph } from '../../src/grad/training';
import { scheduleLeafTails } from '../../src/grad/schedule';
import { Graph, nodeReads } from '../../src/onnx/graph';
import { modelPath } from '../fixtures/reference';

const node = (name: string, input: string[], output: string[]): NodeProto => ({ name, op_type: 'Identity', input, output, attribute: [] });
const names = (nodes: NodeProto[]) => nodes.map((n) => n.name);

/** Every input is a graph input or produced by an earlier node. */
function expectTopological(nodes: NodeProto[], graphInputs: Set<string>): void {
  const seen = new Set(graphInputs);
  for (const n of nodes) {
    for (const i of n.input ?? []) if (i) expect({ node: n.name, input: i, known: seen.has(i) }).toEqual({ node: n.name, input: i, known: true });
    for (const o of n.output ?? []) seen.add(o);
  }
}

describe('scheduleLeafTails', () => {
  // A backward chain dy3 -> dy2 -> dy1 with a gradient tail hanging off each step,
  // emitted in backward order (the tail of dy3 first), like buildTrainingGraph does.
  const nodes = [
    node('d3', ['seed'], ['dy3']),
    node('g3_rows', ['dy3'], ['g3_r']), node('g3', ['g3_r'], ['w3_grad']),
    node('d2', ['dy3'], ['dy2']),
    node('g2', ['dy2'], ['w2_grad']),
    node('d1', ['dy2'], ['dy1']),
    node('shared', ['dy1'], ['s']), node('g1a', ['s'], ['a_grad']), node('g1b', ['s'], ['b_grad']),
  ];

  it('moves each exclusive tail to the end, the tail emitted first going last', () => {
    const out = scheduleLeafTails(nodes);
    // 'shared' feeds two leaves, so it belongs to neither tail and stays in place.
    expect(names(out)).toEqual(['d3', 'd2', 'd1', 'shared', 'g1b', 'g1a', 'g2', 'g3_rows', 'g3']);
    expectTopological(out, new Set(['seed']));
    expect(new Set(out)).toEqual(new Set(nodes));
  });

  it('counts names read inside If branches as consumed (ONNX orders by implicit inputs too)', () => {
    // P: v = Neg(x); If(c) returns Identity(v) from either branch; Q: w = Abs(v).
    const branch = (b: string) => ({ name: b, node: [node(`${b}_id`, ['v'], [`${b}_out`])], input: [], output: [{ name: `${b}_out` }], initializer: [] });
    const ifNode: NodeProto = { name: 'IF', op_type: 'If', input: ['c'], output: ['y'], attribute: [{ name: 'then_branch', type: 5, g: branch('then') }, { name: 'else_branch', type: 5, g: branch('else') }] };
    const graph = [node('P', ['x'], ['v']), ifNode, node('Q', ['v'], ['w'])];
    expect(nodeReads(ifNode)).toEqual(['c', 'v']);
    const out = scheduleLeafTails(graph);
    // v has two consumers in different tails, so P stays in front of both.
    expect(names(out)).toEqual(['P', 'Q', 'IF']);
    expect(() => new Graph({ name: 'g', node: out, input: [{ name: 'x' }, { name: 'c' }], output: [{ name: 'y' }, { name: 'w' }] }).validate()).not.toThrow();
    // The old blind spot: reading v only inside the branch must still count as a use.
    expect(() => new Graph({ name: 'g', node: [ifNode, node('P', ['x'], ['v'])], input: [{ name: 'x' }, { name: 'c' }], output: [{ name: 'y' }] }).validate())
      .toThrow("node IF (If) reads 'v', which is produced later (graph is not in topological order)");
  });

  it('leaves a graph with a single leaf as it is', () => {
    const chain = [node('a', ['x'], ['y']), node('b', ['y'], ['z'])];
    expect(scheduleLeafTails(chain)).toBe(chain);
  });
});

describe('training graph order as onnxruntime runs it', () => {
  const model = loadModel(modelPath('tagger-opset17'));
  const tg = buildTrainingGraph(model, { losses: [{ head: 'pos' }, { head: 'ner' }] });
  const inputs = new Set([...(tg.training.graph!.input ?? []), ...(tg.training.graph!.initializer ?? [])].map((v) => v.name ?? ''));

  it('is a topological order of the graph', () => {
    expectTopological(tg.training.graph!.node!, inputs);
  });

  it('runs every layer weight gradient before the word-embedding gradient (the end of the input-gradient chain)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-schedule-'));
    try {
      const file = path.join(dir, 'optimized.onnx');
      const session = await ort.InferenceSession.create(serializeModel(tg.training), { graphOptimizationLevel: 'all', optimizedModelFilePath: file, logSeverityLevel: 3 });
      await session.release();
      // onnxruntime writes its optimized graph in the topological order its executor uses.
      const order = loadModel(file).proto.graph!.node!;
      const producer = (t: string) => order.findIndex((n) => (n.output ?? []).includes(t));
      const embedding = producer(tg.outputs.grads['encoder.embeddings.word.weight']);
      expect(embedding).toBeGreaterThan(0);
      const weights = tg.params.filter((p) => p.trainable && p.dims.length === 2 && !p.name.startsWith('encoder.embeddings'));
      expect(weights.length).toBeGreaterThanOrEqual(8);
      const late = weights.filter((p) => producer(tg.outputs.grads[p.name]) > embedding).map((p) => p.name);
      expect(late).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
