#!/usr/bin/env node
'use strict';
// Benchmark (npm run bench:patch): `grl-onnx patch` on a BERT-base-size model
// (12 layers, d=768, vocab 30522, ~110M parameters, ~440 MB, random weights),
// against Python onnx's load+save of the same file, in the same run.
// Goals (issue 2 §8): patch no slower than onnx load+save; peak RSS <= 1.5x the model size.
//
//   node scripts/bench-patch.js [--model PATH] [--runs N] [--js-model]
//
// The model is made once in bench-out/ (not committed): by scripts/export_fixtures.py
// --bench bert-base when torch is there, else (or with --js-model) by a generator below
// that writes a BERT-shaped graph with our own IR. Each run starts after `sync` so the
// writeback of the previous run's 440 MB does not land on the next one.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const PY = '/usr/bin/python3';
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(opt('--runs', '3'));
const outDir = path.join(ROOT, 'bench-out');
const modelPath = path.resolve(opt('--model', path.join(outDir, 'bert-base.onnx')));
const MB = (n) => (n / 1e6).toFixed(1);

function need(cond, msg) {
  if (!cond) {
    process.stderr.write(`bench-patch: ${msg}\n`);
    process.exit(1);
  }
}

need(fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js')), 'dist/ is missing: run `npm run build` first');
fs.mkdirSync(outDir, { recursive: true });

if (!fs.existsSync(modelPath)) {
  const useJs = args.includes('--js-model');
  let made = false;
  if (!useJs) {
    process.stderr.write(`making ${modelPath} with scripts/export_fixtures.py --bench bert-base ...\n`);
    const r = spawnSync(PY, [path.join(ROOT, 'scripts', 'export_fixtures.py'), '--bench', 'bert-base', modelPath], { stdio: ['ignore', 'inherit', 'inherit'] });
    made = r.status === 0 && fs.existsSync(modelPath);
    if (!made) process.stderr.write('the PyTorch export failed; generating the model in JS instead\n');
  }
  if (!made) makeBertBaseJs(modelPath);
}

const modelSize = fs.statSync(modelPath).size;
const havePyOnnx = spawnSync(PY, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
if (!havePyOnnx) process.stderr.write(`${PY} has no onnx module (apt-get install python3-onnx): skipping the comparison\n`);

// Each child reports its own peak RSS on stderr's last line, so no /usr/bin/time is needed.
const NODE_WRAP = "process.on('exit',()=>process.stderr.write('\\nmaxrss_kb '+process.resourceUsage().maxRSS+'\\n'));require(process.argv[1]).main(process.argv.slice(2))";
const PY_WRAP = "import onnx,sys,resource; onnx.save(onnx.load(sys.argv[1]), sys.argv[2]); sys.stderr.write('\\nmaxrss_kb %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)";

function timed(cmd, argv) {
  spawnSync('sync');
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  need(r.status === 0, `${path.basename(cmd)} failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n')[0]}`);
  const m = /maxrss_kb (\d+)\s*$/.exec(r.stderr);
  return { seconds, rss: m ? Number(m[1]) * 1024 : NaN };
}

const patched = path.join(outDir, 'bert-base.patched.onnx');
const resaved = path.join(outDir, 'bert-base.python.onnx');
const ours = [];
const theirs = [];
console.log(`model: ${modelPath} (${MB(modelSize)} MB)`);
for (let k = 1; k <= runs; k++) {
  fs.rmSync(patched, { force: true });
  fs.rmSync(resaved, { force: true });
  const a = timed(process.execPath, ['-e', NODE_WRAP, path.join(ROOT, 'dist', 'cli', 'main.js'), 'patch', modelPath, '--head', 'pos', '-o', patched]);
  ours.push(a);
  let line = `run ${k}: grl-onnx patch ${a.seconds.toFixed(2)} s, peak RSS ${MB(a.rss)} MB`;
  if (havePyOnnx) {
    const b = timed(PY, ['-c', PY_WRAP, modelPath, resaved]);
    theirs.push(b);
    line += ` | python onnx load+save ${b.seconds.toFixed(2)} s, peak RSS ${MB(b.rss)} MB`;
  }
  console.log(line);
}
fs.rmSync(patched, { force: true });
fs.rmSync(resaved, { force: true });

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const tOurs = median(ours.map((r) => r.seconds));
const rssOurs = Math.max(...ours.map((r) => r.rss));
console.log(`grl-onnx patch: median ${tOurs.toFixed(2)} s; peak RSS / model size = ${(rssOurs / modelSize).toFixed(2)} (goal <= 1.5)`);
if (theirs.length) {
  const tTheirs = median(theirs.map((r) => r.seconds));
  const rssTheirs = Math.max(...theirs.map((r) => r.rss));
  console.log(`python onnx load+save: median ${tTheirs.toFixed(2)} s; peak RSS / model size = ${(rssTheirs / modelSize).toFixed(2)}`);
  console.log(`time ratio patch / python = ${(tOurs / tTheirs).toFixed(2)} (goal <= 1.0; patch also fsyncs its output, python does not)`);
}

/**
 * A BERT-base-shaped tagger in our own IR: embeddings, 12 post-LN layers (Q/K/V/O,
 * scaled dot-product attention without the head split, GELU-free FFN) and two heads.
 * Random weights; it only has to be a realistic graph of the right size.
 */
function makeBertBaseJs(dest) {
  const { saveModel } = require(path.join(ROOT, 'dist', 'onnx', 'io.js'));
  const { float32Tensor, makeTensor } = require(path.join(ROOT, 'dist', 'onnx', 'tensor.js'));
  const { makeAttrs, A } = require(path.join(ROOT, 'dist', 'onnx', 'attrs.js'));
  const d = 768, ffn = 3072, vocab = 30522, layers = 12;
  let seed = 1;
  const rand = (n, scale) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      a[i] = ((seed / 4294967296) - 0.5) * 2 * scale;
    }
    return a;
  };
  const inits = [];
  const nodes = [];
  const W = (name, dims) => {
    inits.push(makeTensor(name, 1, dims, rand(dims.reduce((x, y) => x * y, 1), 0.02)));
    return name;
  };
  const node = (name, op, input, attrs) => {
    nodes.push({ name, op_type: op, input, output: [`${name}_output_0`], attribute: makeAttrs(attrs) });
    return `${name}_output_0`;
  };
  const ln = (scope, x) => node(`${scope}/LayerNormalization`, 'LayerNormalization', [x, W(`${scope}.weight`, [d]), W(`${scope}.bias`, [d])], { axis: A.int(-1), epsilon: A.float(1e-12) });
  const linear = (scope, x, i, o) => node(`${scope}/Add`, 'Add', [node(`${scope}/MatMul`, 'MatMul', [x, W(`${scope}.weight`, [i, o])]), W(`${scope}.bias`, [o])]);
  let h = node('/embeddings/Add', 'Add', [node('/embeddings/word/Gather', 'Gather', [W('embeddings.word.weight', [vocab, d]), 'input_ids']), node('/embeddings/type/Gather', 'Gather', [W('embeddings.type.weight', [2, d]), 'token_type_ids'])]);
  h = ln('/embeddings/norm', h);
  inits.push(float32Tensor('attention.scale', [], [1 / Math.sqrt(d)]));
  for (let l = 0; l < layers; l++) {
    const s = `/encoder/layer.${l}`;
    const q = linear(`${s}/attention/query`, h, d, d);
    const k = linear(`${s}/attention/key`, h, d, d);
    const v = linear(`${s}/attention/value`, h, d, d);
    const kt = node(`${s}/attention/Transpose`, 'Transpose', [k], { perm: A.ints([0, 2, 1]) });
    const scores = node(`${s}/attention/Mul`, 'Mul', [node(`${s}/attention/MatMul`, 'MatMul', [q, kt]), 'attention.scale']);
    const ctx = node(`${s}/attention/MatMul_1`, 'MatMul', [node(`${s}/attention/Softmax`, 'Softmax', [scores], { axis: A.int(-1) }), v]);
    h = ln(`${s}/attn_norm`, node(`${s}/attention/Add`, 'Add', [linear(`${s}/attention/output`, ctx, d, d), h]));
    const f = linear(`${s}/ffn/out`, node(`${s}/ffn/Relu`, 'Relu', [linear(`${s}/ffn/in`, h, d, ffn)]), ffn, d);
    h = ln(`${s}/ffn_norm`, node(`${s}/ffn/Add`, 'Add', [f, h]));
  }
  const pos = linear('/pos', h, d, 17);
  const ner = linear('/ner', h, d, 9);
  nodes.push({ name: '/pos/Identity', op_type: 'Identity', input: [pos], output: ['pos_logits'] });
  nodes.push({ name: '/ner/Identity', op_type: 'Identity', input: [ner], output: ['ner_logits'] });
  const vi = (name, elem, dims) => ({ name, type: { tensor_type: { elem_type: elem, shape: { dim: dims.map((x) => (typeof x === 'number' ? { dim_value: x } : { dim_param: x })) } } } });
  const proto = {
    ir_version: 8,
    producer_name: 'grl-onnx bench-patch',
    opset_import: [{ domain: '', version: 17 }],
    graph: {
      name: 'bert-base-bench',
      node: nodes,
      initializer: inits,
      input: [vi('input_ids', 7, ['batch', 'sequence']), vi('token_type_ids', 7, ['batch', 'sequence'])],
      output: [vi('pos_logits', 1, ['batch', 'sequence', 17]), vi('ner_logits', 1, ['batch', 'sequence', 9])],
    },
  };
  saveModel({ proto, source: dest, unknownFields: [] }, dest);
  const params = inits.reduce((a, t) => a + t.dims.reduce((x, y) => x * y, 1), 0);
  process.stderr.write(`generated ${dest}: ${params.toLocaleString('en-US')} parameters, ${MB(fs.statSync(dest).size)} MB\n`);
}
