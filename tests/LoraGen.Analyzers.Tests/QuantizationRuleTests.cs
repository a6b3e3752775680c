using static LoraGen.Analyzers.Tests.Code;

namespace LoraGen.Analyzers.Tests;

/// <summary>LORA0014: a quantized base together with DoRA or a PiSSA/OLoRA init.</summary>
public sealed class QuantizationRuleTests
{
    private const string Two = "    private Module<Tensor, Tensor> q = Linear(512, 512);\n    private Module<Tensor, Tensor> v = Linear(512, 512);";

    [Fact]
    public Task Lora0014_once_for_a_class_attribute_that_sets_both() => AnalyzerTest.Run(Module(
        "[LoraTarget(UseDora = true, Quantize = {|LORA0014:QuantizationKind.Nf4|})]", Two));

    [Fact]
    public Task Lora0014_on_the_field_attribute_that_completes_the_conflict() => AnalyzerTest.Run(Module(
        "[LoraTarget(Quantize = QuantizationKind.Int8)]",
        "    [LoraTarget(Init = {|LORA0014:LoraInit.Pissa|})] private Module<Tensor, Tensor> q = Linear(512, 512);\n" +
        "    private Module<Tensor, Tensor> v = Linear(512, 512);"));

    [Fact]
    public Task Lora0014_silent_when_a_field_turns_quantization_off_or_the_target_is_not_Linear() => AnalyzerTest.Run(Module(
        "[LoraTarget(UseDora = true)]",
        "    [LoraTarget(Quantize = QuantizationKind.None)] private Module<Tensor, Tensor> q = Linear(512, 512);\n" +
        "    [LoraTarget(Quantize = QuantizationKind.Nf4, UseDora = false)] private Module<Tensor, Tensor> v = Linear(512, 512);\n" +
        "    [LoraTarget(Rank = 4, Quantize = QuantizationKind.Nf4)] private Module<Tensor, Tensor> emb = Embedding(1000, 64);"));

    [Theory]
    [InlineData("Quantize = QuantizationKind.Nf4DoubleQuantized")]
    [InlineData("Quantize = QuantizationKind.Nf4, Init = LoraInit.Gaussian")]
    [InlineData("UseDora = true, Init = LoraInit.Olora")]
    public Task Lora0014_silent(string options) => AnalyzerTest.Run(Module($"[LoraTarget({options})]", Two));

    [Fact]
    public void Lora0014_message_names_the_fields_and_the_reason() =>
        Assert.Equal(
            "Quantize asks for a quantized (QLoRA) base on 'q', but Init = LoraInit.Olora is not supported over one: it rewrites the " +
            "base weight to the residual W - B·A, which would have to be re-quantized; drop Quantize, or use plain LoRA (no UseDora, " +
            "Init = Default or Gaussian) on a quantized base",
            RunAnalyzer.Message(Module("", "    [LoraTarget(Init = LoraInit.Olora, Quantize = QuantizationKind.Nf4)] private Module<Tensor, Tensor> q = Linear(512, 512);"), "LORA0014"));
}
