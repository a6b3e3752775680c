using System.Globalization;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>What <c>ApplyLora</c> did: parameter counts and the adapted layers.</summary>
public sealed class LoraReport
{
    private LoraReport(long trainable, long all, IReadOnlyList<LoraLayerReport> layers)
    {
        TrainableParameters = trainable;
        AllParameters = all;
        Layers = layers;
    }

    /// <summary>Parameters that will receive gradients: the adapters and the <c>Trainable</c> fields.</summary>
    public long TrainableParameters { get; }

    /// <summary>Every parameter of the model, adapters included (as PEFT counts them). A <see cref="QuantizedLinear"/>
    /// counts as the Linear it stands for (in · out weights and its bias), a <see cref="QuantizedEmbedding"/> as its table, as PEFT counts a 4-bit weight by its
    /// elements, not its packed bytes: the same total as over a float base.</summary>
    public long AllParameters { get; }

    /// <summary>100 · trainable / all.</summary>
    public double TrainablePercent => AllParameters == 0 ? 0 : 100.0 * TrainableParameters / AllParameters;

    /// <summary>One entry per adapted layer.</summary>
    public IReadOnlyList<LoraLayerReport> Layers { get; }

    /// <summary>Counts the parameters of <paramref name="model"/> as it is now.</summary>
    public static LoraReport Of(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long all = 0, trainable = 0;
        foreach (var parameter in model.parameters())
        {
            all += parameter.numel();
            if (parameter.requires_grad)
                trainable += parameter.numel();
        }
        // A quantized layer's codes are buffers, not parameters: count the weights they stand for.
        foreach (var quantized in model.modules().OfType<QuantizedLinear>())
            all += quantized.InFeatures * quantized.OutFeatures + (quantized.Bias?.numel() ?? 0);
        foreach (var quantized in model.modules().OfType<QuantizedEmbedding>())
            all += quantized.NumEmbeddings * quantized.EmbeddingDim;
        var layers = model.LoraLayers()
            .Select(entry => new LoraLayerReport(entry.Path, entry.Layer.Shape, entry.Layer.Rank, entry.Layer.Scaling))
            .ToList();
        return new LoraReport(trainable, all, layers);
    }

    /// <summary>PEFT's summary line, e.g.
    /// <c>trainable params: 600 || all params: 10,600 || trainable%: 5.6604</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"trainable params: {TrainableParameters:N0} || all params: {AllParameters:N0} || trainable%: {TrainablePercent:F4}");
}

/// <summary>One adapted layer.</summary>
/// <param name="Path">Where it sits in the model, e.g. <c>layers.0.q_proj</c>.</param>
/// <param name="Shape">The base layer's sizes.</param>
/// <param name="Rank">The adapter's rank.</param>
/// <param name="Scaling">alpha / r (or alpha / √r).</param>
public sealed record LoraLayerReport(string Path, LoraLayerShape Shape, int Rank, double Scaling)
{
    /// <summary>Numbers in the adapter: r·(in·k + out).</summary>
    public long AdapterParameters => Shape.AdapterParameters(Rank);

    /// <summary>The layer, its rank and what the adapter costs, e.g.
    /// <c>q_proj: Linear 512→512, rank 8: 8,192 trainable of 262,144, 3.1%</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Path}: {Shape}, rank {Rank}: {AdapterParameters:N0} trainable of {Shape.BaseWeightParameters:N0}, " +
        $"{100.0 * AdapterParameters / Shape.BaseWeightParameters:F1}%");
}
