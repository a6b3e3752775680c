using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests.Files;

/// <summary>One of every layer kind LoRA adapts, with per-field ranks and a Trainable norm.</summary>
[LoraTarget(Rank = 2, Alpha = 4, Trainable = ["norm"])]
public sealed partial class EveryKind : nn.Module<Tensor, Tensor>
{
    private nn.Module<Tensor, Tensor> embed = nn.Embedding(20, 12);
    private nn.Module<Tensor, Tensor> conv1 = nn.Conv1d(12, 12, 3, padding: 1);
    private nn.Module<Tensor, Tensor> conv2 = nn.Conv2d(1, 6, 3, padding: 1);
    [LoraTarget(Rank = 3, Alpha = 3)] private nn.Module<Tensor, Tensor> proj = nn.Linear(12, 8);
    private readonly nn.Module<Tensor, Tensor> norm = nn.LayerNorm(12);

    public EveryKind() : base(nameof(EveryKind)) => RegisterComponents();

    /// <summary>Tokens [batch, seq] → [batch, seq, 8].</summary>
    public override Tensor forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var e = norm.call(embed.call(tokens));                 // [b, s, 12]
        var c1 = conv1.call(e.transpose(1, 2));                // [b, 12, s]
        var c2 = conv2.call(c1.unsqueeze(1)).mean([1]);        // [b, 12, s]
        return proj.call(c2.transpose(1, 2)).MoveToOuterDisposeScope();
    }
}

/// <summary>Linear 3→2 with bias at rank 2, alpha 4 (scaling 2): small enough for closed forms by hand.</summary>
[LoraTarget(Rank = 2, Alpha = 4)]
public sealed partial class TinyLinear : nn.Module<Tensor, Tensor>
{
    // On purpose: a rank that saves nothing (the analyzers say so), to keep the closed forms tiny.
#pragma warning disable LORA0007, LORA0008
    private nn.Module<Tensor, Tensor> proj = nn.Linear(3, 2);
#pragma warning restore LORA0007, LORA0008

    public TinyLinear() : base(nameof(TinyLinear)) => RegisterComponents();

    public override Tensor forward(Tensor x) => proj.call(x);
}

/// <summary>Helpers to compare whole models.</summary>
public static class ModelState
{
    /// <summary>Every parameter and buffer by name, as raw bytes, with requires_grad: changes if a value, a name
    /// (wrapping renames weights to base_layer.weight) or a freeze flag changes.</summary>
    public static List<(string Name, bool RequiresGrad, byte[] Bytes)> Snapshot(nn.Module model)
    {
        var result = new List<(string, bool, byte[])>();
        foreach (var (name, parameter) in model.named_parameters())
            result.Add((name, parameter.requires_grad, parameter.detach().contiguous().bytes.ToArray()));
        foreach (var (name, buffer) in model.named_buffers())
            result.Add((name, false, buffer.contiguous().bytes.ToArray()));
        return result;
    }

    public static void AssertSame(List<(string Name, bool RequiresGrad, byte[] Bytes)> expected, nn.Module model)
    {
        var actual = Snapshot(model);
        Assert.Equal(expected.Select(e => e.Name), actual.Select(a => a.Name));
        Assert.Equal(expected.Select(e => e.RequiresGrad), actual.Select(a => a.RequiresGrad));
        for (int i = 0; i < expected.Count; i++)
            Assert.True(expected[i].Bytes.AsSpan().SequenceEqual(actual[i].Bytes), $"'{expected[i].Name}' changed");
    }

    /// <summary>Copies every parameter and buffer by name. Tests run in parallel and share TorchSharp's global
    /// generator, so a seed alone does not give two models the same weights.</summary>
    public static TModule CopyWeights<TModule>(nn.Module from, TModule to) where TModule : nn.Module
    {
        var source = from.state_dict();
        using var noGrad = no_grad();
        foreach (var (name, target) in to.state_dict())
            target.copy_(source[name]);
        return to;
    }
}
