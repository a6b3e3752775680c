using System.Text.Json.Nodes;
using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

/// <summary>Hugging Face checkpoints: files written by hand in Hugging Face's layout (not by the code under test)
/// are read by name, single and sharded, strictly, and LoraGen's own saves read back.</summary>
public sealed class PretrainedCheckpointTests
{
    // The Mlp of Support/Models.cs: blocks.{0,1}.{up,down,norm}.{weight,bias} and head.{weight,bias}.
    private const int Width = 16, Hidden = 32, Classes = 3;

    private static readonly (string Key, long[] Shape)[] MlpKeys =
    [
        ("blocks.0.up.weight", [Hidden, Width]), ("blocks.0.up.bias", [Hidden]),
        ("blocks.0.down.weight", [Width, Hidden]), ("blocks.0.down.bias", [Width]),
        ("blocks.0.norm.weight", [Width]), ("blocks.0.norm.bias", [Width]),
        ("blocks.1.up.weight", [Hidden, Width]), ("blocks.1.up.bias", [Hidden]),
        ("blocks.1.down.weight", [Width, Hidden]), ("blocks.1.down.bias", [Width]),
        ("blocks.1.norm.weight", [Width]), ("blocks.1.norm.bias", [Width]),
        ("head.weight", [Classes, Width]), ("head.bias", [Classes]),
    ];

    // Tensor i holds i + 0.5, i + 1.5, …: every value says which key it came from.
    private static float ValueOf(int tensor, int element) => tensor * 100 + element + 0.5f;

    private static SafetensorsTensor Tensor(int index, string key, long[] shape, SafetensorsDType dtype = SafetensorsDType.F32)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var values = Enumerable.Range(0, (int)count).Select(e => ValueOf(index, e)).ToArray();
        byte[] bytes = dtype == SafetensorsDType.F64
            ? values.SelectMany(v => BitConverter.GetBytes((double)v)).ToArray()
            : values.SelectMany(BitConverter.GetBytes).ToArray();
        return new SafetensorsTensor(key, dtype, shape, () => bytes);
    }

    private static List<SafetensorsTensor> HuggingFaceTensors(string prefix = "", SafetensorsDType dtype = SafetensorsDType.F32) =>
        MlpKeys.Select((entry, i) => Tensor(i, prefix + entry.Key, entry.Shape, dtype)).ToList();

    private static string WriteSingle(List<SafetensorsTensor> tensors)
    {
        string directory = ScratchDirectories.New();
        SafetensorsWriter.WriteFile(Path.Combine(directory, "model.safetensors"), tensors);
        return directory;
    }

    // A sharded checkpoint as transformers writes it: shards plus an index mapping every key to its shard.
    private static string WriteSharded(List<SafetensorsTensor> tensors, int shards)
    {
        string directory = ScratchDirectories.New();
        var weightMap = new JsonObject();
        int perShard = (tensors.Count + shards - 1) / shards;
        for (int s = 0; s < shards; s++)
        {
            string name = $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            var part = tensors.Skip(s * perShard).Take(perShard).ToList();
            SafetensorsWriter.WriteFile(Path.Combine(directory, name), part, new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var tensor in part)
                weightMap[tensor.Name] = name;
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 1234 }, ["weight_map"] = weightMap };
        File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), index.ToJsonString());
        return directory;
    }

    private static void AssertHolds(nn.Module model, Func<string, string> modelPathOf)
    {
        var state = model.state_dict();
        for (int i = 0; i < MlpKeys.Length; i++)
        {
            var (key, shape) = MlpKeys[i];
            var values = state[modelPathOf(key)].to(ScalarType.Float32).flatten().data<float>().ToArray();
            Assert.Equal(Enumerable.Range(0, values.Length).Select(e => ValueOf(i, e)), values);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void A_checkpoint_loads_by_name_single_or_sharded(int shards)
    {
        string directory = shards == 1 ? WriteSingle(HuggingFaceTensors()) : WriteSharded(HuggingFaceTensors(), shards);
        var model = new Mlp(Width, Hidden, Classes);
        model.LoadPretrained(directory);
        AssertHolds(model, key => key);
        if (shards > 1)
        {
            var other = new Mlp(Width, Hidden, Classes);
            other.LoadPretrained(Path.Combine(directory, "model.safetensors.index.json"));
            AssertHolds(other, key => key);
        }
    }

    [Fact]
    public void Base_weights_land_on_base_layer_under_adapters_which_keep_their_values()
    {
        var model = new Mlp(Width, Hidden, Classes);
        model.ApplyLora();
        Adapters.RandomizeAll(model);
        var adapters = model.NamedLoraParameters().Where(p => p.Path.Contains(".lora_"))
            .ToDictionary(p => p.Path, p => p.Parameter.detach().clone());
        model.LoadPretrained(WriteSingle(HuggingFaceTensors()));
        AssertHolds(model, key => key.Replace(".up.", ".up.base_layer.").Replace(".down.", ".down.base_layer."));
        foreach (var (path, parameter) in model.NamedLoraParameters().Where(p => p.Path.Contains(".lora_")))
            Assert.True(parameter.eq(adapters[path]).all().item<bool>(), $"{path} changed");
    }

    [Fact]
    public void Keys_are_mapped_by_prefix_and_rename_and_floats_converted()
    {
        var model = new Mlp(Width, Hidden, Classes);
        model.LoadPretrained(WriteSingle(HuggingFaceTensors("bert.", SafetensorsDType.F64)), new PretrainedLoadOptions { RemovePrefix = "bert." });
        AssertHolds(model, key => key);

        var renamed = HuggingFaceTensors().Select(t => t with { Name = t.Name.Replace("norm.weight", "norm.gamma") }).ToList();
        var other = new Mlp(Width, Hidden, Classes);
        other.LoadPretrained(WriteSingle(renamed), new PretrainedLoadOptions { Rename = key => key.Replace(".gamma", ".weight") });
        AssertHolds(other, key => key);
    }

    [Fact]
    public void A_file_that_mixes_dtypes_and_sizes_loads_every_value_from_its_own_tensor()
    {
        // Large and small tensors alternate in two dtypes, so each value is read through a buffer an earlier, larger
        // tensor of the same dtype left behind: a stale byte from the earlier tensor would show as a wrong value.
        // (The same into a model built with EmptyWeights: EmptyWeightsTests, which run alone.)
        var tensors = MlpKeys.Select((entry, i) => Tensor(i, entry.Key, entry.Shape, i % 3 == 0 ? SafetensorsDType.F64 : SafetensorsDType.F32))
            .ToList();
        var model = new Mlp(Width, Hidden, Classes);
        model.LoadPretrained(WriteSingle(tensors));
        AssertHolds(model, key => key);
    }

    [Fact]
    public void Missing_unexpected_and_mismatched_keys_are_listed_together_and_nothing_changes()
    {
        var tensors = HuggingFaceTensors();
        tensors.RemoveAll(t => t.Name == "head.bias");                                          // missing
        tensors.Add(Tensor(90, "pooler.dense.weight", [Width, Width]));                        // unexpected
        tensors[0] = Tensor(0, "blocks.0.up.weight", [Width, Hidden]);                         // transposed
        tensors[1] = new SafetensorsTensor("blocks.0.up.bias", SafetensorsDType.I32, [Hidden], () => new byte[Hidden * 4]); // not a float
        var model = new Mlp(Width, Hidden, Classes);
        var before = ModelState.Snapshot(model);
        var error = Assert.Throws<LoraFileException>(() => model.LoadPretrained(WriteSingle(tensors)));
        Assert.Contains("missing (in the model, not in the file), 1: head.bias", error.Message);
        Assert.Contains("unexpected (in the file, not in the model), 1: pooler.dense.weight", error.Message);
        Assert.Contains("blocks.0.up.weight: F32 [16, 32] in the file, [32, 16] in the model", error.Message);
        Assert.Contains("blocks.0.up.bias: I32 in the file cannot be stored in the model's Float32", error.Message);
        Assert.Contains("nothing was changed", error.Message);
        ModelState.AssertSame(before, model);
    }

    [Fact]
    public void Unexpected_and_missing_keys_can_be_allowed_by_name_or_pattern()
    {
        var tensors = HuggingFaceTensors();
        tensors.RemoveAll(t => t.Name.StartsWith("head.", StringComparison.Ordinal));
        tensors.Add(Tensor(90, "pooler.dense.weight", [Width, Width]));
        tensors.Add(Tensor(91, "pooler.dense.bias", [Width]));
        var model = new Mlp(Width, Hidden, Classes);
        var head = model.state_dict()["head.weight"].detach().clone();
        model.LoadPretrained(WriteSingle(tensors), new PretrainedLoadOptions
        {
            AllowUnexpected = [@"pooler\..*"],
            AllowMissing = ["head.weight", "head.bias"],
        });
        Assert.True(model.state_dict()["head.weight"].eq(head).all().item<bool>());
        Assert.Equal(ValueOf(2, 0), model.state_dict()["blocks.0.down.weight"][0, 0].item<float>());

        // A pattern must match the whole key: "pooler" alone allows nothing.
        var strict = new Mlp(Width, Hidden, Classes);
        var error = Assert.Throws<LoraFileException>(() => strict.LoadPretrained(WriteSingle(tensors),
            new PretrainedLoadOptions { AllowUnexpected = ["pooler"], AllowMissing = ["head.weight", "head.bias"] }));
        Assert.Contains("pooler.dense.weight", error.Message);
    }

    [Fact]
    public void A_broken_sharded_checkpoint_is_refused_by_name()
    {
        string directory = WriteSharded(HuggingFaceTensors(), 2);
        string index = Path.Combine(directory, "model.safetensors.index.json");
        var json = JsonNode.Parse(File.ReadAllText(index))!;
        json["weight_map"]!["head.bias"] = "model-00001-of-00002.safetensors"; // it is in shard 2
        File.WriteAllText(index, json.ToJsonString());
        var error = Assert.Throws<LoraFileException>(() => new Mlp(Width, Hidden, Classes).LoadPretrained(directory));
        Assert.Contains("'head.bias' is mapped to model-00001-of-00002.safetensors, which does not hold it", error.Message);

        File.Delete(Path.Combine(directory, "model-00002-of-00002.safetensors"));
        var missing = Assert.Throws<LoraFileException>(() => new Mlp(Width, Hidden, Classes).LoadPretrained(directory));
        Assert.Contains("names shard 'model-00002-of-00002.safetensors', which is not in", missing.Message);
    }

    [Fact]
    public void Two_file_keys_mapped_to_one_name_are_refused()
    {
        var tensors = HuggingFaceTensors();
        tensors.Add(Tensor(50, "bert.head.bias", [Classes]));
        var error = Assert.Throws<LoraFileException>(() => new Mlp(Width, Hidden, Classes).LoadPretrained(WriteSingle(tensors),
            new PretrainedLoadOptions { RemovePrefix = "bert." }));
        Assert.Contains("the same name 'head.bias'", error.Message);
    }

    [Theory]
    [InlineData(long.MaxValue, 1)]
    [InlineData(2048, 8)] // 2 KB: each 32×16 weight alone, the small tensors together
    public void SavePretrained_writes_Hugging_Face_names_and_shards_that_load_back(long maxShardBytes, int expectedFiles)
    {
        torch.manual_seed(4);
        var model = new Mlp(Width, Hidden, Classes);
        model.ApplyLora();
        Adapters.RandomizeAll(model);
        string directory = ScratchDirectories.New();
        model.SavePretrained(directory, maxShardBytes);

        var files = Directory.EnumerateFiles(directory, "*.safetensors").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(expectedFiles, files.Count);
        var keys = new List<string>();
        foreach (var file in files)
        {
            using var reader = SafetensorsReader.Open(Path.Combine(directory, file!));
            Assert.Equal("pt", reader.Metadata["format"]);
            Assert.True(reader.Tensors.Sum(t => t.ByteLength) <= maxShardBytes || reader.Tensors.Count == 1);
            keys.AddRange(reader.Tensors.Select(t => t.Name));
        }
        Assert.Equal(MlpKeys.Select(k => k.Key).Order(StringComparer.Ordinal), keys.Order(StringComparer.Ordinal));
        if (expectedFiles > 1)
        {
            var index = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "model.safetensors.index.json")))!;
            Assert.Equal(MlpKeys.Sum(k => k.Shape.Aggregate(4L, (a, b) => a * b)), index["metadata"]!["total_size"]!.GetValue<long>());
            Assert.Equal(MlpKeys.Length, index["weight_map"]!.AsObject().Count);
        }

        var plain = new Mlp(Width, Hidden, Classes);
        plain.LoadPretrained(directory);
        var saved = model.state_dict();
        foreach (var (key, value) in plain.state_dict())
            Assert.True(value.eq(saved[key.Replace(".up.", ".up.base_layer.").Replace(".down.", ".down.base_layer.")]).all().item<bool>(), key);
    }

    [Fact]
    public void A_sharded_save_after_a_single_file_one_leaves_one_checkpoint()
    {
        var model = new Mlp(Width, Hidden, Classes);
        string directory = ScratchDirectories.New();
        model.SavePretrained(directory);
        model.SavePretrained(directory, maxShardBytes: 2048);
        Assert.False(File.Exists(Path.Combine(directory, "model.safetensors")));
        new Mlp(Width, Hidden, Classes).LoadPretrained(directory);
        model.SavePretrained(directory);
        Assert.Equal(["model.safetensors"], Directory.EnumerateFiles(directory).Select(Path.GetFileName));
    }

    [Fact]
    public void Shards_of_two_saves_are_refused()
    {
        var model = new Mlp(Width, Hidden, Classes);
        string first = ScratchDirectories.New(), second = ScratchDirectories.New();
        model.SavePretrained(first, maxShardBytes: 2048);
        model.SavePretrained(second, maxShardBytes: 2048);
        // As a crash between the renames of the second save would leave it: one shard from the other save.
        File.Copy(Path.Combine(second, "model-00001-of-00008.safetensors"), Path.Combine(first, "model-00001-of-00008.safetensors"), overwrite: true);
        var error = Assert.Throws<LoraFileException>(() => new Mlp(Width, Hidden, Classes).LoadPretrained(first));
        Assert.Contains("model-00001-of-00008.safetensors is from another save than the index", error.Message);
    }

    [Fact]
    public void Merged_models_are_refused_with_what_to_do()
    {
        var model = new Mlp(Width, Hidden, Classes);
        model.ApplyLora();
        model.Merge();
        var error = Assert.Throws<InvalidOperationException>(() => model.SavePretrained(ScratchDirectories.New()));
        Assert.Contains("Unmerge()", error.Message);
        Assert.Throws<InvalidOperationException>(() => model.LoadPretrained(WriteSingle(HuggingFaceTensors())));
    }

    [Fact]
    public void Nothing_at_the_path_says_what_is_expected()
    {
        string directory = ScratchDirectories.New();
        var error = Assert.Throws<FileNotFoundException>(() => new Mlp(Width, Hidden, Classes).LoadPretrained(directory));
        Assert.Contains("neither model.safetensors nor model.safetensors.index.json", error.Message);
        File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"), "{\"weight_map\": 3}");
        var bad = Assert.Throws<LoraFileException>(() => new Mlp(Width, Hidden, Classes).LoadPretrained(directory));
        Assert.Contains("has no \"weight_map\" object", bad.Message);
    }
}
