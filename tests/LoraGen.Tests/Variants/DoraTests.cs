using System.Runtime.InteropServices;
using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Variants;

/// <summary>DoRA (PEFT's use_dora): forward against the closed form m·(W + sBA)/‖W + sBA‖ written here in float64,
/// the magnitude's initial value, exact unmerge, PEFT's file layout both ways, and the refusals.</summary>
public sealed class DoraTests
{
    private static readonly LoraConfig Dora = new() { Rank = 2, Alpha = 4, UseDora = true };

    private static void Randomize(LoraLayer layer)
    {
        using var noGrad = no_grad();
        foreach (var (name, parameter) in layer.NamedAdapterParameters)
        {
            if (name.StartsWith(PeftLayout.MagnitudeVector, StringComparison.Ordinal))
                parameter.uniform_(0.5, 2.0);
            else
                parameter.normal_(0, 0.4);
        }
    }

    // m / ‖W + sBA‖ · (W + sBA), the norm per output row of W laid out [out, in·k].
    private static Tensor DoraWeight(Tensor w, Tensor a, Tensor b, Tensor m, double s)
    {
        var rows = w.reshape(w.shape[0], -1) + s * b.reshape(b.shape[0], -1).matmul(a.reshape(a.shape[0], -1));
        var norm = rows.pow(2).sum(dim: 1).sqrt();
        return (m.reshape(-1, 1) / norm.reshape(-1, 1) * rows).reshape(w.shape);
    }

    [Fact]
    public void Linear_forward_equals_the_closed_form_and_the_magnitude_starts_at_the_row_norms()
    {
        manual_seed(1);
        var layer = new LoraLinear(nn.Linear(6, 5, dtype: ScalarType.Float64), Dora);
        var w = ((Linear)layer.BaseLayer).weight!;
        // B = 0 at creation: m = ‖W‖ per output row (PEFT's get_weight_norm).
        Closeness.AssertClose(layer.Magnitude("default"), w.pow(2).sum(dim: 1).sqrt(), 1e-12);
        Assert.Equal(["base_layer.weight", "base_layer.bias", "lora_A.default.weight", "lora_B.default.weight", "lora_magnitude_vector.default.weight"],
            layer.named_parameters().Select(p => p.name));
        Randomize(layer);
        var x = randn(3, 4, 6, dtype: ScalarType.Float64);
        var expected = x.matmul(DoraWeight(w, Adapters.Adapter(layer, "lora_A.weight"), Adapters.Adapter(layer, "lora_B.weight"), layer.Magnitude("default"), 2).t())
            + ((Linear)layer.BaseLayer).bias!;
        layer.eval();
        Closeness.AssertClose(layer.call(x), expected, 1e-12);
        layer.train();
        Closeness.AssertClose(layer.call(x), expected, 1e-12);
    }

    [Fact]
    public void The_weight_norm_is_detached_as_in_PEFT()
    {
        manual_seed(2);
        var layer = new LoraLinear(nn.Linear(8, 6, dtype: ScalarType.Float64), Dora);
        Randomize(layer);
        var x = randn(5, 8, dtype: ScalarType.Float64);
        layer.call(x).sum().backward();
        var (a, b) = (Adapters.Adapter(layer, "lora_A.weight"), Adapters.Adapter(layer, "lora_B.weight"));
        var w = ((Linear)layer.BaseLayer).weight!;
        // Gradient of Σ y with the norm a constant: y = f ⊙ (W + sBA)x, f = m / ‖W + sBA‖.
        var norm = (w + 2 * b.matmul(a)).detach().pow(2).sum(dim: 1).sqrt();
        var factor = layer.Magnitude("default").detach() / norm;
        var upstream = ones(5, 6, dtype: ScalarType.Float64) * factor;       // dL/d(sBAx) per sample
        var expectedB = 2 * upstream.t().matmul(x.matmul(a.detach().t()));
        Closeness.AssertClose(b.grad!, expectedB, 1e-10);
        var expectedM = (x.matmul((w + 2 * b.matmul(a)).detach().t()) / norm).sum(dim: 0);
        Closeness.AssertClose(layer.Magnitude("default").grad!, expectedM, 1e-10);
    }

    [Fact]
    public void Embedding_forward_equals_the_closed_form()
    {
        manual_seed(3);
        var layer = new LoraEmbedding(nn.Embedding(10, 4, dtype: ScalarType.Float64), Dora);
        var w = ((Embedding)layer.BaseLayer).weight!;
        // PEFT reads the embedding transposed: one magnitude per dimension, the norm over the vocabulary.
        Closeness.AssertClose(layer.Magnitude("default"), w.pow(2).sum(dim: 0).sqrt(), 1e-12);
        Randomize(layer);
        var (a, b) = (Adapters.Adapter(layer, "lora_embedding_A"), Adapters.Adapter(layer, "lora_embedding_B"));
        // Wᵀ [dim, num] plays the Linear weight; ΔW = B·A [dim, num].
        var effective = DoraWeight(w.t(), a, b, layer.Magnitude("default"), 2).t();
        var x = tensor(new long[] { 1, 7, 3, 3, 9, 0 }).reshape(2, 3);
        Closeness.AssertClose(layer.call(x), effective.index_select(0, x.flatten()).reshape(2, 3, 4), 1e-12);
    }

    [Fact]
    public void Convolution_forwards_equal_the_closed_form()
    {
        manual_seed(4);
        var conv2d = new LoraConv2d(nn.Conv2d(3, 5, 3, padding: 1, dtype: ScalarType.Float64), Dora);
        Assert.Equal([1L, 5, 1, 1], conv2d.Magnitude("default").shape);
        Randomize(conv2d);
        var base2d = (Conv2d)conv2d.BaseLayer;
        var w2 = DoraWeight(base2d.weight!, Adapters.Adapter(conv2d, "lora_A.weight"), Adapters.Adapter(conv2d, "lora_B.weight"), conv2d.Magnitude("default"), 2);
        var x2 = randn(2, 3, 6, 6, dtype: ScalarType.Float64);
        Closeness.AssertClose(conv2d.call(x2), nn.functional.conv2d(x2, w2, base2d.bias, padding: [1, 1]), 1e-12);

        var conv1d = new LoraConv1d(nn.Conv1d(3, 4, 3, dtype: ScalarType.Float64), Dora);
        Assert.Equal([1L, 4, 1], conv1d.Magnitude("default").shape);
        Randomize(conv1d);
        var base1d = (Conv1d)conv1d.BaseLayer;
        var w1 = DoraWeight(base1d.weight!, Adapters.Adapter(conv1d, "lora_A.weight"), Adapters.Adapter(conv1d, "lora_B.weight"), conv1d.Magnitude("default"), 2);
        var x1 = randn(2, 3, 7, dtype: ScalarType.Float64);
        Closeness.AssertClose(conv1d.call(x1), nn.functional.conv1d(x1, w1, base1d.bias), 1e-12);
    }

    [Fact]
    public void Merge_gives_the_DoRA_weight_and_unmerge_restores_the_original_bit_for_bit_over_1000_cycles_in_bf16()
    {
        manual_seed(5);
        var layer = new LoraLinear(nn.Linear(32, 24, dtype: ScalarType.BFloat16), Dora);
        Randomize(layer);
        layer.eval();
        var weight = ((Linear)layer.BaseLayer).weight!;
        var original = weight.detach().clone();
        var x = randn(4, 32).to(ScalarType.BFloat16);
        var unmerged = layer.call(x).to(ScalarType.Float32);
        var expected = DoraWeight(original.to(ScalarType.Float32), Adapters.Adapter(layer, "lora_A.weight"), Adapters.Adapter(layer, "lora_B.weight"),
            layer.Magnitude("default").detach(), 2);
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(layer.Merge());
            if (i == 0)
            {
                Closeness.AssertClose(weight.to(ScalarType.Float32), expected, 1e-2);
                Closeness.AssertClose(layer.call(x).to(ScalarType.Float32), unmerged, 3e-2);
            }
            Assert.True(layer.Unmerge());
        }
        Closeness.AssertBitIdentical(weight, original);
    }

    [Fact]
    public void A_hand_assembled_PEFT_DoRA_adapter_loads_and_gives_its_outputs()
    {
        // PEFT's layout: keys without the adapter name, the magnitude a bare tensor "lora_magnitude_vector".
        var dir = ScratchDirectories.New();
        File.WriteAllText(Path.Combine(dir, AdapterConfig.FileName), """
            {"peft_type": "LORA", "r": 2, "lora_alpha": 3, "target_modules": ["0"], "use_dora": true,
             "init_lora_weights": true, "bias": "none", "fan_in_fan_out": false, "lora_dropout": 0.0}
            """);
        float[] a = [0.5f, -1, 0.25f, 2, 1, 0.5f, -0.5f, 1.5f, -2, 0.75f, 0, 1];          // [2, 6]
        float[] b = [1, 0, 0.5f, -1, -0.25f, 2, 1, 1];                                        // [4, 2]
        float[] m = [1.5f, 0.25f, 3, 0.8f];                                                   // [4]
        static SafetensorsTensor Entry(string key, float[] values, long[] shape) =>
            new(key, SafetensorsDType.F32, shape, () => MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        SafetensorsWriter.WriteFile(Path.Combine(dir, AdapterFileExtensions.WeightsFileName),
        [
            Entry("base_model.model.0.lora_A.weight", a, [2, 6]),
            Entry("base_model.model.0.lora_B.weight", b, [4, 2]),
            Entry("base_model.model.0.lora_magnitude_vector", m, [4]),
        ]);

        manual_seed(6);
        var model = nn.Sequential(nn.Linear(6, 4));
        var plain = (Linear)model[0];
        var w = plain.weight!.detach().to(ScalarType.Float64);
        var bias = plain.bias!.detach().to(ScalarType.Float64);
        model.LoadAdapter(dir);
        var layer = Assert.IsAssignableFrom<LoraLayer>(model[0]);
        Assert.True(layer.ConfigOf("default").UseDora);

        // The fixture's outputs: PEFT's math on the fixture's numbers, s = 3/2.
        var expectedWeight = DoraWeight(w, tensor(a, ScalarType.Float64).reshape(2, 6), tensor(b, ScalarType.Float64).reshape(4, 2), tensor(m, ScalarType.Float64), 1.5);
        var x = randn(3, 6);
        Closeness.AssertClose(model.call(x).to(ScalarType.Float64), x.to(ScalarType.Float64).matmul(expectedWeight.t()) + bias, 1e-5);

        // Saved again, the same keys come back.
        var again = Path.Combine(dir, "again");
        model.SaveAdapter(again);
        using var reader = SafetensorsReader.Open(Path.Combine(again, AdapterFileExtensions.WeightsFileName));
        Assert.Equal(["base_model.model.0.lora_A.weight", "base_model.model.0.lora_B.weight", "base_model.model.0.lora_magnitude_vector"],
            reader.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.True(AdapterConfig.Read(Path.Combine(again, AdapterConfig.FileName)).UseDora);
    }

    [Fact]
    public void A_magnitude_without_use_dora_is_refused()
    {
        var dir = ScratchDirectories.New();
        File.WriteAllText(Path.Combine(dir, AdapterConfig.FileName), """{"peft_type": "LORA", "r": 1, "lora_alpha": 1, "target_modules": ["0"]}""");
        float[] one = [1, 1];
        SafetensorsWriter.WriteFile(Path.Combine(dir, AdapterFileExtensions.WeightsFileName),
        [
            new("base_model.model.0.lora_A.weight", SafetensorsDType.F32, [1, 2], () => MemoryMarshal.AsBytes(one.AsSpan()).ToArray()),
            new("base_model.model.0.lora_B.weight", SafetensorsDType.F32, [2, 1], () => MemoryMarshal.AsBytes(one.AsSpan()).ToArray()),
            new("base_model.model.0.lora_magnitude_vector", SafetensorsDType.F32, [2], () => MemoryMarshal.AsBytes(one.AsSpan()).ToArray()),
        ]);
        var model = nn.Sequential(nn.Linear(2, 2));
        var error = Assert.Throws<LoraFileException>(() => model.LoadAdapter(dir));
        Assert.Contains("does not say use_dora", error.Message, StringComparison.Ordinal);
        Assert.IsType<Linear>(model[0]);
    }

    [Fact]
    public void Per_sample_adapters_refuse_DoRA()
    {
        var model = nn.Sequential(nn.Linear(4, 3));
        model.ApplyLora(new AdapterConfig { Rank = 1, Alpha = 1, UseDora = true, TargetModules = ["0"] });
        model.eval();
        using var perSample = model.AdapterPerSample(["default", LoraLayer.BaseOnly]);
        var error = Assert.Throws<InvalidOperationException>(() => model.call(randn(2, 4)));
        Assert.Contains("DoRA", error.Message, StringComparison.Ordinal);
    }
}
