using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

// The adapters a layer holds by name: creating, adding, deleting and activating them.
public abstract partial class LoraLayer
{
    /// <summary>Creates the layer's first adapter and makes it active; the subclass constructor calls it.</summary>
    private protected void CreateFirstAdapter(string adapter, LoraConfig config)
    {
        CreateFactors(adapter, config, BaseDevice, AdapterTypeFor(BaseWeightType, options));
        configs[adapter] = config;
        InitializeVariants(adapter, config);
        order.Add(adapter);
        active.Add(adapter);
    }

    /// <summary>Adds adapter <paramref name="adapter"/> with a fresh initialisation (B = 0 for Linear and convolutions,
    /// A = 0 for embeddings: the output is unchanged), inactive until <see cref="SetActiveAdapters"/> says otherwise.</summary>
    /// <exception cref="ArgumentException">The name is empty, already used, or the base-only marker.</exception>
    /// <exception cref="LoraConfigurationException">The options make no sense for this layer.</exception>
    public void AddAdapter(string adapter, LoraConfig config, LoraOptions? options = null)
    {
        CheckNewName(adapter);
        ArgumentNullException.ThrowIfNull(config);
        options ??= this.options;
        LoraTargetValidator.Validate(Shape.ToString(), Shape, config, options);
        if (QuantizedBase is not null)
            LoraTargetValidator.ValidateOverQuantized(Shape.ToString(), config);
        if (config.RewritesBase && IsMerged)
            throw new InvalidOperationException(
                $"Cannot add a {config.Init} adapter to {Shape} while {Names(merged)} {(merged.Count == 1 ? "is" : "are")} merged: it rewrites the base weight. Call Unmerge() first.");
        CreateFactors(adapter, config, BaseDevice, AdapterTypeFor(BaseWeightType, options));
        configs[adapter] = config;
        InitializeVariants(adapter, config);
        order.Add(adapter);
        foreach (var (_, parameter) in NamedParametersOf(adapter))
            parameter.requires_grad = false;
    }

    /// <summary>Removes adapter <paramref name="adapter"/> and frees its parameters. If it was active, the first
    /// remaining adapter becomes active when no other is (as PEFT does).</summary>
    /// <exception cref="InvalidOperationException">The adapter is merged (unmerge it first), or it is the layer's only one.</exception>
    public void DeleteAdapter(string adapter)
    {
        _ = ConfigOf(adapter);
        if (merged.Contains(adapter))
            throw new InvalidOperationException(
                $"Cannot delete adapter '{adapter}' of {Shape}: it is merged into the base weight, and deleting it would leave its " +
                "update there for good. Call Unmerge() first.");
        if (order.Count == 1)
            throw new InvalidOperationException(
                $"Cannot delete adapter '{adapter}' of {Shape}: it is the layer's only adapter. Use MergeAndUnload() or put the plain layer back instead.");
        RemoveFactors(adapter);
        RemoveVariants(adapter);
        configs.Remove(adapter);
        order.Remove(adapter);
        if (active.Remove(adapter) && active.Count == 0)
            active.Add(order[0]);
    }

    /// <summary>Makes exactly <paramref name="adapters"/> active (the order is the order their outputs are added);
    /// their parameters train, every other adapter's are frozen. Names this layer does not hold are skipped when
    /// <paramref name="skipMissing"/> (a model-wide call where layers hold different adapters).</summary>
    /// <exception cref="ArgumentException">A name is unknown (and not skipped), or none is left.</exception>
    public void SetActiveAdapters(IEnumerable<string> adapters, bool skipMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        var chosen = adapters.Distinct(StringComparer.Ordinal).Where(name => !skipMissing || configs.ContainsKey(name)).ToList();
        foreach (var name in chosen)
            _ = ConfigOf(name);
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in order)
            foreach (var (_, parameter) in NamedParametersOf(name))
                parameter.requires_grad = active.Contains(name);
    }

    /// <summary>Adapter <paramref name="adapter"/>'s A and B (for combining adapters).</summary>
    internal (Parameter A, Parameter B) FactorsOf(string adapter)
    {
        _ = ConfigOf(adapter);
        return Factors(adapter);
    }

    /// <summary>Frees every adapter once the plain base layer has been put back where this wrapper was (an undone
    /// apply); the wrapper must not be used afterwards.</summary>
    internal void BaseLayerReturned()
    {
        foreach (var adapter in order.ToList())
        {
            RemoveFactors(adapter);
            RemoveVariants(adapter);
        }
    }

    // lora_A.weight → lora_A.<adapter>.weight; lora_embedding_A → lora_embedding_A.<adapter>;
    // lora_magnitude_vector → lora_magnitude_vector.<adapter>.weight (a module's weight in memory, a bare key in files).
    private static string InMemoryName(string fileName, string adapter)
    {
        if (fileName == PeftLayout.MagnitudeVector)
            return fileName + "." + adapter + ".weight";
        int dot = fileName.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? fileName + "." + adapter : fileName[..dot] + "." + adapter + fileName[dot..];
    }

    private void CheckNewName(string adapter)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(adapter);
        if (adapter == BaseOnly)
            throw new ArgumentException($"'{BaseOnly}' means \"no adapter\" in per-sample adapter lists and cannot name an adapter.", nameof(adapter));
        if (adapter.Contains('.', StringComparison.Ordinal))
            throw new ArgumentException($"Adapter name '{adapter}' contains a '.', which would break parameter paths; use letters, digits, '_' or '-'.", nameof(adapter));
        if (configs.ContainsKey(adapter))
            throw new ArgumentException($"{Shape} already has an adapter named '{adapter}'; delete it first or choose another name.", nameof(adapter));
    }

    private ArgumentException NoSuchAdapter(string adapter) =>
        new($"{Shape} has no adapter named '{adapter}'; it has {Names(order)}.", nameof(adapter));
}
