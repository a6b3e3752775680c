using LoraGen.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static LoraGen.Tests.Support.Closeness;
using static LoraGen.Tests.Support.Adapters;
using static TorchSharp.torch;

namespace LoraGen.Tests;

public sealed class ModelTests
{
    [Fact]
    public void ApplyLora_wraps_targets_in_place_with_PEFT_paths_and_keeps_registry_order()
    {
        var model = new Mlp(16, 32, 3);
        var before = model.named_parameters().Select(p => p.name).ToList();
        model.ApplyLora();
        var after = model.named_parameters().Select(p => p.name).ToList();

        Assert.Equal(
        [
            "blocks.0.up.base_layer.weight", "blocks.0.up.base_layer.bias",
            "blocks.0.up.lora_A.default.weight", "blocks.0.up.lora_B.default.weight",
            "blocks.0.down.base_layer.weight", "blocks.0.down.base_layer.bias",
            "blocks.0.down.lora_A.default.weight", "blocks.0.down.lora_B.default.weight",
            "blocks.0.norm.weight", "blocks.0.norm.bias",
        ], after.Take(10));
        // Without the adapters and the base_layer level, the paths and their order are as before.
        var stripped = after.Where(n => !n.Contains(".lora_")).Select(n => n.Replace(".base_layer.", "."));
        Assert.Equal(before, stripped);
        Assert.Equal(
            ["blocks.0.up", "blocks.0.down", "blocks.1.up", "blocks.1.down"],
            model.LoraLayers().Select(l => l.Path));
    }

    [Fact]
    public void Only_adapters_and_trainable_fields_are_left_trainable()
    {
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToHashSet();
        var expected = model.NamedLoraParameters().Select(p => p.Path).ToHashSet();
        Assert.Equal(expected, trainable);
        Assert.Equal(2 * (4 + 2), expected.Count);     // per block: 2 layers × (A, B) + norm weight, bias
        Assert.Contains("blocks.1.norm.weight", expected);
        Assert.DoesNotContain("head.weight", expected);
        Assert.Equal(expected.Count, model.LoraParameters().Count);
    }

    [Fact]
    public void Model_merge_unmerge_is_exact_and_merged_outputs_equal_unmerged()
    {
        torch.manual_seed(20);
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        RandomizeAll(model);
        var weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var x = randn(8, 16);
        var unmerged = model.forward(x);

        model.Merge();
        model.eval(); // a merged model is for inference: a training-mode forward is refused
        Assert.All(model.LoraLayers(), l => Assert.True(l.Layer.IsMerged));
        AssertClose(model.forward(x), unmerged, 1e-5);
        model.Unmerge();
        foreach (var (name, tensor) in model.state_dict())
            AssertBitIdentical(tensor, weights[name]);
    }

    [Fact]
    public void DisableAdapters_gives_base_outputs_and_restores_merged_state()
    {
        torch.manual_seed(21);
        var model = new Mlp(16, 32, 3);
        var x = randn(8, 16);
        var baseline = model.forward(x);
        model.ApplyLora();
        RandomizeAll(model);
        var adapted = model.forward(x);
        model.Merge();
        model.eval();
        using (model.DisableAdapters())
            AssertClose(model.forward(x), baseline, 1e-6);
        Assert.All(model.LoraLayers(), l => Assert.True(l.Layer.IsMerged));
        AssertClose(model.forward(x), adapted, 1e-5);
    }

    [Fact]
    public void MergeAndUnload_leaves_plain_layers_named_as_before_ApplyLora()
    {
        torch.manual_seed(22);
        var model = new Mlp(16, 32, 3);
        var names = model.named_parameters().Select(p => p.name).ToList();
        model.ApplyLora();
        RandomizeAll(model);
        var x = randn(8, 16);
        var adapted = model.forward(x);

        Assert.Same(model, model.MergeAndUnload());
        Assert.Equal(names, model.named_parameters().Select(p => p.name));
        Assert.Empty(model.LoraLayers());
        Assert.All(model.modules(), m => Assert.IsNotType<LoraLinear>(m));
        AssertClose(model.forward(x), adapted, 1e-5);
    }

    [Fact]
    public void An_annotated_class_the_generator_skipped_is_named_and_nothing_changes()
    {
        // Not partial, so the generator wrote nothing for it.
        var model = nn.Sequential(new MlpBlock(8, 16), new NotPartial());
        var error = Assert.Throws<InvalidOperationException>(() => model.ApplyLora());
        Assert.StartsWith("'1' (NotPartial) carries [LoraTarget] but the source generator did not implement ILoraModule", error.Message);
        Assert.Empty(model.LoraLayers());
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    // On purpose: the analyzers report this (LORA0001); the test shows what happens at run time if it is ignored.
#pragma warning disable LORA0001
    [LoraTarget(Rank = 2)]
    private sealed class NotPartial : nn.Module<Tensor, Tensor>
#pragma warning restore LORA0001
    {
        private nn.Module<Tensor, Tensor> proj = nn.Linear(8, 8);

        public NotPartial() : base(nameof(NotPartial)) => RegisterComponents();

        public override Tensor forward(Tensor x) => proj.call(x);
    }

    [Fact]
    public void A_model_without_annotated_classes_is_refused_with_advice()
    {
        var error = Assert.Throws<InvalidOperationException>(() => nn.Sequential(nn.Linear(4, 4)).ApplyLora());
        Assert.Contains("[LoraTarget]", error.Message);
    }
}
