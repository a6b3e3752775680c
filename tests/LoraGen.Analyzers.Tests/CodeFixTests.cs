using LoraGen.CodeFixes;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using static LoraGen.Analyzers.Tests.Code;

namespace LoraGen.Analyzers.Tests;

/// <summary>Every code fix, before and after, one diagnostic and fix-all.</summary>
public sealed class CodeFixTests
{
    [Fact]
    public Task Add_partial_to_the_class_and_its_containing_types() => CodeFixTest<AddPartialFix>.Run(Usings + """
        public class Outer
        {
            public static class Middle
            {
                [LoraTarget]
                public sealed class {|LORA0001:Inner|} : Module<Tensor, Tensor>
                {
                    private Module<Tensor, Tensor> fc = Linear(64, 64);
                    public Inner() : base("Inner") { }
                    public override Tensor forward(Tensor x) => x;
                }
            }
        }
        """, Usings + """
        public partial class Outer
        {
            public static partial class Middle
            {
                [LoraTarget]
                public sealed partial class Inner : Module<Tensor, Tensor>
                {
                    private Module<Tensor, Tensor> fc = Linear(64, 64);
                    public Inner() : base("Inner") { }
                    public override Tensor forward(Tensor x) => x;
                }
            }
        }
        """);

    [Fact]
    public Task Add_partial_fix_all() => CodeFixTest<AddPartialFix>.Run(Usings + """
        [LoraTarget] public class {|LORA0001:A|} : Module<Tensor, Tensor> { private Module<Tensor, Tensor> fc = Linear(64, 64); public A() : base("A") { } public override Tensor forward(Tensor x) => x; }
        [LoraTarget] public class {|LORA0001:B|} : Module<Tensor, Tensor> { private Module<Tensor, Tensor> fc = Linear(64, 64); public B() : base("B") { } public override Tensor forward(Tensor x) => x; }
        """, Usings + """
        [LoraTarget] public partial class A : Module<Tensor, Tensor> { private Module<Tensor, Tensor> fc = Linear(64, 64); public A() : base("A") { } public override Tensor forward(Tensor x) => x; }
        [LoraTarget] public partial class B : Module<Tensor, Tensor> { private Module<Tensor, Tensor> fc = Linear(64, 64); public B() : base("B") { } public override Tensor forward(Tensor x) => x; }
        """);

    private const string Attention = """
            private Module<Tensor, Tensor> q_proj = Linear(64, 64);
            private Module<Tensor, Tensor> v_proj = Linear(64, 64);
            private Module<Tensor, Tensor> head = Linear(64, 10);
        """;

    [Fact]
    public Task Closest_name_replaces_each_typo() => CodeFixTest<ClosestNameFix>.Run(
        Module("[LoraTarget(Targets = [{|LORA0003:\"q_prj\"|}, {|LORA0003:\"V_proj\"|}], Trainable = [{|LORA0003:\"haed\"|}])]", Attention),
        Module("[LoraTarget(Targets = [\"q_proj\", \"v_proj\"], Trainable = [\"head\"])]", Attention));

    [Fact]
    public Task Closest_name_offers_nothing_when_no_name_is_close()
    {
        var source = Module("[LoraTarget(Targets = [{|LORA0003:\"decoder\"|}])]", Attention);
        return CodeFixTest<ClosestNameFix>.Run(source, source);
    }

    [Fact]
    public Task Declare_module_drops_readonly_and_the_sealed_type() => CodeFixTest<DeclareModuleFix>.Run(Module("[LoraTarget]", """
            private readonly TorchSharp.Modules.Linear {|LORA0005:q_proj|} = Linear(64, 64);
            // the value projection
            readonly Module<Tensor, Tensor> {|LORA0005:v_proj|} = Linear(64, 64);
        """), Module("[LoraTarget]", """
            private Module<Tensor, Tensor> q_proj = Linear(64, 64);
            // the value projection
            Module<Tensor, Tensor> v_proj = Linear(64, 64);
        """));

    [Fact]
    public Task Declare_module_changes_only_what_stops_the_field_holding_the_wrapper() => CodeFixTest<DeclareModuleFix>.Run(Module("[LoraTarget]", """
            private readonly Module {|LORA0005:q_proj|} = Linear(64, 64);
            private TorchSharp.Modules.Linear {|LORA0005:v_proj|} = Linear(64, 64);
        """), Module("[LoraTarget]", """
            private Module q_proj = Linear(64, 64);
            private Module<Tensor, Tensor> v_proj = Linear(64, 64);
        """));

    [Theory]
    [InlineData("private readonly TorchSharp.Modules.Linear fc = Linear(64, 64);", "Declare it Module<Tensor, Tensor>, not readonly")]
    [InlineData("private TorchSharp.Modules.Linear fc = Linear(64, 64);", "Declare it Module<Tensor, Tensor>")]
    [InlineData("private readonly Module<Tensor, Tensor> fc = Linear(64, 64);", "Remove readonly")]
    public async Task Declare_module_title_names_only_the_changes_it_makes(string field, string title) =>
        Assert.Equal([title], await FixTitles(new DeclareModuleFix(), Module("[LoraTarget]", "    " + field), "LORA0005"));

    [Fact]
    public Task Declare_module_writes_the_full_name_where_no_usings_shorten_it() => CodeFixTest<DeclareModuleFix>.Run("""
        [LoraGen.LoraTarget]
        public partial class Block : TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>
        {
            private TorchSharp.Modules.Linear {|LORA0005:fc|} = TorchSharp.torch.nn.Linear(64, 64);
            public Block() : base("Block") { }
            public override TorchSharp.torch.Tensor forward(TorchSharp.torch.Tensor x) => x;
        }
        """, """
        [LoraGen.LoraTarget]
        public partial class Block : TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>
        {
            private TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> fc = TorchSharp.torch.nn.Linear(64, 64);
            public Block() : base("Block") { }
            public override TorchSharp.torch.Tensor forward(TorchSharp.torch.Tensor x) => x;
        }
        """);

    [Fact]
    public Task Suggested_rank_is_added_to_the_field_when_the_class_sets_it() => CodeFixTest<SuggestedRankFix>.Run(Module(
        "[LoraTarget(Rank = 4)]", """
            private Module<Tensor, Tensor> {|LORA0008:fc|} = Linear(8, 8);
            private Module<Tensor, Tensor> big = Linear(64, 64);
        """), Module(
        "[LoraTarget(Rank = 4)]", """
            [LoraTarget(Rank = 2)]
            private Module<Tensor, Tensor> fc = Linear(8, 8);
            private Module<Tensor, Tensor> big = Linear(64, 64);
        """));

    [Fact]
    public Task Suggested_rank_replaces_the_field_rank() => CodeFixTest<SuggestedRankFix>.Run(Module(
        "",
        // Linear 16→32: 16·32/(2·48) = 5.33 → 5; rank 64 is both not low and not saving.
        "    [LoraTarget(Rank = 64, Alpha = 128)] private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:fc|}|} = Linear(16, 32);"),
        Module("", "    [LoraTarget(Rank = 5, Alpha = 128)] private Module<Tensor, Tensor> fc = Linear(16, 32);"));

    [Fact]
    public Task Suggested_rank_joins_a_field_attribute_that_sets_other_options() => CodeFixTest<SuggestedRankFix>.Run(Module(
        "[LoraTarget(Rank = 16)]",
        "    [LoraTarget(Dropout = 0.1)] private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:embed|}|} = Embedding(100, 8);"),
        Module("[LoraTarget(Rank = 16)]",
        // Embedding 100×8: 800/(2·108) = 3.7 → 3.
        "    [LoraTarget(Dropout = 0.1, Rank = 3)] private Module<Tensor, Tensor> embed = Embedding(100, 8);"));

    [Fact]
    public Task Suggested_rank_fix_all_sets_each_field_its_own_rank() => CodeFixTest<SuggestedRankFix>.Run(Module(
        "[LoraTarget(Rank = 8)]", """
            private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:a|}|} = Linear(8, 8);
            private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:b|}|} = Linear(20, 4);
        """), Module(
        "[LoraTarget(Rank = 8)]", """
            [LoraTarget(Rank = 2)]
            private Module<Tensor, Tensor> a = Linear(8, 8);
            [LoraTarget(Rank = 1)]
            private Module<Tensor, Tensor> b = Linear(20, 4);
        """));

    [Fact]
    public Task Suggested_rank_offers_nothing_when_no_rank_saves_half()
    {
        var source = Module("[LoraTarget(Rank = 1)]", "    private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:fc|}|} = Linear(1, 1);");
        return CodeFixTest<SuggestedRankFix>.Run(source, source);
    }

    [Fact]
    public Task Suggested_rank_moves_a_listed_field_out_of_targets() => CodeFixTest<SuggestedRankFix>.Run(Module(
        "[LoraTarget(Rank = 4, Targets = [\"fc\", \"big\"])]", """
            private Module<Tensor, Tensor> {|LORA0008:fc|} = Linear(8, 8);
            private Module<Tensor, Tensor> big = Linear(64, 64);
        """), Module(
        "[LoraTarget(Rank = 4, Targets = [\"big\"])]", """
            [LoraTarget(Rank = 2)]
            private Module<Tensor, Tensor> fc = Linear(8, 8);
            private Module<Tensor, Tensor> big = Linear(64, 64);
        """));

    [Fact]
    public Task Suggested_rank_sets_the_class_rank_when_the_field_is_its_only_target() => CodeFixTest<SuggestedRankFix>.Run(Module(
        "[LoraTarget(Targets = [\"fc\"])]", """
            private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:fc|}|} = Linear(8, 8);
            [LoraTarget(Rank = 16)] private Module<Tensor, Tensor> big = Linear(64, 64);
        """), Module(
        "[LoraTarget(Targets = [\"fc\"], Rank = 2)]", """
            private Module<Tensor, Tensor> fc = Linear(8, 8);
            [LoraTarget(Rank = 16)] private Module<Tensor, Tensor> big = Linear(64, 64);
        """));

    /// <summary>The titles <paramref name="fix"/> offers for each <paramref name="id"/> the analyzer reports in <paramref name="source"/>.</summary>
    private static async Task<string[]> FixTitles(CodeFixProvider fix, string source, string id)
    {
        using var workspace = new AdhocWorkspace();
        var document = workspace.CurrentSolution
            .AddProject("UserCode", "UserCode", LanguageNames.CSharp)
            .WithParseOptions(new CSharpParseOptions(LanguageVersion.Latest))
            .WithCompilationOptions(new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary))
            .AddMetadataReferences(TestReferences.All)
            .AddDocument("Source.cs", source);
        var titles = new List<string>();
        foreach (var diagnostic in RunAnalyzer.On(source).Where(d => d.Id == id))
            await fix.RegisterCodeFixesAsync(new CodeFixContext(document, diagnostic, (action, _) => titles.Add(action.Title), CancellationToken.None));
        return [.. titles];
    }
}
