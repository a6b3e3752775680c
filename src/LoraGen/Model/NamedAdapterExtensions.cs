using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Many adapters on one frozen base, by name, as PEFT's multi-adapter API: add (from the attributes or a run-time
/// config), load under a name, choose the active ones (only they train), delete, report their status, and combine
/// several into a new one. Merging chosen adapters is <see cref="LoraModelExtensions.Merge(nn.Module, IReadOnlyCollection{string})"/>;
/// per-sample adapters in one batch are <see cref="LoraModelExtensions.AdapterPerSample"/>.
/// </summary>
public static class NamedAdapterExtensions
{
    /// <summary>Adds adapter <paramref name="adapter"/> on the targets of the model's <c>[LoraTarget]</c> classes, with
    /// the attributes' options (or what <see cref="LoraOptions.Reconfigure"/> makes of them). Layers already wrapped
    /// get one more adapter; plain ones are wrapped. The new adapter is inactive when the model had adapters before
    /// (activate it with <see cref="SetActiveAdapters"/>). All or nothing.</summary>
    /// <exception cref="LoraConfigurationException">A target cannot take it; nothing was changed.</exception>
    /// <exception cref="InvalidOperationException">The model has no annotated class, or a Trainable field already
    /// belongs to another adapter.</exception>
    public static LoraReport AddAdapter(this nn.Module model, string adapter, LoraOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(adapter);
        options ??= LoraOptions.Default;
        LoraModelExtensions.AnnotatedHostsOrThrow(model, "AddAdapter");
        Create(model, adapter, AdapterPlan.FromAnnotations(model, options, options.Reconfigure, adapter), options);
        return LoraReport.Of(model);
    }

    /// <summary>Adds adapter <paramref name="adapter"/> where <paramref name="config"/> targets (PEFT's
    /// <c>add_adapter(name, config)</c>), on any module tree: see
    /// <see cref="LoraModelExtensions.ApplyLora(nn.Module, AdapterConfig, LoraOptions?)"/> for the rules. Inactive
    /// when the model had adapters before. All or nothing.</summary>
    /// <exception cref="LoraConfigurationException">A target cannot take it, or nothing matched; nothing was changed.</exception>
    public static LoraReport AddAdapter(this nn.Module model, string adapter, AdapterConfig config, LoraOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(adapter);
        ArgumentNullException.ThrowIfNull(config);
        options ??= LoraOptions.Default;
        Create(model, adapter, AdapterPlan.FromConfig(model, config, options, path => path, adapter), options);
        return LoraReport.Of(model);
    }

    /// <summary>Carries out a plan for a new adapter, keeping the active adapters as they were when there were any.</summary>
    internal static AppliedAdapters Create(nn.Module model, string adapter, AdapterPlan plan, LoraOptions options)
    {
        if (LoraModelExtensions.AllAdapterNames(model).Contains(adapter) && plan.Adapters.Count == 0)
            throw new ArgumentException($"The model already has an adapter named '{adapter}'.", nameof(adapter));
        var activeBefore = LoraTree.Layers(model).Any() ? LoraModelExtensions.ActiveAdapterNames(model) : null;
        var applied = plan.Apply(model, options);
        if (activeBefore is not null)
        {
            foreach (var (_, layer) in LoraTree.Layers(model))
                layer.SetActiveAdapters(activeBefore, skipMissing: true);
            LoraModelExtensions.Freeze(model);
        }
        return applied;
    }

    /// <summary>Makes exactly <paramref name="adapters"/> active in every layer that holds them (PEFT's
    /// <c>set_adapter</c>): forward adds them, in this order, and only their parameters and trainable modules train.</summary>
    /// <exception cref="ArgumentException">A name is no adapter of the model, or none is given.</exception>
    public static void SetActiveAdapters(this nn.Module model, params string[] adapters)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(adapters);
        if (adapters.Length == 0)
            throw new ArgumentException("Name at least one adapter; to compute the base model alone use DisableAdapters().", nameof(adapters));
        CheckKnown(model, adapters);
        foreach (var (_, layer) in LoraTree.Layers(model))
            layer.SetActiveAdapters(adapters, skipMissing: true);
        LoraModelExtensions.Freeze(model);
    }

    /// <summary>Deletes adapter <paramref name="adapter"/> from every layer (PEFT's <c>delete_adapter</c>); a layer
    /// left with no adapter gets its plain layer back. Its trainable modules are no longer trained.</summary>
    /// <exception cref="ArgumentException">No layer holds it.</exception>
    /// <exception cref="InvalidOperationException">It is merged somewhere (unmerge it first); nothing was changed.</exception>
    public static void DeleteAdapter(this nn.Module model, string adapter)
    {
        ArgumentNullException.ThrowIfNull(model);
        CheckKnown(model, [adapter]);
        var merged = LoraTree.Layers(model).Where(entry => entry.Layer.MergedAdapters.Contains(adapter)).Select(entry => entry.Path).ToList();
        if (merged.Count > 0)
            throw new InvalidOperationException(
                $"Cannot delete adapter '{adapter}': it is merged into {string.Join(", ", merged)}, and deleting it would leave its update " +
                "in the base weights for good. Call Unmerge() first. Nothing was changed.");
        foreach (var edge in LoraTree.Edges(model).Where(edge => edge.Module is LoraLayer layer && layer.AdapterNames.Contains(adapter)).ToList())
        {
            var layer = (LoraLayer)edge.Module;
            if (layer.AdapterNames.Count > 1)
                layer.DeleteAdapter(adapter);
            else
            {
                ModuleSlot.Of(edge.Parent, edge.Name, layer, edge.Path).Put(layer.BaseLayer);
                layer.BaseLayerReturned();
            }
        }
        TrainableModules.Forget(model, adapter);
        LoraModelExtensions.Freeze(model);
    }

    /// <summary>Every adapter layer's status (PEFT's <c>get_layer_status</c>).</summary>
    public static IReadOnlyList<LoraLayerStatus> LayerStatus(this nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return LoraTree.Layers(model).Select(entry => LoraLayerStatus.Of(entry.Path, entry.Layer)).ToList();
    }

    /// <summary>The model's adapters at a glance (PEFT's <c>get_model_status</c>).</summary>
    public static LoraModelStatus ModelStatus(this nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return LoraModelStatus.Of(model, model.LayerStatus());
    }

    /// <summary>
    /// Adds adapter <paramref name="adapter"/> made of <paramref name="adapters"/> weighted by <paramref name="weights"/>
    /// (PEFT's <c>add_weighted_adapter</c>), in every layer that holds at least one of them; it gets rank r (below) and
    /// alpha = r, so scaling 1, and is inactive. With sᵢ each adapter's scaling and Bᵢ·Aᵢ its product:
    /// <list type="bullet">
    /// <item><see cref="AdapterCombination.Linear"/>: A = Σ sign(wᵢ)·√|wᵢsᵢ|·Aᵢ, B = Σ √|wᵢsᵢ|·Bᵢ; all ranks equal, r the same.
    /// (B·A then has cross terms: it is not Σ wᵢsᵢBᵢAᵢ, exactly as in PEFT.)</item>
    /// <item><see cref="AdapterCombination.Cat"/>: A = [w₁s₁A₁; w₂s₂A₂; …], B = [B₁ B₂ …]; r = Σ rᵢ, and B·A = Σ wᵢsᵢBᵢAᵢ exactly.</item>
    /// <item><see cref="AdapterCombination.Svd"/>: the best rank-r approximation (truncated SVD) of Σ wᵢsᵢΔWᵢ, where
    /// ΔWᵢ = sᵢBᵢAᵢ is the adapter's update (so sᵢ enters twice, as in PEFT); r = <paramref name="svdRank"/> or the largest rᵢ.</item>
    /// </list>
    /// </summary>
    /// <exception cref="ArgumentException">Unknown adapters, weights that do not match, ranks that differ for Linear, a name in use.</exception>
    public static void AddWeightedAdapter(this nn.Module model, IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string adapter,
        AdapterCombination combination = AdapterCombination.Svd, int? svdRank = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(weights);
        AdapterCombiner.Add(model, adapters, weights, adapter, combination, svdRank);
    }

    private static void CheckKnown(nn.Module model, IEnumerable<string> adapters)
    {
        var known = LoraModelExtensions.AllAdapterNames(model);
        var unknown = adapters.Where(name => !known.Contains(name)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException(
                $"This {model.GetType().Name} has no adapter {string.Join(", ", unknown.Select(n => $"'{n}'"))}; it has " +
                (known.Count == 0 ? "none." : string.Join(", ", known.Select(n => $"'{n}'")) + "."));
    }
}
