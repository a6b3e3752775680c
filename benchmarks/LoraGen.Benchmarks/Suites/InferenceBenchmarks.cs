using BenchmarkDotNet.Attributes;
using LoraGen.Benchmarks.Workloads;

namespace LoraGen.Benchmarks.Suites;

/// <summary>One forward pass in eval mode: the plain model, the wrapped model with adapters beside the
/// base layers, and the wrapped model with adapters merged (which should cost what the plain one does).</summary>
[MemoryDiagnoser]
public class InferenceBenchmarks : WorkloadSuite
{
    private InferenceSession session = null!;

    [Params(InferenceMode.Base, InferenceMode.Unmerged, InferenceMode.Merged)]
    public InferenceMode Mode { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        session = new InferenceSession(Prepare(), Mode);
    }

    [Benchmark]
    public void Forward() => session.Forward();

    [GlobalCleanup]
    public void Cleanup() => session.Dispose();
}
