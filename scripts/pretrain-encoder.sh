#!/usr/bin/env bash
# Pretrain the shipped encoder, models/pretrained/, with grl-onnx's own trainer: masked-language
# modelling only (it never sees a POS label), then measure what it learned. See
# models/pretrained/README.md for the choices and the numbers of the committed run.
#
#   bash scripts/pretrain-encoder.sh [WORK_DIR]
#
# Environment knobs (defaults = the committed run): STEPS, BATCH, LR, D, LAYERS, HEADS, FFN,
# MAX_POS, MAX_LENGTH (training lines cut to it), MIN_COUNT (vocabulary cut-off), KJV (verses of the King James Bible added; 0 = none),
# SEED, THREADS. Needs /usr/bin/python3 with torch (Debian python3-torch) for the fresh encoder,
# and Debian's bible-kjv (installed here if missing; public domain text).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${1:-$(mktemp -d /tmp/grl-pretrain-XXXXXX)}
STEPS=${STEPS:-600}
BATCH=${BATCH:-64}
LR=${LR:-2e-3}
D=${D:-128}
LAYERS=${LAYERS:-4}
HEADS=${HEADS:-4}
FFN=${FFN:-512}
MAX_POS=${MAX_POS:-128}
MAX_LENGTH=${MAX_LENGTH:-64}
MIN_COUNT=${MIN_COUNT:-3}
KJV=${KJV:-31102}
SEED=${SEED:-1}
THREADS=${THREADS:-2}
OUT=models/pretrained
GRL="node bin/grl-onnx.js"
mkdir -p "$WORK" "$OUT"
echo "work dir: $WORK"

if ! command -v bible >/dev/null; then
  apt-get install -y bible-kjv bible-kjv-text >/dev/null || { apt-get update >/dev/null && apt-get install -y bible-kjv bible-kjv-text >/dev/null; }
fi
npx tsc -p . >/dev/null

# 1. Text: fortunes train sentences + KJV verses; dev/test fortunes held out.
node scripts/pretrain/corpus.js "$WORK" --kjv "$KJV"
# 2. bert-base-uncased WordPiece cut to the corpus.
node scripts/pretrain/vocab.js "$WORK/train.txt" "$OUT/tokenizer.json" --min-count "$MIN_COUNT"
# 3. A fresh BertModel-layout encoder and a tied BERT MLM head.
/usr/bin/python3 scripts/pretrain/export_init.py "$OUT/tokenizer.json" "$WORK/init.onnx" \
  --d "$D" --layers "$LAYERS" --heads "$HEADS" --ffn "$FFN" --max-pos "$MAX_POS" --seed "$SEED"
$GRL heads add "$WORK/init.onnx" --mlm --seed "$SEED" -o "$WORK/init-mlm.onnx"
# 4. Pretraining: MLM, AdamW, linear decay with warm-up.
start=$(date +%s)
$GRL train "$WORK/init-mlm.onnx" --data "$WORK/train.txt" --eval "$WORK/dev.txt" --tokenizer "$OUT/tokenizer.json" \
  --max-length "$MAX_LENGTH" --loss mlm --optimizer adamw --lr "$LR" --lr-schedule linear --warmup $((STEPS / 20)) --weight-decay 0.01 \
  --grad-clip 1 --steps "$STEPS" --batch-size "$BATCH" --seed "$SEED" --eval-every $((STEPS / 5)) \
  --threads "$THREADS" --json --out "$WORK/run" > "$WORK/train.log"
seconds=$(( $(date +%s) - start ))
echo "pretraining: $seconds s wall"
grep '"eval"' "$WORK/train.log"
tail -1 "$WORK/train.log"
# 5. Ship: the encoder with its MLM head, and the encoder alone.
cp "$WORK/run/model.onnx" "$OUT/encoder-mlm.onnx"
$GRL heads remove "$OUT/encoder-mlm.onnx" mlm -o "$OUT/encoder.onnx"
ls -l "$OUT"

# 6. What it learned. MLM on held-out fortunes vs unigram baselines (and the untrained init).
for split in dev test; do
  node scripts/pretrain/evaluate.js "$OUT/encoder-mlm.onnx" "$OUT/tokenizer.json" "$WORK/train.txt" "$WORK/$split.txt" --seed "$SEED" --max-length "$MAX_LENGTH" | tee "$WORK/mlm-$split.json"
done
node scripts/pretrain/evaluate.js "$WORK/init-mlm.onnx" "$OUT/tokenizer.json" "$WORK/train.txt" "$WORK/test.txt" --seed "$SEED" --max-length "$MAX_LENGTH" | tee "$WORK/mlm-test-init.json"
# POS: a linear probe on the frozen encodings (first subword of each word), with the control task
# (Hewitt & Liang), on the pretrained encoder and on the untrained init. `probe` names its labels
# through a head: an (untrained) pos head is added only for that; the probe reads last_hidden_state.
for model in "$OUT/encoder.onnx" "$WORK/init.onnx"; do
  name=$(basename "$model" .onnx)
  $GRL heads add "$model" --head pos:17 --seed "$SEED" -o "$WORK/$name-pos.onnx" >/dev/null
  $GRL probe "$WORK/$name-pos.onnx" --tokenizer "$OUT/tokenizer.json" --labels-from data/labels.json \
    --data data/words/train.jsonl --eval data/words/test.jsonl --label pos=pos --at last_hidden_state \
    --control --seed "$SEED" --threads "$THREADS" --json > "$WORK/probe-$name.json"
  node -e 'const r = require(process.argv[1]); console.log(JSON.stringify({ model: process.argv[2], accuracy: r.accuracy, majority: r.majority.accuracy, control: r.control && r.control.accuracy, selectivity: r.selectivity, trainRows: r.trainRows, rows: r.rows }))' "$WORK/probe-$name.json" "$name"
done
node scripts/pretrain/results.js "$WORK" "$OUT/results.json" "$seconds"
