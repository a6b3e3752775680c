using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LoraGen.Benchmarks.Models;

/// <summary>
/// Workload (b): a GPT-style character transformer with the main sample's width, heads, depth and 12-token
/// input (width 64, 4 heads, two pre-norm blocks) and the first version's 13-character vocabulary, with
/// rank-4 LoRA on every projection inside the blocks: q/k/v/o and the feed-forward pair, 24 adapters. It is the model the first version of
/// samples/FineTune trained, kept here because its many small adapters are what the per-operation cost
/// measurements in docs/performance.md are about. benchmarks/peer/peer.py builds the same model.
/// </summary>
public sealed class SmallTransformer : Module<Tensor, Tensor>
{
    public const int Vocabulary = 13;
    public const int SequenceLength = 12;
    public const int Width = 64;
    public const int Heads = 4;
    public const int Blocks = 2;

    private readonly Module<Tensor, Tensor> tokens = Embedding(Vocabulary, Width);
    private readonly Module<Tensor, Tensor> positions = Embedding(SequenceLength, Width);
    private readonly ModuleList<Module<Tensor, Tensor>> blocks = new();
    private readonly Module<Tensor, Tensor> norm = LayerNorm(Width);
    private readonly Module<Tensor, Tensor> head = Linear(Width, Vocabulary);

    public SmallTransformer() : base(nameof(SmallTransformer))
    {
        for (int i = 0; i < Blocks; i++)
            blocks.Add(new SmallTransformerBlock());
        RegisterComponents();
    }

    /// <summary>Logits [batch, length, vocabulary] for token ids [batch, length].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var where = arange(ids.shape[1], device: ids.device);
        var h = tokens.call(ids) + positions.call(where);
        foreach (var block in blocks)
            h = block.call(h);
        return head.call(norm.call(h)).MoveToOuterDisposeScope();
    }
}

/// <summary>A pre-norm block; its norms stay frozen under LoRA, its projections are adapted.</summary>
public sealed class SmallTransformerBlock : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> norm1 = LayerNorm(SmallTransformer.Width);
    private readonly AdaptedAttention attention = new();
    private readonly Module<Tensor, Tensor> norm2 = LayerNorm(SmallTransformer.Width);
    private readonly AdaptedFeedForward feedForward = new();

    public SmallTransformerBlock() : base(nameof(SmallTransformerBlock)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + attention.call(norm1.call(x));
        return (h + feedForward.call(norm2.call(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>Causal multi-head self-attention with LoRA on all four projections.</summary>
[LoraTarget(Rank = 4, Alpha = 8, Targets = ["q_proj", "k_proj", "v_proj", "o_proj"])]
public sealed partial class AdaptedAttention : Module<Tensor, Tensor>
{
    private const int Width = SmallTransformer.Width;

    private Module<Tensor, Tensor> q_proj = Linear(Width, Width);
    private Module<Tensor, Tensor> k_proj = Linear(Width, Width);
    private Module<Tensor, Tensor> v_proj = Linear(Width, Width);
    private Module<Tensor, Tensor> o_proj = Linear(Width, Width);

    public AdaptedAttention() : base(nameof(AdaptedAttention)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], length = x.shape[1], headWidth = Width / SmallTransformer.Heads;
        Tensor Heads(Tensor t) => t.view(batch, length, SmallTransformer.Heads, headWidth).transpose(1, 2);
        var mixed = functional.scaled_dot_product_attention(
            Heads(q_proj.call(x)), Heads(k_proj.call(x)), Heads(v_proj.call(x)), is_casual: true);
        return o_proj.call(mixed.transpose(1, 2).reshape(batch, length, Width)).MoveToOuterDisposeScope();
    }
}

/// <summary>The feed-forward half of a block, LoRA on both layers.</summary>
[LoraTarget(Rank = 4, Alpha = 8)]
public sealed partial class AdaptedFeedForward : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> up_proj = Linear(SmallTransformer.Width, 4 * SmallTransformer.Width);
    private Module<Tensor, Tensor> down_proj = Linear(4 * SmallTransformer.Width, SmallTransformer.Width);

    public AdaptedFeedForward() : base(nameof(AdaptedFeedForward)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.call(functional.gelu(up_proj.call(x))).MoveToOuterDisposeScope();
    }
}
