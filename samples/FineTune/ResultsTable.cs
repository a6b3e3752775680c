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
            .Title($"Task B (subtraction) after pretraining on task A (addition) — {result.Device}")
            .AddColumn("")
            .AddColumn(new TableColumn("[bold]full fine-tuning[/]").RightAligned())
            .AddColumn(new TableColumn("[bold]LoRA[/]").RightAligned());
        void Row(string what, string f, string l) => table.AddRow(Markup.Escape(what), f, l);

        Row("task B accuracy (learned)", Percent(full.AccuracyB), Percent(lora.AccuracyB));
        Row($"task A accuracy kept (was {Percent(result.PretrainedAccuracyA)})", Percent(full.AccuracyA), Percent(lora.AccuracyA));
        // Full fine-tuning overwrote the base; LoRA's base is still there, one DisableAdapters() away.
        Row("task A accuracy, base model (adapters off)", "gone (overwritten)", Percent(result.LoraAccuracyAWithAdaptersDisabled));
        Row("trainable parameters", $"{full.TrainableParameters:N0} ({full.TrainablePercent:F1}%)",
            $"{lora.TrainableParameters:N0} ({lora.TrainablePercent:F1}%)");
        Row("file to ship", $"{Kilobytes(full.FileBytes)} {full.FileName}", $"{Kilobytes(lora.FileBytes)} {lora.FileName}");
        Row("tensor memory (weights+grads+AdamW)", Kilobytes(full.Training.TensorBytes), Kilobytes(lora.Training.TensorBytes));
        Row("process peak RSS during the run", Megabytes(full.Training.PeakResidentBytes), Megabytes(lora.Training.PeakResidentBytes));
        Row("time per training step", $"{full.Training.MillisecondsPerStep:F1} ms", $"{lora.Training.MillisecondsPerStep:F1} ms");
        table.Caption(Markup.Escape(
            $"adapter reloaded into a fresh base: task B {Percent(result.ReloadedAccuracyB)}, max |Δlogit| {Scientific(result.ReloadedMaxLogitDifference)} · " +
            $"merged: task B {Percent(result.MergedAccuracyB)}, max |Δlogit| {Scientific(result.MergedMaxLogitDifference)}"));
        return table;
    }

    public static string Percent(double share) => (100 * share).ToString("F1", CultureInfo.InvariantCulture) + "%";

    private static string Kilobytes(long bytes) => (bytes / 1024.0).ToString("N1", CultureInfo.InvariantCulture) + " KB";

    private static string Megabytes(long bytes) => (bytes / 1048576.0).ToString("N0", CultureInfo.InvariantCulture) + " MB";

    private static string Scientific(double value) => value.ToString("0.0E+0", CultureInfo.InvariantCulture);
}
