using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Support;

/// <summary>One 100×100 Linear without bias at rank 3: the seed's example.</summary>
[LoraTarget(Rank = 3)]
public sealed partial class SquareRank3 : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> proj = nn.Linear(100, 100, hasBias: false);

    public SquareRank3() : base(nameof(SquareRank3)) => RegisterComponents();

    public override Tensor forward(Tensor x) => proj.call(x);
}

/// <summary>The same at rank 1.</summary>
[LoraTarget(Rank = 1)]
public sealed partial class SquareRank1 : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> proj = nn.Linear(100, 100, hasBias: false);

    public SquareRank1() : base(nameof(SquareRank1)) => RegisterComponents();

    public override Tensor forward(Tensor x) => proj.call(x);
}

/// <summary>A pre-norm MLP block: up and down adapted (the default: every supported layer), the norm
/// trained in full.</summary>
[LoraTarget(Rank = 4, Alpha = 8, Trainable = ["norm"])]
public sealed partial class MlpBlock : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> up;
    private nn.Module<Tensor, Tensor> down;
    private readonly nn.Module<Tensor, Tensor> norm;

    public MlpBlock(long width, long hidden) : base(nameof(MlpBlock))
    {
        up = nn.Linear(width, hidden);
        down = nn.Linear(hidden, width);
        norm = nn.LayerNorm(width);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.gelu(up.call(norm.call(x)));
        return (x + down.call(h)).MoveToOuterDisposeScope();
    }
}

/// <summary>A plain container (not annotated): two blocks and a head that stays frozen.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> blocks;
    private readonly nn.Module<Tensor, Tensor> head;

    public Mlp(long width, long hidden, long classes) : base(nameof(Mlp))
    {
        blocks = nn.Sequential(new MlpBlock(width, hidden), new MlpBlock(width, hidden));
        head = nn.Linear(width, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var hidden = blocks.call(x);
        return head.call(hidden);
    }
}

/// <summary>A grouped convolution (groups 4, rank 4: the analyzers accept it), which the runtime refuses.</summary>
[LoraTarget(Rank = 4)]
public sealed partial class GroupedConvBlock : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> conv = nn.Conv2d(8, 8, 3, groups: 4);

    public GroupedConvBlock() : base(nameof(GroupedConvBlock)) => RegisterComponents();

    public override Tensor forward(Tensor x) => conv.call(x);
}

#pragma warning disable LORA0010 // On purpose: the layers sit in a Sequential, which [LoraTarget] does not reach.
/// <summary>An annotated class whose only field is a Sequential: nothing LoRA can adapt, one Trainable-free class.</summary>
[LoraTarget(Rank = 4)]
public sealed partial class SequentialOnly : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> layers = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4));

    public SequentialOnly() : base(nameof(SequentialOnly)) => RegisterComponents();

    public override Tensor forward(Tensor x) => layers.call(x);
}
#pragma warning restore LORA0010

/// <summary>The model the kill-loop test's saves belong to: four 512×512 layers q, k, v, o
/// (see tests/LoraGen.SaveLoop/SaveContent.cs).</summary>
[LoraTarget(Rank = 32, Alpha = 32)]
public sealed partial class SaveLoopModel : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> q = nn.Linear(512, 512);
    private nn.Module<Tensor, Tensor> k = nn.Linear(512, 512);
    private nn.Module<Tensor, Tensor> v = nn.Linear(512, 512);
    private nn.Module<Tensor, Tensor> o = nn.Linear(512, 512);

    public SaveLoopModel() : base(nameof(SaveLoopModel)) => RegisterComponents();

    public override Tensor forward(Tensor x) => o.call(v.call(k.call(q.call(x))));
}
