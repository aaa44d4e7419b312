"""PyTorch side of scripts/bench-torch.js (issue 13): the benchmark models, built once in
PyTorch and exported to ONNX, so grl-onnx and PyTorch time the same definition and weights.

    /usr/bin/python3 scripts/bench_torch.py export ROW DIR     # DIR/ROW.onnx + DIR/ROW.pt
    /usr/bin/python3 scripts/bench_torch.py time ROW DIR [--batch 8 --tokens 128 --runs 20
        --warmup 3 --threads 2 --only step]                    # one JSON line of medians
    /usr/bin/python3 scripts/bench_torch.py blas [--threads 2] # GFLOP/s of a 1024^2 matmul

Rows: train14 / train17 (scripts/fixture_models.py's bench tagger, opset 14 / 17), hf (the
Hugging Face BertModel layout of scripts/export_encoder.py, same size, two linear token heads
pos/ner, opset 17), bert-base (the same at BERT-base size). Never run by tests.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_encoder as ee  # noqa: E402
import export_fixtures as ef  # noqa: E402
import fixture_models as fm  # noqa: E402

HEADS = {'pos': 17, 'ner': 9}
SEED = 20261213


class HFTagger(nn.Module):
    """BertModel (HF names, no pooler) with two linear token heads, as `heads add` puts them."""
    input_names = ee.BertModel.input_names
    output_names = ['pos_logits', 'ner_logits']

    def __init__(self, c):
        super().__init__()
        self.cfg = c
        self.bert = ee.BertModel(c, pooler=False)
        self.pos = nn.Linear(c.d, HEADS['pos'])
        self.ner = nn.Linear(c.d, HEADS['ner'])

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.bert(input_ids, attention_mask, token_type_ids)[0]
        return self.pos(h), self.ner(h)


def build(row):
    if row in ('train14', 'train17'):
        return fm.build('tagger', fm.BENCH_TRAIN, SEED, style='bert'), (14 if row == 'train14' else 17)
    size = {'hf': dict(vocab=8000, d=256, layers=4, heads=4, ffn=1024),
            'bert-base': dict(vocab=30522, d=768, layers=12, heads=12, ffn=3072)}.get(row)
    if size is None:
        sys.exit(f'bench_torch.py: unknown row {row}; use train14, train17, hf or bert-base')
    torch.manual_seed(SEED)
    model = HFTagger(ee.Config(max_pos=512, **size))
    ee.init_bert(model, SEED)
    return model.eval(), 17


def run_export(row, out_dir):
    model, opset = build(row)
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, f'{row}.onnx')
    (ef.export_checked if row.startswith('train') else ee.export)(model, onnx_path, opset)
    torch.save(model.state_dict(), os.path.join(out_dir, f'{row}.pt'))
    n = sum(p.numel() for p in model.parameters())
    print(f'{onnx_path}: {row}, opset {opset}, {n:,} parameters')


def blas_gflops(threads):
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    ts = []
    for _ in range(10):
        t = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t)
    return 2 * 1024 ** 3 / statistics.median(ts) / 1e9


def timed(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return ts


def run_time(a):
    torch.set_num_threads(a.threads)
    model, _ = build(a.row)
    model.load_state_dict(torch.load(os.path.join(a.dir, f'{a.row}.pt')))
    model.eval()  # no dropout: the exported graph grl-onnx trains has none either
    g = torch.Generator().manual_seed(1)
    vocab = max(m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding))
    ids = torch.randint(0, vocab, (a.batch, a.tokens), generator=g)
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)
    labels = [torch.randint(0, c, (a.batch, a.tokens), generator=g) for c in HEADS.values()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def forward():
        with torch.inference_mode():
            model(ids, mask, types)

    def step():
        outs = model(ids, mask, types)
        loss = sum(F.cross_entropy(o.reshape(-1, o.shape[-1]), y.reshape(-1), ignore_index=-100)
                   for o, y in zip(outs, labels))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    r = {'row': a.row, 'threads': torch.get_num_threads(), 'torch': torch.__version__}
    if a.only != 'step':
        r['forward_ms'] = timed(forward, a.warmup, a.runs)
    if a.only != 'forward':
        r['step_ms'] = timed(step, a.warmup, a.runs)
    r['peak_rss_bytes'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(r))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('cmd', choices=['export', 'time', 'blas'])
    p.add_argument('row', nargs='?')
    p.add_argument('dir', nargs='?')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--tokens', type=int, default=128)
    p.add_argument('--runs', type=int, default=20)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--only', choices=['forward', 'step'])
    a = p.parse_args()
    if a.cmd == 'blas':
        print(json.dumps({'gflops': blas_gflops(a.threads), 'torch': torch.__version__}))
    elif a.cmd == 'export':
        run_export(a.row, a.dir)
    else:
        run_time(a)


if __name__ == '__main__':
    main()
