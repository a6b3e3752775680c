using LoraGen.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static LoraGen.Tests.Support.Closeness;
using static LoraGen.Tests.Support.Adapters;
using static TorchSharp.torch;

namespace LoraGen.Tests;

public sealed class LinearLayerTests
{
    [Theory]
    [InlineData(8, 16.0, false, 2.0)]          // alpha / r
    [InlineData(16, 8.0, false, 0.5)]
    [InlineData(16, 8.0, true, 2.0)]           // rsLoRA: alpha / √r = 8 / 4
    [InlineData(4, null, false, 1.0)]          // alpha defaults to r
    public void Forward_is_Wx_plus_b_plus_scaled_BAx(int rank, double? alpha, bool rsLora, double expectedScaling)
    {
        torch.manual_seed(1);
        var linear = nn.Linear(64, 48);
        var layer = new LoraLinear(linear, new LoraConfig { Rank = rank, Alpha = alpha, UseRsLora = rsLora });
        Randomize(layer);
        Assert.Equal(expectedScaling, layer.Scaling, 12);
        var x = randn(5, 64);

        // Closed form in float64, from the raw matrices.
        var w = linear.weight!.to(float64);
        var b = linear.bias!.to(float64);
        var a = Adapter(layer, "lora_A.weight").to(float64);
        var bUp = Adapter(layer, "lora_B.weight").to(float64);
        var x64 = x.to(float64);
        var expected = x64.matmul(w.t()) + b + expectedScaling * x64.matmul(a.t()).matmul(bUp.t());

        AssertClose(layer.forward(x), expected, 1e-5);
    }

    [Fact]
    public void Adapter_matrices_have_PEFT_shapes_names_and_initialisation()
    {
        torch.manual_seed(2);
        var layer = new LoraLinear(nn.Linear(40, 30), new LoraConfig { Rank = 6 });
        var a = Adapter(layer, "lora_A.weight");
        var b = Adapter(layer, "lora_B.weight");
        Assert.Equal([6L, 40L], a.shape);
        Assert.Equal([30L, 6L], b.shape);
        Assert.Equal(0, b.abs().max().item<float>());
        // Kaiming-uniform with a = √5 on fan_in 40: bound = √(6 / ((1 + 5) · 40)) = 1/√40.
        var bound = 1 / Math.Sqrt(40);
        Assert.True(a.abs().max().item<float>() <= bound + 1e-7);
        Assert.True(a.abs().max().item<float>() > 0.8 * bound);
        Assert.Equal(
            ["base_layer.weight", "base_layer.bias", "lora_A.default.weight", "lora_B.default.weight"],
            layer.named_parameters().Select(p => p.name));
    }

    [Fact]
    public void Gaussian_init_draws_A_with_standard_deviation_one_over_rank()
    {
        torch.manual_seed(3);
        var layer = new LoraLinear(nn.Linear(512, 512), new LoraConfig { Rank = 4, Init = LoraInit.Gaussian });
        var std = Adapter(layer, "lora_A.weight").std().item<float>();
        Assert.InRange(std, 0.25 * 0.97, 0.25 * 1.03); // 2,048 draws: sampling error ≈ 1.6%
    }

    [Fact]
    public void A_fresh_adapter_leaves_outputs_bit_identical()
    {
        torch.manual_seed(4);
        var linear = nn.Linear(64, 48);
        var x = randn(7, 64);
        var before = linear.forward(x);
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 8 });
        AssertBitIdentical(layer.forward(x), before);
    }

    [Fact]
    public void Dropout_applies_in_training_mode_only()
    {
        torch.manual_seed(5);
        var layer = new LoraLinear(nn.Linear(64, 64), new LoraConfig { Rank = 8, Dropout = 0.5 });
        Randomize(layer);
        var x = randn(16, 64);
        layer.eval();
        var first = layer.forward(x);
        AssertBitIdentical(layer.forward(x), first);
        layer.train();
        Assert.True(RelativeError(layer.forward(x), first) > 1e-3, "training-mode dropout changed nothing");
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void Half_precision_base_gets_float32_adapters_and_keeps_its_dtype(ScalarType baseType)
    {
        torch.manual_seed(6);
        var linear = nn.Linear(32, 32, dtype: baseType);
        var x = randn(4, 32).to(baseType);
        var before = linear.forward(x);
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 4 });
        Assert.Equal(ScalarType.Float32, Adapter(layer, "lora_A.weight").dtype);
        Assert.Equal(ScalarType.Float32, Adapter(layer, "lora_B.weight").dtype);
        AssertBitIdentical(layer.forward(x), before);

        Randomize(layer);
        var y = layer.forward(x);
        Assert.Equal(baseType, y.dtype);
        // The sum is formed in float32 and rounded once: compare with that closed form.
        var a = Adapter(layer, "lora_A.weight");
        var b = Adapter(layer, "lora_B.weight");
        var expected = (before.to(float32) + x.to(float32).matmul(a.t()).matmul(b.t())).to(baseType);
        AssertClose(y, expected, 1e-2);
    }

    [Fact]
    public void Merged_forward_equals_unmerged()
    {
        torch.manual_seed(7);
        var linear = nn.Linear(96, 80);
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 8, Alpha = 16 });
        Randomize(layer);
        var x = randn(12, 96);
        var unmerged = layer.forward(x);
        layer.Merge();
        layer.eval(); // merged: inference only
        Assert.True(layer.IsMerged);
        AssertClose(layer.forward(x), unmerged, 1e-5);

        // The merged weight is W + s·B·A, checked against that closed form.
        var a = Adapter(layer, "lora_A.weight").to(float64);
        var b = Adapter(layer, "lora_B.weight").to(float64);
        layer.Unmerge();
        var expectedWeight = linear.weight!.to(float64) + 2.0 * b.matmul(a);
        layer.Merge();
        AssertClose(linear.weight!, expectedWeight, 1e-6);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void A_thousand_merge_unmerge_cycles_leave_the_base_weight_bit_identical(ScalarType baseType)
    {
        torch.manual_seed(8);
        var linear = nn.Linear(64, 64, dtype: baseType);
        var original = linear.weight!.detach().clone();
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 8, Alpha = 16 });
        Randomize(layer);
        for (int cycle = 0; cycle < 1000; cycle++)
        {
            using var scope = NewDisposeScope();
            layer.Merge();
            layer.Unmerge();
        }
        AssertBitIdentical(linear.weight!, original);
    }

    [Fact]
    public void A_merge_that_would_overflow_is_refused_and_changes_nothing()
    {
        torch.manual_seed(9);
        var linear = nn.Linear(16, 16, dtype: ScalarType.Float16);
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 2 });
        using (no_grad())
        {
            Adapter(layer, "lora_A.weight").fill_(300f);
            Adapter(layer, "lora_B.weight").fill_(300f); // 2 · 300 · 300 = 180,000 > fp16's 65,504
        }
        var before = linear.weight!.detach().clone();
        var error = Assert.Throws<InvalidOperationException>(() => layer.Merge());
        Assert.Contains("non-finite", error.Message);
        Assert.Contains("nothing was changed", error.Message);
        Assert.False(layer.IsMerged);
        AssertBitIdentical(linear.weight!, before);
    }

    [Fact]
    public void MergeAndUnload_gives_back_the_plain_layer_with_merged_weights()
    {
        torch.manual_seed(10);
        var linear = nn.Linear(20, 20);
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 2 });
        Randomize(layer);
        var x = randn(3, 20);
        var adapted = layer.forward(x);
        var plain = layer.MergeAndUnload();
        Assert.Same(linear, plain);
        AssertClose(plain.forward(x), adapted, 1e-5);
        Assert.Equal(["weight", "bias"], plain.named_parameters().Select(p => p.name));
    }

    [Fact]
    public void A_disabled_adapter_computes_the_base_layer_alone()
    {
        torch.manual_seed(11);
        var linear = nn.Linear(20, 20);
        var x = randn(3, 20);
        var baseline = linear.forward(x);
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 2 });
        Randomize(layer);
        layer.AdapterEnabled = false;
        AssertBitIdentical(layer.forward(x), baseline);
        layer.AdapterEnabled = true;
        Assert.True(RelativeError(layer.forward(x), baseline) > 1e-3);
        layer.Merge();
        Assert.Throws<InvalidOperationException>(() => layer.AdapterEnabled = false);
    }

    [Fact]
    public void Adapters_are_created_on_the_base_layers_device_and_the_base_is_frozen()
    {
        var layer = new LoraLinear(nn.Linear(8, 8, device: CPU), new LoraConfig { Rank = 1 });
        foreach (var (_, parameter) in layer.NamedAdapterParameters)
        {
            Assert.Equal(DeviceType.CPU, parameter.device_type);
            Assert.True(parameter.requires_grad);
        }
        Assert.All(layer.BaseLayer.parameters(), p => Assert.False(p.requires_grad));
    }
}
