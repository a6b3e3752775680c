using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>The convolution helpers LoraConv1d and LoraConv2d share. Grouped convolutions are not supported.</summary>
internal static class LoraConvolution
{
    // LibTorch 2.10's oneDNN works on channels in blocks of 16 (8 under AVX2), and its k×k kernels get a partly
    // filled last block of the channels they sum over wrong: the input gradient of a convolution with r = 4 outputs
    // is wrong, often NaN (docs/known-issues.md). 16 is a whole number of blocks for both.
    private const long ChannelBlock = 16;

    /// <summary>
    /// The down projection <paramref name="down"/> applied to <paramref name="x"/>. On the CPU, when its kernel has
    /// more than one element and its r outputs are not a whole number of oneDNN channel blocks, it runs with its
    /// weight zero-padded to a multiple of 16 outputs and the extra (zero) outputs are dropped: the same values,
    /// and an input gradient oneDNN computes correctly. Elsewhere it is <c>down.call(x)</c>.
    /// </summary>
    public static Tensor DownProjection(Convolution down, Tensor x)
    {
        var weight = down.weight;
        long rank = down.out_channels;
        bool affected = weight.device_type == DeviceType.CPU && weight.dtype != ScalarType.Float64
            && down.kernel_size.Any(size => size > 1) && rank % ChannelBlock != 0;
        if (!affected)
            return down.call(x);

        var widening = new long[2 * weight.dim()];   // F.pad's order: the last axis first, the outputs' axis last
        widening[^1] = (rank + ChannelBlock - 1) / ChannelBlock * ChannelBlock - rank;
        using var wideWeight = nn.functional.pad(weight, widening);
        using var wide = Convolve(down, x, wideWeight);
        long channelAxis = wide.dim() - down.kernel_size.Length - 1;   // 0 for an unbatched input
        return wide.narrow(channelAxis, 0, rank);
    }

    // What TorchSharp 0.107's Conv1d/Conv2d.forward compute, with another weight and no bias.
    private static Tensor Convolve(Convolution c, Tensor x, Tensor weight)
    {
        bool twoD = c.kernel_size.Length == 2;
        if (c.padding_mode != PaddingModes.Zeros)
        {
            using var padded = nn.functional.pad(x, InputPadding(c), c.padding_mode);
            return twoD
                ? nn.functional.conv2d(padded, weight, null, c.stride, [0, 0], c.dilation)
                : nn.functional.conv1d(padded, weight, null, c.stride[0], 0, c.dilation[0]);
        }
        if (c.padding_type is { } type)
            return twoD
                ? nn.functional.conv2d_padding(x, weight, null, c.stride, type, c.dilation)
                : nn.functional.conv1d_padding(x, weight, null, c.stride[0], type, c.dilation[0]);
        return twoD
            ? nn.functional.conv2d(x, weight, null, c.stride, c.padding, c.dilation)
            : nn.functional.conv1d(x, weight, null, c.stride[0], c.padding![0], c.dilation[0]);
    }

    // The input padding TorchSharp 0.107 applies before a convolution whose padding mode is not zeros (its
    // _reversed_padding_repeated_twice, which is not public), entry for entry, so the adapter sees the windows its
    // base layer sees. For Padding.Same it is indexed by axis, not reversed (a non-square kernel gets the other
    // axis's padding); kept so, because the base layer does the same.
    private static long[] InputPadding(Convolution c)
    {
        if (c.padding is { } explicitPadding)
            return explicitPadding.Reverse().SelectMany(size => new[] { size, size }).ToArray();
        var result = new long[2 * c.kernel_size.Length];
        if (c.padding_type == Padding.Same)
            for (int i = 0; i < c.kernel_size.Length; i++)
            {
                long total = c.dilation[i] * (c.kernel_size[i] - 1);
                result[2 * i] = total / 2;
                result[2 * i + 1] = total - total / 2;
            }
        return result;
    }

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
    public LoraConv1d(Conv1d baseLayer, LoraConfig config, LoraOptions? options = null, string adapter = DefaultAdapter)
        : base(nameof(LoraConv1d), baseLayer, config, ShapeOf(baseLayer), options ?? LoraOptions.Default, adapter,
            (rank, device, dtype) => CreateDownProjection(baseLayer, rank, device, dtype),
            (rank, device, dtype) => nn.Conv1d(rank, baseLayer.out_channels, 1, bias: false, device: device, dtype: dtype))
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
    public LoraConv2d(Conv2d baseLayer, LoraConfig config, LoraOptions? options = null, string adapter = DefaultAdapter)
        : base(nameof(LoraConv2d), baseLayer, config, ShapeOf(baseLayer), options ?? LoraOptions.Default, adapter,
            (rank, device, dtype) => CreateDownProjection(baseLayer, rank, device, dtype),
            (rank, device, dtype) => nn.Conv2d(rank, baseLayer.out_channels, 1, bias: false, device: device, dtype: dtype))
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
