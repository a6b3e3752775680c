using RankArithmetic;

namespace LoraGen.Samples.Tests;

public sealed class RankArithmeticSampleTests
{
    private static readonly Lazy<(RankArithmeticResult Result, string Output)> QuickRun = new(() =>
    {
        var console = new RecordingConsole();
        return (RankArithmeticSample.Run(quick: true, seed: 1, console.Console), console.Text);
    });

    [Fact]
    public void The_seed_numbers_come_out_of_ApplyLora()
    {
        var budgets = QuickRun.Value.Result.Budgets;
        Assert.Equal([200L, 600L, 2000L], budgets.Select(b => b.TrainableParameters));
        Assert.Equal([1, 3, 10], budgets.Select(b => b.Layers[0].Rank));
        Assert.All(budgets, b => Assert.Equal(10_000 + b.TrainableParameters, b.AllParameters));
        Assert.Contains("2,000", QuickRun.Value.Output);
        Assert.Contains("20%", QuickRun.Value.Output);
    }

    [Fact]
    public void The_svd_bound_matches_its_closed_form()
    {
        // Singular values 5, 4, 3, 2, 1: the best rank-k error is √(Σ_{i>k} sᵢ²) / √55.
        double[] squares = [25, 16, 9, 4, 1];
        foreach (var fit in QuickRun.Value.Result.Fits)
            Assert.Equal(Math.Sqrt(squares.Skip(fit.Rank).Sum() / 55), fit.BestPossibleError, 4);
    }

    [Fact]
    public void Training_reaches_the_bound_and_zero_from_the_true_rank_on()
    {
        var fits = QuickRun.Value.Result.Fits;
        Assert.Equal(Enumerable.Range(1, 8), fits.Select(f => f.Rank));
        foreach (var fit in fits)
        {
            Assert.True(fit.FitError >= fit.BestPossibleError - 1e-3, $"rank {fit.Rank} beat Eckart–Young: {fit.FitError}");
            Assert.True(fit.FitError <= fit.BestPossibleError + 0.01, $"rank {fit.Rank}: {fit.FitError} vs bound {fit.BestPossibleError}");
        }
        Assert.All(fits.Where(f => f.Rank >= LowRankFit.TrueRank), f => Assert.True(f.FitError < 0.01, $"rank {f.Rank}: {f.FitError}"));
        Assert.Contains("best possible", QuickRun.Value.Output);
    }
}
