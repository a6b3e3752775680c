using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// A QLoRA layer's training forward as one autograd node: y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ, W the quantized base
/// (dequantized slice by slice, <see cref="DequantizedProduct"/>), A [r, in] and B [out, r] the adapter. Backward
/// returns grad·W + s·(grad·B)·A to x and the adapter's two gradients, from x and x·Aᵀ saved in forward.
/// </summary>
/// <remarks>
/// The same numbers as the base product's node followed by the adapter's addmm, with two output-sized tensors fewer
/// per layer and step: the base product is not a tensor of its own (the adapter's product is added into it), and the
/// two gradients to x are one (the adapter's part is added into the base's). On workload (a), with glibc's mmap
/// threshold fixed so that every activation-sized block is a fresh mapping, a step maps 13 such blocks instead of 24,
/// and with glibc as started the training peak went from 26-33 MB to 16-17 MB (docs/qlora.md). The handles
/// TorchSharp's function machinery leaves in the caller's dispose scope are released as in
/// <see cref="DequantizedLinearFunction"/>.
/// </remarks>
internal sealed class QloraLinearFunction : autograd.SingleTensorFunction<QloraLinearFunction>
{
    private const string LayerKey = "layer", ScalingKey = "scaling", NeedsKey = "needs";

    [ThreadStatic]
    private static List<Tensor>? returnedGradients;

    public override string Name => nameof(QloraLinearFunction);

    /// <summary>y for float32 <paramref name="x"/> [..., in], <paramref name="a"/> and <paramref name="b"/> on the CPU,
    /// recorded for autograd.</summary>
    public static Tensor Apply(Tensor x, Tensor a, Tensor b, QuantizedLinear layer, double scaling)
    {
        var call = new ForwardResult();
        var y = apply(x, a, b, layer, scaling, call);
        call.Value?.Dispose();   // y is another handle to the same tensor
        return y;
    }

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, a, b) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        var layer = (QuantizedLinear)vars[3];
        var scaling = (double)vars[4];
        var y = DequantizedProduct.Forward(layer, x);
        using var rows = x.reshape(-1, layer.InFeatures);
        using var downT = a.t();
        var down = rows.matmul(downT);
        using (var outputs = y.view(-1, layer.OutFeatures))
        using (var upT = b.t())
            outputs.addmm_(down, upT, beta: 1, alpha: (float)scaling);
        ctx.save_for_backward([x, a, b, down]);
        ctx.save_data(LayerKey, layer);
        ctx.save_data(ScalingKey, scaling);
        ctx.save_data(NeedsKey, new[] { x.requires_grad, a.requires_grad, b.requires_grad });
        ((ForwardResult)vars[5]).Value = y;
        return y;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        // The previous backward's gradients were copied or taken over by the engine once that callback returned.
        returnedGradients?.ForEach(gradient => gradient?.Dispose());
        var layer = (QuantizedLinear)ctx.get_data(LayerKey);
        var scaling = (double)ctx.get_data(ScalingKey);
        var needs = (bool[])ctx.get_data(NeedsKey);
        var saved = ctx.get_saved_variables();
        var (x, a, b, down) = (saved[0], saved[1], saved[2], saved[3]);
        Tensor? toX = null, toA = null, toB = null;
        // One Scalar for both products, disposed here: an implicit one per call would hold native memory until the
        // finalizer runs.
        using var s = scaling.ToScalar();
        using (var grad = grad_output.reshape(-1, layer.OutFeatures))
        using (var gradDown = grad.matmul(b).mul_(s))
        {
            if (needs[0])
            {
                toX = DequantizedProduct.InputGradient(layer, grad_output);
                using var rows = toX.view(-1, layer.InFeatures);
                rows.addmm_(gradDown, a);
            }
            if (needs[1])
            {
                using var inputs = x.reshape(-1, layer.InFeatures);
                using var gradDownT = gradDown.t();
                toA = gradDownT.matmul(inputs);
            }
            if (needs[2])
            {
                using var gradT = grad.t();
                toB = gradT.matmul(down).mul_(s);
            }
        }
        saved.ForEach(tensor => tensor.Dispose());
        grad_output.Dispose();
        returnedGradients = [toX!, toA!, toB!];
        return [toX!, toA!, toB!, null!, null!, null!];
    }
}
