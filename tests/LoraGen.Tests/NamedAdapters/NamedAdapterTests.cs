using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.NamedAdapters;

/// <summary>Many adapters on one base, by name: creation, activation, training, merging, deletion, status — each
/// against a closed form computed here from the weights, and PEFT's documented traps.</summary>
public sealed class NamedAdapterTests
{
    private static readonly AdapterConfig Both = new() { Rank = 2, Alpha = 4, TargetModules = ["0", "2"] };

    /// <summary>Linear 12→16, ReLU, Linear 16→10 with adapter "default" (rank 2, scaling 2) and "b" (rank 3, alpha 3, scaling 1)
    /// on both Linears, every adapter matrix random.</summary>
    private static Sequential TwoAdapters()
    {
        manual_seed(7);
        var model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10));
        model.ApplyLora(Both);
        model.AddAdapter("b", Both with { Rank = 3, Alpha = 3 });
        using (no_grad())
            foreach (var (_, layer) in model.LoraLayers())
                foreach (var adapter in layer.AdapterNames)
                    foreach (var (_, parameter) in layer.NamedParametersOf(adapter))
                        parameter.normal_(0, 0.3);
        return model;
    }

    // y = W₂·relu(W₁x + b₁ + Σ sₐBₐAₐx) + b₂ + Σ sₐBₐAₐ·h, in float64, over the named adapters.
    private static Tensor ClosedForm(Sequential model, Tensor x, params string[] adapters)
    {
        using var scope = NewDisposeScope();
        var h = x.to(ScalarType.Float64);
        foreach (var (path, layer) in model.LoraLayers())
        {
            var plain = (Linear)layer.BaseLayer;
            var weight = plain.weight!.to(ScalarType.Float64);
            foreach (var adapter in adapters)
            {
                var (a, b) = Factors(layer, adapter);
                weight = weight + layer.ConfigOf(adapter).Scaling * b.matmul(a);
            }
            h = h.matmul(weight.t()) + plain.bias!.to(ScalarType.Float64);
            if (path == "0")
                h = h.relu();
        }
        return h.MoveToOuterDisposeScope();
    }

    private static (Tensor A, Tensor B) Factors(LoraLayer layer, string adapter)
    {
        var parameters = layer.AdapterParametersOf(adapter).ToList();
        return (parameters[0].Parameter.to(ScalarType.Float64), parameters[1].Parameter.to(ScalarType.Float64));
    }

    [Fact]
    public void Adapters_have_PEFTs_in_memory_paths_and_only_active_ones_train()
    {
        var model = TwoAdapters();
        Assert.Equal(
            ["0.base_layer.weight", "0.base_layer.bias", "0.lora_A.default.weight", "0.lora_A.b.weight", "0.lora_B.default.weight", "0.lora_B.b.weight",
             "2.base_layer.weight", "2.base_layer.bias", "2.lora_A.default.weight", "2.lora_A.b.weight", "2.lora_B.default.weight", "2.lora_B.b.weight"],
            model.named_parameters().Select(p => p.name));
        // A new adapter is inactive: "default" stays the one that trains.
        Assert.Equal(["0.lora_A.default.weight", "0.lora_B.default.weight", "2.lora_A.default.weight", "2.lora_B.default.weight"],
            model.NamedLoraParameters().Select(p => p.Path));
        Assert.All(model.named_parameters(), p => Assert.Equal(p.name.Contains(".default.", StringComparison.Ordinal), p.parameter.requires_grad));

        model.SetActiveAdapters("b");
        Assert.All(model.named_parameters(), p => Assert.Equal(p.name.Contains(".b.", StringComparison.Ordinal), p.parameter.requires_grad));
        Assert.Equal(4, model.LoraParameters(["default", "b"]).Count / 2);
        Assert.Equal(["0.lora_A.b.weight", "0.lora_B.b.weight", "2.lora_A.b.weight", "2.lora_B.b.weight"],
            model.NamedLoraParameters().Select(p => p.Path));
    }

    [Theory]
    [InlineData("default")]
    [InlineData("b")]
    [InlineData("default,b")]
    [InlineData("b,default")]
    public void Forward_adds_exactly_the_active_adapters(string names)
    {
        var active = names.Split(',');
        var model = TwoAdapters();
        model.SetActiveAdapters(active);
        using var x = randn(5, 12);
        using var y = model.call(x);
        using var expected = ClosedForm(model, x, active);
        Closeness.AssertClose(y, expected, 1e-5);
    }

    [Fact]
    public void Merging_one_adapter_leaves_the_other_active_one_in_forward_and_unmerging_is_exact()
    {
        // PEFT's trap (peft#3756): merging a subset must not silently disable the other active adapters.
        var model = TwoAdapters();
        model.SetActiveAdapters("default", "b");
        var original = model.LoraLayers().Select(e => ((Linear)e.Layer.BaseLayer).weight!.detach().clone()).ToList();
        using var x = randn(5, 12);
        using var before = model.call(x);

        model.eval();
        Assert.Equal(2, model.Merge(["default"]));
        using (var merged = model.call(x))
            Closeness.AssertClose(merged, before, 1e-5);
        Assert.All(model.LoraLayers(), e => Assert.Equal(["default"], e.Layer.MergedAdapters));

        Assert.Equal(2, model.Merge(["b"]));
        using (var both = model.call(x))
            Closeness.AssertClose(both, before, 1e-5);

        // Take "default" out: the weight is the original plus b's update, recomputed; then b: the original, bit for bit.
        model.Unmerge(["default"]);
        using (var onlyB = model.call(x))
            Closeness.AssertClose(onlyB, before, 1e-5);
        model.Unmerge(["b"]);
        foreach (var ((_, layer), weight) in model.LoraLayers().Zip(original))
            Closeness.AssertBitIdentical(((Linear)layer.BaseLayer).weight!, weight);
    }

    [Fact]
    public void Many_merge_unmerge_cycles_of_several_adapters_drift_by_nothing()
    {
        var model = TwoAdapters();
        var original = ((Linear)model.LoraLayers().First().Layer.BaseLayer).weight!.detach().clone();
        for (int i = 0; i < 200; i++)
        {
            model.Merge(["default", "b"]);
            model.Unmerge(["b"]);
            model.Unmerge();
        }
        Closeness.AssertBitIdentical(((Linear)model.LoraLayers().First().Layer.BaseLayer).weight!, original);
    }

    [Fact]
    public void Deleting_a_merged_adapter_is_refused_and_deleting_the_last_one_puts_the_plain_layer_back()
    {
        var model = TwoAdapters();
        model.Merge(["b"]);
        var error = Assert.Throws<InvalidOperationException>(() => model.DeleteAdapter("b"));
        Assert.Contains("it is merged into 0, 2", error.Message);
        Assert.All(model.LoraLayers(), e => Assert.Equal(["default", "b"], e.Layer.AdapterNames));

        model.Unmerge();
        model.DeleteAdapter("b");
        Assert.DoesNotContain(model.named_parameters(), p => p.name.Contains(".b.", StringComparison.Ordinal));
        model.DeleteAdapter("default");
        Assert.Empty(model.LoraLayers());
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias"], model.named_parameters().Select(p => p.name));
        Assert.Throws<ArgumentException>(() => model.DeleteAdapter("default"));
    }

    [Fact]
    public void A_module_trained_in_full_belongs_to_one_adapter()
    {
        var model = new Mlp(16, 32, 3);
        model.ApplyLora(); // "default" trains the norms in full (Trainable = ["norm"])
        var error = Assert.Throws<InvalidOperationException>(() => model.AddAdapter("second"));
        Assert.Contains("already trained in full for adapter 'default'", error.Message);
        Assert.All(model.LoraLayers(), e => Assert.Equal(["default"], e.Layer.AdapterNames)); // nothing changed

        // Without modules to save, a second adapter is fine, and the norms train only while "default" is active.
        model.AddAdapter("second", new AdapterConfig { Rank = 2, TargetModules = ["up"] });
        model.SetActiveAdapters("second");
        Assert.DoesNotContain(model.NamedLoraParameters(), p => p.Path.Contains("norm", StringComparison.Ordinal));
        model.SetActiveAdapters("default");
        Assert.Contains(model.NamedLoraParameters(), p => p.Path.Contains("norm", StringComparison.Ordinal));
    }

    [Fact]
    public void Status_reports_each_layer_and_the_model_as_PEFT_does()
    {
        var model = TwoAdapters();
        model.Merge(["b"]);
        var layer = model.LayerStatus()[0];
        Assert.Equal(("0", "LoraLinear", true), (layer.Path, layer.ModuleType, layer.Enabled));
        Assert.Equal(["default"], layer.ActiveAdapters);
        Assert.Equal(["b"], layer.MergedAdapters);
        Assert.Equal(["default", "b"], layer.AvailableAdapters);
        Assert.Equal(new Dictionary<string, bool> { ["default"] = true, ["b"] = false }, layer.RequiresGrad);
        Assert.Equal(["cpu"], layer.Devices["b"]);

        var status = model.ModelStatus();
        Assert.Equal((2, true, true), (status.AdapterLayers, status.Enabled, status.ActiveAreRegular));
        Assert.Equal(["default"], status.ActiveAdapters);
        Assert.Equal(["b"], status.MergedAdapters);
        Assert.Equal(2 * (12 + 16) + 2 * (16 + 10), status.TrainableParameters);
    }

    [Fact]
    public void Saving_writes_default_to_the_directory_and_others_to_sub_folders_and_both_reload()
    {
        var model = TwoAdapters();
        var directory = ScratchDirectories.New();
        model.SaveAdapter(directory);
        Assert.True(File.Exists(Path.Combine(directory, AdapterConfig.FileName)));
        Assert.True(File.Exists(Path.Combine(directory, "b", AdapterDirectory.WeightsFileName)));
        using (var reader = SafetensorsReader.Open(Path.Combine(directory, "b", AdapterDirectory.WeightsFileName)))
            Assert.Equal(["base_model.model.0.lora_A.weight", "base_model.model.0.lora_B.weight", "base_model.model.2.lora_A.weight", "base_model.model.2.lora_B.weight"],
                reader.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Equal(3, AdapterConfig.Read(Path.Combine(directory, "b", AdapterConfig.FileName)).Rank);

        var fresh = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 10));
        fresh.load_state_dict(model.state_dict().Where(e => !e.Key.Contains(".lora_", StringComparison.Ordinal))
            .ToDictionary(e => e.Key.Replace(".base_layer.", ".", StringComparison.Ordinal), e => e.Value));
        fresh.LoadAdapter(directory);
        fresh.LoadAdapter(directory, "b");
        Assert.Equal(["default", "b"], fresh.LayerStatus()[0].AvailableAdapters);
        Assert.Equal(["default"], fresh.LayerStatus()[0].ActiveAdapters); // loading does not activate
        using var x = randn(3, 12);
        foreach (var active in new[] { "default", "b" })
        {
            model.SetActiveAdapters(active);
            fresh.SetActiveAdapters(active);
            using var expected = model.call(x);
            using var actual = fresh.call(x);
            Assert.True(Closeness.BitIdentical(actual, expected), $"{active}: relative error {Closeness.RelativeError(actual, expected):G3}");
        }
    }

    [Fact]
    public void A_Hugging_Face_base_saved_from_a_model_with_several_adapters_holds_no_adapter_of_any_name()
    {
        var model = TwoAdapters(); // "b" is inactive
        var directory = ScratchDirectories.New();
        model.SavePretrained(directory);
        using var reader = SafetensorsReader.Open(Path.Combine(directory, "model.safetensors"));
        Assert.Equal(["0.bias", "0.weight", "2.bias", "2.weight"], reader.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
    }
}
