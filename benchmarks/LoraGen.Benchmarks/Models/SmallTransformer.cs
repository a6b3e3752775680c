using FineTune;
using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LoraGen.Benchmarks.Models;

/// <summary>
/// Workload (b): a GPT-style character transformer built from samples/FineTune's own blocks
/// (<see cref="TransformerBlock"/>: pre-norm, 4-head causal attention, a 4 × width feed-forward with GELU; width 64,
/// <see cref="ModelSize.Layers"/> of them) with the sample's 12-token input and the first version's 13-character
/// vocabulary. The sample adapts its token embedding only; this workload adapts every projection inside the blocks
/// (<see cref="Adapters"/>: rank 4, alpha 8 on q/k/v/o and the feed-forward pair, 12 layers, by run-time targeting),
/// because its many small adapters are what the per-operation cost measurements in docs/performance.md are about.
/// benchmarks/peer/peer.py builds the same model.
/// </summary>
public sealed class SmallTransformer : Module<Tensor, Tensor>
{
    public const int Vocabulary = 13;
    public const int SequenceLength = 12;

    private readonly Module<Tensor, Tensor> tokens = Embedding(Vocabulary, ModelSize.Width);
    private readonly Module<Tensor, Tensor> positions = Embedding(SequenceLength, ModelSize.Width);
    private readonly ModuleList<Module<Tensor, Tensor>> blocks = new();
    private readonly Module<Tensor, Tensor> norm = LayerNorm(ModelSize.Width);
    private readonly Module<Tensor, Tensor> head = Linear(ModelSize.Width, Vocabulary);

    public SmallTransformer() : base(nameof(SmallTransformer))
    {
        for (int i = 0; i < ModelSize.Layers; i++)
            blocks.Add(new TransformerBlock());
        RegisterComponents();
    }

    /// <summary>What <c>ApplyLora</c> adapts: every projection in the blocks, rank 4, alpha 8; embeddings, norms and
    /// head frozen (peer.py's targets).</summary>
    public static AdapterConfig Adapters { get; } = new()
    {
        Rank = 4,
        Alpha = 8,
        TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
    };

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
