using BenchmarkDotNet.Attributes;

namespace LoraGen.Benchmarks.Suites;

/// <summary>What the training-step and inference suites share: one case per workload and per torch thread
/// count (<c>LORAGEN_BENCH_THREADS</c>), with the thread count set before the session is built.</summary>
public abstract class WorkloadSuite
{
    [ParamsSource(nameof(WorkloadNames))]
    public string Workload { get; set; } = "";

    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; }

    public static IEnumerable<string> WorkloadNames => Workloads.Workloads.All.Select(w => w.Name);

    public static IEnumerable<int> ThreadCounts => TorchThreads.FromEnvironment();

    /// <summary>Sets the thread count and returns the chosen workload.</summary>
    protected Workloads.Workload Prepare()
    {
        TorchThreads.Set(Threads);
        return Workloads.Workloads.Named(Workload);
    }
}
