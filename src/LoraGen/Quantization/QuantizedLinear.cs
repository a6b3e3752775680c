using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// A frozen Linear layer whose weight is stored quantized (<see cref="QuantizationKind"/>): y = x·Wᵀ + b with W
/// dequantized to float32 slice by slice (about 1 MiB of rows at a time on the CPU) inside the product. Everything it holds is a buffer (codes,
/// scales, the optional float bias); it has no parameters, so it is frozen by construction.
/// </summary>
/// <remarks>
/// When <c>x</c> requires a gradient, the product runs through a custom autograd function
/// (<c>torch.autograd.SingleTensorFunction</c>) that saves no tensor: its backward dequantizes W again and returns
/// grad·W. So a float slice of the weight lives only inside the forward product and inside the backward product,
/// never from one to the other. No gradient is produced for the weight or the bias.
/// </remarks>
public sealed class QuantizedLinear : nn.Module<Tensor, Tensor>
{
    // The field names are the buffer names: Module.to() finds the fields by name and replaces them.
#pragma warning disable IDE0044 // Module.to() assigns these by reflection.
    private Tensor codes;
    private Tensor absmax;
    private Tensor? absmax_scale;
    private Tensor? absmax_offset;
    private Tensor? bias;
#pragma warning restore IDE0044

    private QuantizedLinear(QuantizationKind kind, long inFeatures, long outFeatures, Tensor codes, Tensor absmax,
        Tensor? absmaxScale, Tensor? absmaxOffset, Tensor? bias) : base(nameof(QuantizedLinear))
    {
        // The layer owns its tensors: one built inside a dispose scope (a loader's, a step's) must outlive it.
        foreach (var t in new[] { codes, absmax, absmaxScale, absmaxOffset, bias })
            t?.DetachFromDisposeScope();
        Kind = kind;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        this.codes = codes;
        this.absmax = absmax;
        absmax_scale = absmaxScale;
        absmax_offset = absmaxOffset;
        this.bias = bias;
        register_buffer(nameof(codes), codes);
        register_buffer(nameof(absmax), absmax);
        if (absmaxScale is not null)
            register_buffer(nameof(absmax_scale), absmaxScale);
        if (absmaxOffset is not null)
            register_buffer(nameof(absmax_offset), absmaxOffset);
        if (bias is not null)
            register_buffer(nameof(bias), bias);
    }

    /// <summary>The storage format of the weight.</summary>
    public QuantizationKind Kind { get; }

    /// <summary>Input features (the weight's second dimension).</summary>
    public long InFeatures { get; }

    /// <summary>Output features (the weight's first dimension).</summary>
    public long OutFeatures { get; }

    /// <summary>The float bias, or null. A live buffer of this layer: do not dispose it.</summary>
    public Tensor? Bias => bias;

    /// <summary>The device the codes (and everything else) live on.</summary>
    public Device Device => codes.device;

    /// <summary>Bytes of the quantized weight: codes and scales (and the double-quantization constants), without
    /// the bias.</summary>
    public long WeightBytes => Stored.Bytes;

    /// <summary>Quantizes <paramref name="linear"/>'s weight and copies its bias (as float32). The Linear is not
    /// changed or disposed.</summary>
    public static QuantizedLinear FromLinear(Linear linear, QuantizationKind kind)
    {
        ArgumentNullException.ThrowIfNull(linear);
        return FromWeight(linear.weight!, linear.bias, kind);
    }

    /// <summary>Quantizes a float weight [out, in] (any float type, any device) and copies <paramref name="bias"/>
    /// [out] as float32. The inputs are not kept: they can be disposed as soon as this returns, which is what lets a
    /// checkpoint be quantized tensor by tensor.</summary>
    public static QuantizedLinear FromWeight(Tensor weight, Tensor? bias, QuantizationKind kind)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() != 2)
            throw new ArgumentException($"a Linear weight is [out, in]; got [{string.Join(", ", weight.shape)}]", nameof(weight));
        if (!weight.is_floating_point())
            throw new ArgumentException($"the weight must be floating point; got {weight.dtype}", nameof(weight));
        long outFeatures = weight.shape[0], inFeatures = weight.shape[1];
        if (bias is not null && (bias.dim() != 1 || bias.shape[0] != outFeatures))
            throw new ArgumentException($"the bias must be [{outFeatures}]; got [{string.Join(", ", bias.shape)}]", nameof(bias));

        var quantized = QuantizedWeight.Of(weight, kind);
        Tensor? floatBias = null;
        using (no_grad())
            floatBias = bias?.detach().to(ScalarType.Float32, copy: true);
        return new QuantizedLinear(kind, inFeatures, outFeatures, quantized.Codes, quantized.Absmax, quantized.AbsmaxScale,
            quantized.AbsmaxOffset, floatBias);
    }

    /// <summary>The per-block NF4 absmax in float32 (for double quantization: <c>dynamic[q]·scale + offset</c>,
    /// bitsandbytes' <c>dequantize_blockwise(...) + offset</c>); for Int8 the per-row absmax. A new tensor.</summary>
    public Tensor Scales() => Stored.Scales();

    /// <summary>The float32 weight [out, in] the codes stand for (a new tensor, not tracked by autograd). What
    /// forward multiplies by, and the starting point of merging to full precision.</summary>
    public Tensor Dequantize() => Stored.Dequantize();

    // The buffers as they are now (Module.to replaces the fields).
    private QuantizedWeight Stored => new(Kind, OutFeatures, InFeatures, codes, absmax, absmax_scale, absmax_offset);

    /// <summary>What <see cref="DequantizeRowsInto"/> scales NF4 blocks by: the stored absmax, or for double
    /// quantization the float32 values of <see cref="Scales"/> (a new tensor, ~1/64 of the weight); null for Int8.</summary>
    internal Tensor? BlockScales() => Kind switch
    {
        QuantizationKind.Int8 => null,
        QuantizationKind.Nf4 => absmax.alias(),
        _ => Scales(),
    };

    /// <summary>Rows [first, first + count) of the float32 weight into <paramref name="destination"/> (contiguous
    /// float32 [count · in] on the CPU), bit for bit those of <see cref="Dequantize"/>. For NF4, first · in must be a
    /// multiple of the block size, and <paramref name="scales"/> is <see cref="BlockScales"/>.</summary>
    internal void DequantizeRowsInto(long first, long count, Tensor? scales, Tensor destination)
    {
        using var _ = no_grad();
        if (Kind == QuantizationKind.Int8)
        {
            // Int8Rows.Dequantize's operations, in place: (float(codes) · s) · (1/127).
            using var rows = destination.view(count, InFeatures);
            using var rowCodes = codes.narrow(0, first, count);
            using var rowScales = absmax.narrow(0, first, count);
            using var column = rowScales.unsqueeze(1);
            rows.copy_(rowCodes).mul_(column).mul_(Int8Rows.InverseOf127);
            return;
        }
        long start = first * InFeatures, n = count * InFeatures;
        if (start % Nf4.BlockSize != 0)
            throw new ArgumentException($"row {first} does not start an NF4 block of {Nf4.BlockSize}", nameof(first));
        using var packed = codes.narrow(0, start / 2, (n + 1) / 2);
        using var blockScales = scales!.narrow(0, start / Nf4.BlockSize, (n + Nf4.BlockSize - 1) / Nf4.BlockSize);
        Nf4.DequantizeInto(packed, blockScales, n, destination);
    }

    /// <summary>x·Wᵀ + b. With autograd recording and <paramref name="x"/> requiring a gradient, the gradient to x
    /// is computed by dequantizing W again in backward (nothing float is kept between the passes).</summary>
    public override Tensor forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        return x.requires_grad && is_grad_enabled()
            ? DequantizedLinearFunction.Apply(x, this)
            : DequantizedProduct.Forward(this, x);
    }

    /// <summary>A copy of this layer's codes, scales and bias (for keeping the original codes aside while a merge
    /// re-quantizes them).</summary>
    internal QuantizedLinear Copy()
    {
        using var _ = no_grad();
        return new QuantizedLinear(Kind, InFeatures, OutFeatures, codes.clone(), absmax.clone(), absmax_scale?.clone(),
            absmax_offset?.clone(), bias?.clone());
    }

    /// <summary>Overwrites the codes and scales (not the bias) with <paramref name="other"/>'s, bit for bit; the two
    /// must have the same kind and shape.</summary>
    internal void CopyCodesFrom(QuantizedLinear other)
    {
        if (other.Kind != Kind || other.InFeatures != InFeatures || other.OutFeatures != OutFeatures)
            throw new ArgumentException($"cannot copy {other.Kind} [{other.OutFeatures}, {other.InFeatures}] codes into {Kind} [{OutFeatures}, {InFeatures}]", nameof(other));
        using var _ = no_grad();
        codes.copy_(other.codes);
        absmax.copy_(other.absmax);
        absmax_scale?.copy_(other.absmax_scale!);
        absmax_offset?.copy_(other.absmax_offset!);
    }

    /// <summary>Quantizes <paramref name="weight"/> [out, in] into this layer's buffers (same kind; the bias is
    /// kept). This rounds: what <see cref="Dequantize"/> gives afterwards is the nearest code of every weight, not
    /// <paramref name="weight"/>.</summary>
    internal void Requantize(Tensor weight)
    {
        using var fresh = FromWeight(weight, null, Kind);
        CopyCodesFrom(fresh);
    }
}
