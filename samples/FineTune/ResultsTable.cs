using System.Globalization;
using Spectre.Console;

namespace FineTune;

/// <summary>The side-by-side table the sample ends with.</summary>
public static class ResultsTable
{
    public static Table Build(FineTuneResult result)
    {
        var full = result.Full;
        var lora = result.Lora;
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"Sums in digits (A) → in letters (B), {result.Device}")
            .AddColumn("")
            .AddColumn(new TableColumn("[bold]full fine-tuning[/]").RightAligned())
            .AddColumn(new TableColumn($"[bold]{Markup.Escape(lora.Method)}[/]").RightAligned());
        void Row(string what, string f, string l) => table.AddRow(Markup.Escape(what), Markup.Escape(f), Markup.Escape(l));

        Row("task B accuracy", Percent(full.AccuracyB), Percent(lora.AccuracyB));
        Row($"task A accuracy (was {Percent(result.PretrainedAccuracyA)})", Percent(full.AccuracyA), Percent(lora.AccuracyA) + " adapters on");
        // Full fine-tuning overwrote the base; LoRA's base is still there, one DisableAdapters() away.
        Row("task A, base model kept", "no (overwritten)", Percent(result.LoraAccuracyAWithAdaptersDisabled) + " adapters off");
        Row("trainable parameters", $"{full.TrainableParameters:N0} ({full.TrainablePercent:F1}%)",
            $"{lora.TrainableParameters:N0} ({lora.TrainablePercent:F1}%)");
        Row("file to ship", $"{Kilobytes(full.FileBytes)} checkpoint", $"{Kilobytes(lora.FileBytes)} adapter");
        Row("weights + grads + AdamW state", Kilobytes(full.Training.TensorBytes), Kilobytes(lora.Training.TensorBytes));
        Row("time per training step", $"{full.Training.MillisecondsPerStep:F1} ms", $"{lora.Training.MillisecondsPerStep:F1} ms");
        table.Caption(Markup.Escape(
            $"task A with the adapter on vs the pretrained model: max |Δlogit| {Scientific(result.LoraTaskAMaxLogitDifference)} · " +
            $"adapter reloaded into a fresh base: task B {Percent(result.ReloadedAccuracyB)}, max |Δlogit| {Scientific(result.ReloadedMaxLogitDifference)} · " +
            $"merged: task B {Percent(result.MergedAccuracyB)}, max |Δlogit| {Scientific(result.MergedMaxLogitDifference)}"));
        return table;
    }

    /// <summary>The second table: each task on the shared base, by its own adapter, served three ways.</summary>
    public static Table BuildManyAdapters(ManyAdaptersResult result)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title("One base, two adapters: task accuracy by how the adapter is served")
            .AddColumn("task")
            .AddColumn("adapter")
            .AddColumn(new TableColumn("trained alone").RightAligned())
            .AddColumn(new TableColumn("switched per request").RightAligned())
            .AddColumn(new TableColumn("one mixed batch").RightAligned())
            .AddColumn(new TableColumn("reloaded").RightAligned());
        foreach (var task in result.Tasks)
            table.AddRow(Markup.Escape(task.Task), Markup.Escape(task.Adapter), Percent(task.Alone), Percent(task.Switched),
                Percent(task.Mixed), Percent(task.Reloaded));
        table.Caption(Markup.Escape(
            $"mixed batch: {result.MixedBatchSize:N0} sums of the three tasks interleaved, one forward, each sample through its own " +
            $"adapter · max |Δlogit| against each task's adapter alone: switched {Scientific(result.SwitchedMaxLogitDifference)}, " +
            $"mixed {Scientific(result.MixedMaxLogitDifference)}, reloaded {Scientific(result.ReloadedMaxLogitDifference)} · " +
            $"saved as {string.Join(" and ", result.SavedDirectories)}"));
        return table;
    }

    /// <summary>With <c>--quantize</c>: the LoRA fine-tune over the float base against the same over a quantized one.</summary>
    public static Table BuildQuantized(QuantizedLoraResult result)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"QLoRA: the LoRA fine-tune on a float32 base vs an {result.Kind} base")
            .AddColumn("")
            .AddColumn(new TableColumn("[bold]float32 base[/]").RightAligned())
            .AddColumn(new TableColumn($"[bold]{Markup.Escape(result.Kind)} base[/]").RightAligned());
        void Row(string what, string f, string q) => table.AddRow(Markup.Escape(what), Markup.Escape(f), Markup.Escape(q));
        Row("task B accuracy", Percent(result.FloatBase.AccuracyB), Percent(result.QuantizedBase.AccuracyB));
        Row("task A accuracy, adapters on", Percent(result.FloatBase.AccuracyA), Percent(result.QuantizedBase.AccuracyA));
        Row("task A accuracy, adapters off (the base)", Percent(result.FloatBaseAccuracyAWithAdaptersDisabled),
            Percent(result.QuantizedAccuracyAWithAdaptersDisabled));
        Row("Linear layers' weights", Kilobytes(result.FloatLinearBytes), Kilobytes(result.QuantizedLinearBytes));
        Row("time per training step", $"{result.FloatBase.Training.MillisecondsPerStep:F1} ms",
            $"{result.QuantizedBase.Training.MillisecondsPerStep:F1} ms");
        table.Caption(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"task B, {result.Kind} base minus float32 base: {result.DifferenceBPoints:+0.0;-0.0;0.0} points · " +
            $"same pretrained weights, seeds and batches; every frozen Linear quantized, the adapter on the float token embedding · " +
            $"quantized run {result.Elapsed.TotalSeconds:F0} s")));
        return table;
    }

    public static string Percent(double share) => (100 * share).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static string Kilobytes(long bytes) => (bytes / 1024.0).ToString("N1", CultureInfo.InvariantCulture) + " KB";

    private static string Scientific(double value) => value.ToString("0.0E+0", CultureInfo.InvariantCulture);
}
