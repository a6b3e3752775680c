using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace LoraGen.Generators.Tests;

public sealed class CacheabilityTests
{
    private const string Unrelated = """
        namespace Demo.Other;

        public static class Helpers
        {
            public static int Twice(int x) => 2 * x;
        }
        """;

    private static readonly string[] TrackedSteps = [TrackingNames.ClassSpecs, TrackingNames.FieldOwnerSpecs];

    private static (GeneratorDriver Driver, CSharpCompilation Compilation) FirstRun()
    {
        var compilation = GeneratorHarness.Compile(Sources.Attention, Sources.NestedGenericGlobal, Unrelated);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        return (driver, compilation);
    }

    private static CSharpCompilation Edit(CSharpCompilation compilation, int treeIndex, Func<string, string> edit)
    {
        var tree = compilation.SyntaxTrees.ElementAt(treeIndex);
        var newTree = tree.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(edit(tree.ToString())));
        return compilation.ReplaceSyntaxTree(tree, newTree);
    }

    public static TheoryData<string, int, string, string> UnrelatedEdits => new()
    {
        { "another file", 2, "2 * x", "x + x" },
        { "a method body", 0, "o_proj.call(q_proj.call(x)", "o_proj.call(q_proj.call(x * 1)" },
        { "a comment", 1, "public static partial class Outer", "// a comment\npublic static partial class Outer" },
        { "a new file", -1, "", "" },
    };

    [Theory]
    [MemberData(nameof(UnrelatedEdits))]
    public void An_unrelated_edit_leaves_every_tracked_step_cached_or_unchanged(string what, int tree, string from, string to)
    {
        var (driver, compilation) = FirstRun();
        var edited = tree < 0
            ? compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("class Added { }", GeneratorHarness.ParseOptions))
            : Edit(compilation, tree, text => text.Replace(from, to));
        Assert.NotEqual(compilation.SyntaxTrees.Select(t => t.ToString()), edited.SyntaxTrees.Select(t => t.ToString()));

        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
        foreach (var step in TrackedSteps)
        {
            Assert.True(result.TrackedSteps.ContainsKey(step), $"step {step} did not run");
            foreach (var output in result.TrackedSteps[step].SelectMany(s => s.Outputs))
                Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                    $"after editing {what}, step {step} reported {output.Reason}");
        }
        foreach (var output in result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(s => s.Outputs))
            Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                $"after editing {what}, an output step reported {output.Reason}");
    }

    [Fact]
    public void Changing_one_class_rank_changes_only_that_class_output()
    {
        var (driver, compilation) = FirstRun();
        var before = driver.GetRunResult().Results.Single().GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString());
        var edited = Edit(compilation, 0, text => text.Replace("Rank = 8, Alpha = 16", "Rank = 6, Alpha = 16"));

        var result = driver.RunGenerators(edited).GetRunResult().Results.Single();
        var after = result.GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString());
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.NotEqual(before["Demo.Models.Attention.LoraGen.g.cs"], after["Demo.Models.Attention.LoraGen.g.cs"]);
        Assert.Contains("Rank = 6", after["Demo.Models.Attention.LoraGen.g.cs"]);
        Assert.Equal(before["Outer.Block_1.LoraGen.g.cs"], after["Outer.Block_1.LoraGen.g.cs"]);

        var reasons = result.TrackedSteps[TrackingNames.ClassSpecs].SelectMany(s => s.Outputs).Select(o => o.Reason).ToList();
        Assert.Contains(IncrementalStepRunReason.Modified, reasons);
        var fieldReasons = result.TrackedSteps[TrackingNames.FieldOwnerSpecs].SelectMany(s => s.Outputs).Select(o => o.Reason);
        Assert.All(fieldReasons, r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged));
    }
}
