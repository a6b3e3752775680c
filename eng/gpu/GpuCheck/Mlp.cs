using LoraGen;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LoraGen.GpuCheck;

/// <summary>The benchmark MLP: 4 × Linear(1024, 1024) + GELU, every Linear adapted at rank 8.</summary>
[LoraTarget(Rank = 8)]
public sealed partial class Mlp : Module<Tensor, Tensor>
{
    public const int Width = 1024;

    private Module<Tensor, Tensor> fc0 = Linear(Width, Width);
    private Module<Tensor, Tensor> fc1 = Linear(Width, Width);
    private Module<Tensor, Tensor> fc2 = Linear(Width, Width);
    private Module<Tensor, Tensor> fc3 = Linear(Width, Width);

    public Mlp() : base(nameof(Mlp)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = functional.gelu(fc0.call(x));
        x = functional.gelu(fc1.call(x));
        x = functional.gelu(fc2.call(x));
        return fc3.call(x).MoveToOuterDisposeScope();
    }
}
