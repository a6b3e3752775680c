using System.Runtime.CompilerServices;

namespace LoraGen.Generators.Tests;

/// <summary>
/// The generated code for representative inputs, compared exactly with the checked-in files under
/// Baselines/. To refresh them after an intended change, run
/// <c>LORAGEN_UPDATE_BASELINES=1 dotnet test tests/LoraGen.Generators.Tests</c> and review the diff.
/// </summary>
public sealed class BaselineTests
{
    [Theory]
    [InlineData("Attention", new[] { nameof(Sources.Attention) })]
    [InlineData("DefaultTargetsAndConstructor", new[] { nameof(Sources.DefaultTargetsAndConstructor) })]
    [InlineData("NestedGenericGlobal", new[] { nameof(Sources.NestedGenericGlobal) })]
    [InlineData("PartialAcrossFiles", new[] { nameof(Sources.PartialAcrossFiles1), nameof(Sources.PartialAcrossFiles2) })]
    [InlineData("NothingToAdapt", new[] { nameof(Sources.NothingToAdapt) })]
    public void Generated_code_matches_the_baseline_and_compiles_cleanly(string baseline, string[] sourceNames)
    {
        var sources = sourceNames.Select(n => (string)typeof(Sources).GetField(n)!.GetValue(null)!).ToArray();
        var (run, output) = GeneratorHarness.Run(sources);

        Assert.Empty(run.Diagnostics);
        Assert.Empty(GeneratorHarness.Problems(output));
        var generated = Assert.Single(run.Results.Single().GeneratedSources);
        var text = $"// hint name: {generated.HintName}\n" + generated.SourceText.ToString();

        var path = Path.Combine(BaselineDirectory(), baseline + ".g.cs.txt");
        if (Environment.GetEnvironmentVariable("LORAGEN_UPDATE_BASELINES") == "1")
            File.WriteAllText(path, text);
        Assert.True(File.Exists(path), $"no baseline {path}: run with LORAGEN_UPDATE_BASELINES=1 to create it");
        Assert.Equal(File.ReadAllText(path).ReplaceLineEndings("\n"), text);
    }

    private static string BaselineDirectory([CallerFilePath] string thisFile = "") =>
        Path.Combine(Path.GetDirectoryName(thisFile)!, "Baselines");
}
