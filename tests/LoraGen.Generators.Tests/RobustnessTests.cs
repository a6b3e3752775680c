using Microsoft.CodeAnalysis;

namespace LoraGen.Generators.Tests;

/// <summary>The generator must never throw, whatever the user's code looks like.</summary>
public sealed class RobustnessTests
{
    public static TheoryData<string> CutSources()
    {
        var data = new TheoryData<string>();
        foreach (var source in BrokenSources.Cut())
            data.Add(source);
        return data;
    }

    public static TheoryData<int> UnusualIndexes()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < BrokenSources.Unusual.Length; i++) data.Add(i);
        return data;
    }

    [Fact]
    public void There_are_at_least_fifty_cases()
    {
        int cases = BrokenSources.Unusual.Length + ((IEnumerable<object[]>)CutSources()).Count();
        Assert.True(cases >= 50, $"only {cases} cases");
    }

    [Theory]
    [MemberData(nameof(UnusualIndexes))]
    public void Unusual_code_never_makes_the_generator_throw(int index) => AssertNoCrash(BrokenSources.Unusual[index]);

    [Theory]
    [MemberData(nameof(CutSources))]
    public void Code_cut_off_anywhere_never_makes_the_generator_throw(string source) => AssertNoCrash(source);

    private static void AssertNoCrash(string source)
    {
        var (run, output) = GeneratorHarness.Run(source);
        var result = run.Results.Single();
        Assert.Null(result.Exception);
        Assert.DoesNotContain(output.GetDiagnostics(), d => d.Id == "CS8785"); // "generator failed"
        // Whatever it emits must not add errors of its own to the user's.
        foreach (var generated in result.GeneratedSources)
            Assert.DoesNotContain(output.GetDiagnostics(), d => d.Severity == DiagnosticSeverity.Error
                && d.Location.SourceTree?.FilePath.EndsWith(generated.HintName, StringComparison.Ordinal) == true);
    }
}
