"""A fresh BertModel-layout encoder for scripts/pretrain-encoder.sh: the architecture and parameter
names of Hugging Face's `BertModel` (scripts/export_encoder.py's modules), without the pooler (MLM
pretraining never trains it), exported like optimum exports an encoder: inputs input_ids,
attention_mask, token_type_ids; one output last_hidden_state [batch, sequence, d]; opset 17;
BERT's N(0, 0.02) init plus seeded noise (the exporter merges equal initializers otherwise).

    /usr/bin/python3 scripts/pretrain/export_init.py TOKENIZER.json OUT.onnx [--d 128] [--layers 4]
        [--heads 4] [--ffn 512] [--max-pos 128] [--seed 20261206]

The vocabulary size is the tokenizer's. The MLM head is added afterwards by `grl-onnx heads add --mlm`.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import export_encoder as ee  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('tokenizer')
    ap.add_argument('out')
    ap.add_argument('--d', type=int, default=128)
    ap.add_argument('--layers', type=int, default=4)
    ap.add_argument('--heads', type=int, default=4)
    ap.add_argument('--ffn', type=int, default=512)
    ap.add_argument('--max-pos', type=int, default=128)
    ap.add_argument('--seed', type=int, default=20261206)
    a = ap.parse_args()
    with open(a.tokenizer) as f:
        tok = json.load(f)
    vocab = max([*tok['model']['vocab'].values(), *(t['id'] for t in tok['added_tokens'])]) + 1
    c = ee.Config(vocab=vocab, d=a.d, layers=a.layers, heads=a.heads, ffn=a.ffn, max_pos=a.max_pos)
    ee.torch.manual_seed(a.seed)
    model = ee.BertModel(c, pooler=False)
    model.output_names = ['last_hidden_state']
    ee.init_bert(model, a.seed)
    model.eval()
    _, mapping = ee.export(model, a.out, 17)
    n = sum(p.numel() for p in model.parameters())
    print(f'{a.out}: BertModel (no pooler) vocab {vocab}, d={a.d}, layers={a.layers}, heads={a.heads}, ffn={a.ffn}, '
          f'{a.max_pos} positions, opset 17, {n:,} parameters in {len(mapping)} initializers, {os.path.getsize(a.out):,} bytes')


if __name__ == '__main__':
    main()
