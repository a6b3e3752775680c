using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

public abstract partial class LoraLayer
{
    /// <summary>The sizes of a layer LoRA can wrap.</summary>
    /// <param name="layer">The layer a target field holds.</param>
    /// <param name="target">The field or path, for the error message.</param>
    /// <exception cref="LoraConfigurationException">The layer is of a kind LoRA cannot adapt, or is already wrapped.</exception>
    public static LoraLayerShape ShapeOf(nn.Module<Tensor, Tensor> layer, string target) => layer switch
    {
        Linear linear => LoraLinear.ShapeOf(linear),
        QuantizedLinear quantized => LoraLinear.ShapeOf(quantized),
        Embedding embedding => LoraEmbedding.ShapeOf(embedding),
        Conv1d conv => LoraConvolution.ShapeOf(conv, LoraLayerKind.Conv1d, target),
        Conv2d conv => LoraConvolution.ShapeOf(conv, LoraLayerKind.Conv2d, target),
        _ => throw Unsupported(layer, target),
    };

    /// <summary>Wraps a supported layer in the matching adapter layer.</summary>
    /// <exception cref="LoraConfigurationException">The layer cannot be adapted, the options make no sense,
    /// or the adapter would not save parameters.</exception>
    public static LoraLayer Wrap(nn.Module<Tensor, Tensor> layer, LoraConfig config, LoraOptions? options = null,
        string adapter = DefaultAdapter) => layer switch
    {
        Linear linear => new LoraLinear(linear, config, options, adapter),
        QuantizedLinear quantized => new LoraLinear(quantized, config, options, adapter),
        Embedding embedding => new LoraEmbedding(embedding, config, options, adapter),
        Conv1d conv => new LoraConv1d(conv, config, options, adapter),
        Conv2d conv => new LoraConv2d(conv, config, options, adapter),
        _ => throw Unsupported(layer, nameof(layer)),
    };

    private static LoraConfigurationException Unsupported(nn.Module<Tensor, Tensor>? layer, string target) => layer switch
    {
        LoraLayer => new LoraConfigurationException(target,
            "already holds a LoRA adapter: ApplyLora was called twice, or the layer was wrapped by hand."),
        null => new LoraConfigurationException(target, "is null: create the layer before applying LoRA."),
        _ => new LoraConfigurationException(target,
            $"holds a {layer.GetType().Name}, which LoRA cannot adapt. Supported layers: Linear, QuantizedLinear, Embedding, Conv1d, Conv2d."),
    };
}
