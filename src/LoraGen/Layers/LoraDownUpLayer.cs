using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// The adapter shape Linear and the convolutions share, as in PEFT: per adapter, <c>lora_A</c>, a layer like the
/// base one down to r outputs, and <c>lora_B</c>, a 1-wide layer back up to the base's outputs. Their composition is
/// one layer whose weight is B·A (flattened past the first axis), which is what Merge adds.
/// </summary>
public abstract class LoraDownUpLayer : LoraLayer
{
    private readonly AdapterContainer loraA = new(PeftLayout.LoraA);
    private readonly AdapterContainer loraB = new(PeftLayout.LoraB);
    private readonly Func<int, Device, ScalarType, nn.Module<Tensor, Tensor>> createA;
    private readonly Func<int, Device, ScalarType, nn.Module<Tensor, Tensor>> createB;

    /// <summary>Checks the options, wraps <paramref name="baseLayer"/>, and builds the first adapter with
    /// <paramref name="createA"/> and <paramref name="createB"/> (given the rank) on the base's device, in the adapter dtype.</summary>
    private protected LoraDownUpLayer(
        string name,
        nn.Module<Tensor, Tensor> baseLayer,
        LoraConfig config,
        LoraLayerShape shape,
        LoraOptions options,
        string adapter,
        Func<int, Device, ScalarType, nn.Module<Tensor, Tensor>> createA,
        Func<int, Device, ScalarType, nn.Module<Tensor, Tensor>> createB)
        : base(name, baseLayer, config, shape, options)
    {
        this.createA = createA;
        this.createB = createB;
        register_module(PeftLayout.LoraA, loraA);
        register_module(PeftLayout.LoraB, loraB);
        CreateFirstAdapter(adapter, config);
    }

    private protected override (string A, string B) FactorNames => (PeftLayout.LoraA + ".weight", PeftLayout.LoraB + ".weight");

    /// <inheritdoc />
    protected override Parameter BaseWeight => WeightOf(BaseLayer);

    private protected override void CreateFactors(string adapter, LoraConfig config, Device device, ScalarType dtype)
    {
        var a = createA(config.Rank, device, dtype);
        var b = createB(config.Rank, device, dtype);
        InitializeDownProjection(WeightOf(a), config);
        using (no_grad())
            nn.init.zeros_(WeightOf(b));
        loraA.AddModule(adapter, a);
        loraB.AddModule(adapter, b);
    }

    private protected override void RemoveFactors(string adapter)
    {
        loraA.Remove(adapter);
        loraB.Remove(adapter);
    }

    private protected override (Parameter A, Parameter B) Factors(string adapter) =>
        (WeightOf(loraA.Module(adapter)), WeightOf(loraB.Module(adapter)));

    private protected override Tensor AddAdapterOutput(string adapter, Tensor baseOutput, Tensor x)
    {
        // Each intermediate is disposed as soon as the next one exists (autograd keeps what it needs),
        // and a cast or a dropout that would change nothing is not called at all.
        var down = loraA.Module(adapter);
        var adapterType = WeightOf(down).dtype;
        using var cast = x.dtype == adapterType ? null : x.to(adapterType);
        using var dropped = AppliesDropout(adapter) ? nn.functional.dropout(cast ?? x, ConfigOf(adapter).Dropout, training: true) : null;
        var input = dropped ?? cast ?? x;
        using var projected = down is Convolution convolution
            ? LoraConvolution.DownProjection(convolution, input)
            : down.call(input);
        return AddUpProjection(baseOutput, projected, loraB.Module(adapter), ScalingOf(adapter));
    }

    /// <summary><paramref name="baseOutput"/> + scaling · up(<paramref name="down"/>); a Linear fuses it into one addmm.</summary>
    private protected virtual Tensor AddUpProjection(Tensor baseOutput, Tensor down, nn.Module<Tensor, Tensor> up, double scaling)
    {
        using var output = up.call(down);
        return baseOutput.add(output, alpha: scaling);
    }

    private protected override Tensor DeltaWeight(string adapter)
    {
        using var scope = NewDisposeScope();
        var (aWeight, bWeight) = Factors(adapter);
        // B is 1-wide, so the composed weight is [out, r] · [r, in·k], laid out like the base weight.
        var b = bWeight.to(MergeType).flatten(1);
        var a = aWeight.to(MergeType).flatten(1);
        var product = b.matmul(a).reshape(BaseWeight.shape);
        return product.mul(ScalingOf(adapter)).MoveToOuterDisposeScope();
    }

    // Read through the layer every time: Module.to() replaces Parameter objects.
    private protected static Parameter WeightOf(nn.Module<Tensor, Tensor> layer) => layer switch
    {
        Linear linear => linear.weight!,
        Convolution convolution => convolution.weight!,
        _ => throw new InvalidOperationException($"{layer.GetType().Name} is not a Linear or a convolution."),
    };
}
