using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// LoRA over a convolution, as in PEFT: <c>lora_A</c> is a convolution like the base one (same kernel,
/// stride, padding, dilation) down to r channels, <c>lora_B</c> a 1-wide convolution back up to the
/// base's output channels. Their composition is one convolution whose weight is B·A, which is what
/// Merge adds. Grouped convolutions are not supported.
/// </summary>
public abstract class LoraConvolution : LoraLayer
{
    private readonly Convolution loraA;
    private readonly Convolution loraB;

    /// <summary>Wraps <paramref name="baseLayer"/>; <paramref name="createA"/> and <paramref name="createB"/>
    /// build the two adapter convolutions on the given device and dtype.</summary>
    private protected LoraConvolution(
        string name,
        Convolution baseLayer,
        LoraConfig config,
        LoraLayerShape shape,
        LoraOptions options,
        Func<Device, ScalarType, Convolution> createA,
        Func<Device, ScalarType, Convolution> createB)
        : base(name, baseLayer, config, shape, options)
    {
        var device = baseLayer.weight.device;
        var dtype = AdapterTypeFor(baseLayer.weight.dtype, options);
        loraA = createA(device, dtype);
        loraB = createB(device, dtype);
        InitializeDownProjection(loraA.weight);
        using (no_grad())
            nn.init.zeros_(loraB.weight);
        register_module("lora_A", loraA);
        register_module("lora_B", loraB);
    }

    /// <summary>The sizes of a convolution; refuses grouped and transposed ones.</summary>
    private protected static LoraLayerShape ShapeOf(Convolution layer, LoraLayerKind kind)
    {
        if (layer.groups != 1)
            throw new LoraConfigurationException($"{kind} {layer.in_channels}→{layer.out_channels}",
                $"grouped convolutions (groups = {layer.groups}) cannot be adapted yet; only groups = 1 is supported.");
        long kernelElements = layer.kernel_size.Aggregate(1L, (product, size) => product * size);
        return new LoraLayerShape(kind, layer.in_channels, layer.out_channels, kernelElements);
    }

    /// <inheritdoc />
    public override IEnumerable<(string Name, Parameter Parameter)> NamedAdapterParameters =>
        [("lora_A.weight", loraA.weight), ("lora_B.weight", loraB.weight)];

    /// <inheritdoc />
    protected override Parameter BaseWeight => ((Convolution)BaseLayer).weight;

    /// <inheritdoc />
    protected override Tensor AdapterForward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var down = loraA.call(AdapterDropout(x.to(loraA.weight.dtype)));
        return loraB.call(down).mul(Scaling).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        // B is 1-wide, so the composed kernel is [out, r] · [r, in·k], laid out like the base weight.
        var b = loraB.weight.to(ScalarType.Float32).flatten(1);
        var a = loraA.weight.to(ScalarType.Float32).flatten(1);
        var product = b.matmul(a).reshape(BaseWeight.shape);
        return product.mul(Scaling).MoveToOuterDisposeScope();
    }
}

/// <summary>LoRA over a <c>Conv1d</c>.</summary>
public sealed class LoraConv1d : LoraConvolution
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
    public static LoraLayerShape ShapeOf(Conv1d layer) => ShapeOf(layer, LoraLayerKind.Conv1d);

    private static Conv1d CreateDownProjection(Conv1d b, int rank, Device device, ScalarType dtype) =>
        b.padding_type == Padding.Same
            ? nn.Conv1d(b.in_channels, rank, b.kernel_size[0], Padding.Same, b.stride[0], b.dilation[0], b.padding_mode,
                bias: false, device: device, dtype: dtype)
            : nn.Conv1d(b.in_channels, rank, b.kernel_size[0], b.stride[0], b.padding![0], b.dilation[0], b.padding_mode,
                bias: false, device: device, dtype: dtype);
}

/// <summary>LoRA over a <c>Conv2d</c>.</summary>
public sealed class LoraConv2d : LoraConvolution
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
    public static LoraLayerShape ShapeOf(Conv2d layer) => ShapeOf(layer, LoraLayerKind.Conv2d);

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
