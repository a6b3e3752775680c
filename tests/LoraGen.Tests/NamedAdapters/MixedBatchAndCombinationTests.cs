using LoraGen.Files;
using LoraGen.Tests.Files;
using LoraGen.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.NamedAdapters;

/// <summary>Per-sample adapters in one batch, weighted combinations (PEFT's add_weighted_adapter, against closed
/// forms), and PEFT's multi-adapter directory written by hand.</summary>
public sealed class MixedBatchAndCombinationTests
{
    private static readonly AdapterConfig Config = new() { Rank = 2, Alpha = 4, TargetModules = ["0", "2"] };

    /// <summary>Linear 12→16, ReLU, Linear 16→10 (and an Embedding-free twin of it) with adapters "a" (r 2, s 2),
    /// "b" (r 3, s 1) and "c" (r 2, s 0.5), all random.</summary>
    private static Sequential ThreeAdapters()
    {
        manual_seed(11);
        var model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10));
        model.AddAdapter("a", Config);
        model.AddAdapter("b", Config with { Rank = 3, Alpha = 3 });
        model.AddAdapter("c", Config with { Alpha = 1 });
        using (no_grad())
            foreach (var (_, layer) in model.LoraLayers())
                foreach (var adapter in layer.AdapterNames)
                    foreach (var (_, parameter) in layer.NamedParametersOf(adapter))
                        parameter.normal_(0, 0.3);
        model.eval();
        return model;
    }

    [Fact]
    public void Each_sample_of_a_mixed_batch_gets_exactly_what_its_adapter_alone_gives()
    {
        var model = ThreeAdapters();
        string[] perSample = ["a", "b", LoraLayer.BaseOnly, "a", "c", "b"];
        using var x = randn(perSample.Length, 12);
        using var mixed = Forward(model, x, perSample);

        foreach (var adapter in perSample.Distinct())
        {
            var rows = perSample.Select((name, i) => (name, i)).Where(e => e.name == adapter).Select(e => (long)e.i).ToArray();
            using var index = tensor(rows);
            using var input = x.index_select(0, index);
            // The same samples run as a batch of their own with only that adapter (or none). The adapter's own part
            // runs on exactly these rows in both; the base layers run on the whole batch in one and on these rows in
            // the other, and the CPU's matrix kernels may round a row differently with another number of rows: so
            // float tolerance (measured: ≤ 1 ulp-level, relative 1e-7), not bits.
            using var alone = adapter == LoraLayer.BaseOnly ? Base(model, input) : Only(model, adapter, input);
            using var picked = mixed.index_select(0, index);
            Closeness.AssertClose(picked, alone, 1e-6);
            using var single = adapter == LoraLayer.BaseOnly ? Base(model, input.narrow(0, 0, 1)) : Only(model, adapter, input.narrow(0, 0, 1));
            Closeness.AssertClose(picked.narrow(0, 0, 1), single, 1e-6);
        }
    }

    [Fact]
    public void Per_sample_adapters_are_refused_in_training_while_merged_and_for_unknown_names()
    {
        var model = ThreeAdapters();
        using var x = randn(2, 12);
        model.train();
        var training = Assert.Throws<InvalidOperationException>(() => Forward(model, x, ["a", "b"]));
        Assert.Contains("for inference: call eval() first", training.Message);
        model.eval();
        model.Merge(["a"]);
        var merged = Assert.Throws<InvalidOperationException>(() => Forward(model, x, ["a", "b"]));
        Assert.Contains("'a' is merged", merged.Message);
        model.Unmerge();
        Assert.Contains("has no adapter 'zz'", Assert.Throws<ArgumentException>(() => model.AdapterPerSample(["a", "zz"])).Message);
        var count = Assert.Throws<ArgumentException>(() => Forward(model, x, ["a", "b", "c"]));
        Assert.Contains("name 3 samples", count.Message);
    }

    [Fact]
    public void Cat_combines_into_the_exact_weighted_sum_of_the_updates()
    {
        var model = ThreeAdapters();
        model.AddWeightedAdapter(["a", "b"], [0.5, -2.0], "ab", AdapterCombination.Cat);
        foreach (var (_, layer) in model.LoraLayers())
        {
            var config = layer.ConfigOf("ab");
            Assert.Equal((5, 5.0, 1.0), (config.Rank, config.EffectiveAlpha, config.Scaling)); // r = 2 + 3, alpha = r
            using var expected = 0.5 * Update(layer, "a") + -2.0 * Update(layer, "b"); // Σ wᵢ·sᵢ·Bᵢ·Aᵢ
            Closeness.AssertClose(Update(layer, "ab"), expected, 1e-6);
        }
        Assert.Equal(["a"], model.LayerStatus()[0].ActiveAdapters); // the new adapter is not active
    }

    [Fact]
    public void Svd_gives_the_best_rank_k_approximation_of_PEFTs_weighted_update()
    {
        var model = ThreeAdapters();
        model.AddWeightedAdapter(["a", "b", "c"], [1.0, 0.5, 3.0], "svd", AdapterCombination.Svd, svdRank: 2);
        foreach (var (_, layer) in model.LoraLayers())
        {
            // PEFT's target: Σ wᵢ·sᵢ·ΔWᵢ with ΔWᵢ = sᵢ·Bᵢ·Aᵢ (the scaling enters twice).
            double sa = 2, sb = 1, sc = 0.5;
            using var target = 1.0 * sa * sa * Update(layer, "a", scaled: false) + 0.5 * sb * sb * Update(layer, "b", scaled: false)
                + 3.0 * sc * sc * Update(layer, "c", scaled: false);
            using var approx = Update(layer, "svd");
            // Eckart–Young: the error of the best rank-2 approximation is the norm of the other singular values.
            var singular = linalg.svdvals(target).data<double>().ToArray();
            double best = Math.Sqrt(singular.Skip(2).Sum(v => v * v));
            double error = linalg.norm(target - approx).item<double>();
            Assert.Equal(best, error, 5);
            Assert.Equal(2, layer.ConfigOf("svd").Rank);
        }
    }

    [Fact]
    public void Linear_combines_the_factors_with_square_roots_of_the_weights_as_PEFT_does()
    {
        var model = ThreeAdapters();
        model.AddWeightedAdapter(["a", "c"], [1.5, -0.5], "lin", AdapterCombination.Linear);
        foreach (var (_, layer) in model.LoraLayers())
        {
            var (aA, aB) = Factors(layer, "a");
            var (cA, cB) = Factors(layer, "c");
            double wa = 1.5 * 2, wc = -0.5 * 0.5; // weight · scaling
            using var expectedA = Math.Sqrt(wa) * aA - Math.Sqrt(-wc) * cA;
            using var expectedB = Math.Sqrt(wa) * aB + Math.Sqrt(-wc) * cB;
            var (linA, linB) = Factors(layer, "lin");
            Closeness.AssertClose(linA, expectedA, 1e-6);
            Closeness.AssertClose(linB, expectedB, 1e-6);
        }
        Assert.Contains("ranks 2, 3", Assert.Throws<ArgumentException>(() =>
            model.AddWeightedAdapter(["a", "b"], [1, 1], "bad", AdapterCombination.Linear)).Message);
    }

    [Fact]
    public void A_PEFT_multi_adapter_directory_written_by_hand_loads_each_adapter_by_name()
    {
        // save_pretrained of a PeftModel with adapters "default" and "fr": default at the top, fr in fr/.
        var directory = ScratchDirectories.NewPath();
        WriteAdapter(directory, rank: 1, alpha: 2, a: [1, 0, 0], b: [1, 1]);
        WriteAdapter(Path.Combine(directory, "fr"), rank: 1, alpha: 1, a: [0, 1, 0], b: [2, -1]);
        var model = nn.Sequential(nn.Linear(3, 2));
        using (no_grad())
        {
            ((Linear)model[0]).weight!.zero_();
            ((Linear)model[0]).bias!.zero_();
        }
        model.LoadAdapter(directory);
        model.LoadAdapter(directory, "fr");
        using var x = tensor(new float[] { 3, 5, 7 }).view(1, 3);
        // default: 2·[1, 1]·(A·x = 3) = [6, 6]; fr: 1·[2, −1]·(A·x = 5) = [10, −5].
        using (var y = model.call(x))
            Assert.Equal([6f, 6f], y.data<float>().ToArray());
        model.SetActiveAdapters("fr");
        using (var y = model.call(x))
            Assert.Equal([10f, -5f], y.data<float>().ToArray());
        model.SetActiveAdapters("default", "fr");
        using (var y = model.call(x))
            Assert.Equal([16f, 1f], y.data<float>().ToArray());
    }

    private static void WriteAdapter(string directory, int rank, double alpha, float[] a, float[] b)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, AdapterConfig.FileName),
            $$"""{"peft_type": "LORA", "r": {{rank}}, "lora_alpha": {{alpha}}, "target_modules": ["0"], "bias": "none", "task_type": null}""");
        File.WriteAllBytes(Path.Combine(directory, AdapterDirectory.WeightsFileName), HandWrittenSafetensors.Assemble(
            """{"__metadata__":{"format":"pt"},"base_model.model.0.lora_A.weight":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]},"base_model.model.0.lora_B.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[12,20]}}""",
            HandWrittenSafetensors.Concat(HandWrittenSafetensors.F32(a), HandWrittenSafetensors.F32(b))));
    }

    private static Tensor Forward(nn.Module<Tensor, Tensor> model, Tensor x, string[] perSample)
    {
        using (model.AdapterPerSample(perSample))
            return model.call(x);
    }

    private static Tensor Only(Sequential model, string adapter, Tensor x)
    {
        model.SetActiveAdapters(adapter);
        try
        {
            return model.call(x);
        }
        finally
        {
            model.SetActiveAdapters("a");
        }
    }

    private static Tensor Base(Sequential model, Tensor x)
    {
        using (model.DisableAdapters())
            return model.call(x);
    }

    private static (Tensor A, Tensor B) Factors(LoraLayer layer, string adapter)
    {
        var parameters = layer.AdapterParametersOf(adapter).ToList();
        return (parameters[0].Parameter.to(ScalarType.Float64), parameters[1].Parameter.to(ScalarType.Float64));
    }

    // s·B·A (or B·A), in float64.
    private static Tensor Update(LoraLayer layer, string adapter, bool scaled = true)
    {
        var (a, b) = Factors(layer, adapter);
        var product = b.matmul(a);
        return scaled ? product * layer.ConfigOf(adapter).Scaling : product;
    }
}
