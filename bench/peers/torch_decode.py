"""PyTorch peer for tfm's decoding benchmarks: Marian translation and GPT-2 generation with a KV cache.

Plain PyTorch (no Hugging Face `transformers`, which is not installable here), written from the Hugging Face
architectures and from `generate`'s decoding rules (transformers 5.x), so that its output can be checked
against the reference decodes in ../shared/models before its speed is quoted:

  translate   mt-en-es (MarianMT) on the English side of a TSV, greedy or beam search, batched; prints
              generated tokens/s, wall seconds, peak RSS and how many lines equal the reference decode.
  kjv         lm-kjv (GPT-2) batch-1 greedy continuation of the six prompts in its scores.json; prints
              tokens/s and whether the ids equal the reference ids. `--no-cache` recomputes the whole
              prefix at every step (the seed document's way of decoding: the weaker peer).
  gpt2-small  GPT-2 small's shape with random weights, batch 1: pp512 (one forward over a 512-token
              prompt) and tg128 (128 tokens generated one by one with the cache), as llama-bench reports.
  marian-fixture  checks the Marian code against ../shared/fixtures/marian (HF's logits, greedy and beam
              ids, beam score).

Each run prints one JSON line per measurement. Source sentences are tokenized (and translations
detokenized) by tfm's own tokenizer (`tfm tokenize`), since Python `tokenizers` is not installed; that
happens outside the timed region. See README.md in this folder for the fair setup (OpenBLAS's OpenMP build).
"""
import argparse
import json
import math
import resource
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

NEG_LARGE = -1.0e9  # what HF `generate` adds to exclude a beam candidate (kept so that ties and degenerate
# cases order exactly as there)


# ---------------------------------------------------------------------------------------------- safetensors
def read_safetensors(path):
    """Every tensor of a .safetensors file as float32 (or int64) torch tensors.

    Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
    then the raw little-endian data; offsets are relative to the end of the header."""
    with open(path, "rb") as f:
        data = memoryview(f.read())
    if len(data) < 8:
        sys.exit(f"{path}: too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        sys.exit(f"{path}: header length {header_len} runs past the end of the file ({len(data)} bytes)")
    header = json.loads(bytes(data[8 : 8 + header_len]))
    body = data[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        shape = info["shape"]
        if not 0 <= begin <= end <= len(body):
            sys.exit(f"{path}: tensor {name} has data offsets {begin}..{end} outside the data ({len(body)})")
        raw = body[begin:end]
        dtype = info["dtype"]
        if dtype == "F32":
            array = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            array = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dtype == "BF16":  # the top 16 bits of a float32
            array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype == "I64":
            array = np.frombuffer(raw, dtype="<i8")
        else:
            sys.exit(f"{path}: tensor {name} has unsupported dtype {dtype}")
        if array.size != math.prod(shape):
            sys.exit(f"{path}: tensor {name} has {array.size} values, shape {shape} needs {math.prod(shape)}")
        tensors[name] = torch.from_numpy(array.reshape(shape).copy())
    return tensors


def take(weights, name):
    if name not in weights:
        sys.exit(f"weight {name} missing from the safetensors file")
    return weights[name]


# ------------------------------------------------------------------------------------------ shared pieces
class KVCache:
    """One attention layer's keys and values [rows, heads, capacity, head_dim].

    Appending writes in place; the capacity doubles when full (so memory follows the longest sequence, not
    the limit). `select(rows)` keeps and reorders rows (beam reordering, finished rows dropped): the used
    prefix is gathered into spare buffers, which then swap with the current ones."""

    def __init__(self, rows, heads, head_dim, capacity=64):
        self.keys = torch.empty(rows, heads, capacity, head_dim)
        self.values = torch.empty(rows, heads, capacity, head_dim)
        self.spare = None
        self.rows = rows
        self.length = 0

    def append(self, k, v):
        end = self.length + k.shape[2]
        if end > self.keys.shape[2]:
            self._grow(max(end, 2 * self.keys.shape[2]))
        self.keys[: self.rows, :, self.length : end] = k
        self.values[: self.rows, :, self.length : end] = v
        self.length = end
        return self.keys[: self.rows, :, :end], self.values[: self.rows, :, :end]

    def select(self, rows):
        if self.spare is None:
            self.spare = (torch.empty_like(self.keys), torch.empty_like(self.values))
        t, n = self.length, rows.numel()
        spare_keys, spare_values = self.spare
        torch.index_select(self.keys[: self.rows, :, :t], 0, rows, out=spare_keys[:n, :, :t])
        torch.index_select(self.values[: self.rows, :, :t], 0, rows, out=spare_values[:n, :, :t])
        self.spare = (self.keys, self.values)
        self.keys, self.values, self.rows = spare_keys, spare_values, n

    def _grow(self, capacity):
        rows, heads, _, head_dim = self.keys.shape
        keys = torch.empty(rows, heads, capacity, head_dim)
        values = torch.empty(rows, heads, capacity, head_dim)
        keys[:, :, : self.length] = self.keys[:, :, : self.length]
        values[:, :, : self.length] = self.values[:, :, : self.length]
        self.keys, self.values, self.spare = keys, values, None


def split_heads(x, heads):
    """[rows, T, heads * head_dim] -> [rows, heads, T, head_dim]"""
    rows, length, width = x.shape
    return x.view(rows, length, heads, width // heads).transpose(1, 2)


def merge_heads(x):
    rows, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(rows, length, heads * head_dim)


def attend(q, k, v, additive_mask=None):
    """softmax(q k^T + mask) v; q is already scaled by head_dim^-0.5 (torch 1.13 has no fused SDPA)."""
    scores = torch.matmul(q, k.transpose(-1, -2))
    if additive_mask is not None:
        scores = scores + additive_mask
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def linear(x, weight, bias=None):
    """F.linear, except that a single row goes through BLAS matrix-vector (sgemv): PyTorch 1.13 sends a
    one-row F.linear to sgemm, which OpenBLAS runs 4-8x slower than sgemv on this machine (batch-1 decoding
    is all such products)."""
    if x.numel() != x.shape[-1]:
        return F.linear(x, weight, bias)
    row = x.reshape(-1)
    y = torch.mv(weight, row) if bias is None else torch.addmv(bias, weight, row)
    return y.view(*x.shape[:-1], weight.shape[0])


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


# ------------------------------------------------------------------------------------------------- Marian
def marian_positions(count, dim):
    """MarianSinusoidalPositionalEmbedding: angle(p, i) = p / 10000^(2i/dim) for i < dim/2, sin of it in
    the first half of the vector and cos in the second (not interleaved); computed in float64."""
    position = np.arange(count, dtype=np.float64)[:, None]
    rates = np.power(10000.0, -2.0 * np.arange(dim // 2, dtype=np.float64) / dim)[None, :]
    table = np.concatenate([np.sin(position * rates), np.cos(position * rates)], axis=1)
    return torch.from_numpy(table.astype(np.float32))


class MarianAttention:
    """q/k/v/out projections with biases; q, k, v fused into one GEMM for self-attention and k, v for
    cross-attention (the same arithmetic as three separate projections)."""

    def __init__(self, weights, prefix, heads):
        w = {p: take(weights, f"{prefix}.{p}_proj.weight") for p in "qkv"}
        b = {p: take(weights, f"{prefix}.{p}_proj.bias") for p in "qkv"}
        self.heads = heads
        self.scale = (w["q"].shape[0] // heads) ** -0.5
        self.qkv_weight = torch.cat([w["q"], w["k"], w["v"]])
        self.qkv_bias = torch.cat([b["q"], b["k"], b["v"]])
        self.q_weight, self.q_bias = w["q"], b["q"]
        self.kv_weight = torch.cat([w["k"], w["v"]])
        self.kv_bias = torch.cat([b["k"], b["v"]])
        self.out_weight = take(weights, f"{prefix}.out_proj.weight")
        self.out_bias = take(weights, f"{prefix}.out_proj.bias")

    def project_qkv(self, h):
        q, k, v = linear(h, self.qkv_weight, self.qkv_bias).chunk(3, dim=-1)
        return split_heads(q * self.scale, self.heads), split_heads(k, self.heads), split_heads(v, self.heads)

    def project_q(self, h):
        return linear(h, self.q_weight, self.q_bias) * self.scale

    def project_kv(self, h):
        k, v = linear(h, self.kv_weight, self.kv_bias).chunk(2, dim=-1)
        return split_heads(k, self.heads), split_heads(v, self.heads)

    def output(self, context):
        """context [rows, T, d] (heads merged)"""
        return linear(context, self.out_weight, self.out_bias)


class MarianLayer:
    """Post-norm block: x = LN(x + sublayer(x)) for self-attention, [cross-attention,] ReLU FFN."""

    def __init__(self, weights, prefix, heads, is_decoder):
        self.self_attn = MarianAttention(weights, f"{prefix}.self_attn", heads)
        self.cross_attn = MarianAttention(weights, f"{prefix}.encoder_attn", heads) if is_decoder else None
        norm_names = ["self_attn_layer_norm", "final_layer_norm"]
        if is_decoder:
            norm_names.append("encoder_attn_layer_norm")
        self.norms = {
            name: (take(weights, f"{prefix}.{name}.weight"), take(weights, f"{prefix}.{name}.bias"))
            for name in norm_names
        }
        self.fc1 = (take(weights, f"{prefix}.fc1.weight"), take(weights, f"{prefix}.fc1.bias"))
        self.fc2 = (take(weights, f"{prefix}.fc2.weight"), take(weights, f"{prefix}.fc2.bias"))

    def norm(self, name, x):
        weight, bias = self.norms[name]
        return F.layer_norm(x, weight.shape, weight, bias, 1e-5)

    def feed_forward(self, x):
        return self.norm("final_layer_norm", x + linear(F.relu(linear(x, *self.fc1)), *self.fc2))


class Marian:
    def __init__(self, folder):
        with open(f"{folder}/config.json") as f:
            config = json.load(f)
        if config.get("model_type") != "marian":
            sys.exit(f"{folder}/config.json: model_type {config.get('model_type')!r}, expected 'marian'")
        weights = read_safetensors(f"{folder}/model.safetensors")
        self.d_model = config["d_model"]
        self.heads = config["decoder_attention_heads"]
        self.pad_id = config["pad_token_id"]
        self.eos_id = config["eos_token_id"]
        self.start_id = config["decoder_start_token_id"]
        self.embedding = take(weights, "model.shared.weight")
        self.embed_scale = math.sqrt(self.d_model) if config.get("scale_embedding") else 1.0
        self.positions = marian_positions(config["max_position_embeddings"], self.d_model)
        self.logits_bias = take(weights, "final_logits_bias").reshape(-1)
        self.encoder = [
            MarianLayer(weights, f"model.encoder.layers.{i}", config["encoder_attention_heads"], False)
            for i in range(config["encoder_layers"])
        ]
        self.decoder = [
            MarianLayer(weights, f"model.decoder.layers.{i}", self.heads, True)
            for i in range(config["decoder_layers"])
        ]

    def encode(self, src, src_mask):
        """src [B, S] (pad-filled), src_mask [B, 1, 1, S] additive. Returns [B, S, d]."""
        if src.shape[1] > self.positions.shape[0]:
            limit = self.positions.shape[0]
            sys.exit(f"a source of {src.shape[1]} tokens exceeds max_position_embeddings ({limit})")
        x = self.embedding[src] * self.embed_scale + self.positions[: src.shape[1]]
        for layer in self.encoder:
            q, k, v = layer.self_attn.project_qkv(x)
            context = merge_heads(attend(q, k, v, src_mask))
            x = layer.norm("self_attn_layer_norm", x + layer.self_attn.output(context))
            x = layer.feed_forward(x)
        return x

    def start(self, memory, rows, capacity):
        """Decoder state for `rows` decoder rows per source: cross-attention keys/values computed once per
        source ([B, heads, S, head_dim]; the beams of a source share them) and empty self-attention caches."""
        cross = [layer.cross_attn.project_kv(memory) for layer in self.decoder]
        head_dim = self.d_model // self.heads
        caches = [KVCache(rows, self.heads, head_dim, min(capacity, 64)) for _ in self.decoder]
        return cross, caches

    def step(self, tokens, position, cross, caches, src_mask, beams):
        """One decoder position for every row (B * beams rows, beams of a source adjacent). Returns the
        logits [rows, vocab]. The beams of a source are attended as `beams` query rows of that source's
        cross-attention, so its keys/values are never copied per beam."""
        rows = tokens.shape[0]
        x = (self.embedding[tokens] * self.embed_scale + self.positions[position]).unsqueeze(1)
        for layer, (cross_k, cross_v), cache in zip(self.decoder, cross, caches):
            q, k, v = layer.self_attn.project_qkv(x)
            k, v = cache.append(k, v)
            x = layer.norm("self_attn_layer_norm", x + layer.self_attn.output(merge_heads(attend(q, k, v))))
            q = layer.cross_attn.project_q(x).view(rows // beams, beams, self.heads, -1).transpose(1, 2)
            context = attend(q, cross_k, cross_v, src_mask).transpose(1, 2).reshape(rows, 1, self.d_model)
            x = layer.norm("encoder_attn_layer_norm", x + layer.cross_attn.output(context))
            x = layer.feed_forward(x)
        return linear(x[:, 0], self.embedding, self.logits_bias)


def apply_marian_rules(scores, model, generated, max_new_tokens):
    """HF's processors for this model, in place: pad never generated; at the last allowed position every
    token but EOS is masked (forced_eos_token_id), the EOS score becoming 0."""
    scores[:, model.pad_id] = -math.inf
    if generated == max_new_tokens - 1:
        scores.fill_(-math.inf)
        scores[:, model.eos_id] = 0.0


def padded_batch(model, sources):
    """Sources (id lists, each ending with EOS) -> ids [B, S] padded right with pad, additive mask."""
    length = max(len(s) for s in sources)
    src = torch.full((len(sources), length), model.pad_id, dtype=torch.long)
    for row, ids in enumerate(sources):
        src[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in sources])
    mask = torch.zeros(src.shape).masked_fill_(torch.arange(length)[None, :] >= lengths[:, None], -math.inf)
    return src, mask.view(len(sources), 1, 1, length)


def greedy_translate(model, sources, max_new_tokens):
    """HF greedy `generate`: argmax of the processed logits; a row ends at EOS (forced at the limit).
    Finished rows are dropped from the batch (HF keeps stepping them with pad; their output is the same)."""
    src, src_mask = padded_batch(model, sources)
    cross, caches = model.start(model.encode(src, src_mask), len(sources), max_new_tokens)
    alive = torch.arange(len(sources))  # original row of each live row
    tokens = torch.full((len(sources),), model.start_id, dtype=torch.long)
    outputs = [[] for _ in sources]
    for generated in range(max_new_tokens):
        logits = model.step(tokens, generated, cross, caches, src_mask, beams=1)
        apply_marian_rules(logits, model, generated, max_new_tokens)
        tokens = logits.argmax(dim=-1)
        for row, token in zip(alive.tolist(), tokens.tolist()):
            outputs[row].append(token)
        running = tokens != model.eos_id
        if not bool(running.all()):
            keep = running.nonzero().view(-1)
            if keep.numel() == 0:
                break
            alive, tokens, src_mask = alive[keep], tokens[keep], src_mask[keep]
            cross = [(k[keep], v[keep]) for k, v in cross]
            for cache in caches:
                cache.select(keep)
    return outputs


def beam_translate(model, sources, num_beams, max_new_tokens, length_penalty=1.0, early_stopping=True):
    """HF's vectorised beam search (`_beam_search`, transformers >= 4.50), one returned sequence per source.
    Per step and source: log_softmax of each beam's logits, then the rules; plus the beam's running sum;
    the best 2 * num_beams (beam, token) candidates. Candidates ending with EOS (or at the length limit)
    among the first num_beams are offered to the source's num_beams finished slots with score
    sum / generated_length ** length_penalty (EOS counted); the best num_beams others run on.
    A source stops for good once its best running beam, normalised by the current length, no longer beats
    its worst finished hypothesis (all slots full), or, with early_stopping=True, as soon as its slots are
    full. HF keeps computing such a source but can no longer change its result, so here it is dropped
    from the batch. Returns (tokens, score) per source (HF `sequences_scores`)."""
    batch, vocab = len(sources), model.embedding.shape[0]
    src, src_mask = padded_batch(model, sources)
    cross, caches = model.start(model.encode(src, src_mask), batch * num_beams, max_new_tokens)
    alive = torch.arange(batch)
    running_seqs = torch.full((batch, num_beams, max_new_tokens), model.pad_id, dtype=torch.long)
    running_scores = torch.zeros(batch, num_beams)
    running_scores[:, 1:] = NEG_LARGE  # all beams start equal: only the first one may expand at step 0
    finished_seqs = running_seqs.clone()
    finished_scores = torch.full((batch, num_beams), NEG_LARGE)
    finished_flags = torch.zeros(batch, num_beams, dtype=torch.bool)
    improvable = torch.ones(batch, dtype=torch.bool)
    top_mask = torch.arange(2 * num_beams) < num_beams
    tokens = torch.full((batch * num_beams,), model.start_id, dtype=torch.long)
    results = [None] * batch

    for generated in range(max_new_tokens):
        rows = alive.numel()
        logits = model.step(tokens, generated, cross, caches, src_mask, beams=num_beams)
        log_probs = torch.log_softmax(logits, dim=-1)
        apply_marian_rules(log_probs, model, generated, max_new_tokens)
        totals = (log_probs.view(rows, num_beams, vocab) + running_scores[:, :, None]).view(rows, -1)
        cand_scores, cand_index = torch.topk(totals, 2 * num_beams, dim=1)
        cand_beam, cand_token = cand_index // vocab, cand_index % vocab
        cand_seqs = torch.gather(running_seqs, 1, cand_beam[:, :, None].expand(-1, -1, max_new_tokens))
        cand_seqs[:, :, generated] = cand_token
        hits = cand_token == model.eos_id
        if generated + 1 == max_new_tokens:  # HF MaxLengthCriteria: every candidate ends here
            hits.fill_(True)

        # the beams that run on: the best num_beams candidates that did not finish
        run_scores = cand_scores + hits.float() * NEG_LARGE
        chosen = torch.topk(run_scores, num_beams, dim=1).indices
        running_scores = torch.gather(run_scores, 1, chosen)
        running_seqs = torch.gather(cand_seqs, 1, chosen[:, :, None].expand(-1, -1, max_new_tokens))
        parent = torch.gather(cand_beam, 1, chosen)

        # finished slots: merge the newly finished top candidates, normalised, with the kept ones
        just_finished = hits & top_mask
        normalised = cand_scores / float(generated + 1) ** length_penalty
        normalised += (~improvable).float()[:, None] * NEG_LARGE + (~just_finished).float() * NEG_LARGE
        merged_scores = torch.cat([finished_scores, normalised], dim=1)
        best = torch.topk(merged_scores, num_beams, dim=1).indices
        finished_scores = torch.gather(merged_scores, 1, best)
        finished_seqs = torch.gather(
            torch.cat([finished_seqs, cand_seqs], dim=1), 1, best[:, :, None].expand(-1, -1, max_new_tokens)
        )
        finished_flags = torch.gather(torch.cat([finished_flags, just_finished], dim=1), 1, best)

        # HF's early-stop heuristic: the best running beam normalised by the length after this step
        best_running = running_scores[:, 0] / float(generated + 1) ** length_penalty
        worst_finished = torch.where(
            finished_flags, finished_scores.min(dim=1, keepdim=True).values, torch.tensor(NEG_LARGE)
        )
        improvable = improvable & (best_running[:, None] > worst_finished).any(dim=1)
        if early_stopping:  # HF early_stopping=True: a source with its slots full takes no more hypotheses
            improvable = improvable & ~finished_flags.all(dim=1)
        stop = not bool(improvable.any()) or bool(hits.all())
        for row in range(rows) if stop else (~improvable).nonzero().view(-1).tolist():
            results[int(alive[row])] = (finished_seqs[row, 0].tolist(), float(finished_scores[row, 0]))
        if stop:
            break
        keep = improvable.nonzero().view(-1)

        # drop finished sources, reorder the caches to the chosen beams' parents
        if keep.numel() < rows:
            alive, running_seqs, running_scores = alive[keep], running_seqs[keep], running_scores[keep]
            finished_seqs, finished_scores = finished_seqs[keep], finished_scores[keep]
            finished_flags, improvable, parent = finished_flags[keep], improvable[keep], parent[keep]
            src_mask = src_mask[keep]
            cross = [(k[keep], v[keep]) for k, v in cross]
        cache_rows = (keep[:, None] * num_beams + parent).view(-1)
        for cache in caches:
            cache.select(cache_rows)
        tokens = running_seqs[:, :, generated].reshape(-1)

    return [(trim_after_eos(seq, model.eos_id), score) for seq, score in results]


def trim_after_eos(ids, eos_id):
    return ids[: ids.index(eos_id) + 1] if eos_id in ids else ids


# -------------------------------------------------------------------------------------------------- GPT-2
class GPT2:
    """GPT-2: learned positions, pre-LN blocks, gelu_new (tanh approximation), Conv1D weights stored (in, out)
    (transposed once here for F.linear), final LayerNorm, head tied to the token embedding."""

    def __init__(self, config, weights):
        self.heads = config["n_head"]
        self.d_model = config["n_embd"]
        self.layers_count = config["n_layer"]
        self.context = config["n_positions"]
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        self.wte = take(weights, "transformer.wte.weight")
        self.wpe = take(weights, "transformer.wpe.weight")
        self.ln_f = (take(weights, "transformer.ln_f.weight"), take(weights, "transformer.ln_f.bias"))
        self.blocks = []
        for i in range(self.layers_count):
            p = f"transformer.h.{i}"

            def conv1d(name):
                return take(weights, f"{p}.{name}.weight").t().contiguous(), take(weights, f"{p}.{name}.bias")

            self.blocks.append(
                {
                    "ln_1": (take(weights, f"{p}.ln_1.weight"), take(weights, f"{p}.ln_1.bias")),
                    "ln_2": (take(weights, f"{p}.ln_2.weight"), take(weights, f"{p}.ln_2.bias")),
                    "c_attn": conv1d("attn.c_attn"),
                    "attn_proj": conv1d("attn.c_proj"),
                    "c_fc": conv1d("mlp.c_fc"),
                    "mlp_proj": conv1d("mlp.c_proj"),
                }
            )

    @staticmethod
    def from_folder(folder):
        with open(f"{folder}/config.json") as f:
            config = json.load(f)
        if config.get("model_type") != "gpt2":
            sys.exit(f"{folder}/config.json: model_type {config.get('model_type')!r}, expected 'gpt2'")
        return GPT2(config, read_safetensors(f"{folder}/model.safetensors"))

    @staticmethod
    def random(layers, d_model, heads, vocab, context, seed=0):
        """GPT-2's initialisation (normal std 0.02, LayerNorms 1 and 0); the speed does not depend on it."""
        generator = torch.Generator().manual_seed(seed)
        weights = {
            "transformer.wte.weight": torch.randn(vocab, d_model, generator=generator) * 0.02,
            "transformer.wpe.weight": torch.randn(context, d_model, generator=generator) * 0.02,
            "transformer.ln_f.weight": torch.ones(d_model),
            "transformer.ln_f.bias": torch.zeros(d_model),
        }
        shapes = {"attn.c_attn": (d_model, 3 * d_model), "attn.c_proj": (d_model, d_model)}
        shapes.update({"mlp.c_fc": (d_model, 4 * d_model), "mlp.c_proj": (4 * d_model, d_model)})
        for i in range(layers):
            for name, shape in shapes.items():
                weights[f"transformer.h.{i}.{name}.weight"] = torch.randn(*shape, generator=generator) * 0.02
                weights[f"transformer.h.{i}.{name}.bias"] = torch.zeros(shape[1])
            for norm in ("ln_1", "ln_2"):
                weights[f"transformer.h.{i}.{norm}.weight"] = torch.ones(d_model)
                weights[f"transformer.h.{i}.{norm}.bias"] = torch.zeros(d_model)
        config = {"n_head": heads, "n_embd": d_model, "n_layer": layers, "n_positions": context}
        return GPT2(config, weights)

    def new_caches(self, capacity):
        head_dim = self.d_model // self.heads
        return [KVCache(1, self.heads, head_dim, capacity) for _ in range(self.layers_count)]

    def forward(self, ids, caches=None, last_only=True):
        """ids [1, T] continuing the cached prefix (or the whole sequence when caches is None). Returns the
        logits of the last position [1, vocab] (or of all positions)."""
        start = caches[0].length if caches else 0
        length = ids.shape[1]
        if start + length > self.context:
            sys.exit(f"sequence of {start + length} tokens exceeds the context of {self.context}")
        x = self.wte[ids] + self.wpe[start : start + length]
        causal = None
        if length > 1:  # the new positions see the whole cached prefix and themselves causally
            causal = torch.full((length, start + length), -math.inf).triu_(start + 1)
        scale = (self.d_model // self.heads) ** -0.5
        for i, block in enumerate(self.blocks):
            h = F.layer_norm(x, (self.d_model,), *block["ln_1"], self.eps)
            q, k, v = linear(h, *block["c_attn"]).chunk(3, dim=-1)
            q, k, v = (split_heads(t, self.heads) for t in (q * scale, k, v))
            if caches:
                k, v = caches[i].append(k, v)
            x = x + linear(merge_heads(attend(q, k, v, causal)), *block["attn_proj"])
            h = F.layer_norm(x, (self.d_model,), *block["ln_2"], self.eps)
            x = x + linear(F.gelu(linear(h, *block["c_fc"]), approximate="tanh"), *block["mlp_proj"])
        if last_only:
            x = x[:, -1]
        x = F.layer_norm(x, (self.d_model,), *self.ln_f, self.eps)
        return linear(x, self.wte)

    def greedy(self, prompt, max_new_tokens, eos_id, use_cache=True):
        """HF greedy for a decoder-only model, batch 1: argmax of the raw logits, stop after EOS or at
        max_new_tokens. Without the cache every step runs the whole sequence again."""
        ids = list(prompt)
        caches = self.new_caches(len(prompt) + max_new_tokens) if use_cache else None
        step_input = prompt
        for _ in range(max_new_tokens):
            logits = self.forward(torch.tensor([step_input]), caches)
            token = int(logits[0].argmax())
            ids.append(token)
            if token == eos_id:
                break
            step_input = [token] if use_cache else ids
        return ids


# ----------------------------------------------------------------------------------------------- commands
def tfm_tokenize(tfm, tokenizer, lines, decode=False):
    """Runs `tfm tokenize` over lines (text, or space-separated ids with decode=True)."""
    args = [tfm, "tokenize", "--tokenizer", tokenizer] + (["--decode"] if decode else [])
    try:
        result = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit(f"{tfm}: no such program (cmake --build build -j2 --target tfm_cli, or pass --tfm)")
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {result.stderr.strip()}")
    out = result.stdout.split("\n")[:-1]
    if len(out) != len(lines):
        sys.exit(f"{' '.join(args)}: {len(out)} output lines for {len(lines)} input lines")
    return out


def run_translate(args):
    model = Marian(args.model)
    with open(args.data, encoding="utf-8") as f:
        english = [line.rstrip("\n").split("\t")[0] for line in f]
    if args.limit:
        english = english[: args.limit]
    tokenizer = f"{args.model}/tokenizer.json"
    sources = [[int(t) for t in line.split()] for line in tfm_tokenize(args.tfm, tokenizer, english)]

    start = time.perf_counter()
    outputs = []
    with torch.inference_mode():
        for first in range(0, len(sources), args.batch):
            chunk = sources[first : first + args.batch]
            if args.beam == 1:
                outputs += greedy_translate(model, chunk, args.max_new_tokens)
            else:
                early_stopping = args.early_stopping == "true"
                best = beam_translate(model, chunk, args.beam, args.max_new_tokens, 1.0, early_stopping)
                outputs += [tokens for tokens, _ in best]
    wall = time.perf_counter() - start

    generated = sum(len(ids) for ids in outputs)  # every returned token, its EOS included
    special = {model.pad_id, model.eos_id, 2}  # HF decode(skip_special_tokens): <pad>, </s>, <unk>
    kept_ids = [" ".join(str(t) for t in ids if t not in special) for ids in outputs]
    texts = tfm_tokenize(args.tfm, tokenizer, kept_ids, decode=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in texts))
    report = {
        "peer": "torch",
        "task": "translate",
        "beams": args.beam,
        "early_stopping": args.early_stopping == "true" if args.beam > 1 else None,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "sentences": len(sources),
        "generated_tokens": generated,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(generated / wall, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    reference = args.reference or f"{args.model}/test.beam{args.beam}.es"
    try:
        with open(reference, encoding="utf-8") as f:
            expected = f.read().split("\n")[: len(texts)]
        differ = [i + 1 for i, (a, b) in enumerate(zip(texts, expected)) if a != b]
        report.update(reference=reference, lines_equal=len(texts) - len(differ), lines_differ=differ[:20])
    except FileNotFoundError:
        pass
    print(json.dumps(report), flush=True)


def relative_error(actual, expected):
    return float((actual - expected).norm() / expected.norm())


def run_marian_fixture(args):
    """Checks the Marian arithmetic and decoding against ../shared/fixtures/marian (random weights, HF
    reference values): teacher-forced logits computed step by step through the KV cache (within 1e-4
    relative, where labels != -100), greedy ids, and beam ids and score (early_stopping=True there)."""
    model = Marian(args.model)
    ref = read_safetensors(f"{args.model}/reference.safetensors")
    src, labels = ref["input_ids"], ref["labels"]
    src_mask = torch.zeros(src.shape).masked_fill_(ref["attention_mask"] == 0, -math.inf)[:, None, None, :]
    decoder_input = torch.cat([torch.full((src.shape[0], 1), model.start_id), labels[:, :-1]], dim=1)
    decoder_input = decoder_input.masked_fill(decoder_input == -100, model.pad_id)
    with torch.inference_mode():
        cross, caches = model.start(model.encode(src, src_mask), src.shape[0], labels.shape[1])
        positions = range(labels.shape[1])
        steps = [model.step(decoder_input[:, t], t, cross, caches, src_mask, 1) for t in positions]
        logits = torch.stack(steps, dim=1)
        scored = labels != -100
        first = [int(t) for t in src[0][ref["attention_mask"][0] == 1]]
        new_tokens = ref["greedy_ids"].shape[1] - 1
        greedy = greedy_translate(model, [first], new_tokens)[0]
        beam_tokens, beam_score = beam_translate(model, [first], 4, new_tokens, 1.0, early_stopping=True)[0]
    report = {
        "peer": "torch",
        "task": "marian-fixture",
        "logits_rel_error": relative_error(logits[scored], ref["logits"][scored]),
        "greedy_ids_equal": [model.start_id] + greedy == ref["greedy_ids"][0].tolist(),
        "beam_ids_equal": [model.start_id] + beam_tokens == ref["beam_ids"][0].tolist(),
        "beam_score": beam_score,
        "beam_score_expected": float(ref["beam_score"][0]),
    }
    print(json.dumps(report), flush=True)


def run_kjv(args):
    model = GPT2.from_folder(args.model)
    with open(f"{args.model}/scores.json") as f:
        prompts = json.load(f)["greedy"]
    eos_id = 0  # <|endoftext|>, generation_config.json eos_token_id
    with torch.inference_mode():
        model.greedy(prompts[0]["prompt_ids"], 4, eos_id, use_cache=not args.no_cache)  # warm-up, untimed
        results, tokens, wall = [], 0, 0.0
        for _ in range(args.repeat):
            results = []
            for prompt in prompts:
                start = time.perf_counter()
                use_cache = not args.no_cache
                ids = model.greedy(prompt["prompt_ids"], args.max_new_tokens, eos_id, use_cache=use_cache)
                wall += time.perf_counter() - start
                tokens += len(ids) - len(prompt["prompt_ids"])
                results.append(ids)
    report = {
        "peer": "torch" if not args.no_cache else "torch-no-cache",
        "task": "kjv-greedy",
        "threads": torch.get_num_threads(),
        "prompts": len(prompts),
        "repeat": args.repeat,
        "max_new_tokens": args.max_new_tokens,
        "generated_tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    if args.max_new_tokens == 40:  # the reference continuations are 40 new tokens at most
        report["ids_equal"] = sum(ids == p["greedy_ids"] for ids, p in zip(results, prompts))
    print(json.dumps(report), flush=True)


def run_gpt2_small(args):
    """llama-bench's pp512 and tg128 on GPT-2 small's shape (124M parameters), batch 1, float32."""
    model = GPT2.random(layers=12, d_model=768, heads=12, vocab=50257, context=1024)
    generator = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, 50257, (1, args.pp), generator=generator)
    with torch.inference_mode():
        model.forward(prompt[:, :16], model.new_caches(16))  # warm-up (thread pool, first allocations)
        times = []
        for _ in range(args.repeat):
            caches = model.new_caches(args.pp)
            start = time.perf_counter()
            model.forward(prompt, caches)  # logits of the last position only, as llama.cpp computes them
            times.append(time.perf_counter() - start)
        report_speed(f"pp{args.pp}", args.pp, times)

        times = []
        for _ in range(args.repeat):
            caches = model.new_caches(args.tg)
            token = torch.tensor([[int(prompt[0, 0])]])
            start = time.perf_counter()
            for _ in range(args.tg):  # from an empty context, one token per forward, logits every step
                token = model.forward(token, caches).argmax(dim=-1, keepdim=True)
            times.append(time.perf_counter() - start)
        report_speed(f"tg{args.tg}", args.tg, times)


def report_speed(test, tokens, times):
    rates = [tokens / t for t in times]
    report = {
        "peer": "torch",
        "task": "gpt2-small",
        "test": test,
        "threads": torch.get_num_threads(),
        "tokens_per_s": round(sum(rates) / len(rates), 1),
        "runs": [round(r, 1) for r in rates],
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    print(json.dumps(report), flush=True)


def main():
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("task", choices=["translate", "kjv", "gpt2-small", "marian-fixture"])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--model", help="model folder (default: ../shared/models/mt-en-es or lm-kjv)")
    parser.add_argument("--tfm", default="build/tfm", help="tfm binary, for tokenizing (translate)")
    test_tsv = "/work/shared/data/bible-en-es/test.tsv"
    parser.add_argument("--data", default=test_tsv, help="translate: TSV, English in the first column")
    parser.add_argument("--limit", type=int, default=0, help="translate: only the first N sentences")
    parser.add_argument("--beam", type=int, default=4, help="translate: beams (1 = greedy)")
    parser.add_argument("--batch", type=int, default=32, help="translate: sentences per batch")
    parser.add_argument("--max-new-tokens", type=int, help="default 256 (translate), 40 (kjv)")
    parser.add_argument("--reference", help="translate: expected output (default: the model's test.beamN.es)")
    parser.add_argument(
        "--early-stopping",
        choices=["true", "false"],
        default="true",
        help="translate, beam: HF early_stopping (true reproduces the reference decodes; see README.md)",
    )
    parser.add_argument("--out", help="translate: write the translations here")
    parser.add_argument("--no-cache", action="store_true", help="kjv: recompute the prefix at every step")
    parser.add_argument("--repeat", type=int, help="kjv (default 10), gpt2-small: timed repetitions")
    parser.add_argument("--pp", type=int, default=512, help="gpt2-small: prompt length")
    parser.add_argument("--tg", type=int, default=128, help="gpt2-small: tokens generated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.task == "translate":
        args.model = args.model or "/work/shared/models/mt-en-es"
        args.max_new_tokens = args.max_new_tokens or 256
        run_translate(args)
    elif args.task == "marian-fixture":
        args.model = args.model or "/work/shared/fixtures/marian"
        run_marian_fixture(args)
    elif args.task == "kjv":
        args.model = args.model or "/work/shared/models/lm-kjv"
        args.max_new_tokens = args.max_new_tokens or 40
        args.repeat = args.repeat or 10
        run_kjv(args)
    else:
        args.repeat = args.repeat or 3
        run_gpt2_small(args)


if __name__ == "__main__":
    main()
