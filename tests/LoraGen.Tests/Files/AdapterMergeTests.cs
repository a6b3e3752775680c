using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

public sealed class AdapterMergeTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_offline_merge_equals_MergeAndUnload_for_every_layer_kind(bool baseSavedWithLoraApplied)
    {
        torch.manual_seed(50);
        var model = new EveryKind();
        var plain = ModelState.CopyWeights(model, new EveryKind());
        var directory = ScratchDirectories.New();
        var basePath = Path.Combine(directory, "base.safetensors");
        if (!baseSavedWithLoraApplied)
            model.SaveCheckpoint(basePath);
        model.ApplyLora();
        Adapters.RandomizeAll(model);
        if (baseSavedWithLoraApplied)
            model.SaveCheckpoint(basePath); // keys X.base_layer.weight and X.lora_A.weight
        model.SaveAdapter(Path.Combine(directory, "adapter"));

        var progress = new List<AdapterMergeProgress>();
        var result = AdapterMerge.Merge(basePath, Path.Combine(directory, "adapter"), Path.Combine(directory, "merged.safetensors"),
            progress: new SynchronousProgress(progress.Add));
        Assert.Equal(4, result.MergedWeights);
        Assert.Equal(2, result.ReplacedTensors); // norm.weight and norm.bias from modules_to_save
        Assert.Equal(baseSavedWithLoraApplied ? 8 : 0, result.DroppedTensors);
        Assert.Equal(progress.Count, progress[^1].Total);

        plain.LoadCheckpoint(Path.Combine(directory, "merged.safetensors"));
        model.MergeAndUnload();
        var expected = model.state_dict();
        foreach (var (name, actual) in plain.state_dict())
            Closeness.AssertClose(actual, expected[name], 1e-6);
    }

    [Fact]
    public void Named_adapters_merge_offline_with_weights_as_their_weighted_sum_in_memory()
    {
        torch.manual_seed(53);
        var model = new EveryKind();
        var plain = ModelState.CopyWeights(model, new EveryKind());
        var directory = ScratchDirectories.New();
        var basePath = Path.Combine(directory, "base.safetensors");
        model.SaveCheckpoint(basePath);
        model.ApplyLora();
        model.AddAdapter("second", new AdapterConfig { Rank = 2, Alpha = 6, TargetModules = ["embed", "conv1", "conv2", "proj"] });
        Adapters.RandomizeAll(model);
        var adapterDirectory = Path.Combine(directory, "adapter");
        model.SaveAdapter(adapterDirectory); // "default" in adapter/, "second" in adapter/second/

        var result = AdapterMerge.Merge(basePath,
            [(adapterDirectory, 0.5), (Path.Combine(adapterDirectory, "second"), -1.5)], Path.Combine(directory, "merged.safetensors"));
        Assert.Equal(4, result.MergedWeights);
        Assert.Equal(2, result.ReplacedTensors); // norm.weight and norm.bias, "default"'s modules_to_save

        // In memory: Cat combines them into B·A = Σ wᵢ·sᵢ·Bᵢ·Aᵢ exactly (scaling 1); merged alone, that is the offline sum.
        model.AddWeightedAdapter(["default", "second"], [0.5, -1.5], "mix", AdapterCombination.Cat);
        model.DeleteAdapter("default");
        model.DeleteAdapter("second");
        model.MergeAndUnload();
        plain.LoadCheckpoint(Path.Combine(directory, "merged.safetensors"));
        var expected = model.state_dict();
        foreach (var (name, actual) in plain.state_dict())
            Closeness.AssertClose(actual, expected[name], 1e-5);
    }

    [Fact]
    public void Half_precision_bases_merge_in_float32_and_round_once()
    {
        torch.manual_seed(51);
        var model = new EveryKind();
        model.to(ScalarType.BFloat16);
        var directory = ScratchDirectories.New();
        model.SaveCheckpoint(Path.Combine(directory, "base.safetensors"));
        var plain = ModelState.CopyWeights(model, new EveryKind().to(ScalarType.BFloat16));
        model.ApplyLora();
        Adapters.RandomizeAll(model);
        model.SaveAdapter(Path.Combine(directory, "adapter"));
        AdapterMerge.Merge(Path.Combine(directory, "base.safetensors"), Path.Combine(directory, "adapter"), Path.Combine(directory, "merged.safetensors"));
        plain.LoadCheckpoint(Path.Combine(directory, "merged.safetensors"));
        model.MergeAndUnload();
        var expected = model.state_dict();
        // Both add a float32 update to the bf16 weight and round once; the sums may differ in the last float32 bit.
        foreach (var (name, actual) in plain.state_dict())
            Closeness.AssertClose(actual, expected[name], 8e-3);
    }

    [Fact]
    public void Missing_and_mismatched_base_keys_and_non_finite_results_are_refused_without_writing()
    {
        torch.manual_seed(52);
        var model = new EveryKind();
        var directory = ScratchDirectories.New();
        var output = Path.Combine(directory, "merged.safetensors");
        var basePath = Path.Combine(directory, "base.safetensors");
        var wrong = new TinyLinear();
        wrong.SaveCheckpoint(basePath);
        model.ApplyLora();
        Adapters.RandomizeAll(model);
        model.SaveAdapter(Path.Combine(directory, "adapter"));

        var error = Assert.Throws<LoraFileException>(() => AdapterMerge.Merge(basePath, Path.Combine(directory, "adapter"), output));
        Assert.Contains("the base checkpoint has no 'conv1.weight' (nor 'conv1.base_layer.weight') for adapter 'conv1'", error.Message);
        Assert.Contains("nothing was written", error.Message);
        Assert.False(File.Exists(output));

        // A base whose proj weight is 8×12 but holds huge values: fp32 merge overflows to infinity.
        var huge = new EveryKind();
        using (no_grad())
            foreach (var (name, parameter) in huge.named_parameters())
                parameter.fill_(name == "proj.weight" ? float.MaxValue : 1f);
        huge.SaveCheckpoint(basePath);
        using (no_grad())
            foreach (var (_, parameter) in model.LoraLayers().Single(l => l.Path == "proj").Layer.NamedAdapterParameters)
                parameter.fill_(1e19f);
        model.SaveAdapter(Path.Combine(directory, "adapter"));
        error = Assert.Throws<LoraFileException>(() => AdapterMerge.Merge(basePath, Path.Combine(directory, "adapter"), output));
        Assert.Contains("Merging into 'proj.weight' gives a non-finite value", error.Message);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(directory, "*.tmp", SearchOption.AllDirectories).Concat(Directory.GetFiles(directory, ".*")));
    }

    [Fact]
    public void BFloat16_encoding_rounds_to_nearest_even()
    {
        Assert.Equal(0x3F80, FloatCodec.ToBFloat16(1.0f));
        Assert.Equal(0x3F80, FloatCodec.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F808000))); // tie → even
        Assert.Equal(0x3F82, FloatCodec.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F818000))); // tie → even (up)
        Assert.Equal(0x3F81, FloatCodec.ToBFloat16(BitConverter.Int32BitsToSingle(0x3F808001)));
        Assert.Equal(0x7F80, FloatCodec.ToBFloat16(float.MaxValue)); // overflows to +inf, as PyTorch rounds
        Assert.Equal(0x7FC0, FloatCodec.ToBFloat16(float.NaN));
    }

    private sealed class SynchronousProgress(Action<AdapterMergeProgress> report) : IProgress<AdapterMergeProgress>
    {
        public void Report(AdapterMergeProgress value) => report(value);
    }
}
