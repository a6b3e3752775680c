using LoraGen.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests;

/// <summary>Misuse that used to pass silently: adapting nothing, training a merged model, merging or
/// unmerging what is not there.</summary>
public sealed class MisuseTests
{
    [Fact]
    public void ApplyLora_that_would_adapt_nothing_is_an_error_and_changes_nothing()
    {
        var model = new SequentialOnly();
        var error = Assert.Throws<InvalidOperationException>(() => model.ApplyLora());
        Assert.Contains("would adapt nothing", error.Message);
        Assert.Contains("Sequential", error.Message);
        Assert.Contains("AllowNoAdapters", error.Message);
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void ApplyLora_adapting_nothing_is_allowed_when_asked()
    {
        var model = new SequentialOnly();
        var report = model.ApplyLora(new LoraOptions { AllowNoAdapters = true });
        Assert.Equal(0, report.TrainableParameters);
        Assert.Empty(model.LoraLayers());
    }

    [Fact]
    public void Training_forward_of_a_merged_adapter_says_to_unmerge()
    {
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        model.Merge();
        model.train();
        var error = Assert.Throws<InvalidOperationException>(() => model.forward(randn(2, 16)));
        Assert.Contains("merged", error.Message);
        Assert.Contains("Unmerge()", error.Message);

        // Inference on the merged model is fine: eval mode, or no gradients.
        model.eval();
        using (model.forward(randn(2, 16))) { }
        model.train();
        using (no_grad())
        using (model.forward(randn(2, 16))) { }
        // And after Unmerge, training works again.
        model.Unmerge();
        using var loss = model.forward(randn(2, 16)).sum();
        loss.backward();
        Assert.All(model.NamedLoraParameters().Where(p => p.Path.Contains(".lora_")), p => Assert.NotNull(p.Parameter.grad));
    }

    [Fact]
    public void Merge_and_unmerge_report_how_many_layers_they_changed()
    {
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        Assert.Equal(0, model.Unmerge());   // nothing merged yet
        Assert.Equal(4, model.Merge());
        Assert.Equal(0, model.Merge());     // already merged
        Assert.Equal(4, model.Unmerge());
        Assert.Equal(0, model.Unmerge());

        var layer = model.LoraLayers().First().Layer;
        Assert.True(layer.Merge());
        Assert.False(layer.Merge());
        Assert.Equal(3, model.Merge());     // the other three
        Assert.True(layer.Unmerge());
        Assert.False(layer.Unmerge());
    }

    [Fact]
    public void Merge_or_unmerge_of_a_model_without_adapters_is_an_error()
    {
        var model = new Mlp(16, 32, 3);
        var merge = Assert.Throws<InvalidOperationException>(() => model.Merge());
        Assert.Contains("has no LoRA adapters", merge.Message);
        Assert.Contains("ApplyLora()", merge.Message);
        Assert.Throws<InvalidOperationException>(() => model.Unmerge());
        Assert.Throws<InvalidOperationException>(() => model.MergeAndUnload());
    }
}
