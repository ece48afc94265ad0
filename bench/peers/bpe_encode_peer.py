"""Peer for tfm_bench_tokenize: GPT-2's reference byte-level BPE algorithm in Python.

This is the algorithm GPT-2's encoder.json / vocab.bpe were released with (a regex pre-tokenizer, the
bytes-to-unicode alphabet, then repeatedly merging the lowest-ranked adjacent pair of each word, with a
per-word cache), written here from that description. Hugging Face `tokenizers` and tiktoken (the faster
peers) are not installable on this machine (no network for pip, not packaged by Debian).

It encodes both sides of bible-en-es/train.tsv, checks that its ids equal tfm's output (`tfm tokenize`
ids, given with --expect), and prints MB/s for a cold and a warm pass on one thread.

    python3 bench/peers/bpe_encode_peer.py --tokenizer ../shared/fixtures/tokenizers/gpt2 \
        --tsv ../shared/data/bible-en-es/train.tsv [--expect ids.txt]

Needs the `regex` module (for \\p{L} / \\p{N}).
"""
import argparse
import json
import time

import regex

SPLIT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_alphabet():
    """GPT-2's map from each byte to a printable character: printable Latin-1 bytes map to themselves, the
    others to U+0100 onwards in byte order."""
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class Gpt2Bpe:
    def __init__(self, folder):
        with open(f"{folder}/encoder.json", encoding="utf-8") as f:
            self.ids = json.load(f)
        with open(f"{folder}/vocab.bpe", encoding="utf-8") as f:
            lines = [line for line in f.read().split("\n")[1:] if line]
        self.rank = {tuple(line.split(" ")): r for r, line in enumerate(lines)}
        self.alphabet = byte_alphabet()
        self.cache = {}

    def word_tokens(self, word):
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.rank.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            best_rank, _ = min(pairs)
            if best_rank == float("inf"):
                break
            first, second = next((parts[i], parts[i + 1]) for r, i in pairs if r == best_rank)
            merged, i = [], 0
            while i < len(parts):  # merge every occurrence of the best pair, left to right
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def encode(self, text):
        out = []
        for piece in SPLIT.findall(text):
            word = "".join(self.alphabet[b] for b in piece.encode("utf-8"))
            ids = self.cache.get(word)
            if ids is None:
                ids = [self.ids[t] for t in self.word_tokens(word)]
                self.cache[word] = ids
            out.extend(ids)
        return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer", required=True, help="folder with encoder.json and vocab.bpe")
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--expect", help="tfm's ids, one line of space-separated ids per text")
    args = parser.parse_args()
    texts = []
    with open(args.tsv, encoding="utf-8") as f:
        for line in f:
            texts.extend(line.rstrip("\n").split("\t"))
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    bpe = Gpt2Bpe(args.tokenizer)
    for name in ("cold", "warm"):
        start = time.perf_counter()
        encoded = [bpe.encode(t) for t in texts]
        seconds = time.perf_counter() - start
        print(f"python reference BPE, {name} cache: {megabytes / seconds:.2f} MB/s ({megabytes:.2f} MB, 1 thread)")
    if args.expect:
        with open(args.expect) as f:
            expected = [[int(x) for x in line.split()] for line in f]
        same = sum(a == b for a, b in zip(encoded, expected))
        print(f"ids equal to tfm's on {same} of {len(texts)} texts" + ("" if len(expected) == len(texts) else
              f" (tfm gave {len(expected)} lines)"))


if __name__ == "__main__":
    main()
