using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// The two products a <see cref="QuantizedLinear"/> needs, x·Wᵀ (forward) and grad·W (the gradient to x), computed
/// one slice of W's rows at a time: each slice is dequantized into a small per-thread float32 buffer and multiplied
/// straight into its part of the result. So the float weight never exists whole, only ~1 MiB of it at a time (the
/// issue's "dequantize the block being used"): on workload (a) that is 1 MiB instead of 4, on a 7B LM head 1 MiB
/// instead of 0.5 GB.
/// </summary>
/// <remarks>
/// On the CPU only; on other devices the whole weight is dequantized for one product (a device's memory is
/// reclaimed by its caching allocator, and one kernel launch beats hundreds). The buffer is reused because a fresh
/// multi-megabyte tensor per product is a fresh mmap that the dequantization then page-faults in: measured on
/// workload (a), 4 chained layers took 194 ms a step that way and 25 ms with memory that stays mapped.
/// </remarks>
internal static class DequantizedProduct
{
    /// <summary>Weights dequantized at a time (float32: 1 MiB), unless one row (or one row group that starts on an
    /// NF4 block boundary) is longer.</summary>
    internal const long SliceValues = 1 << 18;

    // Grows to the largest slice seen on the thread and stays: 1 MiB, unless one row group is larger (NF4 needs
    // 64 / gcd(in, 64) whole rows per slice: 64 rows of an odd in_features).
    [ThreadStatic]
    private static Tensor? scratch;

    /// <summary>x [..., in] → x·Wᵀ + b [..., out], in x's dtype. The bias is the product's starting value, not a
    /// second output-sized tensor added afterwards (one allocation less per layer and pass).</summary>
    public static Tensor Forward(QuantizedLinear layer, Tensor x)
    {
        using var _ = no_grad();
        using var bias = layer.Bias?.to(x.dtype, x.device);
        if (x.device_type != DeviceType.CPU)
        {
            using var weight = layer.Dequantize();
            using var typed = weight.to(x.dtype, x.device);
            return nn.functional.linear(x, typed, bias);
        }
        using var scope = NewDisposeScope();
        var rows = x.reshape(-1, layer.InFeatures);
        var y = empty(rows.shape[0], layer.OutFeatures, x.dtype);
        if (bias is not null)
            y.copy_(bias);
        var beta = bias is null ? 0 : 1;
        ForEachSlice(layer, x.dtype, (first, count, slice) =>
        {
            using var target = y.narrow(1, first, count);
            using var transposed = slice.t();
            target.addmm_(rows, transposed, beta: beta);
        });
        return y.view([.. x.shape[..^1], layer.OutFeatures]).MoveToOuterDisposeScope();
    }

    /// <summary>grad [..., out] → grad·W [..., in], in grad's dtype. The slices' products are summed in float32 (or
    /// float64), so a half-precision gradient is rounded once at the end, not once per slice.</summary>
    public static Tensor InputGradient(QuantizedLinear layer, Tensor grad)
    {
        using var _ = no_grad();
        if (grad.device_type != DeviceType.CPU)
        {
            using var weight = layer.Dequantize();
            using var typed = weight.to(grad.dtype, grad.device);
            return grad.matmul(typed);
        }
        using var scope = NewDisposeScope();
        var sumType = grad.dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var rows = grad.reshape(-1, layer.OutFeatures).to(sumType);
        // The first slice overwrites (beta 0), so no zero fill is needed, unless there is no slice at all.
        var result = layer.OutFeatures == 0
            ? zeros(rows.shape[0], layer.InFeatures, sumType)
            : empty(rows.shape[0], layer.InFeatures, sumType);
        ForEachSlice(layer, sumType, (first, count, slice) =>
        {
            using var part = rows.narrow(1, first, count);
            result.addmm_(part, slice, beta: first == 0 ? 0 : 1);
        });
        return result.to(grad.dtype).view([.. grad.shape[..^1], layer.InFeatures]).MoveToOuterDisposeScope();
    }

    /// <summary>How many rows one slice holds: about <see cref="SliceValues"/> weights, a multiple of the rows that
    /// make whole NF4 blocks (so every slice starts on a block boundary), at least one such group.</summary>
    internal static long RowsPerSlice(QuantizedLinear layer)
    {
        long group = layer.Kind == QuantizationKind.Int8 ? 1 : Nf4.BlockSize / Gcd(layer.InFeatures, Nf4.BlockSize);
        long rows = SliceValues / layer.InFeatures / group * group;
        return Math.Min(Math.Max(rows, group), layer.OutFeatures);
    }

    // Dequantizes W's rows slice by slice into this thread's buffer and hands each to body as [count, in] (in dtype).
    private static void ForEachSlice(QuantizedLinear layer, ScalarType dtype, Action<long, long, Tensor> body)
    {
        long sliceRows = RowsPerSlice(layer);
        var buffer = Scratch(sliceRows * layer.InFeatures);
        using var scales = layer.BlockScales();
        for (long first = 0; first < layer.OutFeatures; first += sliceRows)
        {
            long count = Math.Min(sliceRows, layer.OutFeatures - first);
            using var flat = buffer.narrow(0, 0, count * layer.InFeatures);
            layer.DequantizeRowsInto(first, count, scales, flat);
            using var slice = flat.view(count, layer.InFeatures);
            if (dtype == ScalarType.Float32)
            {
                body(first, count, slice);
                continue;
            }
            using var typed = slice.to(dtype);
            body(first, count, typed);
        }
    }

    private static Tensor Scratch(long values)
    {
        if (scratch is null || scratch.numel() < values)
        {
            scratch?.Dispose();
            scratch = empty(Math.Max(values, SliceValues), ScalarType.Float32, device: CPU).DetachFromDisposeScope();
        }
        return scratch;
    }

    private static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);
}

/// <summary>y = x·Wᵀ + b with W dequantized slice by slice; backward dequantizes again and returns grad·W. Saves no
/// tensor, only the layer (as data), so no part of the float weight lives from forward to backward. (TorchSharp's node
/// itself keeps an <c>empty_like</c> of the output until the graph is freed, beyond this class's reach.)</summary>
/// <remarks>
/// TorchSharp's function machinery registers three tensors per call in the caller's dispose scope that a built-in op
/// would free as soon as autograd is done with them: forward's own result (autograd returns a second handle to it),
/// the gradient handed to backward, and the gradient backward returns (libtorch takes its own reference). In a
/// training step's scope each would live until the step ends, three activation-sized tensors per layer (measured on
/// workload (c), BERT: +0.4 GB of peak RSS). So this class releases its handles once libtorch holds its own: forward's
/// result right after <see cref="Apply"/>, the incoming gradient after use, and the returned gradient at the next
/// backward on the thread (the engine copied it when the callback returned). The last one goes with the scope, or, on
/// a thread without one, stays referenced until that thread's next backward.
/// </remarks>
internal sealed class DequantizedLinearFunction : autograd.SingleTensorFunction<DequantizedLinearFunction>
{
    private const string LayerKey = "layer";

    [ThreadStatic]
    private static Tensor? returnedGradient;

    public override string Name => nameof(DequantizedLinearFunction);

    /// <summary>x·Wᵀ recorded for autograd (x requires a gradient).</summary>
    public static Tensor Apply(Tensor x, QuantizedLinear layer)
    {
        var call = new ForwardResult();
        var y = apply(x, layer, call);
        call.Value?.Dispose();   // y is another handle to the same tensor
        return y;
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var layer = (QuantizedLinear)vars[1];
        ctx.save_data(LayerKey, layer);
        var y = DequantizedProduct.Forward(layer, (Tensor)vars[0]);
        ((ForwardResult)vars[2]).Value = y;
        return y;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        returnedGradient?.Dispose();
        returnedGradient = null;
        var gradient = DequantizedProduct.InputGradient((QuantizedLinear)ctx.get_data(LayerKey), grad_output);
        grad_output.Dispose();
        returnedGradient = gradient;
        return [gradient, null!, null!];
    }
}

/// <summary>Where a custom function's forward leaves its own handle to the result, so that <c>Apply</c> can release it
/// once TorchSharp's <c>apply</c> has returned a second one (see <see cref="DequantizedLinearFunction"/>).</summary>
internal sealed class ForwardResult
{
    public Tensor? Value { get; set; }
}
