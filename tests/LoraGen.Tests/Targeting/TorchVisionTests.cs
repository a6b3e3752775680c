using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Targeting;

/// <summary>
/// Run-time targeting (<c>ApplyLora(AdapterConfig)</c>) on TorchVision 0.107.0's own models, which LoraGen never saw
/// at compile time: their layers sit in private <c>Module&lt;Tensor, Tensor&gt;</c> fields and in Sequentials, and
/// GoogleNet's head in a field typed as the sealed <c>Linear</c>. Small heads (10 classes), 32×32 or 64×64 inputs,
/// batch 2, so each test takes seconds on two cores.
/// </summary>
public class TorchVisionTests
{
    // Merged vs unmerged adapter output through resnet18 in float32: the merged layers compute conv(x, W + s·B·A)
    // instead of conv(x, W) + s·conv_B(conv_A(x)), a different rounding at each of the 10 adapted layers. Measured
    // 4.5e-7 (max |merged − unmerged| / max |unmerged|), against an adapter effect of 0.11 absolute on logits of ~1.
    private const double MergeTolerance = 1e-5;

    private static Tensor Input(int size, long seed = 7)
    {
        using var generator = new Generator((ulong)seed);
        return randn([2, 3, size, size], generator: generator);
    }

    private static Tensor Forward(nn.Module<Tensor, Tensor> model, Tensor x)
    {
        using (no_grad())
            return model.call(x);
    }

    private static List<string> ParameterNames(nn.Module model) => model.named_parameters().Select(p => p.name).ToList();

    private static List<string> AdaptedPaths(nn.Module model) => model.LoraLayers().Select(entry => entry.Path).ToList();

    /// <summary>PEFT's list rule, computed here from named_modules: the path itself or a path ending in ".name".</summary>
    private static List<string> PathsEndingIn(nn.Module model, params string[] names) =>
        model.named_modules().Select(m => m.name)
            .Where(path => path.Length > 0 && names.Any(name => path == name || path.EndsWith("." + name, StringComparison.Ordinal)))
            .ToList();

    /// <summary>Every <c>X.p</c> of a wrapped module X becomes <c>X.base_layer.p</c> at its index, and X's adapter follows
    /// X's own parameters (the wrapper registers base_layer, then lora_A, then lora_B).</summary>
    private static List<string> ExpectedNamesAfterWrapping(List<string> before, ICollection<string> wrapped)
    {
        static string ModuleOf(string parameter) => parameter[..parameter.LastIndexOf('.')];
        var expected = new List<string>();
        for (int i = 0; i < before.Count; i++)
        {
            string module = ModuleOf(before[i]);
            if (!wrapped.Contains(module))
            {
                expected.Add(before[i]);
                continue;
            }
            expected.Add($"{module}.base_layer.{before[i][(module.Length + 1)..]}");
            if (i + 1 == before.Count || ModuleOf(before[i + 1]) != module)
                expected.AddRange([$"{module}.lora_A.default.weight", $"{module}.lora_B.default.weight"]);
        }
        return expected;
    }

    /// <summary>Sets every adapter's B (zero when fresh) to a fixed ramp, so the adapters change the output.</summary>
    private static void SetLoraB(nn.Module model, double amplitude = 0.05)
    {
        using var _ = no_grad();
        foreach (var (_, layer) in model.LoraLayers())
            foreach (var (name, parameter) in layer.NamedAdapterParameters.Where(p => p.Name.StartsWith("lora_B", StringComparison.Ordinal)))
                parameter.copy_(linspace(-amplitude, amplitude, parameter.numel()).reshape(parameter.shape));
    }

    private static double MaxAbsDifference(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Fact]
    public void Resnet18_fc_and_conv1_are_wrapped_in_place_and_merge_back_to_the_plain_model()
    {
        using var model = torchvision.models.resnet18(num_classes: 10);
        model.eval();
        using var x = Input(32);
        var namesBefore = ParameterNames(model);
        using var before = Forward(model, x);

        // The suffix rule: "conv1" is the stem's conv1 and every BasicBlock's conv1; "fc" the head. (TorchSharp's
        // named_modules lists breadth first, so "fc" comes second there; LoraLayers walks depth first, like PyTorch.)
        var expectedPaths = PathsEndingIn(model, "fc", "conv1");
        string[] depthFirst =
            ["conv1", "layer1.0.conv1", "layer1.1.conv1", "layer2.0.conv1", "layer2.1.conv1",
             "layer3.0.conv1", "layer3.1.conv1", "layer4.0.conv1", "layer4.1.conv1", "fc"];
        Assert.Equal(depthFirst.Order(StringComparer.Ordinal), expectedPaths.Order(StringComparer.Ordinal));

        model.ApplyLora(new AdapterConfig { Rank = 8, Alpha = 16, TargetModules = ["fc", "conv1"] });

        Assert.Equal(depthFirst, AdaptedPaths(model));
        Assert.Equal(ExpectedNamesAfterWrapping(namesBefore, expectedPaths), ParameterNames(model));
        Assert.Equal(expectedPaths.Count * 2, model.LoraParameters().Count);

        // B = 0: the adapters add exactly nothing.
        using (var fresh = Forward(model, x))
            Closeness.AssertBitIdentical(fresh, before);

        SetLoraB(model);
        using var adapted = Forward(model, x);
        Assert.True(MaxAbsDifference(adapted, before) > 1e-3, "setting lora_B did not change the output: forward bypasses the wrappers");

        model.MergeAndUnload();
        Assert.Empty(model.LoraLayers());
        Assert.Equal(namesBefore, ParameterNames(model));
        using var merged = Forward(model, x);
        Closeness.AssertClose(merged, adapted, MergeTolerance);
    }

    [Fact]
    public void Vgg11_classifier_regex_wraps_the_three_linears_of_the_classifier()
    {
        using var model = torchvision.models.vgg11(num_classes: 10);
        model.eval();
        using var x = Input(32);
        var namesBefore = ParameterNames(model);
        using var before = Forward(model, x);

        // As in PEFT ("Target module ReLU() is not supported"), a regular expression that also matches the ReLUs and
        // Dropouts between the Linears is refused, naming each, and nothing changes.
        var refused = Assert.Throws<LoraConfigurationException>(() =>
            model.ApplyLora(new AdapterConfig { TargetModulesPattern = @"classifier\.\d+" }));
        foreach (var (path, type) in new[] { ("classifier.1", "ReLU"), ("classifier.2", "Dropout"), ("classifier.4", "ReLU"), ("classifier.5", "Dropout") })
            Assert.Contains($"'{path}': is a {type}, which LoRA cannot adapt", refused.Message);
        Assert.Equal(namesBefore, ParameterNames(model));
        Assert.Empty(model.LoraLayers());

        // The Linears are classifier.0, .3 and .6 (named_modules, by type).
        var linears = model.named_modules().Where(m => m.module is TorchSharp.Modules.Linear).Select(m => m.name).ToList();
        Assert.Equal(["classifier.0", "classifier.3", "classifier.6"], linears);

        model.ApplyLora(new AdapterConfig { Rank = 4, TargetModulesPattern = @"classifier\.[036]" });
        Assert.Equal(linears, AdaptedPaths(model));
        Assert.Equal(ExpectedNamesAfterWrapping(namesBefore, linears), ParameterNames(model));

        using (var fresh = Forward(model, x))
            Closeness.AssertBitIdentical(fresh, before);
        SetLoraB(model);
        using var adapted = Forward(model, x);
        Assert.True(MaxAbsDifference(adapted, before) > 1e-3, "setting lora_B did not change the output");
    }

    [Fact]
    public void MobilenetV2_all_linear_leaves_out_the_head_unless_OutputLayer_is_empty()
    {
        using var model = torchvision.models.mobilenet_v2(num_classes: 10);
        model.eval();
        var namesBefore = ParameterNames(model);
        var linears = model.named_modules().Where(m => m.module is TorchSharp.Modules.Linear).Select(m => m.name).ToList();
        Assert.Equal(["classifier.1"], linears);

        // Its only Linear is the head, which "all-linear" leaves out: nothing is left to target.
        var allLinear = new AdapterConfig { Rank = 4, TargetModulesPattern = AdapterConfig.AllLinear };
        var nothing = Assert.Throws<LoraConfigurationException>(() => model.ApplyLora(allLinear));
        Assert.Contains("Nothing was changed", nothing.Message);
        Assert.Equal(namesBefore, ParameterNames(model));

        model.ApplyLora(allLinear, new LoraOptions { OutputLayer = "" });
        Assert.Equal(["classifier.1"], AdaptedPaths(model));
        Assert.Equal(ExpectedNamesAfterWrapping(namesBefore, linears), ParameterNames(model));
    }

    [Fact]
    public void MobilenetV2_conv_deep_inside_by_full_path()
    {
        using var model = torchvision.models.mobilenet_v2(num_classes: 10);
        model.eval();
        using var x = Input(32);
        var namesBefore = ParameterNames(model);
        using var before = Forward(model, x);

        // features.1.conv.0.0 is the first block's depthwise conv (groups = 32): grouped convolutions are refused by name.
        var grouped = Assert.Throws<LoraConfigurationException>(() =>
            model.ApplyLora(new AdapterConfig { Rank = 4, TargetModules = ["features.1.conv.0.0"] }));
        Assert.Contains("features.1.conv.0.0", grouped.Message);
        Assert.Contains("groups", grouped.Message);
        Assert.Equal(namesBefore, ParameterNames(model));

        // features.2.conv.0.0, at the same depth (InvertedResidual field → Sequential → Conv2dNormActivation Sequential),
        // is the second block's 1×1 expansion conv (16 → 96, groups = 1).
        string[] deep = ["features.2.conv.0.0", "features.1.conv.1"];
        model.ApplyLora(new AdapterConfig { Rank = 4, TargetModules = deep });
        Assert.Equal(deep.Order(), AdaptedPaths(model).Order());
        Assert.Equal(ExpectedNamesAfterWrapping(namesBefore, deep), ParameterNames(model));
        using (var fresh = Forward(model, x))
            Closeness.AssertBitIdentical(fresh, before);
        SetLoraB(model, amplitude: 1.0);
        using var adapted = Forward(model, x);
        Assert.False(Closeness.BitIdentical(adapted, before), "setting lora_B did not change the output");
    }

    [Fact]
    public void MobilenetV3_small_all_linear_wraps_the_classifier_but_not_its_head()
    {
        using var model = torchvision.models.mobilenet_v3_small();
        var linears = model.named_modules().Where(m => m.module is TorchSharp.Modules.Linear).Select(m => m.name).ToList();
        Assert.Equal(["classifier.0", "classifier.3"], linears);

        model.ApplyLora(new AdapterConfig { Rank = 8, TargetModulesPattern = AdapterConfig.AllLinear });
        Assert.Equal(["classifier.0"], AdaptedPaths(model));
    }

    [Fact]
    public void Alexnet_all_linear_wraps_the_classifier_linears_but_the_head()
    {
        using var model = torchvision.models.alexnet(num_classes: 10);
        model.eval();
        using var x = Input(64);
        using var before = Forward(model, x);
        var linears = model.named_modules().Where(m => m.module is TorchSharp.Modules.Linear).Select(m => m.name).ToList();
        Assert.Equal(["classifier.1", "classifier.4", "classifier.6"], linears);

        model.ApplyLora(new AdapterConfig { Rank = 4, TargetModulesPattern = AdapterConfig.AllLinear });
        Assert.Equal(["classifier.1", "classifier.4"], AdaptedPaths(model));
        SetLoraB(model);
        using var adapted = Forward(model, x);
        Assert.False(Closeness.BitIdentical(adapted, before), "setting lora_B did not change the output");
    }

    [Fact]
    public void GoogleNet_fc_is_refused_naming_its_sealed_field_and_the_model_is_untouched()
    {
        using var model = torchvision.models.googlenet(num_classes: 10);
        model.eval();
        using var x = Input(64);
        var namesBefore = ParameterNames(model);
        var flagsBefore = model.named_parameters().Select(p => p.parameter.requires_grad).ToList();
        using var before = Forward(model, x);

        var refused = Assert.Throws<LoraConfigurationException>(() =>
            model.ApplyLora(new AdapterConfig { Rank = 8, TargetModules = ["fc"] }));
        Assert.Contains("GoogleNet.fc", refused.Message);
        Assert.Contains("declared as Linear", refused.Message);
        Assert.Contains("Nothing was changed", refused.Message);

        Assert.Equal(namesBefore, ParameterNames(model));
        Assert.Equal(flagsBefore, model.named_parameters().Select(p => p.parameter.requires_grad).ToList());
        Assert.Empty(model.LoraLayers());
        using (var after = Forward(model, x))
            Closeness.AssertBitIdentical(after, before);

        // Everything else is reachable: the stem's conv sits in a Sequential (named children conv, bn) held by a
        // Module<Tensor, Tensor> field.
        model.ApplyLora(new AdapterConfig { Rank = 8, TargetModules = ["conv1.conv"] });
        Assert.Equal(["conv1.conv"], AdaptedPaths(model));
    }

    [Fact]
    public void Resnet18_training_fc_adapter_changes_only_adapter_parameters()
    {
        using var model = torchvision.models.resnet18(num_classes: 10);
        model.ApplyLora(new AdapterConfig { Rank = 4, TargetModules = ["fc"] });
        var adapter = model.NamedLoraParameters().Select(p => p.Path).ToList();
        Assert.Equal(["fc.lora_A.default.weight", "fc.lora_B.default.weight"], adapter);
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.Equal(adapter, trainable);

        var snapshot = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using var optimizer = optim.AdamW(model.LoraParameters(), lr: 1e-2);
        using var x = Input(32);
        using var labels = tensor(new long[] { 3, 7 });
        model.train();
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(x), labels);
            loss.backward();
            optimizer.step();
        }

        foreach (var (name, parameter) in model.named_parameters())
        {
            if (adapter.Contains(name))
                Assert.False(Closeness.BitIdentical(parameter, snapshot[name]), $"{name} did not change");
            else
                Assert.True(Closeness.BitIdentical(parameter, snapshot[name]), $"base parameter {name} changed");
        }
        foreach (var copy in snapshot.Values)
            copy.Dispose();
    }
}
