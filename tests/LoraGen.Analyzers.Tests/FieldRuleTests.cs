using static LoraGen.Analyzers.Tests.Code;

namespace LoraGen.Analyzers.Tests;

/// <summary>LORA0004 (not a supported layer), LORA0005 (cannot hold the wrapper), LORA0011 (adapted and Trainable).</summary>
public sealed class FieldRuleTests
{
    [Fact]
    public Task Lora0004_named_target_holds_a_layer_norm() => AnalyzerTest.Run(Module(
        "[LoraTarget(Targets = [\"fc\", \"norm\"])]",
        "    private Module<Tensor, Tensor> fc = Linear(64, 64);\n    private Module<Tensor, Tensor> {|LORA0004:norm|} = LayerNorm(64);"));

    [Fact]
    public Task Lora0004_field_attribute_on_a_dropout_declared_by_type() => AnalyzerTest.Run(Module(
        "",
        "    [LoraTarget] private TorchSharp.Modules.Dropout {|LORA0004:drop|} = Dropout(0.1);"));

    [Fact]
    public Task Lora0004_named_target_is_not_a_module() => AnalyzerTest.Run(Module(
        "[LoraTarget(Targets = [\"fc\", \"count\"])]",
        "    private Module<Tensor, Tensor> fc = Linear(64, 64);\n    private int {|LORA0004:count|} = 3;"));

    [Fact]
    public Task Lora0004_silent_for_default_targets_and_unknown_creations() => AnalyzerTest.Run(Module(
        "[LoraTarget(Targets = [\"fc\", \"made\"])]",
        """
            private Module<Tensor, Tensor> fc = Linear(64, 64);
            private Module<Tensor, Tensor> norm = LayerNorm(64);
            private Module<Tensor, Tensor> made = Make();
            private static Module<Tensor, Tensor> Make() => Linear(64, 64);
        """));

    [Fact]
    public void Lora0004_message_names_the_layer_and_the_remedy() =>
        Assert.Equal(
            "'norm' is a LoRA target but holds a LayerNorm, which LoRA cannot adapt (supported: Linear, Embedding, Conv1d, Conv2d); remove it from Targets",
            RunAnalyzer.Message(Module("[LoraTarget(Targets = [\"norm\"])]", "    private Module<Tensor, Tensor> norm = LayerNorm(64);"), "LORA0004"));

    [Fact]
    public Task Lora0005_readonly_target() => AnalyzerTest.Run(Module(
        "[LoraTarget]",
        "    private readonly Module<Tensor, Tensor> {|LORA0005:fc|} = Linear(64, 64);"));

    [Fact]
    public Task Lora0005_declared_as_the_sealed_layer_type() => AnalyzerTest.Run(Module(
        "[LoraTarget]",
        "    private TorchSharp.Modules.Linear {|LORA0005:fc|} = Linear(64, 64);"));

    [Fact]
    public Task Lora0005_silent_for_a_writable_module_field_and_excluded_readonly_ones() => AnalyzerTest.Run(Module(
        "[LoraTarget(Exclude = [\"frozen\"])]",
        "    private Module<Tensor, Tensor> fc = Linear(64, 64);\n    private readonly TorchSharp.Modules.Linear frozen = Linear(64, 64);"));

    [Fact]
    public void Lora0005_message_for_a_readonly_module_field_asks_only_to_remove_readonly() =>
        Assert.Equal(
            "'fc' is a LoRA target but is readonly, so the wrapper cannot be stored in it; remove 'readonly'",
            RunAnalyzer.Message(Module("[LoraTarget]", "    private readonly Module<Tensor, Tensor> fc = Linear(64, 64);"), "LORA0005"));

    [Fact]
    public void Lora0005_message_for_a_writable_sealed_type_asks_only_for_the_module_type() =>
        Assert.Equal(
            "'fc' is a LoRA target but is declared as 'Linear', a type the wrapper is not, so the wrapper cannot be stored in it; declare it 'Module<Tensor, Tensor> fc'",
            RunAnalyzer.Message(Module("[LoraTarget]", "    private TorchSharp.Modules.Linear fc = Linear(64, 64);"), "LORA0005"));

    [Fact]
    public void Lora0005_message_says_both_problems() =>
        Assert.Equal(
            "'fc' is a LoRA target but is readonly and declared as 'Linear', a type the wrapper is not, so the wrapper cannot be stored in it; declare it 'Module<Tensor, Tensor> fc' without readonly",
            RunAnalyzer.Message(Module("[LoraTarget]", "    private readonly TorchSharp.Modules.Linear fc = Linear(64, 64);"), "LORA0005"));

    [Fact]
    public Task Lora0011_named_target_also_trainable() => AnalyzerTest.Run(Module(
        "[LoraTarget(Targets = [\"fc\", \"head\"], Trainable = [{|LORA0011:\"head\"|}])]",
        "    private Module<Tensor, Tensor> fc = Linear(64, 64);\n    private Module<Tensor, Tensor> head = Linear(64, 64);"));

    [Fact]
    public Task Lora0011_silent_for_a_trainable_head_with_default_targets() => AnalyzerTest.Run(Module(
        "[LoraTarget(Trainable = [\"head\"])]",
        "    private Module<Tensor, Tensor> fc = Linear(64, 64);\n    private Module<Tensor, Tensor> head = Linear(64, 64);"));
}
