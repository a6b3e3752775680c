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
    /// (b) The main sample's model (samples/FineTune, <see cref="FineTune.CharTransformer"/>) at its training
    /// batch: 128 sequences of <see cref="FineTune.ArithmeticTask.SequenceLength"/> tokens, cross-entropy on
    /// every position, LoRA as its attributes say (rank 4, alpha 8 on q/k/v/o and the feed-forward pair).
    /// </summary>
    public static Workload Transformer { get; } = new(
        "transformer",
        () => new FineTune.CharTransformer(),
        () => (
            randint(FineTune.Vocabulary.Size, [TransformerBatch, FineTune.ArithmeticTask.SequenceLength]),
            randint(FineTune.Vocabulary.Size, [TransformerBatch, FineTune.ArithmeticTask.SequenceLength])),
        (logits, targets) => nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.flatten()));

    /// <summary>The sample's batch size (FineTune's TrainingSettings).</summary>
    public const int TransformerBatch = 128;

    /// <summary>Every workload, by name.</summary>
    public static IReadOnlyList<Workload> All { get; } = [Mlp, Transformer];

    public static Workload Named(string name) =>
        All.FirstOrDefault(w => w.Name == name) ?? throw new ArgumentException($"unknown workload '{name}'");
}
