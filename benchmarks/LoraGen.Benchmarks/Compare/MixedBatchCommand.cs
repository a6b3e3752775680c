using LoraGen.Benchmarks.Suites;
using LoraGen.Benchmarks.Workloads;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary>
/// <c>mixed --threads 1 [--iterations 30] [--warmup 5] [--workloads mlp,transformer] [--per-adapter 1,16]</c>: the cost
/// of serving <see cref="MixedBatchSession.AdapterCount"/> adapters in one mixed batch (<c>AdapterPerSample</c>)
/// against one forward per adapter (<c>SetActiveAdapters</c>), with interleaved medians, and the largest difference
/// between the two outputs.
/// </summary>
public static class MixedBatchCommand
{
    public static int Run(Arguments args)
    {
        var threads = args.Number("threads", 1);
        var iterations = args.Number("iterations", 30);
        var warmup = args.Number("warmup", 5);
        TorchThreads.Set(threads);
        Report.Line("harness", "loragen");
        Report.Line("threads", get_num_threads());
        Report.Line("adapters", MixedBatchSession.AdapterCount);
        foreach (var name in args.Text("workloads", "mlp,transformer").Split(',', StringSplitOptions.RemoveEmptyEntries))
            foreach (var perAdapter in args.Text("per-adapter", "1,16").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse))
            {
                var workload = Workloads.Workloads.Named(name);
                using var session = new MixedBatchSession(workload, perAdapter);
                var medians = Stopwatches.InterleavedMedians([session.Mixed, session.Separate], warmup, iterations);
                var key = $"{name}.mixed.per_adapter_{session.PerAdapter}";
                Report.Line($"{key}.mixed_ms", medians[0]);
                Report.Line($"{key}.separate_ms", medians[1]);
                Report.Line($"{key}.ratio", medians[0] / medians[1]);
                Report.Line($"{key}.max_abs_difference", session.MaxDifference());
            }
        return 0;
    }
}
