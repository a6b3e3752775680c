using LoraGen.Benchmarks.Models;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Workloads;

/// <summary>The workloads the benchmarks and the PyTorch peer (benchmarks/peer/peer.py) both run.</summary>
public static class Workloads
{
    /// <summary>(a) 4 × Linear(1024, 1024) + GELU, batch 64, rank 8 on every Linear, mean-squared error.</summary>
    public static Workload Mlp { get; } = new(
        "mlp",
        () => new Mlp(),
        () => (randn(64, Models.Mlp.Width), randn(64, Models.Mlp.Width)),
        (output, target) => nn.functional.mse_loss(output, target));

    /// <summary>
    /// (b) <see cref="SmallTransformer"/>, a character transformer of the main sample's blocks with its input length
    /// and rank-4 adapters on the 12 projections inside its blocks (<see cref="SmallTransformer.Adapters"/>), at the
    /// sample's training batch: 128 sequences of 12 tokens, cross-entropy on every position.
    /// </summary>
    public static Workload Transformer { get; } = new(
        "transformer",
        () => new SmallTransformer(),
        () => (
            randint(SmallTransformer.Vocabulary, [TransformerBatch, SmallTransformer.SequenceLength]),
            randint(SmallTransformer.Vocabulary, [TransformerBatch, SmallTransformer.SequenceLength])),
        (logits, targets) => nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.flatten()),
        SmallTransformer.Adapters);

    /// <summary>The main sample's batch size (samples/FineTune's TrainingSettings).</summary>
    public const int TransformerBatch = 128;

    /// <summary>
    /// (c) <see cref="SpamFilterBert"/>, samples/SpamFilter's BERT classifier (all-MiniLM-L6-v2's architecture, random
    /// weights) with rank-8 adapters on query/value of its 6 layers and the 2-label head trained in full, at
    /// 16 sequences of 128 tokens; cross-entropy on the logits.
    /// </summary>
    public static Workload Bert { get; } = new(
        "bert",
        () => new SpamFilterBert(),
        () => (
            randint(SpamFilterBert.Vocabulary, [BertBatch, BertSequenceLength]),
            randint(SpamFilterBert.Labels, [BertBatch])),
        (logits, labels) => nn.functional.cross_entropy(logits, labels),
        TrainedInFull: ["classifier"]);

    /// <summary>Sequences per batch of workload (c).</summary>
    public const int BertBatch = 16;

    /// <summary>Tokens per sequence of workload (c).</summary>
    public const int BertSequenceLength = 128;

    /// <summary>Every workload, by name.</summary>
    public static IReadOnlyList<Workload> All { get; } = [Mlp, Transformer, Bert];

    public static Workload Named(string name) =>
        All.FirstOrDefault(w => w.Name == name) ?? throw new ArgumentException($"unknown workload '{name}'");
}
