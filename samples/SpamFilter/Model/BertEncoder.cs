using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SpamFilter.Model;

/// <summary>Hugging Face's <c>BertEncoder</c>: the layers in a list named <c>layer</c>, so their paths are
/// <c>encoder.layer.N…</c> as in the checkpoint.</summary>
public sealed class BertEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<BertLayer> layer = new();

    public BertEncoder(BertConfig config) : base(nameof(BertEncoder))
    {
        for (int i = 0; i < config.Layers; i++)
            layer.Add(new BertLayer(config));
        RegisterComponents();
    }

    /// <summary>The last layer's hidden states [batch, length, hidden].</summary>
    public override Tensor forward(Tensor hidden, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        foreach (var block in layer)
            hidden = block.call(hidden, additiveMask);
        return hidden.MoveToOuterDisposeScope();
    }
}
