using LoraGen.Generators.Tests;

namespace LoraGen.Analyzers.Tests;

/// <summary>The analyzer never fails (no AD0001), whatever the code looks like: it runs on every
/// keystroke, so code being typed is its normal input.</summary>
public sealed class RobustnessTests
{
    public static TheoryData<string> Corpus()
    {
        var data = new TheoryData<string>();
        foreach (var source in BrokenSources.Unusual.Concat(BrokenSources.Cut()))
            data.Add(source);
        data.Add(Sources.NestedGenericGlobal);
        return data;
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void No_analyzer_failure(string source)
    {
        var failures = RunAnalyzer.On(source).Where(d => d.Id == "AD0001").Select(d => d.GetMessage()).ToList();
        Assert.Empty(failures);
        // The analyzer guards itself, so a bug would be swallowed rather than reported: look there too.
        Assert.Empty(RunAnalyzer.Swallowed.Select(e => e.ToString()));
    }

    [Fact]
    public void The_corpus_exercises_the_rules()
    {
        // A corpus the analyzer is silent on would prove nothing: most rules must fire somewhere in it.
        var ids = BrokenSources.Unusual.Concat(BrokenSources.Cut()).SelectMany(s => RunAnalyzer.On(s)).Select(d => d.Id).ToHashSet();
        string[] expected = ["LORA0001", "LORA0002", "LORA0003", "LORA0004", "LORA0005", "LORA0006", "LORA0010", "LORA0013"];
        Assert.Empty(expected.Except(ids));
    }
}
