#!/usr/bin/env bash
# The experiment's "pretrained encoder": export a fresh tiny tagger sized to the
# shipped vocabulary (PyTorch, scripts only), then train it on data/train.jsonl
# with grl-onnx's own trainer. Writes models/tiny-tagger-init.onnx and
# models/tiny-tagger.onnx. Deterministic for a given machine and thread count.
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 scripts/export_fixtures.py --tagger-init data/vocab.txt models/tiny-tagger-init.onnx \
  --layers 2 --d 128 --pos-classes 17 --ner-classes 7 --max-pos 64 --opset 17
run=$(mktemp -d)
node bin/grl-onnx.js train models/tiny-tagger-init.onnx --data data/train.jsonl --eval data/dev.jsonl \
  --loss pos --loss ner --optimizer adamw --lr 2e-3 --lr-schedule linear --warmup 50 \
  --epochs 4 --batch-size 32 --seed 1 --eval-every 250 --out "$run" --json > "$run/log.jsonl"
tail -n 1 "$run/log.jsonl"
cp "$run/model.onnx" models/tiny-tagger.onnx
