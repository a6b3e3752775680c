using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>LoRA over a <c>Linear</c>: <c>y = W·x + b + scaling · B(A·x)</c>, with A [r, in] and B [out, r].</summary>
public sealed class LoraLinear : LoraDownUpLayer
{
    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh adapter (B = 0, so outputs are unchanged).</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, or the adapter would not save parameters.</exception>
    public LoraLinear(Linear baseLayer, LoraConfig config, LoraOptions? options = null, string adapter = DefaultAdapter)
        : base(nameof(LoraLinear), baseLayer, config, ShapeOf(baseLayer), options ?? LoraOptions.Default, adapter,
            (rank, device, dtype) => nn.Linear(baseLayer.in_features, rank, hasBias: false, device: device, dtype: dtype),
            (rank, device, dtype) => nn.Linear(rank, baseLayer.out_features, hasBias: false, device: device, dtype: dtype))
    {
    }

    /// <inheritdoc />
    private protected override Tensor AddUpProjection(Tensor baseOutput, Tensor down, nn.Module<Tensor, Tensor> up, double scaling) =>
        AddLowRankProduct(baseOutput, down, WeightOf(up), scaling);

    /// <summary>The sizes of a Linear layer.</summary>
    public static LoraLayerShape ShapeOf(Linear layer) =>
        new(LoraLayerKind.Linear, layer.in_features, layer.out_features);
}
