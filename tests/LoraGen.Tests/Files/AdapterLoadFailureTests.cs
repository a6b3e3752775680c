using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

public sealed class AdapterLoadFailureTests
{
    private static string SavedAdapter(int seed)
    {
        torch.manual_seed(seed);
        var model = new EveryKind();
        model.ApplyLora();
        Adapters.RandomizeAll(model);
        var directory = ScratchDirectories.New();
        model.SaveAdapter(directory);
        return directory;
    }

    private static void RewriteWeights(string directory, Func<SafetensorsTensorInfo, SafetensorsTensorInfo?> change)
    {
        var path = Path.Combine(directory, "adapter_model.safetensors");
        List<SafetensorsTensor> tensors;
        using (var reader = SafetensorsReader.Open(path))
            tensors = reader.Tensors.Select(change).OfType<SafetensorsTensorInfo>().Select(info =>
            {
                var bytes = reader.ReadBytes(reader.Find(info.Name) ?? reader.Tensors.First(t => t.ByteLength == info.ByteLength));
                var data = new byte[info.ByteLength];
                bytes.AsSpan(0, (int)Math.Min(bytes.Length, data.Length)).CopyTo(data);
                return new SafetensorsTensor(info.Name, info.DType, info.Shape, () => data);
            }).ToList();
        SafetensorsWriter.WriteFile(path, tensors);
    }

    [Fact]
    public void Missing_unexpected_and_mismatched_keys_are_listed_and_nothing_changes()
    {
        var directory = SavedAdapter(10);
        RewriteWeights(directory, info => info.Name switch
        {
            "base_model.model.conv1.lora_A.weight" => null,                                   // missing
            "base_model.model.proj.lora_B.weight" => info with { Shape = [4, 6] },           // mismatched shape (same bytes)
            "base_model.model.norm.bias" => info with { Name = "base_model.model.norm.beta" }, // unexpected + missing
            "base_model.model.norm.weight" => info with { DType = SafetensorsDType.I32 },     // mismatched dtype
            _ => info,
        });

        foreach (bool applied in new[] { false, true })
        {
            torch.manual_seed(11);
            var model = new EveryKind();
            if (applied)
                model.ApplyLora();
            var before = ModelState.Snapshot(model);
            var error = Assert.Throws<LoraFileException>(() => model.LoadAdapter(directory));
            Assert.Contains("does not fit this model; nothing was changed", error.Message);
            Assert.Contains("missing (in the model, not in the file), 2: base_model.model.conv1.lora_A.weight, base_model.model.norm.bias", error.Message);
            Assert.Contains("unexpected (in the file, not in the model), 1: base_model.model.norm.beta", error.Message);
            Assert.Contains("base_model.model.proj.lora_B.weight: F32 [4, 6] in the file, [8, 3] in the model", error.Message);
            Assert.Contains("base_model.model.norm.weight: I32 in the file cannot be stored in the model's Float32", error.Message);
            ModelState.AssertSame(before, model); // values, names (wrapped or not) and requires_grad flags
            Assert.Equal(applied ? 4 : 0, model.LoraLayers().Count());
        }
    }

    [Fact]
    public void A_damaged_weights_file_is_the_documented_exception_and_a_merged_model_is_refused()
    {
        var directory = SavedAdapter(12);
        var path = Path.Combine(directory, "adapter_model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^3]);
        var model = new EveryKind();
        var error = Assert.Throws<SafetensorsFormatException>(() => model.LoadAdapter(directory));
        Assert.Contains("run past the end of the data section", error.Message);
        Assert.Empty(model.LoraLayers());

        File.WriteAllBytes(path, bytes);
        model.ApplyLora();
        model.Merge();
        Assert.Contains("Cannot load adapter 'default' while it is merged into", Assert.Throws<InvalidOperationException>(() => model.LoadAdapter(directory)).Message);
        Assert.ThrowsAny<IOException>(() => new EveryKind().LoadAdapter(Path.Combine(directory, "nope")));
    }

    [Fact]
    public void A_save_that_fails_halfway_leaves_the_previous_adapter_loadable()
    {
        torch.manual_seed(13);
        var model = new EveryKind();
        model.ApplyLora();
        Adapters.RandomizeAll(model);
        var directory = ScratchDirectories.New();
        model.SaveAdapter(directory);
        var oldValues = model.NamedLoraParameters().Select(p => p.Parameter.detach().clone()).ToList();
        var oldFiles = Directory.GetFiles(directory).Order().Select(File.ReadAllBytes).ToList();

        Adapters.RandomizeAll(model); // new values that must not reach the disk
        using (AtomicFile.WrapStreamsForTest(stream => new FailingStream(stream, failAfterBytes: 100)))
            Assert.Throws<IOException>(() => model.SaveAdapter(directory));

        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"], Directory.GetFiles(directory).Select(Path.GetFileName).Order());
        Assert.Equal(oldFiles, Directory.GetFiles(directory).Order().Select(File.ReadAllBytes));
        torch.manual_seed(13);
        var reloaded = new EveryKind();
        reloaded.LoadAdapter(directory);
        foreach (var (expected, (_, actual)) in oldValues.Zip(reloaded.NamedLoraParameters()))
            Closeness.AssertBitIdentical(actual, expected);
    }
}
