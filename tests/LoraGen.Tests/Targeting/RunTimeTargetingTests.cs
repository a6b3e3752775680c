using LoraGen.Files;
using LoraGen.Tests.Files;
using LoraGen.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Targeting;

/// <summary>ApplyLora and LoadAdapter with PEFT's run-time targeting, on models nobody annotated: a Sequential
/// built at run time, ModuleList and ModuleDict elements, plain fields, and the refusal of a sealed-typed field.</summary>
public sealed class RunTimeTargetingTests
{
    private static readonly AdapterConfig Rank2 = new() { Rank = 2, Alpha = 4 };

    [Fact]
    public void A_Sequential_built_at_run_time_is_adapted_in_place_keeping_names_and_order()
    {
        var model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3));
        var before = model.named_parameters().Select(p => p.name).ToList();
        using var x = randn(5, 4);
        using var plain = model.call(x);

        var report = model.ApplyLora(Rank2 with { TargetModules = ["0", "2"] });

        // Each X.weight / X.bias becomes X.base_layer.weight / .bias at its place, the adapters right after it.
        Assert.Equal(
            ["0.base_layer.weight", "0.base_layer.bias", "0.lora_A.default.weight", "0.lora_B.default.weight",
             "2.base_layer.weight", "2.base_layer.bias", "2.lora_A.default.weight", "2.lora_B.default.weight"],
            model.named_parameters().Select(p => p.name));
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias"], before);
        Assert.Equal(2 * (4 + 8) + 2 * (8 + 3), report.TrainableParameters);
        Assert.Equal(["0.lora_A.default.weight", "0.lora_B.default.weight", "2.lora_A.default.weight", "2.lora_B.default.weight"],
            model.NamedLoraParameters().Select(p => p.Path));
        using (var fresh = model.call(x))
            Closeness.AssertBitIdentical(fresh, plain); // B = 0: a fresh adapter changes nothing

        Adapters.RandomizeAll(model);
        using var adapted = model.call(x);
        Assert.True(Closeness.RelativeError(adapted, plain) > 1e-3, "forward does not go through the adapters");
    }

    [Fact]
    public void ModuleList_and_ModuleDict_elements_are_swapped_for_forward_and_for_names()
    {
        var model = new Containers();
        using var x = randn(2, 6);
        using var plain = model.call(x);

        model.ApplyLora(Rank2 with { TargetModules = ["list.1", "dict.up"] });

        Assert.Equal(["list.1", "dict.up"], model.LoraLayers().Select(entry => entry.Path));
        Assert.IsAssignableFrom<LoraLayer>(model.List[1]);
        Assert.IsAssignableFrom<LoraLayer>(model.Dict["up"]);
        Assert.Equal(
            ["list.0.weight", "list.0.bias", "list.1.base_layer.weight", "list.1.base_layer.bias", "list.1.lora_A.default.weight", "list.1.lora_B.default.weight",
             "dict.up.base_layer.weight", "dict.up.base_layer.bias", "dict.up.lora_A.default.weight", "dict.up.lora_B.default.weight"],
            model.named_parameters().Select(p => p.name));

        foreach (var (_, layer) in model.LoraLayers())
            Adapters.Randomize(layer);
        using var adapted = model.call(x);
        // Closed form: the same model with each adapted layer's weight replaced by W + s·B·A.
        using var expected = model.ReferenceForward(x);
        Closeness.AssertClose(adapted, expected, 1e-5);
        Assert.True(Closeness.RelativeError(adapted, plain) > 1e-3);

        model.MergeAndUnload();
        Assert.Equal(["list.0.weight", "list.0.bias", "list.1.weight", "list.1.bias", "dict.up.weight", "dict.up.bias"],
            model.named_parameters().Select(p => p.name));
        using var merged = model.call(x);
        Closeness.AssertClose(merged, expected, 1e-5);
    }

    [Fact]
    public void A_regex_must_match_the_whole_path_and_all_linear_leaves_out_the_output_head()
    {
        var byRegex = new Decoder();
        byRegex.ApplyLora(Rank2 with { TargetModulesPattern = @"body\.blocks\.\d+\.(q|v)" });
        Assert.Equal(["body.blocks.0.q", "body.blocks.0.v", "body.blocks.1.q", "body.blocks.1.v"], byRegex.LoraLayers().Select(e => e.Path));

        var allLinear = new Decoder();
        allLinear.ApplyLora(Rank2 with { TargetModulesPattern = "all-linear" });
        Assert.Equal(["body.blocks.0.q", "body.blocks.0.v", "body.blocks.0.mlp.0", "body.blocks.0.mlp.2", "body.blocks.1.q", "body.blocks.1.v", "body.blocks.1.mlp.0", "body.blocks.1.mlp.2"],
            allLinear.LoraLayers().Select(e => e.Path));
        Assert.DoesNotContain(allLinear.named_parameters(), p => p.name.StartsWith("lm_head.lora", StringComparison.Ordinal));

        var headToo = new Decoder();
        headToo.ApplyLora(Rank2 with { TargetModulesPattern = "all-linear" }, new LoraOptions { OutputLayer = "" });
        Assert.Contains("lm_head", headToo.LoraLayers().Select(e => e.Path));
    }

    [Fact]
    public void Exclude_layers_to_transform_and_rank_pattern_choose_each_layers_adapter()
    {
        var model = new Decoder();
        model.ApplyLora(Rank2 with
        {
            TargetModules = ["q", "v", "mlp.0"],
            ExcludeModules = ["body.blocks.1.v"],
            LayersToTransform = [1],
            RankPattern = new Dictionary<string, int> { ["mlp.0"] = 4 },
            AlphaPattern = new Dictionary<string, double> { ["^body.blocks.1.q"] = 1 },
        });
        var layers = model.LoraLayers().ToDictionary(e => e.Path, e => e.Layer);
        Assert.Equal(["body.blocks.1.q", "body.blocks.1.mlp.0"], layers.Keys);
        Assert.Equal((2, 0.5), (layers["body.blocks.1.q"].Rank, layers["body.blocks.1.q"].Scaling));
        Assert.Equal((4, 1.0), (layers["body.blocks.1.mlp.0"].Rank, layers["body.blocks.1.mlp.0"].Scaling));
    }

    [Fact]
    public void Modules_to_save_and_a_tasks_head_are_trained_in_full_and_saved()
    {
        var model = new Decoder();
        model.ApplyLora(Rank2 with { TargetModules = ["q"], ModulesToSave = ["norm"], TaskType = "SEQ_CLS" });
        var trained = model.NamedLoraParameters().Select(p => p.Path).ToList();
        Assert.Contains("body.blocks.0.norm.weight", trained);
        Assert.Contains("body.blocks.1.norm.bias", trained);
        Assert.DoesNotContain(trained, path => path.StartsWith("lm_head", StringComparison.Ordinal)); // no 'classifier'/'score' here
        Assert.All(model.named_parameters(), p => Assert.Equal(trained.Contains(p.name), p.parameter.requires_grad));

        var directory = ScratchDirectories.New();
        model.SaveAdapter(directory, new AdapterFileOptions { TaskType = "SEQ_CLS" });
        var config = AdapterConfig.Read(Path.Combine(directory, AdapterConfig.FileName));
        Assert.Equal(["q"], config.TargetModules);
        Assert.Equal(["norm", "classifier", "score"], config.ModulesToSave);
    }

    [Fact]
    public void A_field_declared_as_a_sealed_layer_class_is_refused_by_name_and_nothing_changes()
    {
        var model = new SealedField();
        var names = model.named_parameters().Select(p => p.name).ToList();
        var error = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora(Rank2 with { TargetModules = ["up", "fc"] }));
        Assert.Equal("fc", error.Target);
        Assert.Contains("field SealedField.fc, declared as Linear", error.Message);
        Assert.Contains("declare the field Module<Tensor, Tensor>", error.Message);
        Assert.Empty(model.LoraLayers()); // 'up' was fine, but nothing changed
        Assert.Equal(names, model.named_parameters().Select(p => p.name));
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void Matching_nothing_and_matching_a_container_are_clear_errors()
    {
        var model = new Decoder();
        var none = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora(Rank2 with { TargetModules = ["q_proj"] }));
        Assert.Contains("matches none of the", none.Message);
        var container = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora(Rank2 with { TargetModules = ["mlp"] }));
        Assert.Contains("is a Sequential, which LoRA cannot adapt", container.Message);
        Assert.Empty(model.LoraLayers());
    }

    [Fact]
    public void A_PEFT_adapter_loads_onto_a_model_nobody_annotated_with_the_closed_form_output()
    {
        var model = nn.Sequential(nn.Linear(3, 2), nn.ReLU());
        using (no_grad())
        {
            ((Linear)model[0]).weight!.copy_(tensor(new float[] { 1, 0, -1, 0.5f, 2, 0 }).view(2, 3));
            ((Linear)model[0]).bias!.copy_(tensor(new float[] { 0.25f, -4 }));
        }
        // PEFT's layout, written by hand: r = 1, lora_alpha = 2 (scaling 2), A = [1, 2, 3], B = [0.5, -1]ᵀ.
        var directory = ScratchDirectories.New();
        File.WriteAllText(Path.Combine(directory, AdapterConfig.FileName),
            """{"peft_type": "LORA", "r": 1, "lora_alpha": 2, "target_modules": ["0"], "bias": "none"}""");
        File.WriteAllBytes(Path.Combine(directory, AdapterDirectory.WeightsFileName), HandWrittenSafetensors.Assemble(
            """{"base_model.model.0.lora_A.weight":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]},"base_model.model.0.lora_B.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[12,20]}}""",
            HandWrittenSafetensors.Concat(HandWrittenSafetensors.F32(1, 2, 3), HandWrittenSafetensors.F32(0.5f, -1))));

        model.LoadAdapter(directory);

        // x = [1, 1, 1]: Wx + b = [0.25, -1.5]; A·x = 6, so the update is 2·6·[0.5, -1] = [6, -12]; ReLU([6.25, -13.5]).
        using var x = ones(1, 3);
        using var y = model.call(x);
        Assert.Equal([6.25f, 0f], y.data<float>().ToArray());
        Assert.Equal(["0.lora_A.default.weight", "0.lora_B.default.weight"], model.NamedLoraParameters().Select(p => p.Path));
    }

    [Fact]
    public void A_saved_adapter_reloads_onto_a_fresh_unannotated_model_exactly_where_it_was()
    {
        var trained = new Decoder();
        trained.ApplyLora(Rank2 with { TargetModules = ["q"], LayersToTransform = [1] });
        Adapters.RandomizeAll(trained);
        var directory = ScratchDirectories.New();
        trained.SaveAdapter(directory);
        // "q" alone would also select blocks.0.q on reload: the file names the adapted layer by its full path.
        Assert.Equal(["body.blocks.1.q"], AdapterConfig.Read(Path.Combine(directory, AdapterConfig.FileName)).TargetModules);

        var fresh = new Decoder();
        fresh.load_state_dict(WithoutAdapters(trained));
        fresh.LoadAdapter(directory);
        using var x = randn(2, 8);
        using var expected = trained.call(x);
        using var actual = fresh.call(x);
        Closeness.AssertBitIdentical(actual, expected);
    }

    [Fact]
    public void A_failed_load_onto_an_unannotated_model_leaves_it_without_adapters()
    {
        var model = new Decoder();
        var names = model.named_parameters().Select(p => p.name).ToList();
        var directory = ScratchDirectories.New();
        var other = new Decoder();
        other.ApplyLora(Rank2 with { TargetModules = ["v"] });
        other.SaveAdapter(directory);

        // The adapters are created from target_modules, then the keys do not fit (another prefix): all undone.
        var error = Assert.Throws<LoraFileException>(() => model.LoadAdapter(directory, new AdapterFileOptions { KeyPrefix = "model." }));
        Assert.Contains("do not start with the key prefix 'model.'", error.Message);
        Assert.Empty(model.LoraLayers());
        Assert.Equal(names, model.named_parameters().Select(p => p.name));
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    private static Dictionary<string, Tensor> WithoutAdapters(nn.Module model) =>
        model.state_dict().Where(entry => !entry.Key.Contains(".lora_", StringComparison.Ordinal))
            .ToDictionary(entry => entry.Key.Replace(".base_layer.", ".", StringComparison.Ordinal), entry => entry.Value);

    /// <summary>Two blocks (q, v, norm, a Sequential MLP) in <c>body.blocks</c> and an lm_head, none of them annotated.
    /// (PEFT's layers_to_transform finds a layer index only after a named segment: body.blocks.1, not blocks.1.)</summary>
    private sealed class Decoder : nn.Module<Tensor, Tensor>
    {
        private readonly Body body = new();
        private readonly nn.Module<Tensor, Tensor> lm_head = nn.Linear(8, 5);

        public Decoder() : base(nameof(Decoder)) => RegisterComponents();

        public override Tensor forward(Tensor x) => lm_head.call(body.call(x));
    }

    private sealed class Body : nn.Module<Tensor, Tensor>
    {
        private readonly ModuleList<Block> blocks = new(new Block(), new Block());

        public Body() : base(nameof(Body)) => RegisterComponents();

        public override Tensor forward(Tensor x)
        {
            foreach (var block in blocks)
                x = block.call(x);
            return x;
        }
    }

    private sealed class Block : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> q = nn.Linear(8, 8);
        private readonly nn.Module<Tensor, Tensor> v = nn.Linear(8, 8);
        private readonly nn.Module<Tensor, Tensor> norm = nn.LayerNorm(8);
        private readonly nn.Module<Tensor, Tensor> mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8));

        public Block() : base(nameof(Block)) => RegisterComponents();

        public override Tensor forward(Tensor x) => mlp.call(norm.call(x + q.call(x) * v.call(x)));
    }

    /// <summary>A ModuleList and a ModuleDict of layers, as a model from elsewhere might hold them.</summary>
    private sealed class Containers : nn.Module<Tensor, Tensor>
    {
        private readonly ModuleList<nn.Module<Tensor, Tensor>> list = new(nn.Linear(6, 6), nn.Linear(6, 8));
        private readonly ModuleDict<nn.Module<Tensor, Tensor>> dict = new();

        public Containers() : base(nameof(Containers))
        {
            dict.Add(("up", nn.Linear(8, 8)));
            RegisterComponents();
        }

        public ModuleList<nn.Module<Tensor, Tensor>> List => list;

        public ModuleDict<nn.Module<Tensor, Tensor>> Dict => dict;

        public override Tensor forward(Tensor x) => dict["up"].call(list[1].call(list[0].call(x)));

        /// <summary>The same computation from the weights: an adapted layer as W + s·B·A (PEFT's delta).</summary>
        public Tensor ReferenceForward(Tensor x)
        {
            using var scope = NewDisposeScope();
            foreach (var layer in new[] { list[0], list[1], dict["up"] })
                x = Affine(layer, x);
            return x.MoveToOuterDisposeScope();
        }

        private static Tensor Affine(nn.Module<Tensor, Tensor> layer, Tensor x)
        {
            if (layer is not LoraLayer adapted)
                return x.matmul(((Linear)layer).weight!.t()) + ((Linear)layer).bias!;
            var plain = (Linear)adapted.BaseLayer;
            var a = adapted.NamedAdapterParameters.Single(p => p.Name == "lora_A.default.weight").Parameter;
            var b = adapted.NamedAdapterParameters.Single(p => p.Name == "lora_B.default.weight").Parameter;
            var weight = plain.weight! + adapted.Scaling * b.matmul(a);
            return x.matmul(weight.t()) + plain.bias!;
        }
    }

    /// <summary>A class from elsewhere that declares its layer as TorchSharp's sealed Linear.</summary>
    private sealed class SealedField : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> up = nn.Linear(8, 8);
        private readonly Linear fc = nn.Linear(8, 2);

        public SealedField() : base(nameof(SealedField)) => RegisterComponents();

        public override Tensor forward(Tensor x) => fc.call(up.call(x));
    }
}
