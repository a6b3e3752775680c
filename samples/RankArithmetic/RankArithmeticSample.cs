using System.Globalization;
using LoraGen;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace RankArithmetic;

/// <summary>What the sample measured: the seed's parameter counts and the fits, for the tables and the tests.</summary>
public sealed record RankArithmeticResult(IReadOnlyList<LoraReport> Budgets, IReadOnlyList<RankFit> Fits);

/// <summary>
/// The seed's arithmetic, computed by LoraGen itself: adapter sizes on a 100×100 weight at ranks 1, 3
/// and 10, then rank-k adapters fitted to an update of rank 5, against the best any rank k can do.
/// </summary>
public static class RankArithmeticSample
{
    public static RankArithmeticResult Run(bool quick, int seed, IAnsiConsole console)
    {
        TorchNative.EnsureLoaded();
        torch.set_num_threads(1); // 100×100 matrices: threads only add synchronisation
        torch.manual_seed(seed);

        var budgets = new List<LoraReport>
        {
            new SquareRank1().ApplyLora(), new SquareRank3().ApplyLora(), new SquareRank10().ApplyLora(),
        };
        var budgetTable = new Table().Border(TableBorder.Rounded)
            .Title("A 100×100 weight (10,000 numbers) as B·A: ApplyLora's report")
            .AddColumn("rank k").AddColumn(new TableColumn("B 100×k + A k×100").RightAligned())
            .AddColumn(new TableColumn("of the weight's 10,000").RightAligned())
            .AddColumn(new TableColumn("trainable% (PEFT's line)").RightAligned());
        foreach (var report in budgets)
            budgetTable.AddRow(report.Layers[0].Rank.ToString(CultureInfo.InvariantCulture),
                report.TrainableParameters.ToString("N0", CultureInfo.InvariantCulture),
                (100.0 * report.TrainableParameters / (Square.Size * Square.Size)).ToString("F0", CultureInfo.InvariantCulture) + "%",
                // PEFT counts the adapter in "all params" too: 2,000 / 12,000 at rank 10.
                report.TrainablePercent.ToString("F2", CultureInfo.InvariantCulture) + "%");
        console.Write(budgetTable);

        var generator = new Generator((ulong)seed);
        using var update = LowRankFit.TargetUpdate(generator);
        int steps = quick ? 400 : 1500;
        var fits = new List<RankFit>();
        console.Status().Start("fitting adapters", context =>
        {
            for (int rank = 1; rank <= 8; rank++)
            {
                context.Status($"fitting a rank-{rank} adapter ({steps} Adam steps)");
                fits.Add(LowRankFit.Fit(update, rank, steps, generator));
            }
        });
        var fitTable = new Table().Border(TableBorder.Rounded)
            .Title($"Fitting ΔW of rank {LowRankFit.TrueRank} (singular values 5, 4, 3, 2, 1) with a rank-k adapter")
            .AddColumn("rank k").AddColumn(new TableColumn("adapter parameters").RightAligned())
            .AddColumn(new TableColumn("error after training").RightAligned())
            .AddColumn(new TableColumn("best possible (SVD tail)").RightAligned());
        foreach (var fit in fits)
            fitTable.AddRow(fit.Rank.ToString(CultureInfo.InvariantCulture),
                fit.AdapterParameters.ToString("N0", CultureInfo.InvariantCulture),
                fit.FitError.ToString("F4", CultureInfo.InvariantCulture),
                fit.BestPossibleError.ToString("F4", CultureInfo.InvariantCulture));
        fitTable.Caption("relative Frobenius error ‖B·A·scaling − ΔW‖ / ‖ΔW‖; from k = 5 on, the adapter holds ΔW exactly");
        console.Write(fitTable);
        return new RankArithmeticResult(budgets, fits);
    }
}
