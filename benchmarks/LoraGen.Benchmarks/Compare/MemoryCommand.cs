using System.Diagnostics;
using LoraGen.Benchmarks.Suites;
using LoraGen.Benchmarks.Workloads;
using static TorchSharp.torch;

namespace LoraGen.Benchmarks.Compare;

/// <summary>
/// <c>memory --workload mlp --mode lora --threads 1 --steps 10</c>: trains in a process of its own, so the
/// process's peak working set (VmHWM) belongs to this one configuration. Run by <see cref="CompareCommand"/>.
/// </summary>
public static class MemoryCommand
{
    public static int Run(Arguments args)
    {
        TorchThreads.Set(args.Number("threads", 1));
        var workload = Workloads.Workloads.Named(args.Text("workload", "mlp"));
        var mode = Enum.Parse<TrainingMode>(args.Text("mode", "lora"), ignoreCase: true);
        var steps = args.Number("steps", 10);

        // The baseline: the runtime and libtorch loaded and initialised, no model yet.
        using (var warm = ones(8, 8))
            _ = warm.matmul(warm).sum().item<float>();
        // Reset VmHWM to the current resident set (Linux clear_refs 5): loading the runtime and libtorch
        // must not set the peak. peer.py does the same.
        File.WriteAllText("/proc/self/clear_refs", "5");
        var process = Process.GetCurrentProcess();
        var baseline = process.WorkingSet64;

        using var session = new TrainingSession(workload, mode);
        for (var i = 0; i < steps; i++)
            session.Step();
        var memory = TrainingMemory.Of(session);
        process.Refresh();

        var prefix = $"{workload.Name}.memory.{mode.ToString().ToLowerInvariant()}";
        Report.Line($"{prefix}.tensor_mb", memory.Total / 1e6);
        Report.Line($"{prefix}.parameter_mb", memory.ParameterBytes / 1e6);
        Report.Line($"{prefix}.gradient_mb", memory.GradientBytes / 1e6);
        Report.Line($"{prefix}.optimizer_mb", memory.OptimizerBytes / 1e6);
        Report.Line($"{prefix}.peak_rss_mb", process.PeakWorkingSet64 / 1e6);
        Report.Line($"{prefix}.baseline_rss_mb", baseline / 1e6);
        Report.Line($"{prefix}.peak_rss_over_baseline_mb", (process.PeakWorkingSet64 - baseline) / 1e6);
        return 0;
    }

    /// <summary>Runs the memory command in a child process and returns its report lines.</summary>
    public static IReadOnlyList<string> RunChild(string workload, TrainingMode mode, int threads) =>
        ChildProcess.Run("memory", "--workload", workload, "--mode", mode.ToString(), "--threads", threads.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
