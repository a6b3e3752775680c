using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// LoRA over an <c>Embedding</c>: <c>y = W[x] + scaling · (Aᵀ[x])·Bᵀ</c>, with per adapter <c>lora_embedding_A</c>
/// [r, num] (zeros) and <c>lora_embedding_B</c> [dim, r] (standard normal), as in PEFT. Embeddings get
/// no dropout, as in PEFT. The adapter lookup ignores the base's <c>padding_idx</c> and <c>max_norm</c>,
/// which TorchSharp does not expose.
/// </summary>
public sealed class LoraEmbedding : LoraLayer
{
    private readonly AdapterContainer loraA = new(PeftLayout.EmbeddingA);
    private readonly AdapterContainer loraB = new(PeftLayout.EmbeddingB);

    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh adapter (A = 0, so outputs are unchanged).</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, or the adapter would not save parameters.</exception>
    public LoraEmbedding(Embedding baseLayer, LoraConfig config, LoraOptions? options = null, string adapter = DefaultAdapter)
        : base(nameof(LoraEmbedding), baseLayer, config, ShapeOf(baseLayer), options ?? LoraOptions.Default)
    {
        register_module(PeftLayout.EmbeddingA, loraA);
        register_module(PeftLayout.EmbeddingB, loraB);
        CreateFirstAdapter(adapter, config);
    }

    /// <summary>The sizes of an Embedding: in = number of embeddings, out = embedding dimension.</summary>
    public static LoraLayerShape ShapeOf(Embedding layer) =>
        new(LoraLayerKind.Embedding, WeightOf(layer).shape[0], WeightOf(layer).shape[1]);

    private protected override (string A, string B) FactorNames => (PeftLayout.EmbeddingA, PeftLayout.EmbeddingB);

    /// <inheritdoc />
    protected override Parameter BaseWeight => WeightOf((Embedding)BaseLayer);

    private static Parameter WeightOf(Embedding layer) =>
        layer.weight ?? throw new ObjectDisposedException(nameof(Embedding), "The embedding has no weight (was it disposed?).");

    private protected override void CreateFactors(string adapter, LoraConfig config, Device device, ScalarType dtype)
    {
        var b = new Parameter(empty(Shape.OutFeatures, config.Rank, dtype: dtype, device: device));
        using (no_grad())
            nn.init.normal_(b);
        loraA.AddParameter(adapter, new Parameter(zeros(config.Rank, Shape.InFeatures, dtype: dtype, device: device)));
        loraB.AddParameter(adapter, b);
    }

    private protected override void RemoveFactors(string adapter)
    {
        loraA.Remove(adapter);
        loraB.Remove(adapter);
    }

    private protected override (Parameter A, Parameter B) Factors(string adapter) => (loraA.Parameter(adapter), loraB.Parameter(adapter));

    private protected override Tensor AddAdapterOutput(string adapter, Tensor baseOutput, Tensor x)
    {
        // Aᵀ[x]: row x of Aᵀ for every index, [..., r]; then the output plus scaling · that·Bᵀ in one addmm.
        var (a, b) = Factors(adapter);
        using var aT = a.t();
        using var indices = x.flatten();
        using var down = aT.index_select(0, indices);
        return AddLowRankProduct(baseOutput, down, b, ScalingOf(adapter));
    }

    // PEFT's DoraEmbeddingLayer: the weight is read transposed ([dim, num]), so the norm is one per embedding
    // dimension, over the vocabulary: ‖Wᵀ + s·B·A‖ row-wise = ‖W + s·Aᵀ·Bᵀ‖ column-wise, [dim].
    private protected override Tensor WeightNorm(string adapter, Tensor weight)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Factors(adapter);
        var combined = AddScaledProduct(weight, a.detach().to(weight.dtype).t(), b.detach().to(weight.dtype).t(), ScalingOf(adapter));
        return linalg.vector_norm(combined, dims: [0]).MoveToOuterDisposeScope();
    }

    private protected override Tensor FactorOverWeight(Tensor factor) => factor.view(1, -1);

    /// <summary>PEFT's DoRA embedding forward: <c>m/‖…‖ · (output so far) + m/‖…‖ · s · Aᵀ[x]·Bᵀ</c>, the norm detached.</summary>
    private protected override Tensor AddDoraOutput(string adapter, Tensor baseOutput, Tensor x)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Factors(adapter);
        Tensor norm;
        using (no_grad())
            norm = WeightNorm(adapter, BaseWeight.dtype == a.dtype ? BaseWeight : BaseWeight.to(a.dtype));
        var perDimension = Magnitude(adapter) / norm;
        var down = a.t().index_select(0, x.flatten());
        var loraOutput = down.matmul(b.t()).view([.. baseOutput.shape]);
        var result = perDimension * baseOutput + perDimension * loraOutput * ScalingOf(adapter);
        return result.MoveToOuterDisposeScope();
    }

    private protected override Tensor DeltaWeight(string adapter)
    {
        using var scope = NewDisposeScope();
        var (a, b) = Factors(adapter);
        var product = b.to(MergeType).matmul(a.to(MergeType));
        return product.t().mul(ScalingOf(adapter)).MoveToOuterDisposeScope();
    }
}
