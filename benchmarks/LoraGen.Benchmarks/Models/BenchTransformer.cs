using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LoraGen.Benchmarks.Models;

/// <summary>The sizes of workload (b). Shaped like the end-to-end tests' TinyTransformer, scaled up so
/// the matrix products, not the per-call overhead, dominate a step.</summary>
public static class TransformerDims
{
    public const int Vocabulary = 512;
    public const int Width = 256;
    public const int Heads = 4;
    public const int Blocks = 2;
    public const int Sequence = 64;
    public const int Batch = 16;
}

/// <summary>Multi-head self-attention; LoRA on the query and value projections, as in the LoRA paper.</summary>
[LoraTarget(Rank = 8, Alpha = 16, Targets = ["q_proj", "v_proj"])]
public sealed partial class BenchAttention : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> q_proj = Linear(TransformerDims.Width, TransformerDims.Width);
    private Module<Tensor, Tensor> k_proj = Linear(TransformerDims.Width, TransformerDims.Width);
    private Module<Tensor, Tensor> v_proj = Linear(TransformerDims.Width, TransformerDims.Width);
    private Module<Tensor, Tensor> o_proj = Linear(TransformerDims.Width, TransformerDims.Width);

    public BenchAttention() : base(nameof(BenchAttention)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        long batch = x.shape[0], length = x.shape[1], headWidth = TransformerDims.Width / TransformerDims.Heads;
        Tensor Heads(Tensor t) => t.view(batch, length, TransformerDims.Heads, headWidth).transpose(1, 2);
        var q = Heads(q_proj.call(x));
        var k = Heads(k_proj.call(x));
        var v = Heads(v_proj.call(x));
        var weights = q.matmul(k.transpose(-2, -1)).div(Math.Sqrt(headWidth)).softmax(-1);
        var mixed = weights.matmul(v).transpose(1, 2).reshape(batch, length, TransformerDims.Width);
        return o_proj.call(mixed);
    }
}

/// <summary>The feed-forward part: both Linear layers adapted.</summary>
[LoraTarget(Rank = 8)]
public sealed partial class BenchFeedForward : Module<Tensor, Tensor>
{
    private Module<Tensor, Tensor> fc1 = Linear(TransformerDims.Width, 4 * TransformerDims.Width);
    private Module<Tensor, Tensor> fc2 = Linear(4 * TransformerDims.Width, TransformerDims.Width);

    public BenchFeedForward() : base(nameof(BenchFeedForward)) => RegisterComponents();

    public override Tensor forward(Tensor x) => fc2.call(functional.gelu(fc1.call(x)));
}

/// <summary>A pre-norm block: not annotated itself, it holds annotated children.</summary>
public sealed class BenchBlock : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> ln1 = LayerNorm(TransformerDims.Width);
    private readonly BenchAttention attention = new();
    private readonly Module<Tensor, Tensor> ln2 = LayerNorm(TransformerDims.Width);
    private readonly BenchFeedForward feedForward = new();

    public BenchBlock() : base(nameof(BenchBlock)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        var h = x + attention.call(ln1.call(x));
        return h + feedForward.call(ln2.call(h));
    }
}

/// <summary>Token embedding (adapted through a field attribute), blocks, and a frozen output head.</summary>
public sealed partial class BenchTransformer : Module<Tensor, Tensor>
{
    [LoraTarget(Rank = 8)] private Module<Tensor, Tensor> embed = Embedding(TransformerDims.Vocabulary, TransformerDims.Width);
    private readonly ModuleList<Module<Tensor, Tensor>> blocks =
        new([.. Enumerable.Range(0, TransformerDims.Blocks).Select(_ => (Module<Tensor, Tensor>)new BenchBlock())]);
    private readonly Module<Tensor, Tensor> head = Linear(TransformerDims.Width, TransformerDims.Vocabulary);

    public BenchTransformer() : base(nameof(BenchTransformer)) => RegisterComponents();

    public override Tensor forward(Tensor tokens)
    {
        var h = embed.call(tokens);
        foreach (var block in blocks)
            h = block.call(h);
        return head.call(h);
    }
}
