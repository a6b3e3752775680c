namespace FineTune;

/// <summary>The fine-tuning loss curves of both methods on task B, as a PNG.</summary>
public static class LossPlot
{
    public static void Save(string path, IReadOnlyList<(string Label, IReadOnlyList<(int Step, double Loss)> Losses)> curves)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (label, losses) in curves)
        {
            var line = plot.Add.Scatter(losses.Select(p => (double)p.Step).ToArray(), losses.Select(p => p.Loss).ToArray());
            line.LegendText = label;
            line.MarkerSize = 0;
            line.LineWidth = 2;
        }
        plot.Title("Fine-tuning on task B (sums in a letter code)");
        plot.XLabel("step");
        plot.YLabel("cross-entropy of the answer digits");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 900, 540);
    }
}
