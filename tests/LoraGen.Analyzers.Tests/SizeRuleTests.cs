using static LoraGen.Analyzers.Tests.Code;

namespace LoraGen.Analyzers.Tests;

/// <summary>LORA0007 (rank not low), LORA0008 (no savings), LORA0013 (groups do not divide the rank),
/// with the expected numbers worked out by hand from r·(in·k + out) and in·out·k.</summary>
public sealed class SizeRuleTests
{
    [Fact]
    public Task Lora0008_rank_4_on_8_by_8_saves_nothing() => AnalyzerTest.Run(Module(
        "[LoraTarget(Rank = 4)]", "    private Module<Tensor, Tensor> {|LORA0008:fc|} = Linear(8, 8);")); // 4·16 = 64 ≥ 64

    [Fact]
    public Task Lora0008_silent_one_rank_lower() => AnalyzerTest.Run(Module(
        "[LoraTarget(Rank = 3)]", "    private Module<Tensor, Tensor> fc = Linear(8, 8);")); // 3·16 = 48 < 64

    [Fact]
    public void Lora0008_message_shows_the_arithmetic() =>
        Assert.Equal(
            "Rank 4 on 'fc' (Linear 8→8) needs 4·(8 + 8) = 64 adapter parameters, not fewer than the 64 of the layer itself (in·out), so the adapter saves nothing; use a rank of at most 3 (Rank = 2 keeps at least half of the layer's 64 parameters saved)",
            RunAnalyzer.Message(Module("[LoraTarget(Rank = 4)]", "    private Module<Tensor, Tensor> fc = Linear(8, 8);"), "LORA0008"));

    [Fact]
    public Task Lora0008_conv_uses_the_kernel() => AnalyzerTest.Run(Module(
        // Conv2d 3→4 with a 3×3 kernel: rank 4 needs 4·(27 + 4) = 124 ≥ 3·4·9 = 108.
        "[LoraTarget(Rank = 4)]", "    private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:conv|}|} = Conv2d(3, 4, 3);"));

    [Fact]
    public Task Lora0008_silent_for_a_saving_conv() => AnalyzerTest.Run(Module(
        // Conv2d 3→16, 3×3: rank 2 needs 2·(27 + 16) = 86 < 432.
        "[LoraTarget(Rank = 2)]", "    private Module<Tensor, Tensor> conv = Conv2d(3, 16, (3, 3));"));

    [Fact]
    public Task Lora0008_embedding_from_constants() => AnalyzerTest.Run(Module(
        // Embedding 10×4: rank 3 needs 3·14 = 42 ≥ 40.
        "[LoraTarget(Rank = 3)]", "    private const int Vocab = 10;\n    private Module<Tensor, Tensor> {|LORA0008:embed|} = Embedding(Vocab, 2 * 2);"));

    [Fact]
    public Task Size_rules_silent_when_sizes_are_not_constants() => AnalyzerTest.Run(Usings + """
        [LoraTarget(Rank = 64)]
        public partial class Block : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> fc;
            public Block(int width) : base("Block") { fc = Linear(width, width); }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Size_rules_read_constructor_assignments() => AnalyzerTest.Run(Usings + """
        [LoraTarget(Rank = 64)]
        public partial class Block : Module<Tensor, Tensor>
        {
            private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:fc|}|} = null!;
            public Block() : base("Block") { fc = Linear(16, 32); }
            public override Tensor forward(Tensor x) => x;
        }
        """);

    [Fact]
    public Task Lora0007_rank_at_least_min_in_out() => AnalyzerTest.Run(Module(
        // Linear 16→4: rank 4 = min(16, 4); 4·20 = 80 ≥ 64 too.
        "[LoraTarget(Rank = 4)]", "    private Module<Tensor, Tensor> {|LORA0007:{|LORA0008:fc|}|} = Linear(16, 4);"));

    [Fact]
    public Task Lora0007_silent_below_min_in_out() => AnalyzerTest.Run(Module(
        "[LoraTarget(Rank = 3)]", "    private Module<Tensor, Tensor> fc = Linear(16, 4);")); // 3·20 = 60 < 64

    [Fact]
    public void Lora0007_message_gives_the_bound_and_the_suggestion() =>
        Assert.Equal(
            "Rank 4 on 'fc' (Linear 16→4) is at least min(in, out) = 4, so B·A can express any update and LoRA restricts nothing; use a rank of at most 3 (Rank = 1 keeps at least half of the layer's 64 parameters saved)",
            RunAnalyzer.Message(Module("[LoraTarget(Rank = 4)]", "    private Module<Tensor, Tensor> fc = Linear(16, 4);"), "LORA0007"));

    [Fact]
    public void Lora0008_when_no_rank_saves_half_names_the_largest_that_saves() =>
        // Linear 3→3: 9 parameters, 6 a rank; rank 1 (6 < 9) saves, but not half; rank 2 (12) saves nothing.
        Assert.EndsWith(
            "; use a rank of at most 1, or leave it out of the targets: even Rank = 1 saves less than half of this small layer",
            RunAnalyzer.Message(Module("[LoraTarget(Rank = 2)]", "    private Module<Tensor, Tensor> fc = Linear(3, 3);"), "LORA0008"));

    [Fact]
    public void Lora0008_on_a_layer_too_small_to_save_anything_says_so() =>
        Assert.EndsWith(
            "no rank saves parameters on a layer this small; leave it out of the targets",
            RunAnalyzer.Message(Module("[LoraTarget(Rank = 1)]", "    private Module<Tensor, Tensor> fc = Linear(1, 1);"), "LORA0008"));

    [Fact]
    public Task Lora0013_groups_do_not_divide_the_rank() => AnalyzerTest.Run(Module(
        "[LoraTarget(Rank = 2)]", "    private Module<Tensor, Tensor> {|LORA0013:conv|} = Conv2d(8, 16, 3, groups: 4);"));

    [Fact]
    public void Lora0007_embedding_bound_is_min_num_dim() =>
        Assert.Contains("is at least min(num, dim) = 4,",
            RunAnalyzer.Message(Module("[LoraTarget(Rank = 4)]", "    private Module<Tensor, Tensor> embed = Embedding(10, 4);"), "LORA0007"));

    [Fact]
    public Task Grouped_convolutions_get_only_lora0013()
        // Conv1d 8→8, groups 4, rank 6: the ungrouped formula would say 6·(24 + 8) = 192 ≥ 192 (LORA0008),
        // but the real weight is 8·2·3 = 48 numbers: the size rules stay out of it.
        => AnalyzerTest.Run(Module("[LoraTarget(Rank = 6)]", "    private Module<Tensor, Tensor> {|LORA0013:conv|} = Conv1d(8, 8, 3, groups: 4);"));

    [Fact]
    public Task Lora0013_silent_when_groups_divide_the_rank() => AnalyzerTest.Run(Module(
        "[LoraTarget(Rank = 4)]", "    private Module<Tensor, Tensor> conv = Conv2d(8, 16, 3, groups: 4);"));

    [Fact]
    public void Lora0013_message_suggests_a_multiple() =>
        Assert.Equal(
            "'conv' is a Conv1d with groups = 4, which does not divide rank 6; a grouped convolution's adapter needs a rank that is a multiple of 4, e.g. 4",
            RunAnalyzer.Message(Module("[LoraTarget(Rank = 6)]", "    private Module<Tensor, Tensor> conv = Conv1d(64, 64, 3, groups: 4);"), "LORA0013"));
}
