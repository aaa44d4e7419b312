#!/bin/sh
# Reference gradients for heads added by `grl-onnx heads add` (test/heads/reference.test.ts):
# builds the heads on the mini encoder with the CLI, then lets PyTorch rebuild the same heads
# from the written weights and record every gradient. Needs `npm run build` and /usr/bin/python3.
#   sh scripts/make-heads-references.sh
set -e
cd "$(dirname "$0")/.."
G="node bin/grl-onnx.js"
MINI=test/fixtures/encoders/bert-mini.onnx
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# Three heads: a token head with a GRL, a mean-pooled sequence head with an MLP, a CLS-pooled sequence head.
$G heads add $MINI --head pos:5 --adversarial pos:0.3 --seed 11 -o "$T/a.onnx"
$G heads add "$T/a.onnx" --head sent:3:seq --pool mean --mlp 8 --seed 11 -o "$T/b.onnx"
$G heads add "$T/b.onnx" --head topic:4:seq --pool cls --seed 11 -o "$T/heads.onnx"
/usr/bin/python3 scripts/export_encoder.py reference "$T/heads.onnx" heads-mini
# The MLM head, decoder tied to the word embeddings.
$G heads add $MINI --mlm --seed 11 -o "$T/mlm.onnx"
/usr/bin/python3 scripts/export_encoder.py reference "$T/mlm.onnx" mlm-mini
