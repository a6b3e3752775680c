using System.Diagnostics;

namespace LoraGen.Benchmarks.Compare;

/// <summary>Interleaved timing: on a shared, noisy machine, timing the candidates turn by turn lets a
/// burst of outside load hit all of them alike, so their ratio stays meaningful.</summary>
public static class Stopwatches
{
    /// <summary>Runs every action <paramref name="warmup"/> times, then <paramref name="iterations"/> rounds of
    /// one timed call each; returns the median milliseconds of each action.</summary>
    public static double[] InterleavedMedians(IReadOnlyList<Action> actions, int warmup, int iterations)
    {
        for (var i = 0; i < warmup; i++)
            foreach (var action in actions)
                action();
        var samples = actions.Select(_ => new double[iterations]).ToArray();
        for (var i = 0; i < iterations; i++)
        {
            for (var a = 0; a < actions.Count; a++)
            {
                var start = Stopwatch.GetTimestamp();
                actions[a]();
                samples[a][i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }
        return [.. samples.Select(Median)];
    }

    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
