using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Workloads;

/// <summary>A model to train or run, with one fixed batch and the loss a training step minimises.</summary>
/// <param name="Name">Short name used in reports (<c>mlp</c>, <c>transformer</c>, <c>bert</c>).</param>
/// <param name="CreateModel">Builds a fresh model; called outside any dispose scope.</param>
/// <param name="CreateBatch">Builds the input and the target; called outside any dispose scope.</param>
/// <param name="Loss">The loss of the model's output against the target.</param>
/// <param name="Adapters">What LoRA adapts, by run-time targeting; null: the model's <c>[LoraTarget]</c> attributes.</param>
/// <param name="TrainedInFull">Linears LoRA trains in full (a new head), by name: a load that quantizes keeps them in
/// float (<see cref="PretrainedLoadOptions.KeepInFloat"/>); null: none.</param>
public sealed record Workload(
    string Name,
    Func<nn.Module<Tensor, Tensor>> CreateModel,
    Func<(Tensor Input, Tensor Target)> CreateBatch,
    Func<Tensor, Tensor, Tensor> Loss,
    AdapterConfig? Adapters = null,
    IReadOnlyList<string>? TrainedInFull = null)
{
    /// <summary>Wraps the workload's LoRA targets in <paramref name="model"/> and freezes the rest.</summary>
    public LoraReport ApplyLora(nn.Module model, LoraOptions? options = null) =>
        Adapters is null ? model.ApplyLora(options) : model.ApplyLora(Adapters, options);

    /// <summary>Adds one more adapter, <paramref name="adapter"/>, on the same targets (inactive).</summary>
    public LoraReport AddAdapter(nn.Module model, string adapter) =>
        Adapters is null ? model.AddAdapter(adapter) : model.AddAdapter(adapter, Adapters);
}
