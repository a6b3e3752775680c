using System.Globalization;
using Spectre.Console;
using SpamFilter.Runs;

namespace SpamFilter.Report;

/// <summary>The side-by-side table the sample ends with.</summary>
public static class ResultsTable
{
    public static Table Build(SpamFilterResult result)
    {
        var runs = Enum.GetValues<Method>().Select(result.Run).ToList();
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"all-MiniLM-L6-v2 → spam filter, {result.TrainMessages:N0} training / {result.TestMessages:N0} test messages, {result.Device}")
            .AddColumn("");
        foreach (var run in runs)
            table.AddColumn(new TableColumn($"[bold]{Markup.Escape(run.Method.Label())}[/]").RightAligned());
        void Row(string what, Func<RunResult, string> cell) =>
            table.AddRow([Markup.Escape(what), .. runs.Select(run => Markup.Escape(cell(run)))]);

        Row("test accuracy", run => Percent(run.Accuracy));
        Row("test F1 (spam)", run => run.F1.ToString("F3", CultureInfo.InvariantCulture));
        Row("trainable parameters", run => $"{run.TrainableParameters:N0}\n({run.TrainablePercent:F2}%)");
        Row("time per step", run => $"{run.Training.MillisecondsPerStep:N0} ms");
        Row("weights+grads+AdamW", run => Megabytes(run.Training.TensorBytes));
        Row("file to ship", run => $"{Megabytes(run.FileBytes)} {run.FileKind}");
        Row("cosine to pretrained, mean", run => Kept(run, result, k => Cosine(k.MeanCosine)));
        Row("cosine, lowest", run => Kept(run, result, k => Cosine(k.MinCosine)));
        Row($"{Forgetting.Neighbours}-NN kept, mean", run => Kept(run, result, k => k.NeighboursKept.ToString("F2", CultureInfo.InvariantCulture)));
        table.Caption(Markup.Escape(
            $"Sentence embeddings (mean-pooled) of {result.ForgettingTexts} held-out texts against the pretrained model's; " +
            $"1 means exactly 1. LoRA off/on: DisableAdapters() or not; with them off, max |Δembedding| " +
            $"{Scientific(result.LoraAdaptersOff.MaxDifference)} · " +
            $"adapter reloaded onto the exported base: max |Δlogit| {Scientific(result.ReloadedMaxDifference)} · " +
            $"merged: {(result.MergedSamePredictions ? "same" : "DIFFERENT")} predictions, max |Δlogit| {Scientific(result.MergedMaxDifference)}"));
        return table;
    }

    // LoRA's base model is still there, one DisableAdapters() away: both are shown.
    private static string Kept(RunResult run, SpamFilterResult result, Func<Kept, string> value) => run.Method == Method.Lora
        ? $"off: {value(result.LoraAdaptersOff)}\non: {value(run.Kept)}"
        : value(run.Kept);

    // Exactly 1 is the point of the comparison, so it is not shown as a rounded 1.0000.
    private static string Cosine(double value) => value == 1.0 ? "1" : value.ToString("F4", CultureInfo.InvariantCulture);

    public static string Percent(double share) => (100 * share).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static string Megabytes(long bytes) => bytes < 1_000_000
        ? (bytes / 1e3).ToString("N1", CultureInfo.InvariantCulture) + " KB"
        : (bytes / 1e6).ToString("N1", CultureInfo.InvariantCulture) + " MB";

    private static string Scientific(double value) => value.ToString("0.0E+0", CultureInfo.InvariantCulture);
}
