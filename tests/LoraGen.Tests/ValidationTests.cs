using LoraGen.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests;

public sealed class ValidationTests
{
    [Theory]
    [InlineData(0, null, 0.0, "rank must be at least 1, but it is 0")]
    [InlineData(-2, null, 0.0, "rank must be at least 1, but it is -2")]
    [InlineData(4, 0.0, 0.0, "alpha must be a finite number greater than 0, but it is 0")]
    [InlineData(4, -8.0, 0.0, "alpha must be a finite number greater than 0, but it is -8")]
    [InlineData(4, double.NaN, 0.0, "alpha must be a finite number greater than 0, but it is NaN")]
    [InlineData(4, double.PositiveInfinity, 0.0, "alpha must be a finite number greater than 0, but it is Infinity")]
    [InlineData(4, null, -0.1, "dropout must be in [0, 1), but it is -0.1")]
    [InlineData(4, null, 1.0, "dropout must be in [0, 1), but it is 1")]
    [InlineData(4, null, double.NaN, "dropout must be in [0, 1), but it is NaN")]
    public void Bad_hyperparameters_are_refused_with_the_value_in_the_message(int rank, double? alpha, double dropout, string expected)
    {
        var model = new ConfigurableBlock(16, 32, upConfig: new LoraConfig { Rank = rank, Alpha = alpha, Dropout = dropout });
        var error = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora());
        Assert.Equal("up", error.Target);
        Assert.Contains(expected, error.Message);
        Assert.StartsWith("LoRA target 'up': ", error.Message);
    }

    [Fact]
    public void A_layer_whose_adapter_saves_nothing_is_refused_with_the_numbers()
    {
        // Linear 16→32 at rank 16: 16·(16+32) = 768 ≥ 16·32 = 512.
        var model = new ConfigurableBlock(16, 32, upConfig: new LoraConfig { Rank = 16 });
        var error = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora());
        Assert.Equal(
            "LoRA target 'up': rank 16 on Linear 16→32 needs 16·(16 + 32) = 768 adapter parameters, not fewer than the 512 " +
            "of the layer itself (in·out), so the adapter saves nothing; use a rank of at most 10 (Rank = 5 keeps at least half " +
            "of the layer's 512 parameters saved), or set LoraOptions.AllowNoSavings = true if this is intended.",
            error.Message);
    }

    [Fact]
    public void AllowNoSavings_lets_such_a_layer_through()
    {
        var model = new ConfigurableBlock(16, 32, upConfig: new LoraConfig { Rank = 16 });
        var report = model.ApplyLora(new LoraOptions { AllowNoSavings = true });
        Assert.Equal(16 * (16 + 32) + 4 * (32 + 16) + 2 * 16, report.TrainableParameters);
    }

    [Fact]
    public void A_refused_model_is_left_exactly_as_it_was()
    {
        // The first block is fine, the second is not: nothing may be wrapped or frozen.
        var model = nn.Sequential(
            new ConfigurableBlock(16, 32),
            new ConfigurableBlock(16, 32, upConfig: new LoraConfig { Rank = 0 }));
        var names = model.named_parameters().Select(p => p.name).ToList();
        var error = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora());
        Assert.Equal("1.up", error.Target);
        Assert.Equal(names, model.named_parameters().Select(p => p.name));
        Assert.Empty(model.LoraLayers());
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void Applying_twice_is_refused()
    {
        var model = new SquareRank1();
        model.ApplyLora();
        var error = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora());
        Assert.Contains("already holds a LoRA adapter", error.Message);
    }

    [Fact]
    public void The_no_savings_check_covers_embeddings_and_convolutions()
    {
        // Embedding 10×4 at rank 3: 3·(10+4) = 42 ≥ 40.
        var embedding = Assert.Throws<LoraConfigurationException>(
            () => new LoraEmbedding(nn.Embedding(10, 4), new LoraConfig { Rank = 3 }));
        Assert.Contains("42 adapter parameters, not fewer than the 40", embedding.Message);
        // Conv2d 2→4, 3×3 at rank 3: 3·(2·9 + 4) = 66 ≥ 72? No: 66 < 72 saves; rank 4: 88 ≥ 72 does not.
        _ = new LoraConv2d(nn.Conv2d(2, 4, 3), new LoraConfig { Rank = 3 });
        var conv = Assert.Throws<LoraConfigurationException>(
            () => new LoraConv2d(nn.Conv2d(2, 4, 3), new LoraConfig { Rank = 4 }));
        Assert.Contains("88 adapter parameters, not fewer than the 72", conv.Message);
    }

    [Fact]
    public void Reconfigure_chooses_each_targets_options_at_run_time_by_path()
    {
        var model = new Support.Mlp(16, 32, 3);
        var seen = new List<string>();
        var report = model.ApplyLora(new LoraOptions
        {
            Reconfigure = (path, config) =>
            {
                seen.Add(path);
                Assert.Equal((4, 8.0), (config.Rank, config.EffectiveAlpha)); // what [LoraTarget] on MlpBlock says
                return config with { Rank = path.StartsWith("blocks.0.", StringComparison.Ordinal) ? 2 : 1 };
            },
        });
        Assert.Equal(["blocks.0.up", "blocks.0.down", "blocks.1.up", "blocks.1.down"], seen);
        // Rank 2 then rank 1 on up 16→32 and down 32→16, plus the two trainable norms (2·16 each):
        // 2·48 + 2·48 + 1·48 + 1·48 + 2·32 = 352.
        Assert.Equal(352, report.TrainableParameters);
        Assert.Equal([2, 2, 1, 1], report.Layers.Select(l => l.Rank));
    }

    [Fact]
    public void Reconfigured_options_are_checked_and_a_refusal_changes_nothing()
    {
        var model = new Support.Mlp(16, 32, 3);
        var error = Assert.Throws<LoraConfigurationException>(() =>
            model.ApplyLora(new LoraOptions { Reconfigure = (_, config) => config with { Rank = 16 } }));
        // Every refused target in one message, each with its numbers.
        Assert.StartsWith("4 LoRA targets cannot be adapted; nothing was changed.", error.Message);
        Assert.Contains("LoRA target 'blocks.0.up': rank 16 on Linear 16→32 needs 16·(16 + 32) = 768 adapter parameters", error.Message);
        Assert.Contains("LoRA target 'blocks.1.down': rank 16 on Linear 32→16", error.Message);
        Assert.Equal("blocks.0.up", error.Target);
        Assert.Empty(model.LoraLayers());
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }
}
