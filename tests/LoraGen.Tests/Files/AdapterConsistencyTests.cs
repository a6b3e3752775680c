using LoraGen.Files;

namespace LoraGen.Tests.Files;

/// <summary>The torch-free check of an adapter's weights against its own config, which loragen inspect and the
/// offline merge run: every layer kind read right, and every kind of disagreement listed in one message.</summary>
public sealed class AdapterConsistencyTests
{
    private static SafetensorsTensor Zeros(string key, SafetensorsDType dtype, params long[] shape) =>
        new("base_model.model." + key, dtype, shape,
            () => new byte[shape.Aggregate(1L, (product, size) => product * size) * dtype.ElementSize()]);

    private static SafetensorsTensor Zeros(string key, params long[] shape) => Zeros(key, SafetensorsDType.F32, shape);

    private static SafetensorsReader Open(params SafetensorsTensor[] tensors)
    {
        var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, tensors);
        return SafetensorsReader.Open(stream, "memory");
    }

    [Fact]
    public void A_consistent_adapter_gives_each_layer_its_kind_rank_weight_shape_and_scaling()
    {
        var config = new AdapterConfig
        {
            Rank = 2,
            Alpha = 4,
            RankPattern = new Dictionary<string, int> { ["q"] = 8 },
            AlphaPattern = new Dictionary<string, double> { ["q"] = 2 },
        };
        using var weights = Open(
            Zeros("attn.q.lora_A.weight", 8, 16), Zeros("attn.q.lora_B.weight", 32, 8),
            Zeros("conv1.lora_A.weight", 2, 12, 3), Zeros("conv1.lora_B.weight", 6, 2, 1),
            Zeros("conv2.lora_A.weight", 2, 3, 5, 5), Zeros("conv2.lora_B.weight", 4, 2, 1, 1),
            Zeros("embed.lora_embedding_A", 2, 100), Zeros("embed.lora_embedding_B", 10, 2),
            Zeros("norm.weight", 10));

        var contents = AdapterConsistency.Check(config, weights, "base_model.model.", "Adapter 'memory'");

        Assert.Empty(contents.Problems);
        var layers = contents.Layers.ToDictionary(layer => layer.Path);
        Assert.Equal(["attn.q", "conv1", "conv2", "embed"], contents.Layers.Select(layer => layer.Path));
        Assert.Equal((LoraLayerKind.Linear, 8, 2.0 / 8), (layers["attn.q"].Kind, layers["attn.q"].Rank, layers["attn.q"].Config.Scaling));
        Assert.Equal([32L, 16], layers["attn.q"].WeightShape);
        Assert.Equal((LoraLayerKind.Conv1d, 2, 2.0), (layers["conv1"].Kind, layers["conv1"].Rank, layers["conv1"].Config.Scaling));
        Assert.Equal([6L, 12, 3], layers["conv1"].WeightShape);
        Assert.Equal(LoraLayerKind.Conv2d, layers["conv2"].Kind);
        Assert.Equal([4L, 3, 5, 5], layers["conv2"].WeightShape);
        Assert.Equal(LoraLayerKind.Embedding, layers["embed"].Kind);
        Assert.Equal([100L, 10], layers["embed"].WeightShape); // (B·A)ᵀ: [num, dim]
        Assert.Equal("norm.weight", Assert.Single(contents.SavedTensors).Key);
    }

    [Fact]
    public void Every_disagreement_is_listed_in_one_exception()
    {
        var config = new AdapterConfig { Rank = 4, Alpha = 8, RankPattern = new Dictionary<string, int> { ["v"] = 16 } };
        using var weights = Open(
            new SafetensorsTensor("other.lora_A.weight", SafetensorsDType.F32, [4, 2], () => new byte[32]),
            Zeros("only_a.lora_A.weight", 4, 8),
            Zeros("mixed.lora_A.weight", 4, 8), Zeros("mixed.lora_embedding_B", 8, 4),
            Zeros("twice.lora_A.weight", 4, 8), Zeros("twice.lora_embedding_A", 4, 8), Zeros("twice.lora_B.weight", 8, 4),
            Zeros("ints.lora_A.weight", SafetensorsDType.I64, 4, 8), Zeros("ints.lora_B.weight", 8, 4),
            Zeros("conv.lora_A.weight", 4, 3, 3), Zeros("conv.lora_B.weight", 8, 4, 2),
            Zeros("torn.lora_A.weight", 4, 8), Zeros("torn.lora_B.weight", 8, 3),
            Zeros("q.lora_A.weight", 2, 8), Zeros("q.lora_B.weight", 8, 2),
            Zeros("v.lora_A.weight", 4, 8), Zeros("v.lora_B.weight", 8, 4),
            Zeros("fine.lora_A.weight", 4, 8), Zeros("fine.lora_B.weight", 8, 4));

        var error = Assert.Throws<LoraFileException>(() => AdapterConsistency.Check(config, weights, "base_model.model.", "Adapter 'memory'"));

        Assert.StartsWith("Adapter 'memory' does not agree with its adapter_config.json (9 problems): ", error.Message);
        Assert.Contains("1 key does not start with the key prefix 'base_model.model.' ('other.lora_A.weight')", error.Message);
        Assert.Contains("'only_a': lora_A.weight [4, 8] has no lora_B.weight", error.Message);
        Assert.Contains("'mixed': lora_A.weight (Linear and convolutions) cannot pair with lora_embedding_B (Embedding)", error.Message);
        Assert.Contains("'twice' has both lora_A.weight and lora_embedding_A", error.Message);
        Assert.Contains("'ints': lora_A.weight is I64 and lora_B.weight is F32; adapter matrices are floating point", error.Message);
        Assert.Contains("'conv': lora_A.weight [4, 3, 3] and lora_B.weight [8, 4, 2] are not a LoRA pair", error.Message);
        Assert.Contains("'torn': lora_A.weight [4, 8] and lora_B.weight [8, 3] disagree on the rank: 4 in A, 3 in B", error.Message);
        Assert.Contains("'q': lora_A.weight [2, 8] and lora_B.weight [8, 2] have rank 2, but adapter_config.json gives rank 4 (r)", error.Message);
        Assert.Contains("'v': lora_A.weight [4, 8] and lora_B.weight [8, 4] have rank 4, but adapter_config.json gives rank 16 (rank_pattern)", error.Message);
        Assert.DoesNotContain("'fine'", error.Message);
        Assert.EndsWith("or correct r / rank_pattern in adapter_config.json to the ranks its tensors have.", error.Message);
    }
}
