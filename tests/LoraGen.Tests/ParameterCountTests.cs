using LoraGen.Tests.Support;
using static TorchSharp.torch;

namespace LoraGen.Tests;

/// <summary>The seed's arithmetic: a 100×100 update written as B·A with B 100×k and A k×100.</summary>
public sealed class ParameterCountTests
{
    [Theory]
    [InlineData(3, 600, "trainable params: 600 || all params: 10,600 || trainable%: 5.6604")]
    [InlineData(1, 200, "trainable params: 200 || all params: 10,200 || trainable%: 1.9608")]
    public void A_100_by_100_layer_needs_200_numbers_per_rank(int rank, long adapterParameters, string pefLine)
    {
        nn.Module model = rank == 3 ? new SquareRank3() : new SquareRank1();
        var report = model.ApplyLora();

        Assert.Equal(adapterParameters, 2 * 100 * rank);            // closed form: k·100 + 100·k
        Assert.Equal(adapterParameters, report.TrainableParameters);
        Assert.Equal(10_000 + adapterParameters, report.AllParameters);
        Assert.Equal(pefLine, report.ToString());

        // 6% (rank 3) and 2% (rank 1) of the 10,000 numbers of the full update.
        var layer = Assert.Single(report.Layers);
        Assert.Equal(rank * 2.0 / 100, (double)layer.AdapterParameters / layer.Shape.BaseWeightParameters, 12);
        Assert.Equal(FormattableString.Invariant(
            $"proj: Linear 100→100, rank {rank}: {adapterParameters} trainable of 10,000, {rank * 2:F1}%"), layer.ToString());
    }

    [Fact]
    public void The_report_counts_biases_and_trainable_fields_like_PEFT()
    {
        // Two blocks of LayerNorm(16) + Linear(16→32) + Linear(32→16), rank 4, norm trained in full;
        // a head Linear(16→3) outside any annotated class stays frozen.
        var model = new Mlp(width: 16, hidden: 32, classes: 3);
        var report = model.ApplyLora();
        long norm = 2 * 16, up = 16 * 32 + 32, down = 32 * 16 + 16, head = 16 * 3 + 3;
        long adapters = 4 * (16 + 32) + 4 * (32 + 16);
        Assert.Equal(2 * (adapters + norm), report.TrainableParameters);
        Assert.Equal(2 * (norm + up + down + adapters) + head, report.AllParameters);
        Assert.Equal(4, report.Layers.Count);
    }
}
