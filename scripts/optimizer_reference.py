"""Optimizer references: three steps of torch.optim.AdamW and torch.optim.SGD (with
torch.nn.utils.clip_grad_norm_) on a small flat parameter vector, for
test/train/optimizer.test.ts.

    /usr/bin/python3 scripts/optimizer_reference.py   # writes test/fixtures/optimizer-ref.json

Tests never run this: they read the committed JSON. Inputs are float32 values
generated here and stored in the JSON, so the test feeds exactly the same numbers.
"""
import json
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'optimizer-ref.json')

CASES = [
    # name, optimizer, kwargs, max_grad_norm (<= 0: no clipping)
    ('adamw', 'adamw', dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), 0.0),
    ('adamw_clip', 'adamw', dict(lr=3e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), 0.5),
    ('sgd', 'sgd', dict(lr=0.1, momentum=0.0, weight_decay=0.0), 0.0),
    ('sgd_momentum_wd', 'sgd', dict(lr=0.05, momentum=0.9, weight_decay=0.01), 0.0),
    ('sgd_momentum_clip', 'sgd', dict(lr=0.05, momentum=0.9, weight_decay=0.0), 0.3),
]


def run(kind, kwargs, max_norm, p0, grads):
    p = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([p], **kwargs) if kind == 'adamw' else torch.optim.SGD([p], **kwargs)
    steps = []
    for g in grads:
        p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_([p], max_norm) if max_norm > 0 else torch.linalg.vector_norm(p.grad)
        opt.step()
        st = opt.state[p]
        state = {k: v.tolist() for k, v in st.items() if torch.is_tensor(v) and v.numel() > 1}
        steps.append({'params': p.detach().tolist(), 'grad_norm': float(norm), 'state': state})
    return steps


def main():
    torch.manual_seed(0)
    n = 12
    p0 = torch.randn(n, dtype=torch.float32)
    grads = [torch.randn(n, dtype=torch.float32) * s for s in (1.0, 0.5, 2.0)]
    out = {'torch': torch.__version__, 'params': p0.tolist(), 'grads': [g.tolist() for g in grads], 'cases': []}
    for name, kind, kwargs, max_norm in CASES:
        hp = dict(kwargs)
        if 'betas' in hp:
            hp['beta1'], hp['beta2'] = hp.pop('betas')
        out['cases'].append({'name': name, 'optimizer': kind, 'hyper': hp, 'max_grad_norm': max_norm,
                             'steps': run(kind, kwargs, max_norm, p0, grads)})
    with open(OUT, 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')
    print('wrote', os.path.relpath(OUT))


if __name__ == '__main__':
    main()
