using BenchmarkDotNet.Attributes;
using LoraGen.Benchmarks.Workloads;

namespace LoraGen.Benchmarks.Suites;

/// <summary>Four adapters on one base, served in one mixed batch (<c>AdapterPerSample</c>) or in one forward per
/// adapter (<c>SetActiveAdapters</c>), with 1 or 16 samples per adapter.</summary>
[MemoryDiagnoser]
public class MixedBatchBenchmarks : WorkloadSuite
{
    private MixedBatchSession session = null!;

    [Params(1, 16)]
    public int PerAdapter { get; set; }

    [GlobalSetup]
    public void Setup() => session = new MixedBatchSession(Prepare(), PerAdapter);

    [Benchmark(Baseline = true)]
    public void Separate() => session.Separate();

    [Benchmark]
    public void Mixed() => session.Mixed();

    [GlobalCleanup]
    public void Cleanup() => session.Dispose();
}
