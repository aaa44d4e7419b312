import { BatchOrder, DataSpec, makeBatch, parseJsonl, POSITION_FILL } from '../../src/data/jsonl';
import { metricsUpTo } from '../../src/train/trainer';

const spec: DataSpec = {
  inputs: ['input_ids', 'attention_mask'],
  optionalInputs: { attention_mask: 1 },
  labels: [{ key: 'pos', tokenLevel: true, numClasses: 5 }, { key: 'cls', tokenLevel: false, numClasses: 3 }],
  idLimits: { input_ids: 10 },
};

const good = '{"input_ids":[3,4,5],"pos":[1,2,-100],"cls":2}\n{"input_ids":[7],"attention_mask":[1],"pos":[4],"cls":0}\n';

describe('JSONL data', () => {
  it('parses and pads a batch with token 0, mask 0 and label -100', () => {
    const ex = parseJsonl(good, 'd.jsonl', spec);
    expect(ex.map((e) => e.line)).toEqual([1, 2]);
    const b = makeBatch(ex, spec);
    expect(b.seqLen).toBe(3);
    expect(Array.from(b.inputs.input_ids, Number)).toEqual([3, 4, 5, 7, 0, 0]);
    expect(Array.from(b.inputs.attention_mask, Number)).toEqual([1, 1, 1, 1, 0, 0]);
    expect(Array.from(b.labels.pos as BigInt64Array, Number)).toEqual([1, 2, -100, 4, -100, -100]);
    expect(Array.from(b.labels.cls as BigInt64Array, Number)).toEqual([2, 0]);
  });

  const bad: [string, string, RegExp][] = [
    ['malformed JSON', '{"input_ids":[1],"pos":[1],"cls":0}\n{"input_ids": [1,', /^d\.jsonl:2: malformed JSON/],
    ['missing input', '{"pos":[1],"cls":0}', /^d\.jsonl:1: missing input key 'input_ids'/],
    ['missing label', '{"input_ids":[1],"cls":0}', /^d\.jsonl:1: missing label key 'pos'/],
    ['label out of range', '\n\n{"input_ids":[1,2],"pos":[1,5],"cls":0}', /^d\.jsonl:3: label 'pos\[1\]' = 5 is outside \[0, 5\)/],
    ['negative label other than -100', '{"input_ids":[1],"pos":[-1],"cls":0}', /^d\.jsonl:1: label 'pos\[0\]' = -1/],
    ['label length differs', '{"input_ids":[1,2],"pos":[1],"cls":0}', /^d\.jsonl:1: label 'pos' has 1 items but 'input_ids' has 2/],
    ['token id outside the embedding table', '{"input_ids":[1,10],"pos":[1,1],"cls":0}', /^d\.jsonl:1: 'input_ids'\[1\] = 10 is outside the embedding table \[0, 10\)/],
    ['sequence label given as array', '{"input_ids":[1],"pos":[1],"cls":[0]}', /^d\.jsonl:1: label 'cls' must be a single number/],
    ['empty file', '\n  \n', /^d\.jsonl: empty file/],
  ];
  it.each(bad)('rejects %s with file and line', (_what, text, re) => {
    expect(() => parseJsonl(text, 'd.jsonl', spec)).toThrow(re);
  });

  it('orders batches deterministically per (seed, epoch) and covers every example once per epoch', () => {
    const o = new BatchOrder(10, 4, true, 7);
    expect(o.batchesPerEpoch).toBe(3);
    const epoch0 = [0, 1, 2].flatMap((k) => o.batch(k));
    expect([...epoch0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(new BatchOrder(10, 4, true, 7).batch(4)).toEqual(o.batch(4));
    expect(o.batch(3)).not.toEqual(o.batch(0));
    expect(new BatchOrder(5, 2, false, 1).batch(1)).toEqual([2, 3]);
  });
});

describe('JSONL data, more', () => {
  it('fills a missing position_ids input with the token positions', () => {
    const s: DataSpec = { inputs: ['input_ids', 'position_ids'], optionalInputs: { position_ids: POSITION_FILL }, labels: [] };
    const b = makeBatch(parseJsonl('{"input_ids":[5,6,7]}\n{"input_ids":[8]}\n', 'p.jsonl', s), s);
    expect(Array.from(b.inputs.position_ids, Number)).toEqual([0, 1, 2, 0, 0, 0]);
  });
  it('rejects ids that do not fit in 32 bits instead of wrapping them', () => {
    const s: DataSpec = { inputs: ['input_ids'], labels: [] };
    expect(() => parseJsonl('{"input_ids":[1,4294967297]}', 'big.jsonl', s)).toThrow(/^big\.jsonl:1: 'input_ids'\[1\] = 4294967297 is out of range/);
  });
});

describe('metrics.jsonl on resume', () => {
  it('keeps step and eval lines up to the resumed step and drops a torn last line', () => {
    const text = ['{"step":1,"loss":2}', '{"step":2,"loss":1}', '{"eval":{"step":2,"loss":1.5}}', '{"step":3,"loss":0.5}', '{"eval":{"step":4', ''].join('\n');
    expect(metricsUpTo(text, 2)).toBe('{"step":1,"loss":2}\n{"step":2,"loss":1}\n{"eval":{"step":2,"loss":1.5}}\n');
    expect(metricsUpTo(text, 0)).toBe('');
  });
});
