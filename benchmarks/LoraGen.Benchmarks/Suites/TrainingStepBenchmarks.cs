using BenchmarkDotNet.Attributes;
using LoraGen.Benchmarks.Workloads;

namespace LoraGen.Benchmarks.Suites;

/// <summary>One training step with AdamW, LoRA vs full fine-tuning, on each workload. The managed
/// allocations column shows what a step costs the .NET heap.</summary>
[MemoryDiagnoser]
public class TrainingStepBenchmarks : WorkloadSuite
{
    private TrainingSession session = null!;

    [Params(TrainingMode.Lora, TrainingMode.Full)]
    public TrainingMode Mode { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        session = new TrainingSession(Prepare(), Mode);
    }

    [Benchmark]
    public float Step() => session.Step();

    [GlobalCleanup]
    public void Cleanup() => session.Dispose();
}
