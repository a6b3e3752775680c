using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>LoRA over a <c>Linear</c>: <c>y = W·x + b + scaling · B(A·x)</c>, with A [r, in] and B [out, r].</summary>
public sealed class LoraLinear : LoraDownUpLayer
{
    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh adapter (B = 0, so outputs are unchanged).</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, or the adapter would not save parameters.</exception>
    public LoraLinear(Linear baseLayer, LoraConfig config, LoraOptions? options = null)
        : base(nameof(LoraLinear), baseLayer, config, ShapeOf(baseLayer), options ?? LoraOptions.Default,
            (device, dtype) => nn.Linear(baseLayer.in_features, config.Rank, hasBias: false, device: device, dtype: dtype),
            (device, dtype) => nn.Linear(config.Rank, baseLayer.out_features, hasBias: false, device: device, dtype: dtype))
    {
    }

    /// <inheritdoc />
    private protected override Tensor AddUpProjection(Tensor baseOutput, Tensor down) =>
        AddLowRankProduct(baseOutput, down, UpWeight);

    /// <summary>The sizes of a Linear layer.</summary>
    public static LoraLayerShape ShapeOf(Linear layer) =>
        new(LoraLayerKind.Linear, layer.in_features, layer.out_features);
}
