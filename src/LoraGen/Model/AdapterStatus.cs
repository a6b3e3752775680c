using static TorchSharp.torch;

namespace LoraGen;

/// <summary>One adapter layer's state (PEFT's <c>TunerLayerStatus</c>).</summary>
/// <param name="Path">The layer's path in the model.</param>
/// <param name="ModuleType">The wrapper's type, e.g. <c>LoraLinear</c>.</param>
/// <param name="Enabled">Whether forward adds adapters (false inside <see cref="LoraModelExtensions.DisableAdapters"/>).</param>
/// <param name="ActiveAdapters">The adapters forward adds, in order.</param>
/// <param name="MergedAdapters">The adapters merged into the base weight.</param>
/// <param name="RequiresGrad">Per adapter, whether all of its parameters train.</param>
/// <param name="AvailableAdapters">Every adapter the layer holds.</param>
/// <param name="Devices">Per adapter, the devices its parameters are on.</param>
public sealed record LoraLayerStatus(
    string Path,
    string ModuleType,
    bool Enabled,
    IReadOnlyList<string> ActiveAdapters,
    IReadOnlyList<string> MergedAdapters,
    IReadOnlyDictionary<string, bool> RequiresGrad,
    IReadOnlyList<string> AvailableAdapters,
    IReadOnlyDictionary<string, IReadOnlyList<string>> Devices)
{
    internal static LoraLayerStatus Of(string path, LoraLayer layer) => new(
        path,
        layer.GetType().Name,
        layer.AdapterEnabled,
        [.. layer.ActiveAdapters],
        [.. layer.MergedAdapters],
        layer.AdapterNames.ToDictionary(name => name, name => layer.NamedParametersOf(name).All(p => p.Parameter.requires_grad)),
        [.. layer.AdapterNames],
        layer.AdapterNames.ToDictionary(name => name,
            name => (IReadOnlyList<string>)layer.NamedParametersOf(name).Select(p => p.Parameter.device.ToString()).Distinct().ToList()));
}

/// <summary>The model's adapters at a glance (PEFT's <c>TunerModelStatus</c>). Where layers disagree (one adapter active
/// here, another there), the <c>…AreRegular</c> flag is false and the list is the union.</summary>
/// <param name="BaseModelType">The model's type.</param>
/// <param name="TrainableParameters">Parameters with requires_grad.</param>
/// <param name="TotalParameters">All parameters.</param>
/// <param name="AdapterLayers">How many layers hold adapters.</param>
/// <param name="Enabled">Whether every layer adds its adapters (null when some do and some do not).</param>
/// <param name="ActiveAdapters">The active adapters (the union when <paramref name="ActiveAreRegular"/> is false).</param>
/// <param name="ActiveAreRegular">Whether every layer has the same active adapters (among those it holds).</param>
/// <param name="MergedAdapters">Adapters merged in at least one layer.</param>
/// <param name="AvailableAdapters">Every adapter of the model.</param>
public sealed record LoraModelStatus(
    string BaseModelType,
    long TrainableParameters,
    long TotalParameters,
    int AdapterLayers,
    bool? Enabled,
    IReadOnlyList<string> ActiveAdapters,
    bool ActiveAreRegular,
    IReadOnlyList<string> MergedAdapters,
    IReadOnlyList<string> AvailableAdapters)
{
    internal static LoraModelStatus Of(nn.Module model, IReadOnlyList<LoraLayerStatus> layers)
    {
        var report = LoraReport.Of(model);
        var enabled = layers.Select(layer => layer.Enabled).Distinct().ToList();
        var active = layers.SelectMany(layer => layer.ActiveAdapters).Distinct().ToList();
        bool regular = layers.All(layer => active.Where(layer.AvailableAdapters.Contains).SequenceEqual(layer.ActiveAdapters));
        return new LoraModelStatus(
            model.GetType().Name,
            report.TrainableParameters,
            report.AllParameters,
            layers.Count,
            enabled.Count == 1 ? enabled[0] : enabled.Count == 0 ? false : null,
            active,
            regular,
            [.. layers.SelectMany(layer => layer.MergedAdapters).Distinct()],
            [.. layers.SelectMany(layer => layer.AvailableAdapters).Distinct()]);
    }
}
