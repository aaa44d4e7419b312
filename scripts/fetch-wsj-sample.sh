#!/bin/sh
# Optional gold data: the Penn Treebank WSJ sample with gold POS tags that Debian's
# python3-pattern ships (test/corpora/tagged-en-wsj.txt, word/TAG lines, ~25k tokens).
# Its README says it is for personal use: it is never committed. Fetched with
# `apt-get download` (no install, no root needed beyond apt's cache) into gold/
# (gitignored). Then, for example:
#
#   grl-onnx data prepare gold/tagged-en-wsj.txt --format wordtag \
#     --tokenizer models/bert-base-uncased-tokenizer.json --label pos=tag -o gold/wsj.jsonl
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/gold"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod a+rwx "$tmp" # apt fetches as the _apt user when it can
cd "$tmp"
apt-get download python3-pattern >/dev/null
deb=$(ls python3-pattern_*.deb)
dpkg-deb --fsys-tarfile "$deb" | tar -x ./usr/share/doc/python3-pattern/test/corpora/tagged-en-wsj.txt ./usr/share/doc/python3-pattern/test/corpora/README.txt
mkdir -p "$out"
cp usr/share/doc/python3-pattern/test/corpora/tagged-en-wsj.txt "$out/tagged-en-wsj.txt"
cp usr/share/doc/python3-pattern/test/corpora/README.txt "$out/README-pattern-corpora.txt"
echo "wrote $out/tagged-en-wsj.txt ($(wc -w < "$out/tagged-en-wsj.txt") tokens, from $deb); see $out/README-pattern-corpora.txt for its terms"
