using BenchmarkDotNet.Attributes;
using LoraGen.Benchmarks.Generator;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace LoraGen.Benchmarks.Suites;

/// <summary>
/// The source generator over <see cref="SyntheticProject.ClassCount"/> annotated classes: a first run on
/// a fresh compilation (what a build pays), and the run after an edit of a method body (what the IDE pays
/// per keystroke), which must re-run nothing — the setup refuses to benchmark it otherwise.
/// </summary>
[MemoryDiagnoser]
public class GeneratorBenchmarks
{
    private CSharpCompilation compilation = null!;
    private CSharpCompilation edited = null!;
    private GeneratorDriver warmDriver = null!;

    [GlobalSetup]
    public void Setup()
    {
        compilation = SyntheticProject.Create();
        edited = SyntheticProject.EditMethodBody(compilation);
        warmDriver = SyntheticProject.CreateDriver().RunGenerators(compilation);
        var ran = SyntheticProject.StepsThatRan(warmDriver.RunGenerators(edited));
        if (ran.Count > 0)
            throw new InvalidOperationException($"the edit re-ran generator steps: {string.Join(", ", ran.Distinct())}");
    }

    // Clone: a compilation caches its symbols, so each run starts from a cold one as a build does.
    [Benchmark(Baseline = true)]
    public GeneratorDriver FirstRun() => SyntheticProject.CreateDriver().RunGenerators(compilation.Clone());

    [Benchmark]
    public GeneratorDriver AfterMethodBodyEdit() => warmDriver.RunGenerators(edited.Clone());
}
