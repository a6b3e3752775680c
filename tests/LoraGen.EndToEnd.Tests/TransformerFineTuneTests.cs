using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.EndToEnd.Tests;

public sealed class TransformerFineTuneTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The built-in task: at every position, predict the token three places further along
    /// the vocabulary (a cipher the frozen random model knows nothing of).</summary>
    private static (Tensor Tokens, Tensor Targets) Batch(Generator generator)
    {
        var tokens = randint(0, Dims.Vocabulary, [32, 8], generator: generator);
        return (tokens, (tokens + 3).remainder(Dims.Vocabulary));
    }

    private static Tensor Loss(TinyTransformer model, Tensor tokens, Tensor targets) =>
        nn.functional.cross_entropy(model.forward(tokens).reshape(-1, Dims.Vocabulary), targets.reshape(-1));

    [Fact]
    public void The_generator_resolved_targets_options_and_sizes_at_compile_time()
    {
        var attention = (ILoraModule)new SelfAttention();
        Assert.Equal(["q_proj", "v_proj"], attention.LoraTargets.Select(t => t.Field));
        var q = attention.LoraTargets[0];
        Assert.Equal(new LoraConfig { Rank = 4, Alpha = 8 }, q.Config);
        Assert.Equal(new LoraLayerShape(LoraLayerKind.Linear, 32, 32), q.Shape);

        var feedForward = (ILoraModule)new FeedForward();
        Assert.Equal([8, 2], feedForward.LoraTargets.Select(t => t.Config.Rank));
        Assert.Equal(new LoraLayerShape(LoraLayerKind.Linear, 128, 32), feedForward.LoraTargets[1].Shape);

        var model = (ILoraModule)new TinyTransformer();
        var embed = Assert.Single(model.LoraTargets);
        Assert.Equal(LoraLayerKind.Embedding, embed.Kind);
        Assert.Equal(new LoraLayerShape(LoraLayerKind.Embedding, 16, 32), embed.Shape);
    }

    [Fact]
    public void Fine_tuning_trains_only_adapters_merges_exactly_and_unloads_to_the_original_names()
    {
        torch.manual_seed(7);
        var generator = new Generator(7);
        var model = new TinyTransformer();
        var namesBefore = model.named_parameters().Select(p => p.name).ToList();

        var report = model.ApplyLora();
        // Closed forms: q, v 4·(32+32) each; fc1 8·(32+128); fc2 2·(128+32); embedding 4·(16+32).
        long adapters = 2 * 4 * (32 + 32) + 8 * (32 + 128) + 2 * (128 + 32) + 4 * (16 + 32);
        Assert.Equal(adapters, report.TrainableParameters);
        Assert.Equal(5, report.Layers.Count);

        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var optimizer = optim.AdamW(model.LoraParameters(), lr: 1e-2);
        model.train();
        float first = 0, last = 0;
        for (int step = 0; step < 100; step++)
        {
            using var scope = NewDisposeScope();
            var (tokens, targets) = Batch(generator);
            optimizer.zero_grad();
            var loss = Loss(model, tokens, targets);
            loss.backward();
            optimizer.step();
            if (step < 5) first += loss.item<float>() / 5;
            if (step >= 95) last += loss.item<float>() / 5;
        }
        output.WriteLine($"mean loss over the first 5 steps {first:F3}, over the last 5 {last:F3}");
        Assert.True(last < 0.2 * first, $"loss went from {first:F3} to {last:F3}");

        var trainable = model.NamedLoraParameters().Select(p => p.Path).ToHashSet();
        foreach (var (name, tensor) in model.state_dict())
        {
            bool changed = !tensor.to(ScalarType.Float64).allclose(before[name].to(ScalarType.Float64), rtol: 0, atol: 0);
            Assert.True(changed == trainable.Contains(name), $"{name}: changed = {changed}, trainable = {trainable.Contains(name)}");
        }

        model.eval();
        var (testTokens, _) = Batch(generator);
        using var noGrad = no_grad();
        var unmerged = model.forward(testTokens);
        model.Merge();
        var merged = model.forward(testTokens);
        var gap = (merged - unmerged).abs().max().item<float>() / unmerged.abs().max().item<float>();
        Assert.True(gap < 1e-5, $"merged differs from unmerged by {gap:G3} (relative)");
        model.Unmerge();

        model.MergeAndUnload();
        Assert.Equal(namesBefore, model.named_parameters().Select(p => p.name));
        var unloaded = model.forward(testTokens);
        var unloadGap = (unloaded - unmerged).abs().max().item<float>() / unmerged.abs().max().item<float>();
        Assert.True(unloadGap < 1e-5, $"unloaded differs from unmerged by {unloadGap:G3} (relative)");
    }
}
