using static LoraGen.Analyzers.Tests.Code;

namespace LoraGen.Analyzers.Tests;

/// <summary>LORA0003 (a name that is not a field) and LORA0009 (a field targeted twice, differently).</summary>
public sealed class NameRuleTests
{
    private const string Attention = """
            private Module<Tensor, Tensor> q_proj = Linear(64, 64);
            private Module<Tensor, Tensor> v_proj = Linear(64, 64);
            private Module<Tensor, Tensor> head = Linear(64, 10);
        """;

    [Fact]
    public Task Lora0003_unknown_names_in_each_list() => AnalyzerTest.Run(Module(
        "[LoraTarget(Targets = [\"q_proj\", {|LORA0003:\"q_prj\"|}], Exclude = [{|LORA0003:\"k_proj\"|}], Trainable = [{|LORA0003:\"classifier\"|}])]",
        Attention));

    [Fact]
    public Task Lora0003_silent_for_real_field_names() => AnalyzerTest.Run(Module(
        "[LoraTarget(Targets = [\"q_proj\", \"v_proj\"], Trainable = [\"head\"])]", Attention));

    [Fact]
    public Task Lora0003_old_array_syntax() => AnalyzerTest.Run(Module(
        "[LoraTarget(Targets = new[] { {|LORA0003:\"v_prj\"|} })]", Attention));

    [Fact]
    public void Lora0003_suggests_the_closest_field() =>
        Assert.Equal("'q_prj' in Targets is not a field of 'Block'; did you mean 'q_proj'?",
            RunAnalyzer.Message(Module("[LoraTarget(Targets = [\"q_prj\"])]", Attention), "LORA0003"));

    [Fact]
    public void Lora0003_lists_the_fields_when_nothing_is_close() =>
        Assert.Equal("'decoder' in Targets is not a field of 'Block'; its fields are 'q_proj', 'v_proj', 'head'",
            RunAnalyzer.Message(Module("[LoraTarget(Targets = [\"decoder\"])]", Attention), "LORA0003"));

    [Fact]
    public void Lora0003_trainable_field_that_is_not_a_module() =>
        Assert.Equal("'steps' in Trainable is not a module field of 'Block'; it is declared 'int', and only modules can be trained in full",
            RunAnalyzer.Message(Module("[LoraTarget(Trainable = [\"steps\"])]", Attention + "\n    private int steps;"), "LORA0003"));

    [Theory]
    [InlineData("q_prj", "q_proj")]
    [InlineData("Q_PROJ", "q_proj")]
    [InlineData("qproj", "q_proj")]
    [InlineData("q_porj", "q_proj")] // a transposition is one edit
    [InlineData("k_proj", null)]     // q_proj and v_proj are equally close: no guess
    [InlineData("decoder", null)]
    public void Closest_name_is_unique_and_near(string typed, string? expected) =>
        Assert.Equal(expected, NameRules.ClosestName(typed, ["q_proj", "v_proj", "head"]));

    [Fact]
    public Task Lora0009_in_targets_with_different_options_on_the_field() => AnalyzerTest.Run(Usings + """
        [LoraTarget(Rank = 8, Targets = ["q_proj", {|LORA0009:"v_proj"|}])]
        public partial class Block : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> q_proj = Linear(64, 64);
            [LoraTarget(Rank = 4)] private Module<Tensor, Tensor> v_proj = Linear(64, 64);
            public Block() : base("Block") { }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0009_in_targets_and_exclude() => AnalyzerTest.Run(Module(
        "[LoraTarget(Targets = [\"q_proj\", \"v_proj\"], Exclude = [{|LORA0009:\"v_proj\"|}])]", Attention));

    [Fact]
    public Task Lora0009_excluded_but_annotated() => AnalyzerTest.Run(Usings + """
        [LoraTarget(Exclude = [{|LORA0009:"v_proj"|}])]
        public partial class Block : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> q_proj = Linear(64, 64);
            [LoraTarget(Rank = 4)] private Module<Tensor, Tensor> v_proj = Linear(64, 64);
            public Block() : base("Block") { }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0009_silent_for_a_per_field_override_not_listed_in_targets() => AnalyzerTest.Run(Usings + """
        [LoraTarget(Rank = 8, Targets = ["q_proj"])]
        public partial class Block : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> q_proj = Linear(64, 64);
            [LoraTarget(Rank = 4)] private Module<Tensor, Tensor> v_proj = Linear(64, 64);
            public Block() : base("Block") { }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0009_silent_when_the_field_repeats_the_class_options() => AnalyzerTest.Run(Usings + """
        [LoraTarget(Rank = 8, Targets = ["q_proj", "v_proj"])]
        public partial class Block : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> q_proj = Linear(64, 64);
            [LoraTarget(Rank = 8)] private Module<Tensor, Tensor> v_proj = Linear(64, 64);
            public Block() : base("Block") { }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public void Lora0009_message_names_both_values() =>
        Assert.Equal(
            "'v_proj' is named in the class's Targets and has its own [LoraTarget] with different options (Rank 4 on the field, 8 on the class); the field's attribute wins; remove the name from Targets so the options are stated once",
            RunAnalyzer.Message(Usings + """
                [LoraTarget(Targets = ["v_proj"])]
                public partial class Block : Module<Tensor, Tensor>
                {
                    [LoraTarget(Rank = 4)] private Module<Tensor, Tensor> v_proj = Linear(64, 64);
                    public Block() : base("Block") { }
                    public override Tensor forward(Tensor x) => x;
                }
                """, "LORA0009"));
}
