using LoraGen;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace RankArithmetic;

/// <summary>The seed's example: one 100×100 weight (no bias, so the counts are the weight's alone).</summary>
public static class Square
{
    public const int Size = 100;
}

// One class per rank: the rank is part of the [LoraTarget] attribute, checked by the analyzers at compile time.

[LoraTarget(Rank = 1)]
public sealed partial class SquareRank1 : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> weight = Linear(Square.Size, Square.Size, hasBias: false);

    public SquareRank1() : base(nameof(SquareRank1)) => RegisterComponents();

    public override Tensor forward(Tensor x) => weight.call(x);
}

[LoraTarget(Rank = 3)]
public sealed partial class SquareRank3 : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> weight = Linear(Square.Size, Square.Size, hasBias: false);

    public SquareRank3() : base(nameof(SquareRank3)) => RegisterComponents();

    public override Tensor forward(Tensor x) => weight.call(x);
}

[LoraTarget(Rank = 10)]
public sealed partial class SquareRank10 : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> weight = Linear(Square.Size, Square.Size, hasBias: false);

    public SquareRank10() : base(nameof(SquareRank10)) => RegisterComponents();

    public override Tensor forward(Tensor x) => weight.call(x);
}
