using SpamFilter.Runs;

namespace SpamFilter.Report;

/// <summary>Each run's training loss (solid, left axis) and accuracy on held-out messages (dashed, right axis), as
/// one PNG.</summary>
public static class CurvesPlot
{
    public static void Save(string path, IReadOnlyList<RunResult> runs)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < runs.Count; i++)
        {
            var color = palette.GetColor(i);
            var loss = Line(plot, runs[i].Training.Losses.Select(p => ((double)p.Step, p.Loss)), color);
            loss.LegendText = $"{runs[i].Method.Label()}: loss";
            var accuracy = Line(plot, runs[i].Training.Curve.Select(p => ((double)p.Step, 100 * p.Accuracy)), color);
            accuracy.LegendText = $"{runs[i].Method.Label()}: accuracy";
            accuracy.LinePattern = ScottPlot.LinePattern.Dashed;
            accuracy.Axes.YAxis = plot.Axes.Right;
        }
        plot.Title("Spam or ham: all-MiniLM-L6-v2 fine-tuned three ways");
        plot.XLabel("training step");
        plot.Axes.Left.Label.Text = "training loss (cross-entropy of one batch)";
        plot.Axes.Right.Label.Text = "accuracy on held-out messages (%)";
        plot.ShowLegend(ScottPlot.Alignment.MiddleRight);
        plot.SavePng(path, 1100, 560);
    }

    private static ScottPlot.Plottables.Scatter Line(ScottPlot.Plot plot, IEnumerable<(double X, double Y)> points, ScottPlot.Color color)
    {
        var list = points.ToList();
        var line = plot.Add.Scatter(list.Select(p => p.X).ToArray(), list.Select(p => p.Y).ToArray(), color);
        line.MarkerSize = 0;
        line.LineWidth = 2;
        return line;
    }
}
