using static LoraGen.Analyzers.Tests.Code;

namespace LoraGen.Analyzers.Tests;

/// <summary>LORA0006 (options out of range) and LORA0012 (small scaling for a large rank).</summary>
public sealed class OptionRuleTests
{
    private const string Big = "    private Module<Tensor, Tensor> fc = Linear(1024, 1024);";

    [Fact]
    public Task Lora0006_each_option_out_of_range() => AnalyzerTest.Run(Module(
        "[LoraTarget(Rank = {|LORA0006:0|}, Alpha = {|LORA0006:-1|}, Dropout = {|LORA0006:1.0|})]", Big));

    [Fact]
    public Task Lora0006_non_finite_alpha_and_dropout_on_a_field() => AnalyzerTest.Run(Module(
        "",
        "    [LoraTarget(Alpha = {|LORA0006:double.PositiveInfinity|}, Dropout = {|LORA0006:double.NaN|})] private Module<Tensor, Tensor> fc = Linear(1024, 1024);"));

    [Fact]
    public Task Lora0006_silent_at_the_edges_of_the_ranges() => AnalyzerTest.Run(Module(
        "[LoraTarget(Rank = 1, Alpha = 0.001, Dropout = 0.0)]",
        Big + "\n    [LoraTarget(Dropout = 0.999)] private Module<Tensor, Tensor> fc2 = Linear(1024, 1024);"));

    [Fact]
    public void Lora0006_message_names_the_value_and_the_range() =>
        Assert.Equal("Dropout = 1 is not valid: dropout is a probability in [0, 1): 0 turns it off",
            RunAnalyzer.Message(Module("[LoraTarget(Dropout = 1.0)]", Big), "LORA0006"));

    [Fact]
    public Task Lora0006_pissa_or_olora_on_a_layer_that_is_not_Linear() => AnalyzerTest.Run(Module(
        "",
        "    [LoraTarget(Init = LoraInit.Pissa)] private Module<Tensor, Tensor> fc = Linear(1024, 1024);\n" +
        "    [LoraTarget(Init = LoraInit.Pissa)] private Module<Tensor, Tensor> {|LORA0006:emb|} = Embedding(1000, 64);\n" +
        "    [LoraTarget(Init = LoraInit.Olora)] private Module<Tensor, Tensor> {|LORA0006:conv|} = Conv2d(64, 64, 3);\n" +
        "    [LoraTarget(UseDora = true)] private Module<Tensor, Tensor> emb2 = Embedding(1000, 64);"));

    [Fact]
    public Task Lora0012_small_scaling_at_a_large_rank() => AnalyzerTest.Run(Module(
        "[LoraTarget(Rank = 64, Alpha = {|LORA0012:8|})]", Big));

    [Theory]
    [InlineData("Rank = 64, Alpha = 32")]           // scaling 0.5
    [InlineData("Rank = 64, Alpha = 8, UseRsLora = true")] // scaling 1
    [InlineData("Rank = 16, Alpha = 2")]           // small rank: the user's choice
    [InlineData("Rank = 64")]                      // Alpha defaults to Rank: scaling 1
    public Task Lora0012_silent(string options) => AnalyzerTest.Run(Module($"[LoraTarget({options})]", Big));

    [Fact]
    public void Lora0012_message_gives_the_numbers() =>
        Assert.Equal(
            "Alpha 8 / Rank 64 scales the adapter's output by 0.125, which damps its updates at this rank; consider Alpha = 128 (2·Rank, scaling 2) or UseRsLora = true (scaling Alpha/√Rank = 1)",
            RunAnalyzer.Message(Module("[LoraTarget(Rank = 64, Alpha = 8)]", Big), "LORA0012"));
}
