using LoraGen.Files;
using LoraGen.Tests.Support;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Variants;

/// <summary>PiSSA and OLoRA: the adapted model starts where the base was (the base holds the residual), and the saved
/// adapter, converted to a plain rank-2r LoRA as PEFT's path_initial_model_for_weight_conversion writes it, gives the
/// trained model's outputs on the original, untouched base.</summary>
public sealed class PissaOloraTests
{
    // The base weights, drawn once: seeding the global generator per model would race with test classes running
    // in parallel, which draw from the same generator.
    private static readonly Sequential Weights = nn.Sequential(nn.Linear(12, 10), nn.Tanh(), nn.Linear(10, 6));

    private static Sequential Original()
    {
        var model = nn.Sequential(nn.Linear(12, 10), nn.Tanh(), nn.Linear(10, 6));
        using var noGrad = no_grad();
        foreach (var ((_, to), (_, from)) in model.named_parameters().Zip(Weights.named_parameters()))
            to.copy_(from);
        return model;
    }

    public static TheoryData<string, int?> Inits => new()
    {
        { "Pissa", null },
        { "Pissa", 4 },
        { "Olora", null },
    };

    [Theory]
    [MemberData(nameof(Inits))]
    public void Starts_at_the_original_outputs_and_saves_a_plain_LoRA_that_works_on_the_original_base(string init, int? iterations)
    {
        var config = new AdapterConfig
        {
            Rank = 3, Alpha = 6, TargetModules = ["0", "2"], Init = Enum.Parse<LoraInit>(init), PissaIterations = iterations,
        };
        var x = randn(8, 12);
        var reference = Original();
        reference.eval();
        var before = reference.call(x).detach();

        var model = Original();
        model.ApplyLora(config);
        model.eval();
        var layer = model.LoraLayers().First().Layer;
        Assert.True(Adapters.Adapter(layer, "lora_A.weight").isfinite().all().item<bool>(), Adapters.Adapter(layer, "lora_A.weight").ToString(TorchSharp.TensorStringStyle.Numpy));
        Assert.True(((Linear)layer.BaseLayer).weight!.isfinite().all().item<bool>(), "residual");
        Closeness.AssertClose(model.call(x), before, 1e-5);
        // The base now holds the residual: W − s·B₀·A₀, and A, B are not the zero-start kind.
        Assert.True(Adapters.Adapter(layer, "lora_B.weight").abs().max().item<float>() > 0);

        model.train();
        var optimizer = optim.AdamW(model.LoraParameters(), lr: 0.02);
        var target = randn(8, 6);
        for (int step = 0; step < 5; step++)
        {
            optimizer.zero_grad();
            nn.functional.mse_loss(model.call(x), target).backward();
            optimizer.step();
        }
        model.eval();
        var trained = model.call(x).detach();
        Assert.True((trained - before).abs().max().item<float>() > 1e-3);

        var dir = ScratchDirectories.New();
        model.SaveAdapter(dir);
        var saved = AdapterConfig.Read(Path.Combine(dir, AdapterConfig.FileName));
        Assert.Equal(6, saved.Rank);        // 2r
        Assert.Equal(12, saved.Alpha);      // alpha doubled: the scaling stays 2
        Assert.Equal("true", saved.InitLoraWeights);

        var onOriginal = Original();
        onOriginal.LoadAdapter(dir);
        onOriginal.eval();
        Closeness.AssertClose(onOriginal.call(x), trained, 1e-4);
    }

    [Fact]
    public void Pissa_factors_are_the_scaled_top_singular_vectors()
    {
        manual_seed(12);
        var linear = nn.Linear(8, 6, dtype: ScalarType.Float64);
        var w = linear.weight!.detach().clone();
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 2, Alpha = 4, Init = LoraInit.Pissa });
        var (u, s, vh) = linalg.svd(w.to(ScalarType.Float32), fullMatrices: false);
        var a = Adapters.Adapter(layer, "lora_A.weight");
        var b = Adapters.Adapter(layer, "lora_B.weight");
        // s·B·A is the best rank-2 approximation of W, and the residual is the rest.
        var best = u[.., ..2].matmul(diag(s[..2])).matmul(vh[..2]).to(ScalarType.Float64);
        Closeness.AssertClose(2 * b.matmul(a), best, 1e-5);
        Closeness.AssertClose(linear.weight! + 2 * b.matmul(a), w, 1e-6);
        // B = U·√(S/s), so its columns are orthogonal with norms S/s.
        Closeness.AssertClose(b.t().matmul(b), diag(s[..2] / 2).to(ScalarType.Float64), 1e-5);
    }

    [Fact]
    public void Olora_factors_are_the_QR_factors()
    {
        manual_seed(13);
        var linear = nn.Linear(5, 7);
        var w = linear.weight!.detach().clone();
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 2, Alpha = 2, Init = LoraInit.Olora });
        var (q, r) = linalg.qr(w);
        Closeness.AssertClose(Adapters.Adapter(layer, "lora_B.weight"), q[.., ..2], 1e-6);
        Closeness.AssertClose(Adapters.Adapter(layer, "lora_A.weight"), r[..2], 1e-6);
        Closeness.AssertClose(linear.weight!, w - q[.., ..2].matmul(r[..2]), 1e-6);
    }

    [Fact]
    public void Pissa_and_Olora_are_refused_on_embeddings_and_convolutions_and_above_the_weights_rank()
    {
        var embedding = Assert.Throws<LoraConfigurationException>(() => new LoraEmbedding(nn.Embedding(10, 4), new LoraConfig { Rank = 2, Init = LoraInit.Pissa }));
        Assert.Contains("Linear layers only", embedding.Message, StringComparison.Ordinal);
        Assert.Throws<LoraConfigurationException>(() => new LoraConv2d(nn.Conv2d(3, 4, 3), new LoraConfig { Rank = 2, Init = LoraInit.Olora }));
        var rank = Assert.Throws<LoraConfigurationException>(() => new LoraLinear(nn.Linear(3, 8), new LoraConfig { Rank = 4, Init = LoraInit.Pissa }));
        Assert.Contains("at most 3", rank.Message, StringComparison.Ordinal);
    }
}
