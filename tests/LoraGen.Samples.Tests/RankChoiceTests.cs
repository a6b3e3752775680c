using FineTune;
using LoraGen;
using static TorchSharp.torch;

namespace LoraGen.Samples.Tests;

public sealed class RankChoiceTests
{
    // One adapter, on the token embedding: 95 characters × 64.
    private static long AdapterParameters(int rank) => rank * (95L + 64);

    [Theory]
    [InlineData(16)]  // the attribute's rank: ApplyLora itself
    [InlineData(4)]   // another rank, wrapped through ILoraModule
    public void A_rank_from_the_command_line_adapts_the_same_targets(int rank)
    {
        using var model = new CharTransformer();
        long baseParameters = model.parameters().Sum(p => p.numel());
        var report = RankChoice.ApplyLora(model, rank);
        Assert.Equal(AdapterParameters(rank), report.TrainableParameters);
        Assert.Equal(baseParameters + AdapterParameters(rank), report.AllParameters);
        var layer = Assert.Single(report.Layers);
        Assert.Equal((rank, 2.0), (layer.Rank, layer.Scaling));
        // Frozen as ApplyLora freezes: only the adapter's two tensors train.
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).Order().ToList();
        Assert.Equal(["tokens.lora_embedding_A.default", "tokens.lora_embedding_B.default"], trainable);
    }

    [Fact]
    public void An_adapter_of_another_rank_loads_into_a_fresh_model()
    {
        var directory = ScratchDirectories.NewPath("rank-");
        try
        {
            using var model = new CharTransformer();
            RankChoice.ApplyLora(model, 2);
            using (no_grad())
                foreach (var parameter in model.LoraParameters())
                    parameter.normal_();
            model.SaveAdapter(directory);

            using var fresh = new CharTransformer();
            fresh.load_state_dict(model.state_dict().Where(p => !p.Key.Contains("lora_"))
                .ToDictionary(p => p.Key.Replace(".base_layer", ""), p => p.Value));
            fresh.LoadAdapter(directory);
            using var ids = ArithmeticTask.LetterSums.Batch(8, new Random(1), CPU).narrow(1, 0, ArithmeticTask.InputLength);
            using var expected = model.forward(ids);
            using var actual = fresh.forward(ids);
            Assert.Equal(0, (expected - actual).abs().max().item<float>());
            Assert.All(fresh.LoraLayers(), entry => Assert.Equal(2, entry.Layer.Rank));
        }
        finally
        {
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        }
    }
}
