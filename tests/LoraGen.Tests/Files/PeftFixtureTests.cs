using System.Text;
using LoraGen.Files;
using TorchSharp;
using static LoraGen.Tests.Files.HandWrittenSafetensors;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

/// <summary>An adapter laid out as PEFT saves it, assembled by hand, loads into a model with known weights
/// and computes the closed form W·x + b + (alpha/r)·B·A·x.</summary>
public sealed class PeftFixtureTests
{
    // Base Linear 3→2 and an adapter at r = 2; the file says lora_alpha 4, so scaling = 2.
    private static readonly double[,] W = { { 0.5, -1.0, 2.0 }, { 1.5, 0.25, -0.75 } };
    private static readonly double[] Bias = [0.1, -0.2];
    private static readonly double[,] A = { { 1.0, 0.5, -0.5 }, { -1.25, 2.0, 0.75 } }; // [r, in]
    private static readonly double[,] B = { { 0.5, -1.5 }, { 2.0, 0.25 } };             // [out, r]

    private const string Config = """
        {
          "alpha_pattern": {},
          "auto_mapping": null,
          "base_model_name_or_path": "tiny",
          "bias": "none",
          "fan_in_fan_out": false,
          "inference_mode": true,
          "init_lora_weights": true,
          "layers_pattern": null,
          "layers_to_transform": null,
          "lora_alpha": 4,
          "lora_dropout": 0.0,
          "megatron_config": null,
          "modules_to_save": null,
          "peft_type": "LORA",
          "r": 2,
          "rank_pattern": {},
          "revision": null,
          "target_modules": ["proj"],
          "task_type": null,
          "use_dora": false,
          "use_rslora": false,
          "some_future_option": {"nested": [1, 2, 3]}
        }
        """;

    private static string WriteFixture()
    {
        // B stored as F16 (values exactly representable), A as F32: LoadAdapter converts to the adapter dtype.
        var header = """{"__metadata__":{"format":"pt"},"base_model.model.proj.lora_A.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"base_model.model.proj.lora_B.weight":{"dtype":"F16","shape":[2,2],"data_offsets":[24,32]}}""";
        var data = Concat(F32(1.0f, 0.5f, -0.5f, -1.25f, 2.0f, 0.75f), F16(0.5f, -1.5f, 2.0f, 0.25f));
        var directory = ScratchDirectories.New();
        File.WriteAllBytes(Path.Combine(directory, "adapter_model.safetensors"), Assemble(header, data));
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), Config, Encoding.UTF8);
        return directory;
    }

    private static TinyLinear ModelWithKnownWeights()
    {
        var model = new TinyLinear();
        using var noGrad = no_grad();
        var linear = (TorchSharp.Modules.Linear)model.named_children().Single().module;
        linear.weight!.copy_(tensor(new float[] { 0.5f, -1f, 2f, 1.5f, 0.25f, -0.75f }).reshape(2, 3));
        linear.bias!.copy_(tensor(new float[] { 0.1f, -0.2f }));
        return model;
    }

    private static double[] ClosedForm(double[] x)
    {
        var y = new double[2];
        for (int o = 0; o < 2; o++)
        {
            double update = 0;
            for (int r = 0; r < 2; r++)
            {
                double ax = 0;
                for (int i = 0; i < 3; i++)
                    ax += A[r, i] * x[i];
                update += B[o, r] * ax;
            }
            double wx = 0;
            for (int i = 0; i < 3; i++)
                wx += W[o, i] * x[i];
            y[o] = wx + Bias[o] + 4.0 / 2.0 * update;
        }
        return y;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_PEFT_layout_file_gives_the_closed_form(bool applyLoraFirst)
    {
        var directory = WriteFixture();
        var model = ModelWithKnownWeights();
        if (applyLoraFirst)
            model.ApplyLora(new LoraOptions { AllowNoSavings = true }); // r = 2 on 3→2 saves nothing; fine for a closed form
        model.LoadAdapter(directory);

        var inputs = new[] { new[] { 1.0, 2.0, 3.0 }, new[] { -0.5, 0.25, 4.0 } };
        var x = tensor(inputs.SelectMany(v => v).Select(v => (float)v).ToArray()).reshape(2, 3);
        var y = model.forward(x).to(float64);
        for (int n = 0; n < inputs.Length; n++)
        {
            var expected = ClosedForm(inputs[n]);
            for (int o = 0; o < 2; o++)
                Assert.Equal(expected[o], y[n, o].item<double>(), 4);
        }
        var layer = Assert.Single(model.LoraLayers()).Layer;
        Assert.Equal(2.0, layer.Scaling);
        Assert.Equal(ScalarType.Float32, Adapters(layer)["lora_B.weight"].dtype);
    }

    [Fact]
    public void A_file_whose_alpha_differs_from_the_applied_adapter_is_refused_naming_the_scaling()
    {
        var directory = WriteFixture();
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), Config.Replace("\"lora_alpha\": 4", "\"lora_alpha\": 8"));
        var model = ModelWithKnownWeights();
        model.ApplyLora(new LoraOptions { AllowNoSavings = true }); // r = 2 on 3→2 saves nothing; fine for a closed form
        var before = ModelState.Snapshot(model);
        var error = Assert.Throws<LoraFileException>(() => model.LoadAdapter(directory));
        Assert.Contains("proj: scaling 4 in adapter_config.json (alpha 8), 2 in the model", error.Message);
        ModelState.AssertSame(before, model);
    }

    [Fact]
    public void Unsupported_PEFT_options_are_refused_by_name()
    {
        foreach (var (from, to, expected) in new[]
        {
            ("\"use_dora\": false", "\"use_dora\": \"yes\"", "use_dora must be true or false"),
            ("\"bias\": \"none\"", "\"bias\": \"all\"", "bias is \"all\""),
            ("\"peft_type\": \"LORA\"", "\"peft_type\": \"IA3\"", "peft_type is \"IA3\""),
            ("\"r\": 2", "\"r\": 0", "r must be a whole number of at least 1, but it is 0"),
            ("\"rank_pattern\": {}", "\"rank_pattern\": {\"(\": 2}", "is not a valid regular expression"),
        })
        {
            var error = Assert.Throws<LoraFileException>(() => AdapterConfig.Parse(Encoding.UTF8.GetBytes(Config.Replace(from, to)), "c.json"));
            Assert.Contains(expected, error.Message);
        }
    }

    private static Dictionary<string, TorchSharp.Modules.Parameter> Adapters(LoraLayer layer) =>
        layer.AdapterParametersOf(LoraLayer.DefaultAdapter).ToDictionary(p => p.Name, p => p.Parameter);
}
