using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Quantization;

/// <summary>A block that asks for an NF4 base on one target by attribute; the other target and the frozen head stay float.</summary>
[LoraTarget(Rank = 4, Targets = ["q", "v"])]
public sealed partial class QuantizedByAttribute : nn.Module<Tensor, Tensor>
{
    [LoraTarget(Quantize = QuantizationKind.Nf4)] private nn.Module<Tensor, Tensor> q = nn.Linear(64, 64);
    private nn.Module<Tensor, Tensor> v = nn.Linear(64, 64);
    private nn.Module<Tensor, Tensor> head = nn.Linear(64, 8);

    public QuantizedByAttribute() : base(nameof(QuantizedByAttribute)) => RegisterComponents();

    public override Tensor forward(Tensor x) => head.call(q.call(x) + v.call(x));
}

/// <summary><c>[LoraTarget(Quantize = ...)]</c>: the generated metadata carries the kind, ApplyLora stores that target's
/// base quantized, and <see cref="LoraOptions.Quantize"/> overrides it.</summary>
public sealed class AttributeQuantizeTests
{
    [Fact]
    public void The_attribute_quantizes_its_target_only()
    {
        using var model = new QuantizedByAttribute();
        var targets = ((ILoraModule)model).LoraTargets.ToDictionary(t => t.Field, t => t.Quantize);
        Assert.Equal(QuantizationKind.Nf4, targets["q"]);
        Assert.Equal(QuantizationKind.None, targets["v"]);
        var floatQ = Weight(model, "q");

        model.ApplyLora();

        var layers = model.LoraLayers().ToDictionary(entry => entry.Path, entry => entry.Layer);
        var quantized = Assert.IsType<QuantizedLinear>(layers["q"].QuantizedBase);
        Assert.Equal(QuantizationKind.Nf4, quantized.Kind);
        Assert.Equal(QuantizedLinear.FromWeight(floatQ, null, QuantizationKind.Nf4).Dequantize().data<float>().ToArray(),
            quantized.Dequantize().data<float>().ToArray());
        Assert.Null(layers["v"].QuantizedBase);
        Assert.IsType<Linear>(model.named_modules().Single(m => m.name == "head").module);
        // The model trains through the quantized base: every adapter gets a gradient.
        model.call(randn(2, 64)).square().sum().backward();
        Assert.All(model.LoraParameters(), p => Assert.NotNull(p.grad));
    }

    [Fact]
    public void A_kind_chosen_at_run_time_overrides_the_attribute_and_QuantizeFrozenLinears_follows_it()
    {
        using var model = new QuantizedByAttribute();
        model.ApplyLora(new LoraOptions { Quantize = QuantizationKind.Int8 });
        Assert.All(model.LoraLayers(), entry => Assert.Equal(QuantizationKind.Int8, entry.Layer.QuantizedBase!.Kind));

        using var frozenToo = new QuantizedByAttribute();
        frozenToo.ApplyLora(new LoraOptions { QuantizeFrozenLinears = true });
        var head = Assert.IsType<QuantizedLinear>(frozenToo.named_modules().Single(m => m.name == "head").module);
        Assert.Equal(QuantizationKind.Nf4, head.Kind);   // the attributes' kind
        Assert.Null(frozenToo.LoraLayers().Single(entry => entry.Path == "v").Layer.QuantizedBase);
    }

    [Fact]
    public void None_is_not_a_format_to_quantize_into()
    {
        var error = Assert.Throws<ArgumentException>(() => QuantizedLinear.FromWeight(randn(4, 64), null, QuantizationKind.None));
        Assert.Contains("QuantizationKind.None stores no quantized weight", error.Message, StringComparison.Ordinal);
    }

    private static Tensor Weight(nn.Module model, string field) =>
        model.named_parameters().Single(p => p.name == field + ".weight").parameter.detach().clone();
}
