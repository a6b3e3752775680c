using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// A frozen Linear layer whose weight is stored quantized (<see cref="QuantizationKind"/>): y = x·Wᵀ + b with W
/// dequantized to float32 for the product and dropped right after it. Everything it holds is a buffer (codes,
/// scales, the optional float bias); it has no parameters, so it is frozen by construction.
/// </summary>
/// <remarks>
/// When <c>x</c> requires a gradient, the product runs through a custom autograd function
/// (<c>torch.autograd.SingleTensorFunction</c>) that saves no tensor: its backward dequantizes W again and returns
/// grad·W. So the float weight lives only inside the forward product and inside the backward product, never from
/// one to the other. No gradient is produced for the weight or the bias.
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
    public long WeightBytes => Bytes(codes) + Bytes(absmax) + Bytes(absmax_scale) + Bytes(absmax_offset);

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

        Tensor? floatBias = null;
        using (no_grad())
            floatBias = bias?.detach().to(ScalarType.Float32, copy: true);

        using (no_grad())
        {
            switch (kind)
            {
                case QuantizationKind.Int8:
                {
                    var (codes, rows) = Int8Rows.Quantize(weight);
                    return new QuantizedLinear(kind, inFeatures, outFeatures, codes, rows, null, null, floatBias);
                }
                case QuantizationKind.Nf4:
                {
                    var (packed, absmax) = Nf4.Quantize(weight);
                    return new QuantizedLinear(kind, inFeatures, outFeatures, packed, absmax, null, null, floatBias);
                }
                case QuantizationKind.Nf4DoubleQuantized:
                {
                    var (packed, absmax) = Nf4.Quantize(weight);
                    using (absmax)
                    {
                        // bitsandbytes quantize_4bit(compress_statistics=True): offset = absmax.mean();
                        // quantize_blockwise(absmax - offset, blocksize=256) with the dynamic map.
                        var offset = absmax.mean();
                        using var centered = absmax - offset;
                        var (absmaxCodes, absmaxScale) = DynamicMap.Quantize(centered, Nf4.DoubleQuantizationBlockSize);
                        return new QuantizedLinear(kind, inFeatures, outFeatures, packed, absmaxCodes, absmaxScale, offset, floatBias);
                    }
                }
                default:
                    throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown quantization kind");
            }
        }
    }

    /// <summary>The per-block NF4 absmax in float32 (for double quantization: <c>dynamic[q]·scale + offset</c>,
    /// bitsandbytes' <c>dequantize_blockwise(...) + offset</c>); for Int8 the per-row absmax. A new tensor.</summary>
    public Tensor Scales()
    {
        using var _ = no_grad();
        if (Kind != QuantizationKind.Nf4DoubleQuantized)
            return absmax.clone();
        using var scope = NewDisposeScope();
        var values = DynamicMap.Dequantize(absmax, absmax_scale!, Nf4.DoubleQuantizationBlockSize).add_(absmax_offset!);
        return values.MoveToOuterDisposeScope();
    }

    /// <summary>The float32 weight [out, in] the codes stand for (a new tensor, not tracked by autograd). What
    /// forward multiplies by, and the starting point of merging to full precision.</summary>
    public Tensor Dequantize()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var weight = Kind switch
        {
            QuantizationKind.Int8 => Int8Rows.Dequantize(codes, absmax),
            QuantizationKind.Nf4 => Nf4.Dequantize(codes, absmax, InFeatures * OutFeatures),
            _ => Nf4.Dequantize(codes, Scales(), InFeatures * OutFeatures),
        };
        return weight.view(OutFeatures, InFeatures).MoveToOuterDisposeScope();
    }

    // One float32 buffer per thread for the weight a product dequantizes into, grown to the largest weight seen. A fresh
    // multi-megabyte tensor per product is a fresh mmap that the dequantization then page-faults in: measured on workload
    // (a), 4 chained layers took 194 ms a step that way and 25 ms with memory that stays mapped.
    [ThreadStatic]
    private static Tensor? scratch;

    /// <summary>W [out, in] in float32 for one product: on the CPU a view of this thread's reused buffer, valid until
    /// the next call on this thread (dispose the view, never keep it); elsewhere a new tensor.</summary>
    internal Tensor DequantizeTransient()
    {
        if (codes.device_type != DeviceType.CPU)
            return Dequantize();
        using var _ = no_grad();
        long n = InFeatures * OutFeatures;
        if (scratch is null || scratch.numel() < n)
        {
            scratch?.Dispose();
            scratch = empty(n, ScalarType.Float32, device: CPU).DetachFromDisposeScope();
        }
        var flat = scratch.narrow(0, 0, n);
        try
        {
            switch (Kind)
            {
                case QuantizationKind.Int8:
                {
                    // Int8Rows.Dequantize's operations, in place: (float(codes) · s) · (1/127).
                    using var rows = flat.view(OutFeatures, InFeatures);
                    using var column = absmax.unsqueeze(1);
                    rows.copy_(codes).mul_(column).mul_(Int8Rows.InverseOf127);
                    break;
                }
                case QuantizationKind.Nf4:
                    Nf4.DequantizeInto(codes, absmax, n, flat);
                    break;
                default:
                {
                    using var scales = Scales();
                    Nf4.DequantizeInto(codes, scales, n, flat);
                    break;
                }
            }
            using (flat)
                return flat.view(OutFeatures, InFeatures);
        }
        catch
        {
            flat.Dispose();
            throw;
        }
    }

    /// <summary>x·Wᵀ + b. With autograd recording and <paramref name="x"/> requiring a gradient, the gradient to x
    /// is computed by dequantizing W again in backward (nothing float is kept between the passes).</summary>
    public override Tensor forward(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        Tensor y;
        if (x.requires_grad && is_grad_enabled())
        {
            y = DequantizedLinearFunction.apply(x, this);
        }
        else
        {
            using var weight = DequantizeTransient();
            using var typed = weight.to(x.dtype);
            y = nn.functional.linear(x, typed);
        }
        if (bias is null)
            return y;
        using (y)
            return y + bias.to(y.dtype);
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

    /// <summary>Forward without the custom autograd function: W is dequantized inside the graph, so autograd keeps
    /// it alive until backward. Only for measuring what <see cref="forward"/> saves.</summary>
    internal Tensor ForwardKeepingWeight(Tensor x)
    {
        var weight = Dequantize();
        var y = nn.functional.linear(x, weight.to(x.dtype));
        return bias is null ? y : y + bias.to(y.dtype);
    }

    private static long Bytes(Tensor? t) => t is null ? 0 : t.numel() * t.element_size();
}

/// <summary>y = x·Wᵀ with W = layer.Dequantize(); backward recomputes W and returns grad·W. Saves no tensor.</summary>
internal sealed class DequantizedLinearFunction : autograd.SingleTensorFunction<DequantizedLinearFunction>
{
    private const string LayerKey = "layer";

    public override string Name => nameof(DequantizedLinearFunction);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var layer = (QuantizedLinear)vars[1];
        ctx.save_data(LayerKey, layer);
        using var weight = layer.DequantizeTransient();
        using var typed = weight.to(x.dtype);
        return nn.functional.linear(x, typed);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        var layer = (QuantizedLinear)ctx.get_data(LayerKey);
        using var weight = layer.DequantizeTransient();
        using var typed = weight.to(grad_output.dtype);
        return [grad_output.matmul(typed), null!];
    }
}
