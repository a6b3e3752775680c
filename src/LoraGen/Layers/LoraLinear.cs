using TorchSharp;
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

    /// <summary>QLoRA: wraps a quantized frozen base with a fresh adapter. Forward is <c>base(x) + scaling · B(A·x)</c>
    /// with the base dequantized for its product only (see <see cref="QuantizedLinear"/>); the adapters are float
    /// (<see cref="LoraOptions.AdapterDType"/>). DoRA and PiSSA/OLoRA initialisation are refused over a quantized base.</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, ask for DoRA or PiSSA/OLoRA, or the adapter
    /// would not save parameters.</exception>
    public LoraLinear(QuantizedLinear baseLayer, LoraConfig config, LoraOptions? options = null, string adapter = DefaultAdapter)
        : base(nameof(LoraLinear), baseLayer, config, ShapeOf(baseLayer), options ?? LoraOptions.Default, adapter,
            (rank, device, dtype) => nn.Linear(baseLayer.InFeatures, rank, hasBias: false, device: device, dtype: dtype),
            (rank, device, dtype) => nn.Linear(rank, baseLayer.OutFeatures, hasBias: false, device: device, dtype: dtype))
    {
    }

    /// <summary>QLoRA training on the CPU (float32, no dropout): the quantized base and the adapter in one autograd
    /// node, <see cref="QloraLinearFunction"/>, which allocates two output-sized tensors per step fewer. The base
    /// layer's own forward is not called on this path (hooks registered on it do not run).</summary>
    private protected override Tensor? FusedForward(string adapter, Tensor x)
    {
        if (BaseLayer is not QuantizedLinear quantized || x.device_type != DeviceType.CPU || !training
            || !is_grad_enabled() || AppliesDropout(adapter))
            return null;
        var (a, b) = Factors(adapter);
        if (x.dtype != ScalarType.Float32 || a.dtype != ScalarType.Float32 || b.dtype != ScalarType.Float32
            || !(x.requires_grad || a.requires_grad || b.requires_grad))
            return null;
        return QloraLinearFunction.Apply(x, a, b, quantized, ScalingOf(adapter));
    }

    /// <inheritdoc />
    private protected override Tensor AddUpProjection(Tensor baseOutput, Tensor down, nn.Module<Tensor, Tensor> up, double scaling) =>
        AddLowRankProduct(baseOutput, down, WeightOf(up), scaling);

    /// <summary>PEFT's <c>pissa_init</c> / <c>olora_init</c>: A and B from the SVD (top r singular triplets, √(S/scaling) on
    /// each side) or the QR factors of W, and the residual W − scaling·B·A, with B·A taken from A and B as stored.</summary>
    private protected override Tensor InitializeFromWeight(string adapter, LoraConfig config, Tensor weight)
    {
        using var scope = NewDisposeScope();
        int r = config.Rank;
        double scaling = config.Scaling;
        Tensor a, b;
        if (config.Init == LoraInit.Olora)
        {
            var (q, rFactor) = linalg.qr(weight);
            b = q[.., ..r].contiguous();
            a = rFactor[..r].contiguous();
        }
        else
        {
            Tensor u, s, vh;
            if (config.PissaIterations is { } iterations)
                (u, s, vh) = RandomizedSvd(weight, r, iterations);
            else
            {
                var (fullU, fullS, fullVh) = linalg.svd(weight, fullMatrices: false);
                (u, s, vh) = (fullU[.., ..r], fullS[..r], fullVh[..r]);
            }
            var root = (s / scaling).sqrt();
            a = root.unsqueeze(1) * vh;   // diag(√(S/s))·Vhᵣ
            b = u * root.unsqueeze(0);    // Uᵣ·diag(√(S/s))
        }
        var (aWeight, bWeight) = FactorsOf(adapter);
        aWeight.copy_(a);
        bWeight.copy_(b);
        var stored = bWeight.to(ScalarType.Float32).matmul(aWeight.to(ScalarType.Float32));
        return weight.add(stored, alpha: -scaling).MoveToOuterDisposeScope();
    }

    // torch.svd_lowrank (Halko et al., what PEFT's pissa_niter_N calls), with q = r: a range basis from a Gaussian
    // sketch refined by `iterations` power iterations, then the exact SVD of the small projection. Returns U [out, r],
    // S [r], Vh [r, in]. (TorchSharp 0.107's svd_lowrank returns a single tensor, not the triplet.)
    private static (Tensor U, Tensor S, Tensor Vh) RandomizedSvd(Tensor weight, int r, int iterations)
    {
        var sketch = randn(weight.shape[1], r, dtype: weight.dtype, device: weight.device);
        var (q, _) = linalg.qr(weight.matmul(sketch));
        for (int i = 0; i < iterations; i++)
        {
            (q, _) = linalg.qr(weight.t().matmul(q));
            (q, _) = linalg.qr(weight.matmul(q));
        }
        var (smallU, s, vh) = linalg.svd(q.t().matmul(weight), fullMatrices: false);
        return (q.matmul(smallU), s, vh);
    }

    /// <summary>The sizes of a Linear layer.</summary>
    public static LoraLayerShape ShapeOf(Linear layer) =>
        new(LoraLayerKind.Linear, layer.in_features, layer.out_features);

    /// <summary>The sizes of a quantized Linear layer (those of the float weight it stands for).</summary>
    public static LoraLayerShape ShapeOf(QuantizedLinear layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        return new(LoraLayerKind.Linear, layer.InFeatures, layer.OutFeatures);
    }
}
