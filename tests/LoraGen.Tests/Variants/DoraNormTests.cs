using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Variants;

/// <summary>The forward's ‖W + s·B·A‖ is computed without forming W + s·B·A and with ‖W‖ cached: it must equal the
/// explicit norm, and a new base weight (a checkpoint load, a merge) must not be read from a stale cache.</summary>
public sealed class DoraNormTests
{
    private static readonly AdapterConfig Dora = new() { Rank = 3, Alpha = 6, UseDora = true, TargetModules = ["0"] };

    private static Sequential Model(long seed)
    {
        manual_seed(seed);
        var model = nn.Sequential(nn.Linear(24, 16));
        model.ApplyLora(Dora);
        using (no_grad())
            foreach (var (_, parameter) in model.NamedLoraParameters())
                parameter.normal_(1, 0.3);
        return model;
    }

    // y = m / ‖W + sBA‖ ⊙ ((W + sBA)·x) + b, in float64, per output row (PEFT's DoRA in closed form).
    private static Tensor ClosedForm(Sequential model, Tensor x)
    {
        using var scope = NewDisposeScope();
        var layer = model.LoraLayers().Single().Layer;
        var plain = (Linear)layer.BaseLayer;
        var parameters = layer.NamedParametersOf("default").ToDictionary(p => p.Name, p => p.Parameter.to(ScalarType.Float64));
        var weight = plain.weight!.to(ScalarType.Float64) + layer.Scaling * parameters["lora_B.default.weight"].matmul(parameters["lora_A.default.weight"]);
        var scale = parameters["lora_magnitude_vector.default.weight"] / linalg.vector_norm(weight, dims: [1]);
        return (x.to(ScalarType.Float64).matmul(weight.t()) * scale + plain.bias!.to(ScalarType.Float64)).MoveToOuterDisposeScope();
    }

    [Fact]
    public void DoRA_adapters_are_not_combined()
    {
        var model = Model(3);
        model.AddAdapter("plain", new AdapterConfig { Rank = 2, TargetModules = ["0"] });
        var error = Assert.Throws<ArgumentException>(() => model.AddWeightedAdapter(["default", "plain"], [1, 1], "both", AdapterCombination.Cat));
        Assert.Contains("'default' is a DoRA adapter", error.Message);
        Assert.Equal(["default", "plain"], model.LayerStatus()[0].AvailableAdapters);
    }

    [Fact]
    public void The_forward_norm_equals_the_closed_form_before_and_after_the_base_changes()
    {
        var model = Model(1);
        using var x = randn(5, 24);
        using (var y = model.call(x))
            Closeness.AssertClose(y, ClosedForm(model, x), 1e-5);

        // Another base under the same adapter, through a checkpoint load: the cached ‖W‖ must be recomputed.
        var other = Model(2);
        var directory = ScratchDirectories.NewPath();
        other.SavePretrained(directory);
        model.LoadPretrained(directory);
        using (var y = model.call(x))
            Closeness.AssertClose(y, ClosedForm(model, x), 1e-5);

        // A merged-then-unmerged weight is the original again; in between the merged model needs no norm at all.
        model.eval();
        using var unmerged = ClosedForm(model, x);
        model.Merge();
        using (var merged = model.call(x))
            Closeness.AssertClose(merged, unmerged, 1e-5);
        model.Unmerge();
        using (var y = model.call(x))
            Closeness.AssertClose(y, ClosedForm(model, x), 1e-5);
    }
}
