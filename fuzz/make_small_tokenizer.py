#!/usr/bin/env python3
"""Writes fuzz/corpus/mt-en-es-small.tokenizer.json: the mt-en-es tokenizer cut to its first merges.

mt-en-es numbers its vocabulary as Hugging Face's BPE trainer does: the added tokens, then the 256 byte
characters, then the result of merge r at id 259 + r. Keeping the first MERGES merges and the ids below
259 + MERGES is therefore again a complete byte-level BPE tokenizer (same added tokens, pre-tokenizer,
TemplateProcessing post-processor and decoder), small enough to commit.

Usage: fuzz/make_small_tokenizer.py [../shared/models/mt-en-es/tokenizer.json]
"""
import json
import pathlib
import sys

MERGES = 600

source = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/models/mt-en-es/tokenizer.json"
tokenizer = json.loads(pathlib.Path(source).read_text(encoding="utf-8"))
model = tokenizer["model"]
first_merge_id = len(model["vocab"]) - len(model["merges"])
for rank, (left, right) in enumerate(model["merges"]):
    token_id = first_merge_id + rank
    if model["vocab"].get(left + right) != token_id:
        sys.exit(f"{source}: merge {rank} does not produce token {token_id}; cannot cut the vocabulary")
model["merges"] = model["merges"][:MERGES]
model["vocab"] = {token: i for token, i in model["vocab"].items() if i < first_merge_id + MERGES}
target = pathlib.Path(__file__).parent / "corpus" / "mt-en-es-small.tokenizer.json"
target.write_text(json.dumps(tokenizer, ensure_ascii=False) + "\n", encoding="utf-8")
print(f"{target}: {len(model['vocab'])} tokens, {len(model['merges'])} merges")
