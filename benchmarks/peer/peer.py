"""The PyTorch eager peer of benchmarks/LoraGen.Benchmarks' `compare` mode.

Same workloads, same optimizer, same timing method, same output keys. LoRA follows PEFT's formula
(peft/tuners/lora/layer.py): y = base(x) + lora_B(lora_A(dropout(x))) * (alpha / r), dropout an identity
at p = 0, written here in plain torch (the peft package itself is not needed and not used).

    python3 peer.py compare --threads 1 [--iterations 30] [--warmup 5] [--workloads mlp,transformer,bert]
"""
import argparse
import math
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LoraLinear(nn.Module):
    """PEFT's Linear LoRA layer: frozen base, A Kaiming-uniform (a = sqrt 5), B zeros."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r
        self.merged = False

    def forward(self, x):
        result = self.base_layer(x)
        if self.merged:
            return result
        return result + self.lora_B(self.lora_A(x)) * self.scaling

    @torch.no_grad()
    def merge(self):
        self.base_layer.weight += (self.lora_B.weight @ self.lora_A.weight) * self.scaling
        self.merged = True


class LoraEmbedding(nn.Module):
    """PEFT's Embedding LoRA layer: A [r, num] zeros, B [dim, r] normal."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base_layer = base
        self.lora_embedding_A = nn.Parameter(torch.zeros(r, base.num_embeddings))
        self.lora_embedding_B = nn.Parameter(torch.randn(base.embedding_dim, r))
        self.scaling = alpha / r
        self.merged = False

    def forward(self, x):
        result = self.base_layer(x)
        if self.merged:
            return result
        after_a = F.embedding(x, self.lora_embedding_A.T)
        return result + (after_a @ self.lora_embedding_B.T) * self.scaling

    @torch.no_grad()
    def merge(self):
        self.base_layer.weight += (self.lora_embedding_B @ self.lora_embedding_A).T * self.scaling
        self.merged = True


def apply_lora(model, targets, trainable=()):
    """Wraps the named children (name -> (r, alpha)) of every module, then freezes everything but the adapters
    and the modules named in `trainable` (paths from the root, trained in full: PEFT's modules_to_save)."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if name in targets:
                r, alpha = targets[name]
                wrapper = LoraEmbedding if isinstance(child, nn.Embedding) else LoraLinear
                setattr(module, name, wrapper(child, r, alpha))
    for name, parameter in model.named_parameters():
        parameter.requires_grad = "lora_" in name or any(name.startswith(t + ".") for t in trainable)
    return [p for p in model.parameters() if p.requires_grad]


# (a) 4 x Linear(1024, 1024) with GELU between, batch 64, rank 8 (alpha 8) on every Linear.
class Mlp(nn.Module):
    def __init__(self, width=1024):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x):
        x = F.gelu(self.fc1(x))
        x = F.gelu(self.fc2(x))
        x = F.gelu(self.fc3(x))
        return self.fc4(x)


# (b) benchmarks/LoraGen.Benchmarks/Models/SmallTransformer.cs (samples/FineTune's TransformerBlock inside), same sizes,
# at the main sample's training batch.
VOCAB, WIDTH, HEADS, HIDDEN, BLOCKS, SEQ, BATCH = 13, 64, 4, 256, 2, 12, 128


class Attention(nn.Module):
    """Causal self-attention (torch 1.13 has no scaled_dot_product_attention: the mask is written out)."""

    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(WIDTH, WIDTH) for _ in range(4))
        self.register_buffer("mask", torch.full((SEQ, SEQ), float("-inf")).triu(1))

    def forward(self, x):
        b, n, hw = x.shape[0], x.shape[1], WIDTH // HEADS
        heads = lambda t: t.view(b, n, HEADS, hw).transpose(1, 2)
        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        weights = ((q @ k.transpose(-2, -1)).div(math.sqrt(hw)) + self.mask[:n, :n]).softmax(-1)
        return self.o_proj((weights @ v).transpose(1, 2).reshape(b, n, WIDTH))


class FeedForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.up_proj = nn.Linear(WIDTH, HIDDEN)
        self.down_proj = nn.Linear(HIDDEN, WIDTH)

    def forward(self, x):
        return self.down_proj(F.gelu(self.up_proj(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.attention, self.norm2, self.feed_forward = nn.LayerNorm(WIDTH), Attention(), nn.LayerNorm(WIDTH), FeedForward()

    def forward(self, x):
        h = x + self.attention(self.norm1(x))
        return h + self.feed_forward(self.norm2(h))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, WIDTH)
        self.positions = nn.Embedding(SEQ, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB)

    def forward(self, ids):
        h = self.tokens(ids) + self.positions(torch.arange(ids.shape[1]))
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))


# (c) samples/SpamFilter's BertForSequenceClassification (benchmarks/LoraGen.Benchmarks/Models/SpamFilterBert.cs):
# all-MiniLM-L6-v2's architecture with random weights, op for op as samples/SpamFilter/Model computes it, with
# transformers' module names; batch 16 x 128 tokens, attention mask all ones, rank 8 (alpha 16) on query/value,
# the classifier trained in full.
BERT_VOCAB, BERT_WIDTH, BERT_HEADS, BERT_INTERMEDIATE, BERT_LAYERS, BERT_POSITIONS = 30522, 384, 12, 1536, 6, 512
BERT_EPS, BERT_DROPOUT, BERT_LABELS, BERT_BATCH, BERT_SEQ = 1e-12, 0.1, 2, 16, 128


class BertEmbeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.word_embeddings = nn.Embedding(BERT_VOCAB, BERT_WIDTH, padding_idx=0)
        self.position_embeddings = nn.Embedding(BERT_POSITIONS, BERT_WIDTH)
        self.token_type_embeddings = nn.Embedding(2, BERT_WIDTH)
        self.LayerNorm = nn.LayerNorm(BERT_WIDTH, eps=BERT_EPS)
        self.dropout = nn.Dropout(BERT_DROPOUT)

    def forward(self, ids, token_types):
        positions = torch.arange(ids.shape[1])
        summed = self.word_embeddings(ids) + self.token_type_embeddings(token_types) + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(summed))


class BertSelfAttention(nn.Module):
    """softmax(Q K^T / sqrt(head) + mask) V per head, dropout on the probabilities (transformers' eager path)."""

    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(BERT_WIDTH, BERT_WIDTH) for _ in range(3))
        self.dropout = nn.Dropout(BERT_DROPOUT)

    def forward(self, hidden, additive_mask):
        b, n, hs = hidden.shape[0], hidden.shape[1], BERT_WIDTH // BERT_HEADS
        split = lambda t: t.view(b, n, BERT_HEADS, hs).transpose(1, 2)
        q, k, v = split(self.query(hidden)), split(self.key(hidden)), split(self.value(hidden))
        scores = q.matmul(k.transpose(-1, -2)) / math.sqrt(hs) + additive_mask
        probabilities = self.dropout(F.softmax(scores, dim=-1))
        return probabilities.matmul(v).transpose(1, 2).reshape(b, n, BERT_WIDTH)


class BertOutput(nn.Module):
    """LayerNorm(dropout(dense(x)) + residual): transformers' BertSelfOutput and BertOutput."""

    def __init__(self, inputs):
        super().__init__()
        self.dense = nn.Linear(inputs, BERT_WIDTH)
        self.LayerNorm = nn.LayerNorm(BERT_WIDTH, eps=BERT_EPS)
        self.dropout = nn.Dropout(BERT_DROPOUT)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.self = BertSelfAttention()
        self.output = BertOutput(BERT_WIDTH)

    def forward(self, hidden, additive_mask):
        return self.output(self.self(hidden, additive_mask), hidden)


class BertIntermediate(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(BERT_WIDTH, BERT_INTERMEDIATE)

    def forward(self, hidden):
        return F.gelu(self.dense(hidden))  # exact (erf) GELU, BERT's hidden_act "gelu"


class BertLayer(nn.Module):
    """Post-norm: attention, then the feed-forward layer, each with its residual LayerNorm."""

    def __init__(self):
        super().__init__()
        self.attention = BertAttention()
        self.intermediate = BertIntermediate()
        self.output = BertOutput(BERT_INTERMEDIATE)

    def forward(self, hidden, additive_mask):
        attended = self.attention(hidden, additive_mask)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer() for _ in range(BERT_LAYERS))

    def forward(self, hidden, additive_mask):
        for layer in self.layer:
            hidden = layer(hidden, additive_mask)
        return hidden


class BertPooler(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(BERT_WIDTH, BERT_WIDTH)

    def forward(self, last_hidden):
        return torch.tanh(self.dense(last_hidden[:, 0]))


class BertModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = BertEmbeddings()
        self.encoder = BertEncoder()
        self.pooler = BertPooler()

    def forward(self, ids, attention_mask):
        hidden = self.embeddings(ids, torch.zeros_like(ids))
        # transformers' get_extended_attention_mask: 0 for a token, the dtype's lowest value for padding.
        keep = attention_mask.to(hidden.dtype)[:, None, None, :]
        additive_mask = (1.0 - keep) * torch.finfo(hidden.dtype).min
        return self.encoder(hidden, additive_mask)


class BertForSequenceClassification(nn.Module):
    """classifier(dropout(pooler output)); called with token ids only, every token real (mask all ones)."""

    def __init__(self):
        super().__init__()
        self.bert = BertModel()
        self.dropout = nn.Dropout(BERT_DROPOUT)
        self.classifier = nn.Linear(BERT_WIDTH, BERT_LABELS)
        with torch.no_grad():  # BERT's initialisation, as samples/SpamFilter/Model/BertInit.cs
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    module.weight.normal_(0, 0.02)
                if isinstance(module, nn.Linear):
                    module.bias.zero_()
            self.bert.embeddings.word_embeddings.weight[0].zero_()

    def forward(self, ids):
        return self.classifier(self.dropout(self.bert.pooler(self.bert(ids, torch.ones_like(ids)))))


WORKLOADS = {
    "mlp": dict(
        model=Mlp,
        batch=lambda: (torch.randn(64, 1024), torch.randn(64, 1024)),
        loss=F.mse_loss,
        targets={f"fc{i}": (8, 8) for i in range(1, 5)}),
    "transformer": dict(
        model=Transformer,
        batch=lambda: (torch.randint(VOCAB, (BATCH, SEQ)), torch.randint(VOCAB, (BATCH, SEQ))),
        loss=lambda logits, t: F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.flatten()),
        targets={name: (4, 8) for name in ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")}),
    "bert": dict(
        model=BertForSequenceClassification,
        batch=lambda: (torch.randint(BERT_VOCAB, (BERT_BATCH, BERT_SEQ)), torch.randint(BERT_LABELS, (BERT_BATCH,))),
        loss=F.cross_entropy,
        targets={"query": (8, 16), "value": (8, 16)},
        trainable=("classifier",)),
}


class TrainingSession:
    def __init__(self, name, mode):
        w = WORKLOADS[name]
        torch.manual_seed(0)
        self.model = w["model"]()
        params = (apply_lora(self.model, w["targets"], w.get("trainable", ())) if mode == "lora"
                  else list(self.model.parameters()))
        # weight_decay 0: TorchSharp's AdamW default, which the LoraGen harness uses.
        self.optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0)
        self.input, self.target = w["batch"]()
        self.loss = w["loss"]
        self.model.train()

    def step(self):
        loss = self.loss(self.model(self.input), self.target)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=False)  # as TorchSharp's zero_grad: gradients kept, zeroed
        return loss.item()

    def tensor_bytes(self):
        size = lambda t: t.numel() * t.element_size()
        parameters = sum(size(p) for p in self.model.parameters())
        gradients = sum(size(p.grad) for p in self.model.parameters() if p.grad is not None)
        optimizer = sum(size(v) for s in self.optimizer.state.values() for k, v in s.items()
                        if torch.is_tensor(v) and k != "step")
        return parameters, gradients, optimizer


class InferenceSession:
    def __init__(self, name, mode):
        w = WORKLOADS[name]
        torch.manual_seed(0)
        self.model = w["model"]()
        if mode != "base":
            apply_lora(self.model, w["targets"], w.get("trainable", ()))
            with torch.no_grad():
                for n, p in self.model.named_parameters():
                    if "lora_" in n:
                        p.normal_(0, 0.01)
            if mode == "merged":
                for m in self.model.modules():
                    if isinstance(m, (LoraLinear, LoraEmbedding)):
                        m.merge()
        self.model.eval()
        self.input, _ = w["batch"]()

    def forward(self):
        with torch.no_grad():
            self.model(self.input)


def interleaved_medians(actions, warmup, iterations):
    for _ in range(warmup):
        for a in actions:
            a()
    samples = [[] for _ in actions]
    for _ in range(iterations):
        for i, a in enumerate(actions):
            start = time.perf_counter()
            a()
            samples[i].append((time.perf_counter() - start) * 1000)
    return [median(s) for s in samples]


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def line(key, value):
    print(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}", flush=True)


def compare(args):
    line("harness", "pytorch")
    line("threads", torch.get_num_threads())
    line("torch_version", torch.__version__)
    x, w = torch.randn(64, 1024), torch.randn(1024, 1024)
    line("blas.mm_64x1024x1024_ms", interleaved_medians([lambda: x.mm(w)], args.warmup, args.iterations)[0])
    for name in [w for w in args.workloads.split(",") if w]:
        lora, full = TrainingSession(name, "lora"), TrainingSession(name, "full")
        m = interleaved_medians([lora.step, full.step], args.warmup, args.iterations)
        line(f"{name}.step.lora_ms", m[0])
        line(f"{name}.step.full_ms", m[1])
        sessions = [InferenceSession(name, mode) for mode in ("base", "unmerged", "merged")]
        m = interleaved_medians([s.forward for s in sessions], args.warmup, args.iterations)
        for mode, value in zip(("base", "unmerged", "merged"), m):
            line(f"{name}.inference.{mode}_ms", value)
        for mode in ("lora", "full"):
            child = subprocess.run([sys.executable, __file__, "memory", "--workload", name, "--mode", mode,
                                    "--threads", str(args.threads)], check=True, capture_output=True, text=True)
            print(child.stdout, end="", flush=True)


def memory(args):
    """Trains in this process only, so its peak resident set belongs to one configuration."""
    warm = torch.ones(8, 8)
    (warm @ warm).sum().item()
    baseline = reset_peak_rss()
    session = TrainingSession(args.workload, args.mode)
    for _ in range(10):
        session.step()
    parameters, gradients, optimizer = session.tensor_bytes()
    peak = status_bytes("VmHWM")
    prefix = f"{args.workload}.memory.{args.mode}"
    line(f"{prefix}.tensor_mb", (parameters + gradients + optimizer) / 1e6)
    line(f"{prefix}.parameter_mb", parameters / 1e6)
    line(f"{prefix}.gradient_mb", gradients / 1e6)
    line(f"{prefix}.optimizer_mb", optimizer / 1e6)
    line(f"{prefix}.peak_rss_mb", peak / 1e6)
    line(f"{prefix}.baseline_rss_mb", baseline / 1e6)
    line(f"{prefix}.peak_rss_over_baseline_mb", (peak - baseline) / 1e6)


def reset_peak_rss():
    """Resets VmHWM to the current resident set (Linux clear_refs 5), so that loading torch does not set
    the peak; returns the resident set at that moment, the baseline."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return status_bytes("VmRSS")


def status_bytes(field):
    with open("/proc/self/status") as status:
        for row in status:
            if row.startswith(field + ":"):
                return int(row.split()[1]) * 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["compare", "memory"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workloads", default="mlp,transformer")  # and bert (workload (c)), when named
    parser.add_argument("--workload", default="mlp")
    parser.add_argument("--mode", default="lora")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if torch.get_num_threads() != args.threads:
        raise SystemExit(f"torch kept {torch.get_num_threads()} threads, {args.threads} were asked for")
    compare(args) if args.command == "compare" else memory(args)


if __name__ == "__main__":
    main()
