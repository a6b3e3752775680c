using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// What a <see cref="LoraTargetAttribute"/> class exposes so the model-wide operations
/// (<see cref="LoraModelExtensions"/>) can adapt it. The LoraGen source generator implements it for
/// every annotated partial class; write it by hand only where the generator cannot run.
/// </summary>
public interface ILoraModule
{
    /// <summary>The fields to adapt and their options, as the compiler resolved them.</summary>
    IReadOnlyList<LoraTargetInfo> LoraTargets { get; }

    /// <summary>The fields trained in full next to the adapters (PEFT's <c>modules_to_save</c>).</summary>
    IReadOnlyList<string> TrainableFields { get; }

    /// <summary>The layer a target field holds now: the plain layer, or its <see cref="LoraLayer"/>.</summary>
    nn.Module<Tensor, Tensor> GetLoraTarget(string field);

    /// <summary>Puts <paramref name="layer"/> in the target field and in TorchSharp's module registry,
    /// under the same name and at the same position, so parameter paths and order are kept.</summary>
    void SetLoraTarget(string field, nn.Module<Tensor, Tensor> layer);

    /// <summary>The module a trainable field holds.</summary>
    nn.Module GetTrainableField(string field);
}
