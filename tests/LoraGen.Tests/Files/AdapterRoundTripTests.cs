using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

public sealed class AdapterRoundTripTests
{
    private static EveryKind Trained(int seed, LoraOptions? options = null, ScalarType? baseType = null) =>
        Trained(seed, out _, options, baseType);

    /// <summary>A model with random adapters and norm, and <paramref name="twin"/>: the same base model, no adapters.</summary>
    private static EveryKind Trained(int seed, out EveryKind twin, LoraOptions? options = null, ScalarType? baseType = null)
    {
        torch.manual_seed(seed);
        var model = new EveryKind();
        twin = ModelState.CopyWeights(model, new EveryKind());
        if (baseType is { } type)
        {
            model.to(type);
            twin.to(type);
        }
        model.ApplyLora(options);
        torch.manual_seed(seed + 1000);
        Adapters.RandomizeAll(model);
        using (no_grad())
            foreach (var (_, parameter) in model.named_parameters().Where(p => p.name.StartsWith("norm.")))
                parameter.normal_(0, 1);
        return model;
    }

    [Theory]
    [InlineData(ScalarType.Float32, null)]
    [InlineData(ScalarType.Float16, null)]
    [InlineData(ScalarType.BFloat16, null)]
    [InlineData(ScalarType.Float32, ScalarType.Float64)]
    public void Every_layer_kind_round_trips_bit_for_bit_in_every_adapter_dtype(ScalarType adapterType, ScalarType? baseType)
    {
        var saved = Trained(1, out var loaded, new LoraOptions { AdapterDType = adapterType }, baseType);
        var directory = ScratchDirectories.New();
        saved.SaveAdapter(directory);

        loaded.LoadAdapter(directory, new AdapterFileOptions()); // no adapters yet: created from the config
        // LoadAdapter creates float32 adapters; saved in another dtype they are converted, exactly (widening).
        var expected = saved.NamedLoraParameters().ToList();
        var actual = loaded.NamedLoraParameters().ToList();
        Assert.Equal(expected.Select(p => p.Path), actual.Select(p => p.Path));
        for (int i = 0; i < expected.Count; i++)
            Closeness.AssertBitIdentical(actual[i].Parameter.to(expected[i].Parameter.dtype), expected[i].Parameter);
        Assert.Equal(["conv1", "conv2", "embed", "proj"], saved.LoraLayers().Select(l => l.Path).Order());
        Assert.Equal(saved.LoraLayers().Select(l => l.Layer.Scaling), loaded.LoraLayers().Select(l => l.Layer.Scaling));
        Assert.Equal(saved.LoraLayers().Select(l => l.Layer.Rank), loaded.LoraLayers().Select(l => l.Layer.Rank));
        Assert.All(loaded.LoraParameters(), p => Assert.True(p.requires_grad));

        if (adapterType == ScalarType.Float32)
        {
            var tokens = randint(0, 20, [2, 5]);
            Closeness.AssertBitIdentical(loaded.forward(tokens), saved.forward(tokens));
        }
    }

    [Fact]
    public void The_files_use_PEFT_keys_config_and_metadata()
    {
        var model = Trained(2);
        var directory = ScratchDirectories.New();
        model.SaveAdapter(directory, new AdapterFileOptions { BaseModelNameOrPath = "every-kind" });

        using var reader = SafetensorsReader.Open(Path.Combine(directory, "adapter_model.safetensors"));
        Assert.Equal("pt", reader.Metadata["format"]);
        var shapes = reader.Tensors.ToDictionary(t => t.Name, t => t.ShapeText);
        Assert.Equal(new Dictionary<string, string>
        {
            ["base_model.model.conv1.lora_A.weight"] = "[2, 12, 3]",
            ["base_model.model.conv1.lora_B.weight"] = "[12, 2, 1]",
            ["base_model.model.conv2.lora_A.weight"] = "[2, 1, 3, 3]",
            ["base_model.model.conv2.lora_B.weight"] = "[6, 2, 1, 1]",
            ["base_model.model.embed.lora_embedding_A"] = "[2, 20]",
            ["base_model.model.embed.lora_embedding_B"] = "[12, 2]",
            ["base_model.model.proj.lora_A.weight"] = "[3, 12]",
            ["base_model.model.proj.lora_B.weight"] = "[8, 3]",
            ["base_model.model.norm.weight"] = "[12]",
            ["base_model.model.norm.bias"] = "[12]",
        }, shapes);

        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "adapter_config.json")))!;
        Assert.Equal(2, (int)json["r"]!);
        Assert.Equal(4.0, (double)json["lora_alpha"]!);
        Assert.Equal(3, (int)json["rank_pattern"]!["proj"]!);
        Assert.Equal(3.0, (double)json["alpha_pattern"]!["proj"]!);
        Assert.Equal("LORA", (string)json["peft_type"]!);
        Assert.Equal("none", (string)json["bias"]!);
        Assert.True((bool)json["inference_mode"]!);
        Assert.False((bool)json["fan_in_fan_out"]!);
        Assert.Null(json["task_type"]);
        Assert.Equal("every-kind", (string)json["base_model_name_or_path"]!);
        Assert.Equal(["conv1", "conv2", "embed", "proj"], json["target_modules"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["norm"], json["modules_to_save"]!.AsArray().Select(n => (string)n!));
    }

    [Fact]
    public void KeyPrefix_and_MapPath_rename_keys_and_patterns_both_ways()
    {
        var model = Trained(3);
        var directory = ScratchDirectories.New();
        var options = new AdapterFileOptions { KeyPrefix = "", MapPath = path => "model." + path + "_x" };
        model.SaveAdapter(directory, options);
        using (var reader = SafetensorsReader.Open(Path.Combine(directory, "adapter_model.safetensors")))
            Assert.Contains(reader.Tensors, t => t.Name == "model.proj_x.lora_A.weight");
        Assert.Contains("\"model.proj_x\": 3", File.ReadAllText(Path.Combine(directory, "adapter_config.json")));

        torch.manual_seed(3);
        var loaded = new EveryKind();
        loaded.LoadAdapter(directory, options);
        Assert.Equal(3, loaded.LoraLayers().Single(l => l.Path == "proj").Layer.Rank);
        var error = Assert.Throws<LoraFileException>(() => new EveryKind().LoadAdapter(directory));
        Assert.Contains("missing (in the model, not in the file), 10: base_model.model.embed.lora_embedding_A", error.Message);
        Assert.Contains("unexpected (in the file, not in the model), 10: model.", error.Message);
    }

    [Fact]
    public void Checkpoints_round_trip_every_dtype_and_refuse_mismatches()
    {
        var module = new EveryDType();
        var path = Path.Combine(ScratchDirectories.New(), "model.safetensors");
        module.SaveCheckpoint(path);
        var copy = new EveryDType(zero: true);
        Assert.False(Closeness.BitIdentical(copy.Buffers()[0], module.Buffers()[0]));
        copy.LoadCheckpoint(path);
        foreach (var (expected, actual) in module.Buffers().Zip(copy.Buffers()))
            Closeness.AssertBitIdentical(actual, expected);

        var other = new TinyLinear();
        var before = ModelState.Snapshot(other);
        var error = Assert.Throws<LoraFileException>(() => other.LoadCheckpoint(path));
        Assert.Contains("missing (in the model, not in the file), 2: proj.weight, proj.bias", error.Message);
        Assert.Contains("unexpected (in the file, not in the model), 10: f64", error.Message);
        ModelState.AssertSame(before, other);
    }

    /// <summary>A buffer of every dtype safetensors files hold here.</summary>
    private sealed class EveryDType : nn.Module
    {
        private static readonly ScalarType[] Types =
        [
            ScalarType.Float64, ScalarType.Float32, ScalarType.Float16, ScalarType.BFloat16, ScalarType.Int64,
            ScalarType.Int32, ScalarType.Int16, ScalarType.Int8, ScalarType.Byte, ScalarType.Bool,
        ];

        private static readonly string[] Names = ["f64", "f32", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "bool"];

        public EveryDType(bool zero = false) : base(nameof(EveryDType))
        {
            for (int i = 0; i < Types.Length; i++)
            {
                var values = zero ? zeros(2, 3) : arange(1, 7).reshape(2, 3) * (i % 2 == 0 ? -1 : 1) * (Types[i] == ScalarType.Byte ? -1 : 1);
                register_buffer(Names[i], Types[i] == ScalarType.Bool ? values.gt(0) : values.to(Types[i]));
            }
        }

        public Tensor[] Buffers() => named_buffers().Select(b => b.buffer).ToArray();
    }
}
