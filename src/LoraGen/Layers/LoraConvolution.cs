using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>The convolution helpers LoraConv1d and LoraConv2d share. Grouped convolutions are not supported.</summary>
internal static class LoraConvolution
{
    /// <summary>The sizes of a convolution; refuses grouped ones, naming <paramref name="target"/>
    /// (the field's path) or else the layer.</summary>
    public static LoraLayerShape ShapeOf(Convolution layer, LoraLayerKind kind, string? target = null)
    {
        if (layer.groups != 1)
            throw new LoraConfigurationException(target ?? $"{kind} {layer.in_channels}→{layer.out_channels}",
                $"grouped convolutions (groups = {layer.groups}) cannot be adapted yet; only groups = 1 is supported.");
        long kernelElements = layer.kernel_size.Aggregate(1L, (product, size) => product * size);
        return new LoraLayerShape(kind, layer.in_channels, layer.out_channels, kernelElements);
    }
}

/// <summary>LoRA over a <c>Conv1d</c>.</summary>
public sealed class LoraConv1d : LoraDownUpLayer
{
    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh adapter (B = 0, so outputs are unchanged).</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, the convolution is grouped,
    /// or the adapter would not save parameters.</exception>
    public LoraConv1d(Conv1d baseLayer, LoraConfig config, LoraOptions? options = null)
        : base(nameof(LoraConv1d), baseLayer, config, ShapeOf(baseLayer), options ?? LoraOptions.Default,
            (device, dtype) => CreateDownProjection(baseLayer, config.Rank, device, dtype),
            (device, dtype) => nn.Conv1d(config.Rank, baseLayer.out_channels, 1, bias: false, device: device, dtype: dtype))
    {
    }

    /// <summary>The sizes of a Conv1d: channels in and out, kernel width.</summary>
    public static LoraLayerShape ShapeOf(Conv1d layer) => LoraConvolution.ShapeOf(layer, LoraLayerKind.Conv1d);

    private static Conv1d CreateDownProjection(Conv1d b, int rank, Device device, ScalarType dtype) =>
        b.padding_type == Padding.Same
            ? nn.Conv1d(b.in_channels, rank, b.kernel_size[0], Padding.Same, b.stride[0], b.dilation[0], b.padding_mode,
                bias: false, device: device, dtype: dtype)
            : nn.Conv1d(b.in_channels, rank, b.kernel_size[0], b.stride[0], b.padding![0], b.dilation[0], b.padding_mode,
                bias: false, device: device, dtype: dtype);
}

/// <summary>LoRA over a <c>Conv2d</c>.</summary>
public sealed class LoraConv2d : LoraDownUpLayer
{
    /// <summary>Wraps <paramref name="baseLayer"/> with a fresh adapter (B = 0, so outputs are unchanged).</summary>
    /// <exception cref="LoraConfigurationException">The options make no sense, the convolution is grouped,
    /// or the adapter would not save parameters.</exception>
    public LoraConv2d(Conv2d baseLayer, LoraConfig config, LoraOptions? options = null)
        : base(nameof(LoraConv2d), baseLayer, config, ShapeOf(baseLayer), options ?? LoraOptions.Default,
            (device, dtype) => CreateDownProjection(baseLayer, config.Rank, device, dtype),
            (device, dtype) => nn.Conv2d(config.Rank, baseLayer.out_channels, 1, bias: false, device: device, dtype: dtype))
    {
    }

    /// <summary>The sizes of a Conv2d: channels in and out, kernel height × width.</summary>
    public static LoraLayerShape ShapeOf(Conv2d layer) => LoraConvolution.ShapeOf(layer, LoraLayerKind.Conv2d);

    private static Conv2d CreateDownProjection(Conv2d b, int rank, Device device, ScalarType dtype)
    {
        var kernel = (b.kernel_size[0], b.kernel_size[1]);
        var stride = (b.stride[0], b.stride[1]);
        var dilation = (b.dilation[0], b.dilation[1]);
        return b.padding_type == Padding.Same
            ? nn.Conv2d(b.in_channels, rank, kernel, Padding.Same, stride, dilation, b.padding_mode,
                bias: false, device: device, dtype: dtype)
            : nn.Conv2d(b.in_channels, rank, kernel, stride, (b.padding![0], b.padding[1]), dilation, b.padding_mode,
                bias: false, device: device, dtype: dtype);
    }
}
