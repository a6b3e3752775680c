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
    /// (b) A small transformer language model, cross-entropy on next tokens. This is the one place that
    /// names the model class: to benchmark another transformer (the main sample's), change the factory
    /// and the sizes here.
    /// </summary>
    public static Workload Transformer { get; } = new(
        "transformer",
        () => new BenchTransformer(),
        () => (
            randint(TransformerDims.Vocabulary, [TransformerDims.Batch, TransformerDims.Sequence]),
            randint(TransformerDims.Vocabulary, [TransformerDims.Batch, TransformerDims.Sequence])),
        (logits, targets) => nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), targets.flatten()));

    /// <summary>Every workload, by name.</summary>
    public static IReadOnlyList<Workload> All { get; } = [Mlp, Transformer];

    public static Workload Named(string name) =>
        All.FirstOrDefault(w => w.Name == name) ?? throw new ArgumentException($"unknown workload '{name}'");
}
