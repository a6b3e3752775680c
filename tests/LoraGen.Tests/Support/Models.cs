using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Support;

/// <summary>One 100×100 Linear without bias: the seed's example.</summary>
[LoraTarget(Rank = 3)]
public sealed class SquareModel : HandWrittenLoraModule
{
    private nn.Module<Tensor, Tensor> proj;
    private readonly LoraConfig config;

    public SquareModel(int rank, long size = 100, bool bias = false) : base(nameof(SquareModel))
    {
        config = new LoraConfig { Rank = rank };
        proj = nn.Linear(size, size, hasBias: bias);
        RegisterComponents();
    }

    public override IReadOnlyList<LoraTargetInfo> LoraTargets => [new("proj", config)];

    public override nn.Module<Tensor, Tensor> GetLoraTarget(string field) =>
        field == "proj" ? proj : throw NoSuchTarget(field);

    protected override void AssignTarget(string field, nn.Module<Tensor, Tensor> layer)
    {
        if (field != "proj") throw NoSuchTarget(field);
        proj = layer;
    }

    public override Tensor forward(Tensor x) => proj.call(x);
}

/// <summary>A two-layer MLP block with a norm trained in full, nested inside a container:
/// targets up and down, trainable norm, an untouched head outside any annotated class.</summary>
[LoraTarget(Rank = 4, Alpha = 8, Trainable = ["norm"])]
public sealed class MlpBlock : HandWrittenLoraModule
{
    private nn.Module<Tensor, Tensor> up;
    private nn.Module<Tensor, Tensor> down;
    private readonly nn.Module<Tensor, Tensor> norm;
    private readonly LoraConfig upConfig;
    private readonly LoraConfig downConfig;

    public MlpBlock(long width, long hidden, LoraConfig? upConfig = null, LoraConfig? downConfig = null)
        : base(nameof(MlpBlock))
    {
        this.upConfig = upConfig ?? new LoraConfig { Rank = 4, Alpha = 8 };
        this.downConfig = downConfig ?? new LoraConfig { Rank = 4, Alpha = 8 };
        norm = nn.LayerNorm(width);
        up = nn.Linear(width, hidden);
        down = nn.Linear(hidden, width);
        RegisterComponents();
    }

    public override IReadOnlyList<LoraTargetInfo> LoraTargets => [new("up", upConfig), new("down", downConfig)];

    public override IReadOnlyList<string> TrainableFields => ["norm"];

    public override nn.Module<Tensor, Tensor> GetLoraTarget(string field) => field switch
    {
        "up" => up,
        "down" => down,
        _ => throw NoSuchTarget(field),
    };

    protected override void AssignTarget(string field, nn.Module<Tensor, Tensor> layer)
    {
        switch (field)
        {
            case "up": up = layer; break;
            case "down": down = layer; break;
            default: throw NoSuchTarget(field);
        }
    }

    public override nn.Module GetTrainableField(string field) => field == "norm" ? norm : base.GetTrainableField(field);

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.gelu(up.call(norm.call(x)));
        return (x + down.call(h)).MoveToOuterDisposeScope();
    }
}

/// <summary>A plain container (not annotated): two blocks and a head.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> blocks;
    private readonly nn.Module<Tensor, Tensor> head;

    public Mlp(long width, long hidden, long classes, LoraConfig? upConfig = null) : base(nameof(Mlp))
    {
        blocks = nn.Sequential(new MlpBlock(width, hidden, upConfig), new MlpBlock(width, hidden, upConfig));
        head = nn.Linear(width, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var hidden = blocks.call(x);
        return head.call(hidden);
    }
}
