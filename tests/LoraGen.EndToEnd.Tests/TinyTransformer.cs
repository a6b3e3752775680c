using LoraGen;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LoraGen.EndToEnd.Tests;

public static class Dims
{
    public const int Vocabulary = 16;
    public const int Width = 32;
    public const int Heads = 4;
}

/// <summary>Multi-head self-attention; LoRA on the query and value projections, as in the LoRA paper.</summary>
[LoraTarget(Rank = 4, Alpha = 8, Targets = ["q_proj", "v_proj"])]
public sealed partial class SelfAttention : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> q_proj = Linear(Dims.Width, Dims.Width);
    private Module<Tensor, Tensor> k_proj = Linear(Dims.Width, Dims.Width);
    private Module<Tensor, Tensor> v_proj = Linear(Dims.Width, Dims.Width);
    private Module<Tensor, Tensor> o_proj = Linear(Dims.Width, Dims.Width);

    public SelfAttention() : base(nameof(SelfAttention)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], length = x.shape[1], headWidth = Dims.Width / Dims.Heads;
        Tensor Heads(Tensor t) => t.view(batch, length, Dims.Heads, headWidth).transpose(1, 2);
        var q = Heads(q_proj.call(x));
        var k = Heads(k_proj.call(x));
        var v = Heads(v_proj.call(x));
        var weights = q.matmul(k.transpose(-2, -1)).div(Math.Sqrt(headWidth)).softmax(-1);
        var mixed = weights.matmul(v).transpose(1, 2).reshape(batch, length, Dims.Width);
        return o_proj.call(mixed).MoveToOuterDisposeScope();
    }
}

/// <summary>The feed-forward part; a per-field attribute overrides the class's rank for fc2.</summary>
[LoraTarget(Rank = 8)]
public sealed partial class FeedForward : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> fc1 = Linear(Dims.Width, 4 * Dims.Width);
    [LoraTarget(Rank = 2)] private Module<Tensor, Tensor> fc2 = Linear(4 * Dims.Width, Dims.Width);

    public FeedForward() : base(nameof(FeedForward)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var hidden = functional.gelu(fc1.call(x));
        return fc2.call(hidden);
    }
}

/// <summary>A pre-norm transformer block: not annotated itself, it holds annotated children.</summary>
public sealed class TransformerBlock : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> ln1 = LayerNorm(Dims.Width);
    private readonly SelfAttention attention = new();
    private readonly Module<Tensor, Tensor> ln2 = LayerNorm(Dims.Width);
    private readonly FeedForward feedForward = new();

    public TransformerBlock() : base(nameof(TransformerBlock)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + attention.call(ln1.call(x));
        return (h + feedForward.call(ln2.call(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>Token embedding, one block, and an output head that stays frozen. Only the embedding is
/// adapted here, through a field attribute on a class that has none of its own.</summary>
public sealed partial class TinyTransformer : Module<Tensor, Tensor>
{
    [LoraTarget(Rank = 4)] private Module<Tensor, Tensor> embed = Embedding(Dims.Vocabulary, Dims.Width);
    private readonly TransformerBlock block = new();
    private readonly Module<Tensor, Tensor> head = Linear(Dims.Width, Dims.Vocabulary);

    public TinyTransformer() : base(nameof(TinyTransformer)) => RegisterComponents();

    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        return head.call(block.call(embed.call(tokens))).MoveToOuterDisposeScope();
    }
}
