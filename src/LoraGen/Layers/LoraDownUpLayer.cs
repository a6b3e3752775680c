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
        var product = b.matmul(a).reshape(BaseWeightShape);
        return product.mul(ScalingOf(adapter)).MoveToOuterDisposeScope();
    }

    private protected override Tensor WeightNorm(string adapter, Tensor weight)
    {
        using var scope = NewDisposeScope();
        var (aWeight, bWeight) = Factors(adapter);
        var b = (bWeight.dtype == weight.dtype ? bWeight.detach() : bWeight.detach().to(weight.dtype)).flatten(1);
        var a = (aWeight.dtype == weight.dtype ? aWeight.detach() : aWeight.detach().to(weight.dtype)).flatten(1);
        // W + s·B·A in one addmm, then the norm of each output's row ([out, in·k] for convolutions).
        var combined = AddScaledProduct(weight.reshape(weight.shape[0], -1), b, a, ScalingOf(adapter));
        var norm = linalg.vector_norm(combined, dims: [1]);
        // PEFT's conv magnitude is [1, out, 1…] (norm with keepdim, transposed); Linear's is [out].
        return (weight.dim() > 2 ? norm.reshape([1, weight.shape[0], .. Enumerable.Repeat(1L, (int)weight.dim() - 2)]) : norm)
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ‖W + s·B·A‖ per output for the forward, without forming W + s·B·A: per row o,
    /// ‖W_o‖² + 2s·(W·Aᵀ)_o·B_o + s²·B_o·(A·Aᵀ)·B_oᵀ. W·Aᵀ is one pass over W with r columns, A·Aᵀ is r × r, and ‖W_o‖²
    /// is cached while the frozen weight does not change. The explicit form (<see cref="WeightNorm"/>) writes and reads a
    /// weight-sized matrix every step, which made a DoRA step 2–5× a LoRA step (docs/performance.md).
    /// </summary>
    private Tensor ForwardWeightNorm(string adapter, ScalarType type)
    {
        using var scope = NewDisposeScope();
        var baseWeight = BaseWeight;
        var weight = (baseWeight.dtype == type ? baseWeight : baseWeight.to(type)).reshape(baseWeight.shape[0], -1);
        var (aWeight, bWeight) = Factors(adapter);
        var a = (aWeight.dtype == type ? aWeight.detach() : aWeight.detach().to(type)).flatten(1);
        var b = (bWeight.dtype == type ? bWeight.detach() : bWeight.detach().to(type)).flatten(1);
        double s = ScalingOf(adapter);
        var cross = weight.matmul(a.t()).mul_(b).sum(1);
        var quadratic = b.matmul(a.matmul(a.t())).mul_(b).sum(1);
        var squares = RowNormSquares(weight, type).add(cross, alpha: 2 * s).add_(quadratic, alpha: s * s);
        var norm = squares.clamp_min_(0).sqrt_();
        return (baseWeight.dim() > 2 ? norm.reshape([1, baseWeight.shape[0], .. Enumerable.Repeat(1L, (int)baseWeight.dim() - 2)]) : norm)
            .MoveToOuterDisposeScope();
    }

    private Tensor? rowNormSquares;
    private (IntPtr Handle, int Version, ScalarType Type) rowNormSquaresOf;

    // ‖W_o‖² per output row, kept while the base weight is the same tensor (Module.to() replaces it), LoraGen has not
    // written into it, and the dtype asked for is the same.
    private Tensor RowNormSquares(Tensor weight, ScalarType type)
    {
        var key = (BaseWeight.Handle, BaseWeightVersion, type);
        if (rowNormSquares is null || rowNormSquaresOf != key)
        {
            rowNormSquares?.Dispose();
            using (no_grad())
                rowNormSquares = weight.square().sum(1).DetachFromDisposeScope();
            rowNormSquaresOf = key;
        }
        return rowNormSquares;
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            rowNormSquares?.Dispose();
            rowNormSquares = null;
        }
        base.Dispose(disposing);
    }

    private protected override Tensor FactorOverWeight(Tensor factor) =>
        factor.reshape([-1, .. Enumerable.Repeat(1L, BaseWeightShape.Length - 1)]);

    /// <summary>
    /// PEFT's DoRA forward (dora.py): with <c>s·m/‖W + s·B·A‖</c> per output (the norm detached),
    /// <c>base + (m/‖…‖ − 1)·base_without_bias + m/‖…‖ · s · B(A(x))</c>. Without dropout (or in eval mode) the base
    /// part is the output so far minus the bias; with dropout it is the base weight applied to the dropped input.
    /// </summary>
    private protected override Tensor AddDoraOutput(string adapter, Tensor baseOutput, Tensor x)
    {
        using var scope = NewDisposeScope();
        var down = loraA.Module(adapter);
        var adapterType = WeightOf(down).dtype;
        var cast = x.dtype == adapterType ? x : x.to(adapterType);
        bool dropping = AppliesDropout(adapter);
        var input = dropping ? nn.functional.dropout(cast, ConfigOf(adapter).Dropout, training: true) : cast;
        Tensor norm;
        using (no_grad())
            norm = ForwardWeightNorm(adapter, adapterType);
        // Per output, arranged to multiply the output: [out] for Linear (last axis), [out, 1…] for convolutions.
        var perOutput = (Magnitude(adapter) / norm).reshape(OutputView());
        var projected = down is Convolution convolution ? LoraConvolution.DownProjection(convolution, input) : down.call(input);
        var bias = BiasOf(BaseLayer);
        if (!dropping && down is Linear && baseOutput.dtype == projected.dtype)
        {
            // The same sum, regrouped as m/‖…‖ ⊙ (base − bias + s·B·A·x) + bias: one addmm and one addcmul, so the
            // step records three autograd nodes over the output instead of eight (docs/performance.md, DoRA).
            long outFeatures = baseOutput.shape[^1];
            var plain = WithoutBias(baseOutput, bias).reshape(-1, outFeatures);
            var update = addmm(plain, projected.reshape(-1, projected.shape[^1]), WeightOf(loraB.Module(adapter)).t(),
                beta: 1, alpha: (float)ScalingOf(adapter));
            var scaled = bias is null ? update.mul(perOutput) : bias.addcmul(update, perOutput, 1);
            return scaled.view(baseOutput.shape).MoveToOuterDisposeScope();
        }
        var loraOutput = loraB.Module(adapter).call(projected);
        var baseWithoutBias = dropping
            ? WithoutBias(BaseLayer.call(input.dtype == BaseWeight.dtype ? input : input.to(BaseWeight.dtype)), bias)
            : WithoutBias(baseOutput, bias);
        var result = baseOutput + (perOutput - 1) * baseWithoutBias + perOutput * loraOutput * ScalingOf(adapter);
        return result.MoveToOuterDisposeScope();
    }

    private long[] OutputView() => [-1, .. Enumerable.Repeat(1L, BaseWeightShape.Length - 2)];

    private Tensor WithoutBias(Tensor output, Tensor? bias) => bias is null ? output : output - bias.reshape(OutputView());

    private static Tensor? BiasOf(nn.Module<Tensor, Tensor> layer) => layer switch
    {
        Linear linear => linear.bias,
        Convolution convolution => convolution.bias,
        _ => null,
    };

    // Read through the layer every time: Module.to() replaces Parameter objects.
    private protected static Parameter WeightOf(nn.Module<Tensor, Tensor> layer) => layer switch
    {
        Linear linear => linear.weight!,
        Convolution convolution => convolution.weight!,
        QuantizedLinear => throw new InvalidOperationException(
            "The base layer is a QuantizedLinear: it has no weight parameter, only codes (QuantizedBase.Dequantize() gives the float weight)."),
        _ => throw new InvalidOperationException($"{layer.GetType().Name} is not a Linear or a convolution."),
    };
}
