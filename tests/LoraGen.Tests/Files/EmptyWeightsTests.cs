using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

/// <summary>EmptyWeights switches TorchSharp's process-wide default device to meta while a model is built: a tensor another
/// test created meanwhile would land there, so these tests run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(DefaultDeviceCollection), DisableParallelization = true)]
public sealed class DefaultDeviceCollection;

/// <summary>
/// <see cref="EmptyWeights"/>: a model built on the meta device holds no data, and LoadPretrained (float or straight into
/// 4-bit) and LoadCheckpoint give it the file's values in CPU memory, the same bits as a load into a model built as usual.
/// </summary>
[Collection(nameof(DefaultDeviceCollection))]
public sealed class EmptyWeightsTests
{
    /// <summary>Embedding, LayerNorm, Linears in a Sequential and in fields, and optionally a buffer the constructor computes.</summary>
    private sealed class Encoder : nn.Module<Tensor, Tensor>
    {
#pragma warning disable IDE0044 // the loader replaces these (registry and fields)
        private nn.Module<Tensor, Tensor> embed = nn.Embedding(50, 32);
        private nn.Module<Tensor, Tensor> norm = nn.LayerNorm(32);
        private nn.Module<Tensor, Tensor> mlp = nn.Sequential(("up", nn.Linear(32, 64)), ("act", nn.GELU()), ("down", nn.Linear(64, 32)));
        private nn.Module<Tensor, Tensor> head = nn.Linear(32, 4);
        private Tensor? positions;
#pragma warning restore IDE0044

        public Encoder(bool computedBuffer = false) : base(nameof(Encoder))
        {
            if (computedBuffer)
                positions = arange(8);
            RegisterComponents();
        }

        public override Tensor forward(Tensor ids)
        {
            var h = norm.call(embed.call(ids));
            return head.call(h + mlp.call(h));
        }
    }

    [Fact]
    public void Create_builds_every_tensor_on_the_meta_device_and_restores_the_default()
    {
        using var model = EmptyWeights.Create(() => new Encoder());
        Assert.All(model.parameters(), p => Assert.True(p.is_meta));
        Assert.Equal(DeviceType.CPU, get_default_device().type);
        Assert.Equal(DeviceType.CPU, zeros(1).device_type);
    }

    /// <summary>TorchSharp's native Embedding is made with its weight on the CPU; after the move to meta, libtorch's own
    /// registry of the layer still held that CPU tensor (the whole weight, as long as the layer lived). Read here through
    /// the protected method TorchSharp itself reads that registry with.</summary>
    [Fact]
    public void Create_leaves_no_CPU_copy_of_a_native_layer_s_weight()
    {
        using var model = EmptyWeights.Create(() => new Encoder());
        var nativeRegistry = typeof(nn.Module).GetMethod("_named_parameters",
            System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic, Type.EmptyTypes)!;
        var embedding = model.named_modules().Single(m => m.name == "embed").module;

        var held = ((string Name, Parameter Tensor)[])nativeRegistry.Invoke(embedding, null)!;

        Assert.Equal("weight", Assert.Single(held).Name);
        using var weight = held[0].Tensor;
        Assert.True(weight.is_meta || weight.numel() == 0, $"the native registry holds a {weight.device_type} weight of {weight.numel()} values");
    }

    [Fact]
    public void LoadPretrained_fills_an_empty_model_with_the_same_bits_as_a_built_one()
    {
        var dir = ScratchDirectories.New();
        var source = Saved(dir);
        using var empty = EmptyWeights.Create(() => new Encoder());
        var pathsBefore = empty.named_parameters().Select(p => p.name).ToList();
        empty.LoadPretrained(dir);

        Assert.Equal(pathsBefore, empty.named_parameters().Select(p => p.name).ToList());
        var expected = source.state_dict();
        foreach (var (name, value) in empty.state_dict())
        {
            Assert.Equal(DeviceType.CPU, value.device_type);
            Closeness.AssertBitIdentical(value, expected[name]);
        }
        Assert.All(empty.parameters(), p => Assert.True(p.requires_grad));
        // The layers use what was loaded (their fields point at the new parameters), so the outputs agree.
        var ids = tensor(new long[] { 1, 7, 3 });
        Closeness.AssertBitIdentical(empty.call(ids), source.call(ids));
        var head = empty.named_modules().Single(m => m.name == "head").module;
        Assert.Same(empty.named_parameters().Single(p => p.name == "head.weight").parameter, ((Linear)head).weight);
    }

    [Fact]
    public void A_file_that_mixes_dtypes_loads_the_same_bits_into_an_empty_model_as_into_a_built_one()
    {
        // Every other tensor stored as float64 (exact for float32 values): the float32 ones are read straight into
        // the empty model's new tensors, the float64 ones through a buffer and converted.
        manual_seed(4);
        var source = new Encoder();
        var tensors = source.state_dict().Select((entry, i) =>
        {
            using var cpu = entry.Value.detach().contiguous();
            bool wide = i % 2 == 0;
            using var stored = wide ? cpu.to(ScalarType.Float64) : cpu.clone();
            byte[] bytes = stored.bytes.ToArray();
            return new SafetensorsTensor(entry.Key, wide ? SafetensorsDType.F64 : SafetensorsDType.F32, stored.shape, () => bytes);
        }).ToList();
        var dir = ScratchDirectories.New();
        SafetensorsWriter.WriteFile(Path.Combine(dir, "model.safetensors"), tensors);

        using var built = new Encoder();
        built.LoadPretrained(dir);
        using var empty = EmptyWeights.Create(() => new Encoder());
        empty.LoadPretrained(dir);
        var expected = source.state_dict();
        foreach (var model in new[] { built, empty })
            foreach (var (name, value) in model.state_dict())
                Closeness.AssertBitIdentical(value, expected[name]);
    }

    [Fact]
    public void LoadPretrained_with_Quantize_builds_the_quantized_layers_from_the_file_alone()
    {
        var dir = ScratchDirectories.New();
        var source = Saved(dir);
        using var empty = EmptyWeights.Create(() => new Encoder());
        empty.LoadPretrained(dir, new PretrainedLoadOptions { Quantize = QuantizationKind.Nf4, KeepInFloat = ["head"] });

        foreach (var path in new[] { "mlp.up", "mlp.down" })
        {
            var quantized = Assert.IsType<QuantizedLinear>(empty.named_modules().Single(m => m.name == path).module);
            using var expected = QuantizedLinear.FromLinear((Linear)source.named_modules().Single(m => m.name == path).module, QuantizationKind.Nf4);
            var expectedBuffers = expected.named_buffers().ToDictionary(e => e.name, e => e.buffer);
            foreach (var (name, buffer) in quantized.named_buffers())
                Closeness.AssertBitIdentical(buffer, expectedBuffers[name]);
        }
        var expectedState = source.state_dict();
        foreach (var key in new[] { "embed.weight", "norm.weight", "norm.bias", "head.weight", "head.bias" })
            Closeness.AssertBitIdentical(empty.state_dict()[key], expectedState[key]);
        Assert.DoesNotContain(empty.state_dict().Values, value => value.is_meta);
        // QLoRA over it trains.
        empty.ApplyLora(new AdapterConfig { Rank = 2, TargetModules = ["up", "down"] });
        empty.call(tensor(new long[] { 2, 4 })).square().sum().backward();
        Assert.All(empty.LoraParameters(), p => Assert.NotNull(p.grad));
    }

    [Fact]
    public void A_tensor_the_file_cannot_fill_is_named_and_nothing_is_loaded()
    {
        var dir = ScratchDirectories.New();
        Saved(dir);
        // A computed buffer is not in the file (and may not be allowed missing: it has no value on the meta device);
        // a parameter the file lacks (renamed away here) and that is allowed missing has no value either.
        using var computed = EmptyWeights.Create(() => new Encoder(computedBuffer: true));
        var error = Assert.Throws<LoraFileException>(() => computed.LoadPretrained(dir, new PretrainedLoadOptions
        {
            Rename = key => key == "norm.bias" ? "old.norm.bias" : key,
            AllowUnexpected = ["old.norm.bias"],
            AllowMissing = ["norm.bias", "positions"],
        }));
        Assert.Contains("positions, norm.bias: built without weights (EmptyWeights, on the meta device) and this load gives them no value",
            error.Message, StringComparison.Ordinal);
        Assert.All(computed.parameters(), p => Assert.True(p.is_meta));   // nothing was loaded

        using var plain = EmptyWeights.Create(() => new Encoder());
        var quantizeError = Assert.Throws<LoraFileException>(() => plain.LoadPretrained(dir, new PretrainedLoadOptions
        {
            Quantize = QuantizationKind.Nf4,
            Rename = key => key == "mlp.up.weight" ? "old.up.weight" : key,
            AllowUnexpected = ["old.up.weight"],
            AllowMissing = ["mlp.up.weight"],
        }));
        Assert.Contains("mlp.up.weight: not in the file, and the model was built without weights (EmptyWeights): nothing to quantize it from",
            quantizeError.Message, StringComparison.Ordinal);
        Assert.All(plain.parameters(), p => Assert.True(p.is_meta));
    }

    /// <summary>An LM head tied to the embedding (one Parameter in two modules), as GPT-2 and tied Llamas have.</summary>
    private sealed class TiedLm : nn.Module<Tensor, Tensor>
    {
        private readonly Embedding embed = nn.Embedding(40, 16);
#pragma warning disable IDE0044 // LoadPretrained with Quantize puts a QuantizedLinear here
        private nn.Module<Tensor, Tensor> head;
#pragma warning restore IDE0044

        public TiedLm() : base(nameof(TiedLm))
        {
            var linear = nn.Linear(16, 40, hasBias: false);
            linear.weight = embed.weight!;
            head = linear;
            RegisterComponents();
        }

        public Parameter EmbedWeight => embed.weight!;

        public Parameter HeadWeight => ((Linear)head).weight!;

        public override Tensor forward(Tensor ids) => head.call(embed.call(ids));
    }

    [Fact]
    public void A_tied_weight_gets_one_tensor_in_both_modules()
    {
        var dir = ScratchDirectories.New();
        manual_seed(5);
        using var source = new TiedLm();
        source.SavePretrained(dir);
        using var empty = EmptyWeights.Create(() => new TiedLm());

        empty.LoadPretrained(dir, new PretrainedLoadOptions { AllowMissing = ["head.weight"] });

        Assert.False(empty.EmbedWeight.is_meta);
        Assert.False(empty.HeadWeight.is_meta);
        Closeness.AssertBitIdentical(empty.EmbedWeight, source.EmbedWeight);
        var ids = tensor(new long[] { 3, 9 });
        Closeness.AssertBitIdentical(empty.call(ids), source.call(ids));
        // Still one tensor: a change through the head shows in the embedding.
        using (no_grad())
            empty.HeadWeight.add_(1);
        Closeness.AssertBitIdentical(empty.EmbedWeight, source.EmbedWeight + 1);
    }

    /// <summary>Two managed Linears sharing one weight (TorchSharp's Linear setter disposes the wrapper it replaces).</summary>
    private sealed class TiedPair : nn.Module<Tensor, Tensor>
    {
        private readonly Linear encode = nn.Linear(12, 12, hasBias: false);
        private readonly Linear decode = nn.Linear(12, 12, hasBias: false);

        public TiedPair() : base(nameof(TiedPair))
        {
            decode.weight = encode.weight!;
            RegisterComponents();
        }

        public Parameter DecodeWeight => decode.weight!;

        public override Tensor forward(Tensor x) => decode.call(encode.call(x));
    }

    [Fact]
    public void Two_managed_layers_sharing_a_weight_load_and_stay_tied()
    {
        var dir = ScratchDirectories.New();
        manual_seed(6);
        using var source = new TiedPair();
        source.SavePretrained(dir);
        using var empty = EmptyWeights.Create(() => new TiedPair());
        empty.LoadPretrained(dir, new PretrainedLoadOptions { AllowMissing = ["decode.weight"] });

        Assert.DoesNotContain(empty.parameters(), p => p.is_meta);
        var x = randn(2, 12);
        Closeness.AssertBitIdentical(empty.call(x), source.call(x));
        using (no_grad())
            empty.DecodeWeight.add_(1);
        var encode = empty.named_parameters().Single(p => p.name == "encode.weight").parameter;
        Closeness.AssertBitIdentical(encode, source.DecodeWeight + 1);
    }

    [Fact]
    public void A_tied_head_missing_from_the_file_is_quantized_from_the_weight_it_shares()
    {
        var dir = ScratchDirectories.New();
        manual_seed(7);
        using var source = new TiedLm();
        source.SavePretrained(dir);
        using var empty = EmptyWeights.Create(() => new TiedLm());
        empty.LoadPretrained(dir, new PretrainedLoadOptions
        {
            Quantize = QuantizationKind.Nf4,
            Rename = key => key == "head.weight" ? "dropped.head.weight" : key,   // tied checkpoints often omit it
            AllowUnexpected = ["dropped.head.weight"],
            AllowMissing = ["head.weight"],
        });

        var head = Assert.IsType<QuantizedLinear>(empty.named_modules().Single(m => m.name == "head").module);
        using var expected = QuantizedLinear.FromWeight(source.EmbedWeight, null, QuantizationKind.Nf4);
        Closeness.AssertBitIdentical(head.Dequantize(), expected.Dequantize());
        Closeness.AssertBitIdentical(empty.EmbedWeight, source.EmbedWeight);
    }

    [Fact]
    public void LoadCheckpoint_fills_an_empty_model()
    {
        var dir = ScratchDirectories.New();
        manual_seed(4);
        using var source = new Encoder();
        var file = Path.Combine(dir, "state.safetensors");
        source.SaveCheckpoint(file);
        using var empty = EmptyWeights.Create(() => new Encoder());
        empty.LoadCheckpoint(file);
        var expected = source.state_dict();
        foreach (var (name, value) in empty.state_dict())
            Closeness.AssertBitIdentical(value, expected[name]);
    }

    // The source model (seed 4) saved in Hugging Face's layout to dir.
    private static Encoder Saved(string dir)
    {
        manual_seed(4);
        var source = new Encoder();
        source.SavePretrained(dir);
        return source;
    }
}
