using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// LoRA over an <c>Embedding</c>: <c>y = W[x] + scaling · (Aᵀ[x])·Bᵀ</c>, with <c>lora_embedding_A</c>
/// [r, num] (zeros) and <c>lora_embedding_B</c> [dim, r] (standard normal), as in PEFT. Embeddings get
/// no dropout, as in PEFT. The adapter lookup ignores the base's <c>padding_idx</c> and <c>max_norm</c>,
/// which TorchSharp does not expose.
/// </summary>
public sealed class LoraEmbedding : LoraLayer
{
    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh adapter (A = 0, so outputs are unchanged).</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, or the adapter would not save parameters.</exception>
    public LoraEmbedding(Embedding baseLayer, LoraConfig config, LoraOptions? options = null)
        : base(nameof(LoraEmbedding), baseLayer, config, ShapeOf(baseLayer), options ??= LoraOptions.Default)
    {
        var device = BaseWeight.device;
        var dtype = AdapterTypeFor(BaseWeight.dtype, options);
        register_parameter(PeftLayout.EmbeddingA, new Parameter(zeros(Rank, Shape.InFeatures, dtype: dtype, device: device)));
        register_parameter(PeftLayout.EmbeddingB, new Parameter(empty(Shape.OutFeatures, Rank, dtype: dtype, device: device)));
        using (no_grad())
            nn.init.normal_(LoraB);
    }

    /// <summary>The sizes of an Embedding: in = number of embeddings, out = embedding dimension.</summary>
    public static LoraLayerShape ShapeOf(Embedding layer) =>
        new(LoraLayerKind.Embedding, WeightOf(layer).shape[0], WeightOf(layer).shape[1]);

    // Read through the registry every time: Module.to() replaces Parameter objects there.
    private Parameter LoraA => _internal_params[PeftLayout.EmbeddingA];

    private Parameter LoraB => _internal_params[PeftLayout.EmbeddingB];

    /// <inheritdoc />
    public override IEnumerable<(string Name, Parameter Parameter)> NamedAdapterParameters =>
        [(PeftLayout.EmbeddingA, LoraA), (PeftLayout.EmbeddingB, LoraB)];

    /// <inheritdoc />
    protected override Parameter BaseWeight => WeightOf((Embedding)BaseLayer);

    private static Parameter WeightOf(Embedding layer) =>
        layer.weight ?? throw new ObjectDisposedException(nameof(Embedding), "The embedding has no weight (was it disposed?).");

    /// <inheritdoc />
    protected override Tensor AddAdapterOutput(Tensor baseOutput, Tensor x)
    {
        // Aᵀ[x]: row x of Aᵀ for every index, [..., r]; then the output plus scaling · that·Bᵀ in one addmm.
        using var aT = LoraA.t();
        using var indices = x.flatten();
        using var down = aT.index_select(0, indices);
        return AddLowRankProduct(baseOutput, down, LoraB);
    }

    /// <inheritdoc />
    protected override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        var product = LoraB.to(MergeType).matmul(LoraA.to(MergeType));
        return product.t().mul(Scaling).MoveToOuterDisposeScope();
    }
}
