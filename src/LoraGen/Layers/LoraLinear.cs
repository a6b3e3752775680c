using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>LoRA over a <c>Linear</c>: <c>y = W·x + b + scaling · B(A·x)</c>, with A [r, in] and B [out, r].</summary>
public sealed class LoraLinear : LoraLayer
{
    private readonly Linear loraA;
    private readonly Linear loraB;

    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh adapter (B = 0, so outputs are unchanged).</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, or the adapter would not save parameters.</exception>
    public LoraLinear(Linear baseLayer, LoraConfig config, LoraOptions? options = null)
        : base(nameof(LoraLinear), baseLayer, config, ShapeOf(baseLayer), options ??= LoraOptions.Default)
    {
        var device = baseLayer.weight.device;
        var dtype = AdapterTypeFor(baseLayer.weight.dtype, options);
        loraA = nn.Linear(Shape.InFeatures, Rank, hasBias: false, device: device, dtype: dtype);
        loraB = nn.Linear(Rank, Shape.OutFeatures, hasBias: false, device: device, dtype: dtype);
        InitializeDownProjection(loraA.weight);
        using (no_grad())
            nn.init.zeros_(loraB.weight);
        register_module("lora_A", loraA);
        register_module("lora_B", loraB);
    }

    /// <summary>The sizes of a Linear layer.</summary>
    public static LoraLayerShape ShapeOf(Linear layer) =>
        new(LoraLayerKind.Linear, layer.in_features, layer.out_features);

    /// <inheritdoc />
    public override IEnumerable<(string Name, Parameter Parameter)> NamedAdapterParameters =>
        [("lora_A.weight", loraA.weight), ("lora_B.weight", loraB.weight)];

    /// <inheritdoc />
    protected override Parameter BaseWeight => ((Linear)BaseLayer).weight;

    /// <inheritdoc />
    protected override Tensor AdapterForward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var down = loraA.forward(AdapterDropout(x.to(loraA.weight.dtype)));
        return loraB.forward(down).mul(Scaling).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        var product = loraB.weight.to(ScalarType.Float32).matmul(loraA.weight.to(ScalarType.Float32));
        return product.mul(Scaling).MoveToOuterDisposeScope();
    }
}
