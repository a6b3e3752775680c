using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Support;

/// <summary>
/// What the source generator writes for a [LoraTarget] class, written by hand: a name → field switch
/// in each test model, and the registry update here.
/// </summary>
public abstract class HandWrittenLoraModule(string name) : nn.Module<Tensor, Tensor>(name), ILoraModule
{
    public abstract IReadOnlyList<LoraTargetInfo> LoraTargets { get; }

    public virtual IReadOnlyList<string> TrainableFields => [];

    public abstract nn.Module<Tensor, Tensor> GetLoraTarget(string field);

    public void SetLoraTarget(string field, nn.Module<Tensor, Tensor> layer)
    {
        AssignTarget(field, layer);
        _internal_submodules[field] = layer;
    }

    public virtual nn.Module GetTrainableField(string field) =>
        throw new ArgumentException($"{GetType().Name} has no trainable field '{field}'.", nameof(field));

    protected abstract void AssignTarget(string field, nn.Module<Tensor, Tensor> layer);

    protected static Exception NoSuchTarget(string field) =>
        new ArgumentException($"no LoRA target named '{field}'", nameof(field));
}
