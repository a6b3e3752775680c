using LoraGen.SourceShared;

namespace LoraGen.Generators.Tests;

/// <summary>The layer and budget wording shared by the generator, the analyzers, the runtime and the CLI,
/// against sentences worked out by hand.</summary>
public sealed class LayerDescriptionTests
{
    [Theory]
    [InlineData("Linear", 512, 512, 1, "Linear 512→512")]
    [InlineData("Linear", 4096, 1000, 1, "Linear 4096→1000")]
    [InlineData("Embedding", 1000, 64, 1, "Embedding 1,000×64")]
    [InlineData("Conv2d", 3, 16, 9, "Conv2d 3→16, 9-element kernel")]
    [InlineData("Conv1d", 64, 64, 3, "Conv1d 64→64, 3-element kernel")]
    public void Describe_writes_the_layer_as_a_person_would(string kind, long inFeatures, long outFeatures, long kernel, string expected) =>
        Assert.Equal(expected, LayerDescription.Describe(kind, inFeatures, outFeatures, kernel));

    [Fact]
    public void No_savings_shows_the_arithmetic_and_the_layer_formula()
    {
        // Conv2d 3→4, 3×3: rank 4 needs 4·(3·9 + 4) = 124 ≥ 3·4·9 = 108.
        Assert.Equal(
            "needs 4·(3·9 + 4) = 124 adapter parameters, not fewer than the 108 of the layer itself (out·in·k), so the adapter saves nothing",
            LayerDescription.NoSavings("Conv2d", new LayerBudget(3, 4, 9), 4));
        // Embedding 10×4: rank 3 needs 3·(10 + 4) = 42 ≥ 40.
        Assert.Equal(
            "needs 3·(10 + 4) = 42 adapter parameters, not fewer than the 40 of the layer itself (num·dim), so the adapter saves nothing",
            LayerDescription.NoSavings("Embedding", new LayerBudget(10, 4, 1), 3));
    }

    [Theory]
    // 16→32: 512 parameters, 48 a rank: rank 10 (480) is the largest that saves, rank 5 (240) keeps half.
    [InlineData(16, 32, "use a rank of at most 10 (Rank = 5 keeps at least half of the layer's 512 parameters saved)")]
    // 3→3: 9 parameters, 6 a rank: rank 1 saves, but less than half.
    [InlineData(3, 3, "use a rank of at most 1, or leave it out of the targets: even Rank = 1 saves less than half of this small layer")]
    // 1→1: 1 parameter, 2 a rank.
    [InlineData(1, 1, "no rank saves parameters on a layer this small; leave it out of the targets")]
    public void Remedy_names_the_largest_saving_rank_and_the_half_saving_one(long inFeatures, long outFeatures, string expected) =>
        Assert.Equal(expected, LayerDescription.Remedy(new LayerBudget(inFeatures, outFeatures, 1)));
}
