using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Variants;

/// <summary>LoRA+: the optimizer holds PEFT's create_loraplus_optimizer groups and learning rates.</summary>
public sealed class LoraPlusTests
{
    [Fact]
    public void AdamW_holds_As_rate_for_A_ratio_times_it_for_B_and_the_embedding_rate_for_embeddings()
    {
        manual_seed(21);
        var model = nn.Sequential(("emb", nn.Embedding(20, 8)), ("up", nn.Linear(8, 6)), ("down", nn.Linear(6, 4)));
        model.ApplyLora(new LoraGen.Files.AdapterConfig { Rank = 2, Alpha = 2, TargetModules = ["emb", "up"] });
        model.AddAdapter("dora", new LoraGen.Files.AdapterConfig { Rank = 2, Alpha = 2, TargetModules = ["up"], UseDora = true });
        model.SetActiveAdapters("default", "dora");

        var groups = model.LoraPlusGroups(1e-4, ratio: 16);
        Assert.Equal(["groupA", "embedding", "groupB"], groups.Select(g => g.Name));
        var names = model.named_parameters().ToDictionary(p => p.parameter.Handle, p => p.name);
        string[] Names(LoraPlusGroup group) => [.. group.Parameters.Select(p => names[p.Handle])];
        Assert.Equal(["up.lora_A.default.weight", "up.lora_A.dora.weight"], Names(groups[0]));
        Assert.Equal(["emb.lora_embedding_A.default", "emb.lora_embedding_B.default"], Names(groups[1]));
        // DoRA's Linear magnitude is 1-D: PEFT puts it with B.
        Assert.Equal(["up.lora_B.default.weight", "up.lora_B.dora.weight", "up.lora_magnitude_vector.dora.weight"], Names(groups[2]));

        var optimizer = optim.AdamW(model.LoraPlusParameterGroups(1e-4, ratio: 16, weightDecay: 0.01));
        var rates = optimizer.ParamGroups.Select(g => g.LearningRate).ToList();
        Assert.Equal([1e-4, 1e-6, 1.6e-3], rates, (x, y) => Math.Abs(x - y) < 1e-15);
        Assert.Equal([2, 2, 3], optimizer.ParamGroups.Cast<ParamGroup>().Select(g => g.Parameters.Count()));

        // One step moves B and leaves the frozen base alone.
        var b = ((LoraLayer)model.named_children().Single(c => c.name == "up").module).AdapterParametersOf("default").ToList()[1].Parameter;
        using (no_grad())
            foreach (var (_, layer) in model.LoraLayers())
                foreach (var (_, p) in layer.NamedAdapterParameters)
                    p.normal_(0, 0.1);
        var before = b.detach().clone();
        model.call(tensor(new long[] { 1, 2, 3 })).sum().backward();
        optimizer.step();
        Assert.False(before.allclose(b, 0, 0));
    }

    [Fact]
    public void Bad_rates_are_refused()
    {
        var model = nn.Sequential(nn.Linear(4, 4));
        model.ApplyLora(new LoraGen.Files.AdapterConfig { Rank = 1, TargetModules = ["0"] });
        Assert.Throws<ArgumentOutOfRangeException>(() => model.LoraPlusGroups(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.LoraPlusGroups(1e-3, ratio: double.NaN));
    }
}
