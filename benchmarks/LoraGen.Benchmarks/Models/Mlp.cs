using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LoraGen.Benchmarks.Models;

/// <summary>
/// Workload (a): four square Linear layers with GELU between them. Every Linear is a target (the
/// class-level default), so ApplyLora goes through the code the generator wrote for this class.
/// </summary>
[LoraTarget(Rank = 8)]
public sealed partial class Mlp : Module<Tensor, Tensor>
{
    public const int Width = 1024;

    private Module<Tensor, Tensor> fc1 = Linear(Width, Width);
    private Module<Tensor, Tensor> fc2 = Linear(Width, Width);
    private Module<Tensor, Tensor> fc3 = Linear(Width, Width);
    private Module<Tensor, Tensor> fc4 = Linear(Width, Width);

    public Mlp() : base(nameof(Mlp)) => RegisterComponents();

    // Intermediates belong to the caller's dispose scope (one per training step or inference call).
    public override Tensor forward(Tensor x)
    {
        var h = functional.gelu(fc1.call(x));
        h = functional.gelu(fc2.call(h));
        h = functional.gelu(fc3.call(h));
        return fc4.call(h);
    }
}
