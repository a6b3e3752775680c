using LoraGen;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace FineTune;

/// <summary>Sizes of the character-level transformer, as constants so the generator and the analyzers
/// can state and check every adapter's cost at compile time.</summary>
public static class ModelSize
{
    public const int Width = 64;
    public const int Heads = 4;
    public const int Hidden = 4 * Width;
    public const int Layers = 2;

    /// <summary>The rank in the [LoraTarget] attribute below; <c>--rank</c> may choose another at run time.</summary>
    public const int Rank = 16;
}

/// <summary>Causal multi-head self-attention.</summary>
public sealed class CausalSelfAttention : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> q_proj = Linear(ModelSize.Width, ModelSize.Width);
    private readonly Module<Tensor, Tensor> k_proj = Linear(ModelSize.Width, ModelSize.Width);
    private readonly Module<Tensor, Tensor> v_proj = Linear(ModelSize.Width, ModelSize.Width);
    private readonly Module<Tensor, Tensor> o_proj = Linear(ModelSize.Width, ModelSize.Width);

    public CausalSelfAttention() : base(nameof(CausalSelfAttention)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], length = x.shape[1], headWidth = ModelSize.Width / ModelSize.Heads;
        Tensor Heads(Tensor t) => t.view(batch, length, ModelSize.Heads, headWidth).transpose(1, 2);
        var mixed = functional.scaled_dot_product_attention(
            Heads(q_proj.call(x)), Heads(k_proj.call(x)), Heads(v_proj.call(x)), is_casual: true);
        return o_proj.call(mixed.transpose(1, 2).reshape(batch, length, ModelSize.Width)).MoveToOuterDisposeScope();
    }
}

/// <summary>The feed-forward half of a block.</summary>
public sealed class FeedForward : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> up_proj = Linear(ModelSize.Width, ModelSize.Hidden);
    private readonly Module<Tensor, Tensor> down_proj = Linear(ModelSize.Hidden, ModelSize.Width);

    public FeedForward() : base(nameof(FeedForward)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return down_proj.call(functional.gelu(up_proj.call(x))).MoveToOuterDisposeScope();
    }
}

/// <summary>A pre-norm block.</summary>
/// <remarks>The benchmarks' workload (b) (benchmarks/LoraGen.Benchmarks/Models/SmallTransformer.cs) is built from
/// these blocks too, with LoRA on every projection: a change here changes what it measures.</remarks>
public sealed class TransformerBlock : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> norm1 = LayerNorm(ModelSize.Width);
    private readonly CausalSelfAttention attention = new();
    private readonly Module<Tensor, Tensor> norm2 = LayerNorm(ModelSize.Width);
    private readonly FeedForward feedForward = new();

    public TransformerBlock() : base(nameof(TransformerBlock)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x + attention.call(norm1.call(x));
        return (h + feedForward.call(norm2.call(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A GPT-style character model: token and position embeddings, <see cref="ModelSize.Layers"/> blocks, a
/// final norm and an output head. LoRA adapts the token embedding only. An embedding adapter's update is
/// per character: row c of the embedding moves by scaling · lora_embedding_B · lora_embedding_A[:, c], and
/// that column of lora_embedding_A starts at zero and gets a gradient only where character c is read.
/// Trained on task B, whose input shares no character with task A's, the adapter leaves every row that
/// task A reads exactly as it was, while the frozen blocks keep doing the arithmetic for both scripts.
/// </summary>
[LoraTarget(Rank = ModelSize.Rank, Alpha = 2 * ModelSize.Rank, Targets = ["tokens"])]
public sealed partial class CharTransformer : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> tokens = Embedding(Vocabulary.Size, ModelSize.Width);
    private readonly Module<Tensor, Tensor> positions = Embedding(ArithmeticTask.InputLength, ModelSize.Width);
    private readonly ModuleList<Module<Tensor, Tensor>> blocks = new();
    private readonly Module<Tensor, Tensor> norm = LayerNorm(ModelSize.Width);
    private readonly Module<Tensor, Tensor> head = Linear(ModelSize.Width, Vocabulary.Size);

    public CharTransformer() : base(nameof(CharTransformer))
    {
        for (int i = 0; i < ModelSize.Layers; i++)
            blocks.Add(new TransformerBlock());
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
