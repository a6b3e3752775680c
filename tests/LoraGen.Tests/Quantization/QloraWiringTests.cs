using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Quantization;

/// <summary>QLoRA wired in: ApplyLora with <see cref="LoraOptions.Quantize"/>, LoRA over a QuantizedLinear against
/// LoRA over the dequantized float weight, merging, adapter files, loading straight into 4-bit.</summary>
public sealed class QloraWiringTests
{
    private sealed class Mlp : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE0044 // ApplyLora replaces these through the registry and the fields.
        private nn.Module<Tensor, Tensor> fc1;
        private nn.Module<Tensor, Tensor> fc2;
        private nn.Module<Tensor, Tensor> head;
#pragma warning restore IDE0044

        public Mlp(long seed) : base(nameof(Mlp))
        {
            using (NewDisposeScope())
            {
                var generator = new Generator((ulong)seed);
                fc1 = Linear(64, 128, generator);
                fc2 = Linear(128, 128, generator);
                head = Linear(128, 8, generator);
            }
            RegisterComponents();
        }

        private static Linear Linear(long inFeatures, long outFeatures, Generator generator)
        {
            var linear = nn.Linear(inFeatures, outFeatures);
            using (no_grad())
            {
                linear.weight!.copy_(randn(outFeatures, inFeatures, generator: generator) * 0.1);
                linear.bias!.copy_(randn(outFeatures, generator: generator) * 0.1);
            }
            return linear;
        }

        public override Tensor forward(Tensor x) =>
            head.call(nn.functional.gelu(fc2.call(nn.functional.gelu(fc1.call(x)))));
    }

    private static readonly AdapterConfig Targets = new() { Rank = 4, Alpha = 8, TargetModules = ["fc1", "fc2"] };

    private static LoraOptions Quantized(QuantizationKind kind = QuantizationKind.Nf4, bool frozen = false) =>
        LoraOptions.Default with { Quantize = kind, QuantizeFrozenLinears = frozen };

    private static T Module<T>(nn.Module model, string path) where T : class =>
        model.named_modules().Single(entry => entry.name == path).module as T ?? throw new InvalidCastException(path);

    // Gives every B a non-zero value (fresh adapters add nothing), the same in every model built from this seed.
    private static void RandomizeAdapters(nn.Module model, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var (_, parameter) in model.NamedLoraParameters().OrderBy(p => p.Path, StringComparer.Ordinal))
            parameter.copy_(randn(parameter.shape, generator: generator) * 0.2);
    }

    /// <summary>The QLoRA model, and the reference: the same model with float Linears holding the dequantized weights
    /// and the same adapter values.</summary>
    private static (Mlp Quantized, Mlp Reference) Pair(QuantizationKind kind)
    {
        var qlora = new Mlp(3);
        qlora.ApplyLora(Targets, Quantized(kind));
        RandomizeAdapters(qlora, 11);
        var reference = new Mlp(3);
        using (no_grad())
            foreach (var path in new[] { "fc1", "fc2" })
            {
                using var weight = Module<LoraLinear>(qlora, path).QuantizedBase!.Dequantize();
                Module<Linear>(reference, path).weight!.copy_(weight);
            }
        reference.ApplyLora(Targets);
        RandomizeAdapters(reference, 11);
        return (qlora, reference);
    }

    // Training mode takes the fused path (QloraLinearFunction: base and adapter in one node); eval mode, which changes
    // nothing else in this model, the base's own node followed by the adapter's addmm.
    [Theory]
    [InlineData(QuantizationKind.Nf4, true)]
    [InlineData(QuantizationKind.Nf4DoubleQuantized, true)]
    [InlineData(QuantizationKind.Int8, true)]
    [InlineData(QuantizationKind.Nf4, false)]
    [InlineData(QuantizationKind.Int8, false)]
    public void Lora_over_a_quantized_base_equals_lora_over_its_dequantized_weight_forward_and_gradients(QuantizationKind kind, bool training)
    {
        using var scope = NewDisposeScope();
        var (qlora, reference) = Pair(kind);
        if (!training)
            qlora.eval();
        Assert.IsType<QuantizedLinear>(Module<LoraLinear>(qlora, "fc1").QuantizedBase);
        Assert.Contains(qlora.named_buffers(), entry => entry.name == "fc1.base_layer.codes");
        Assert.DoesNotContain(qlora.named_parameters(), entry => entry.name.StartsWith("fc1.base_layer", StringComparison.Ordinal));
        var x = randn(5, 64, generator: new Generator(5));

        var y = qlora.call(x);
        var expected = reference.call(x);
        Closeness.AssertClose(y, expected, 1e-5);

        y.square().sum().backward();
        expected.square().sum().backward();
        var grads = qlora.NamedLoraParameters().ToDictionary(p => p.Path, p => p.Parameter.grad!);
        var referenceGrads = reference.NamedLoraParameters().ToDictionary(p => p.Path, p => p.Parameter.grad!);
        Assert.Equal(referenceGrads.Keys.Order(), grads.Keys.Order());
        Assert.Equal(4, grads.Count);
        foreach (var (path, grad) in grads)
            Closeness.AssertClose(grad, referenceGrads[path], 1e-4);
    }

    // The fused node with some inputs not needing a gradient: every A frozen, fc1's input a plain tensor. Each B still
    // gets the reference gradient (fc1's through fc2's input gradient), and A gets none.
    [Fact]
    public void A_fused_qlora_layer_with_A_frozen_gives_B_the_reference_gradient_and_A_none()
    {
        using var scope = NewDisposeScope();
        var (qlora, reference) = Pair(QuantizationKind.Nf4);
        foreach (var model in new nn.Module[] { qlora, reference })
            foreach (var (path, parameter) in model.NamedLoraParameters())
                if (path.Contains("lora_A", StringComparison.Ordinal))
                    parameter.requires_grad = false;
        var x = randn(5, 64, generator: new Generator(7));

        qlora.call(x).square().sum().backward();
        reference.call(x).square().sum().backward();

        var referenceGrads = reference.NamedLoraParameters().ToDictionary(p => p.Path, p => p.Parameter.grad);
        foreach (var (path, parameter) in qlora.NamedLoraParameters())
        {
            if (path.Contains("lora_A", StringComparison.Ordinal))
            {
                Assert.Null(parameter.grad);
                continue;
            }
            Closeness.AssertClose(parameter.grad!, referenceGrads[path]!, 1e-4);
        }
    }

    [Theory]
    [InlineData(QuantizationKind.Nf4)]
    [InlineData(QuantizationKind.Nf4DoubleQuantized)]
    [InlineData(QuantizationKind.Int8)]
    public void Products_slice_by_slice_equal_those_with_the_whole_dequantized_weight(QuantizationKind kind)
    {
        using var scope = NewDisposeScope();
        // 601 × 521 = 313,121 weights: more than one slice of 2^18; 521 is odd, so a slice boundary must fall on an NF4
        // block boundary (every 64 rows) for the slices to be right, and the last block is short (33 weights).
        using var layer = QuantizedLinear.FromWeight(randn(601, 521), randn(601), kind);
        using var small = QuantizedLinear.FromWeight(randn(8, 24), null, kind);
        var rowsPerSlice = DequantizedProduct.RowsPerSlice(layer);
        Assert.InRange(rowsPerSlice, 1, 600);
        Assert.Equal(0, rowsPerSlice * 521 % (kind == QuantizationKind.Int8 ? 1 : Nf4.BlockSize));
        var whole = layer.Dequantize();

        // Every slice holds exactly its rows of the dequantized weight.
        using var scales = layer.BlockScales();
        for (long first = 0; first < 601; first += rowsPerSlice)
        {
            var count = Math.Min(rowsPerSlice, 601 - first);
            var slice = empty(count * 521);
            layer.DequantizeRowsInto(first, count, scales, slice);
            Closeness.AssertBitIdentical(slice.view(count, 521), whole.narrow(0, first, count));
        }

        // Forward (with and without autograd) and the gradient to the input, against float64 products with the whole weight.
        var x = randn(2, 3, 521);
        var expected = nn.functional.linear(x.to(float64), whole.to(float64), layer.Bias!.to(float64));
        using (no_grad())
            Closeness.AssertClose(layer.forward(x), expected, 1e-4);
        var traced = x.clone().requires_grad_(true);
        var y = layer.forward(traced);
        Closeness.AssertClose(y, expected, 1e-4);
        var grad = randn(2, 3, 601);
        y.backward([grad]);
        Closeness.AssertClose(traced.grad!, grad.to(float64).matmul(whole.to(float64)), 1e-4);
        // A smaller layer after the larger one reuses the buffer and still multiplies by its own weight.
        var z = randn(3, 24);
        using (no_grad())
            Closeness.AssertClose(small.forward(z), nn.functional.linear(z.to(float64), small.Dequantize().to(float64)), 1e-5);
    }

    [Fact]
    public void MergeAndUnload_gives_a_float_linear_with_the_closed_form_weight()
    {
        using var scope = NewDisposeScope();
        var (qlora, _) = Pair(QuantizationKind.Nf4);
        var layer = Module<LoraLinear>(qlora, "fc1");
        var (a, b) = (layer.FactorsOf("default").A.detach().clone(), layer.FactorsOf("default").B.detach().clone());
        var expected = layer.QuantizedBase!.Dequantize() + b.matmul(a) * layer.Scaling;
        var bias = layer.QuantizedBase.Bias!.clone();
        var x = randn(3, 64);
        var before = qlora.call(x);

        qlora.MergeAndUnload();

        var merged = Module<Linear>(qlora, "fc1");
        Closeness.AssertClose(merged.weight!, expected, 1e-6);
        Closeness.AssertBitIdentical(merged.bias!, bias);
        Assert.Contains("fc1.weight", qlora.state_dict().Keys);
        Assert.Contains("fc1.bias", qlora.state_dict().Keys);
        Assert.DoesNotContain(qlora.named_buffers(), entry => entry.name.StartsWith("fc", StringComparison.Ordinal));
        Closeness.AssertClose(qlora.call(x), before, 1e-5);
    }

    [Theory]
    [InlineData(QuantizationKind.Nf4)]
    [InlineData(QuantizationKind.Nf4DoubleQuantized)]
    [InlineData(QuantizationKind.Int8)]
    public void Merge_requantizes_and_Unmerge_restores_the_codes_bit_for_bit(QuantizationKind kind)
    {
        using var scope = NewDisposeScope();
        var (qlora, _) = Pair(kind);
        var layer = Module<LoraLinear>(qlora, "fc2");
        var codes = layer.QuantizedBase!.named_buffers().ToDictionary(entry => entry.name, entry => entry.buffer.clone());
        var original = layer.QuantizedBase.Dequantize();
        var (a, b) = layer.FactorsOf("default");
        using var expected = QuantizedLinear.FromWeight(original + b.detach().matmul(a.detach()) * layer.Scaling, null, kind);

        Assert.Equal(2, qlora.Merge());

        // W' = quantize(dequantize(codes) + ΔW): the same codes a fresh quantization of that sum gives.
        Closeness.AssertBitIdentical(layer.QuantizedBase.Dequantize(), expected.Dequantize());
        Assert.False(Closeness.BitIdentical(layer.QuantizedBase.Dequantize(), original));
        Assert.Equal(2, qlora.Unmerge());
        foreach (var (name, buffer) in layer.QuantizedBase.named_buffers())
            Closeness.AssertBitIdentical(buffer, codes[name]);

        // Many cycles drift nothing.
        for (int i = 0; i < 3; i++)
        {
            qlora.Merge();
            qlora.Unmerge();
        }
        foreach (var (name, buffer) in layer.QuantizedBase.named_buffers())
            Closeness.AssertBitIdentical(buffer, codes[name]);
    }

    [Fact]
    public void Dora_and_pissa_over_a_quantized_base_are_refused_and_nothing_changes()
    {
        using var scope = NewDisposeScope();
        var model = new Mlp(1);
        var dora = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora(Targets with { UseDora = true }, Quantized()));
        Assert.Contains("DoRA", dora.Message);
        Assert.IsType<Linear>(Module<nn.Module>(model, "fc1"));
        var pissa = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora(Targets with { Init = LoraInit.Pissa }, Quantized()));
        Assert.Contains("Pissa", pissa.Message);
        Assert.IsType<Linear>(Module<nn.Module>(model, "fc1"));

        model.ApplyLora(Targets, Quantized());
        Assert.Throws<LoraConfigurationException>(() => model.AddAdapter("second", Targets with { UseDora = true }));
    }

    [Fact]
    public void QuantizeFrozenLinears_quantizes_the_other_linears_in_place_and_AddAdapter_quantizes_new_targets()
    {
        using var scope = NewDisposeScope();
        var model = new Mlp(2);
        var report = model.ApplyLora(new AdapterConfig { Rank = 4, TargetModules = ["fc1"] }, Quantized(QuantizationKind.Nf4DoubleQuantized, frozen: true));
        // PEFT's count: a quantized weight counts as the weights it stands for. fc1 64→128, fc2 128→128, head 128→8, with
        // biases; the adapter on fc1 is 4·(64 + 128).
        const long weights = 64 * 128 + 128 + 128 * 128 + 128 + 128 * 8 + 8, adapter = 4 * (64 + 128);
        Assert.Equal(adapter, report.TrainableParameters);
        Assert.Equal(weights + adapter, report.AllParameters);
        Assert.Equal(new Mlp(2).ApplyLora(new AdapterConfig { Rank = 4, TargetModules = ["fc1"] }).ToString(), report.ToString());
        Assert.IsType<QuantizedLinear>(Module<nn.Module>(model, "fc2"));
        Assert.IsType<QuantizedLinear>(Module<nn.Module>(model, "head"));
        Assert.Contains("head.codes", model.state_dict().Keys);
        Assert.Equal(QuantizationKind.Nf4DoubleQuantized, Module<QuantizedLinear>(model, "head").Kind);
        Assert.Equal(2, model.parameters().Count());   // only fc1's A and B

        // A second adapter on a quantized layer wraps it as it is.
        model.AddAdapter("other", new AdapterConfig { Rank = 4, TargetModules = ["fc2"] });
        Assert.NotNull(Module<LoraLinear>(model, "fc2").QuantizedBase);
        _ = model.call(randn(2, 64));
    }

    [Fact]
    public void A_small_qlora_model_trains()
    {
        using var scope = NewDisposeScope();
        var model = new Mlp(4);
        model.ApplyLora(Targets, Quantized(QuantizationKind.Nf4, frozen: true));
        var generator = new Generator(9);
        var x = randn(32, 64, generator: generator);
        var target = randn(32, 8, generator: generator);
        var optimizer = optim.AdamW(model.LoraParameters(), lr: 1e-2);
        var losses = new List<float>();
        for (int step = 0; step < 8; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.mse_loss(model.call(x), target);
            loss.backward();
            optimizer.step();
            losses.Add(loss.item<float>());
        }
        Assert.True(losses[^1] < 0.8 * losses[0], $"loss {losses[0]} -> {losses[^1]}");
    }

    [Fact]
    public void An_adapter_trained_on_a_quantized_base_is_a_plain_peft_adapter()
    {
        using var scope = NewDisposeScope();
        var dir = ScratchDirectories.New();
        var (qlora, reference) = Pair(QuantizationKind.Nf4);
        qlora.SaveAdapter(Path.Combine(dir, "q"));
        reference.SaveAdapter(Path.Combine(dir, "f"));
        using (var q = SafetensorsReader.Open(Path.Combine(dir, "q", AdapterFileExtensions.WeightsFileName)))
        using (var f = SafetensorsReader.Open(Path.Combine(dir, "f", AdapterFileExtensions.WeightsFileName)))
        {
            Assert.Equal(f.Tensors.Select(t => t.Name).Order(), q.Tensors.Select(t => t.Name).Order());
            Assert.DoesNotContain(q.Tensors, t => t.Name.Contains("codes", StringComparison.Ordinal) || t.Name.Contains("absmax", StringComparison.Ordinal));
        }
        Assert.Equal(File.ReadAllText(Path.Combine(dir, "f", AdapterConfig.FileName)), File.ReadAllText(Path.Combine(dir, "q", AdapterConfig.FileName)));

        // Onto a float base whose weights are the dequantized ones: the same outputs.
        var floatModel = new Mlp(3);
        using (no_grad())
            foreach (var path in new[] { "fc1", "fc2" })
                Module<Linear>(floatModel, path).weight!.copy_(Module<LoraLinear>(qlora, path).QuantizedBase!.Dequantize());
        floatModel.LoadAdapter(Path.Combine(dir, "q"));
        var x = randn(4, 64);
        Closeness.AssertClose(floatModel.call(x), qlora.call(x), 1e-5);

        // The base of a quantized model is not a Hugging Face checkpoint: refused, with the way out.
        var error = Assert.Throws<InvalidOperationException>(() => qlora.SavePretrained(Path.Combine(dir, "base")));
        Assert.Contains("QuantizedLinear", error.Message);
    }

    [Theory]
    [InlineData(QuantizationKind.Nf4)]
    [InlineData(QuantizationKind.Int8)]
    public void LoadPretrained_with_Quantize_equals_quantizing_after_the_load(QuantizationKind kind)
    {
        using var scope = NewDisposeScope();
        var dir = ScratchDirectories.New();
        new Mlp(6).SavePretrained(dir);

        var loaded = new Mlp(0);
        loaded.LoadPretrained(dir, new PretrainedLoadOptions { Quantize = kind, KeepInFloat = ["head"] });
        Assert.IsType<QuantizedLinear>(Module<nn.Module>(loaded, "fc1"));
        Assert.IsType<QuantizedLinear>(Module<nn.Module>(loaded, "fc2"));
        Assert.IsType<Linear>(Module<nn.Module>(loaded, "head"));

        var reference = new Mlp(0);
        reference.LoadPretrained(dir);
        foreach (var path in new[] { "fc1", "fc2" })
            using (var expected = QuantizedLinear.FromLinear(Module<Linear>(reference, path), kind))
            {
                var actual = Module<QuantizedLinear>(loaded, path);
                var expectedBuffers = expected.named_buffers().ToDictionary(e => e.name, e => e.buffer);
                foreach (var (name, buffer) in actual.named_buffers())
                    Closeness.AssertBitIdentical(buffer, expectedBuffers[name]);
            }
        Closeness.AssertBitIdentical(Module<Linear>(loaded, "head").weight!, Module<Linear>(reference, "head").weight!);

        // Then LoRA over it (the QuantizedLinear is wrapped as it is), and a load without Quantize is refused.
        loaded.ApplyLora(Targets);
        Assert.NotNull(Module<LoraLinear>(loaded, "fc1").QuantizedBase);
        var error = Assert.Throws<InvalidOperationException>(() => new Mlp(0).ApplyLoraThen(m => m.LoadPretrained(dir), Quantized()));
        Assert.Contains("QuantizedLinear", error.Message);
    }
}

internal static class QloraTestExtensions
{
    public static void ApplyLoraThen(this nn.Module model, Action<nn.Module> then, LoraOptions options)
    {
        model.ApplyLora(new AdapterConfig { Rank = 4, TargetModules = ["fc1"] }, options with { QuantizeFrozenLinears = true });
        then(model);
    }
}
