using BenchmarkDotNet.Attributes;
using LoraGen.Benchmarks.Workloads;

namespace LoraGen.Benchmarks.Suites;

/// <summary>One forward pass in eval mode: the plain model, the wrapped model with adapters beside the
/// base layers, and the wrapped model with adapters merged (which should cost what the plain one does).</summary>
[MemoryDiagnoser]
public class InferenceBenchmarks
{
    private InferenceSession session = null!;

    [ParamsSource(nameof(WorkloadNames))]
    public string Workload { get; set; } = "";

    [Params(InferenceMode.Base, InferenceMode.Unmerged, InferenceMode.Merged)]
    public InferenceMode Mode { get; set; }

    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; }

    public static IEnumerable<string> WorkloadNames => Workloads.Workloads.All.Select(w => w.Name);

    public static IEnumerable<int> ThreadCounts => TorchThreads.FromEnvironment();

    [GlobalSetup]
    public void Setup()
    {
        TorchThreads.Set(Threads);
        session = new InferenceSession(Workloads.Workloads.Named(Workload), Mode);
    }

    [Benchmark]
    public void Forward() => session.Forward();

    [GlobalCleanup]
    public void Cleanup() => session.Dispose();
}
