using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// The adapter shape Linear and the convolutions share, as in PEFT: <c>lora_A</c>, a layer like the
/// base one down to r outputs, and <c>lora_B</c>, a 1-wide layer back up to the base's outputs.
/// Their composition is one layer whose weight is B·A (flattened past the first axis), which is what
/// Merge adds.
/// </summary>
public abstract class LoraDownUpLayer : LoraLayer
{
    private readonly nn.Module<Tensor, Tensor> loraA;
    private readonly nn.Module<Tensor, Tensor> loraB;

    /// <summary>Checks the options, wraps <paramref name="baseLayer"/>, and builds the adapters with
    /// <paramref name="createA"/> and <paramref name="createB"/> on the base's device, in the adapter dtype.</summary>
    private protected LoraDownUpLayer(
        string name,
        nn.Module<Tensor, Tensor> baseLayer,
        LoraConfig config,
        LoraLayerShape shape,
        LoraOptions options,
        Func<Device, ScalarType, nn.Module<Tensor, Tensor>> createA,
        Func<Device, ScalarType, nn.Module<Tensor, Tensor>> createB)
        : base(name, baseLayer, config, shape, options)
    {
        var device = BaseWeight.device;
        var dtype = AdapterTypeFor(BaseWeight.dtype, options);
        loraA = createA(device, dtype);
        loraB = createB(device, dtype);
        InitializeDownProjection(WeightOf(loraA));
        using (no_grad())
            nn.init.zeros_(WeightOf(loraB));
        register_module(PeftLayout.LoraA, loraA);
        register_module(PeftLayout.LoraB, loraB);
    }

    /// <inheritdoc />
    public override IEnumerable<(string Name, Parameter Parameter)> NamedAdapterParameters =>
        [(PeftLayout.LoraA + ".weight", WeightOf(loraA)), (PeftLayout.LoraB + ".weight", WeightOf(loraB))];

    /// <inheritdoc />
    protected override Parameter BaseWeight => WeightOf(BaseLayer);

    /// <inheritdoc />
    protected override Tensor AddAdapterOutput(Tensor baseOutput, Tensor x)
    {
        // Each intermediate is disposed as soon as the next one exists (autograd keeps what it needs),
        // and a cast or a dropout that would change nothing is not called at all.
        var adapterType = WeightOf(loraA).dtype;
        using var cast = x.dtype == adapterType ? null : x.to(adapterType);
        using var dropped = AppliesDropout ? nn.functional.dropout(cast ?? x, Config.Dropout, training: true) : null;
        var input = dropped ?? cast ?? x;
        using var down = loraA is Convolution convolution
            ? LoraConvolution.DownProjection(convolution, input)
            : loraA.call(input);
        return AddUpProjection(baseOutput, down);
    }

    /// <summary><paramref name="baseOutput"/> + scaling · B(<paramref name="down"/>); a Linear fuses it into one addmm.</summary>
    private protected virtual Tensor AddUpProjection(Tensor baseOutput, Tensor down)
    {
        using var up = loraB.call(down);
        return baseOutput.add(up, alpha: Scaling);
    }

    /// <summary>B's weight, [out, r, 1…].</summary>
    private protected Parameter UpWeight => WeightOf(loraB);

    /// <inheritdoc />
    protected override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        // B is 1-wide, so the composed weight is [out, r] · [r, in·k], laid out like the base weight.
        var b = WeightOf(loraB).to(MergeType).flatten(1);
        var a = WeightOf(loraA).to(MergeType).flatten(1);
        var product = b.matmul(a).reshape(BaseWeight.shape);
        return product.mul(Scaling).MoveToOuterDisposeScope();
    }

    // Read through the layer every time: Module.to() replaces Parameter objects.
    private static Parameter WeightOf(nn.Module<Tensor, Tensor> layer) => layer switch
    {
        Linear linear => linear.weight!,
        Convolution convolution => convolution.weight!,
        _ => throw new InvalidOperationException($"{layer.GetType().Name} is not a Linear or a convolution."),
    };
}
