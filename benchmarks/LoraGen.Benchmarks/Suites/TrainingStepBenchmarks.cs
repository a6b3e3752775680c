using BenchmarkDotNet.Attributes;
using LoraGen.Benchmarks.Workloads;

namespace LoraGen.Benchmarks.Suites;

/// <summary>One training step with AdamW, LoRA vs full fine-tuning, on each workload. The managed
/// allocations column shows what a step costs the .NET heap.</summary>
[MemoryDiagnoser]
public class TrainingStepBenchmarks
{
    private TrainingSession session = null!;

    [ParamsSource(nameof(WorkloadNames))]
    public string Workload { get; set; } = "";

    [Params(TrainingMode.Lora, TrainingMode.Full)]
    public TrainingMode Mode { get; set; }

    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; }

    public static IEnumerable<string> WorkloadNames => Workloads.Workloads.All.Select(w => w.Name);

    public static IEnumerable<int> ThreadCounts => TorchThreads.FromEnvironment();

    [GlobalSetup]
    public void Setup()
    {
        TorchThreads.Set(Threads);
        session = new TrainingSession(Workloads.Workloads.Named(Workload), Mode);
    }

    [Benchmark]
    public float Step() => session.Step();

    [GlobalCleanup]
    public void Cleanup() => session.Dispose();
}
