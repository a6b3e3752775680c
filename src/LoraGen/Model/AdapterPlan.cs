using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>One layer to wrap: where it sits, the layer, and the adapter's hyperparameters.</summary>
/// <summary>One layer a plan adapts. <paramref name="Quantize"/>: how a float Linear's base is stored once wrapped (QLoRA).</summary>
internal sealed record PlannedAdapter(ModuleSlot Slot, nn.Module<Tensor, Tensor> Layer, LoraConfig Config, QuantizationKind Quantize);

/// <summary>
/// What ApplyLora or LoadAdapter will change, decided and checked before anything changes: the layers to wrap and
/// the modules to train in full. Both ways of targeting build one: the annotated classes' generated metadata
/// (<see cref="FromAnnotations"/>), or PEFT's rules over any module tree (<see cref="FromConfig"/>).
/// <see cref="Apply"/> carries it out, with one way back.
/// </summary>
internal sealed class AdapterPlan
{
    private static readonly string[] HeadNames = ["lm_head", "embed_out", "proj_out", "output", "head", "classifier", "score", "qa_outputs", "fc"];

    private AdapterPlan(string adapterName, List<PlannedAdapter> adapters, List<string> trainablePaths)
    {
        AdapterName = adapterName;
        Adapters = adapters;
        TrainablePaths = trainablePaths;
    }

    /// <summary>The name of the adapter the plan creates in every planned layer.</summary>
    public string AdapterName { get; }

    public List<PlannedAdapter> Adapters { get; }

    /// <summary>The modules trained in full, by path.</summary>
    public List<string> TrainablePaths { get; }

    /// <summary>Every target of every annotated class, with the attribute's options or what
    /// <paramref name="reconfigure"/> makes of them, each checked.</summary>
    /// <exception cref="LoraConfigurationException">Targets cannot be adapted; the message names each.</exception>
    public static AdapterPlan FromAnnotations(nn.Module model, LoraOptions options, Func<string, LoraConfig, LoraConfig>? reconfigure,
        string adapterName = LoraLayer.DefaultAdapter)
    {
        var adapters = new List<PlannedAdapter>();
        var problems = new List<LoraConfigurationException>();
        foreach (var edge in LoraTree.Edges(model).Prepend(new LoraTree.Edge("", model, "", model)))
        {
            if (edge.Module is not ILoraModule host)
                continue;
            foreach (var target in host.LoraTargets)
            {
                var layer = host.GetLoraTarget(target.Field);
                string where = LoraTree.Join(edge.Path, target.Field);
                var config = reconfigure is null ? target.Config : reconfigure(where, target.Config);
                // A kind chosen at run time overrides the attribute's.
                var quantize = options.Quantize != QuantizationKind.None ? options.Quantize : target.Quantize;
                Collect(problems, () => adapters.Add(Checked(ModuleSlot.Of(edge.Module, target.Field, layer, where), layer, config, options, adapterName, quantize)));
            }
        }
        ThrowIfAny(problems);
        return new AdapterPlan(adapterName, adapters, [.. TrainableModules.OfAnnotations(model).Select(entry => entry.Path)]);
    }

    /// <summary>
    /// PEFT's <c>inject_adapter</c> over any module tree: every module <paramref name="config"/> targets (matched
    /// against <paramref name="pathInConfig"/> of its path) is wrapped with the rank and alpha its patterns give;
    /// <c>"all-linear"</c> is every Linear except the output head; the modules it saves are trained in full.
    /// </summary>
    /// <exception cref="LoraConfigurationException">A targeted module is not a layer LoRA adapts, cannot be
    /// replaced, or has bad options; or nothing is targeted. Every problem is in the message.</exception>
    public static AdapterPlan FromConfig(nn.Module model, AdapterConfig config, LoraOptions options, Func<string, string> pathInConfig,
        string adapterName = LoraLayer.DefaultAdapter)
    {
        var edges = LoraTree.Edges(model).Select(edge => (Edge: edge, Key: pathInConfig(edge.Path))).ToList();
        var linears = edges.Where(entry => entry.Edge.Module is Linear or QuantizedLinear or LoraLinear).ToList();
        config = config.ExpandAllLinear(linears.Select(entry => entry.Key), OutputLayer(linears.Select(entry => entry.Key).ToList(), options));

        var trainable = new List<string>();
        foreach (var (edge, key) in edges)
            if (!trainable.Any(saved => edge.Path.StartsWith(saved + ".", StringComparison.Ordinal)) && config.SavesModule(key))
                trainable.Add(edge.Path);

        var adapters = new List<PlannedAdapter>();
        var problems = new List<LoraConfigurationException>();
        int excluded = 0;
        foreach (var (edge, key) in edges)
        {
            switch (config.Match(key))
            {
                case TargetMatch.Excluded:
                    excluded++;
                    break;
                case TargetMatch.Targeted when edge.Module is Linear or QuantizedLinear or Embedding or Conv1d or Conv2d or LoraLayer:
                    var layer = (nn.Module<Tensor, Tensor>)edge.Module;
                    var chosen = config.ConfigFor(key);
                    if (options.Reconfigure is { } reconfigure)
                        chosen = reconfigure(edge.Path, chosen);
                    Collect(problems, () => adapters.Add(Checked(ModuleSlot.Of(edge.Parent, edge.Name, layer, edge.Path), layer, chosen, options, adapterName, options.Quantize)));
                    break;
                case TargetMatch.Targeted:
                    problems.Add(new LoraConfigurationException(edge.Path,
                        $"is a {edge.Module.GetType().Name}, which LoRA cannot adapt (Linear, Embedding, Conv1d and Conv2d can). " +
                        "Narrow target_modules to the layers inside it, e.g. their names or a regular expression ending in them."));
                    break;
            }
        }
        ThrowIfAny(problems);
        if (adapters.Count == 0 && !options.AllowNoAdapters)
            throw new LoraConfigurationException(Describe(config), NothingTargeted(model, config, excluded, edges.Count));
        return new AdapterPlan(adapterName, adapters, trainable);
    }

    /// <summary>Wraps every planned layer and freezes everything but the adapters and the trainable modules.
    /// If anything fails on the way, everything done is undone.</summary>
    public AppliedAdapters Apply(nn.Module model, LoraOptions options)
    {
        var applied = new AppliedAdapters(model);
        try
        {
            foreach (var adapter in Adapters)
            {
                if (adapter.Layer is LoraLayer wrapper)
                    applied.Add(wrapper, AdapterName, adapter.Config, options);
                else if (adapter.Layer is Linear linear && adapter.Quantize != QuantizationKind.None)
                    applied.Wrap(adapter, new LoraLinear(applied.Quantized(linear, adapter.Quantize), adapter.Config, options, AdapterName));
                else
                    applied.Wrap(adapter, LoraLayer.Wrap(adapter.Layer, adapter.Config, options, AdapterName));
            }
            TrainableModules.Remember(model, AdapterName, TrainablePaths);
            LoraModelExtensions.Freeze(model);
            var frozenKind = options.Quantize != QuantizationKind.None
                ? options.Quantize
                : Adapters.Where(adapter => adapter.Layer is Linear).Select(adapter => adapter.Quantize)
                    .FirstOrDefault(kind => kind != QuantizationKind.None);
            if (frozenKind != QuantizationKind.None && options.QuantizeFrozenLinears)
                QuantizeFrozen<Linear>(model, linear => applied.Quantized(linear, frozenKind), applied);
            if (frozenKind != QuantizationKind.None && options.QuantizeFrozenEmbeddings)
                QuantizeFrozen<Embedding>(model, embedding => QuantizedEmbedding.Supports(embedding.weight!.shape[1], frozenKind)
                    ? applied.Quantized(embedding, frozenKind)
                    : null, applied);
            applied.Commit();
            return applied;
        }
        catch
        {
            // The plan was checked, so only TorchSharp itself (out of memory, say) can land here.
            applied.Undo();
            throw;
        }
    }

    // Every layer of type T left frozen (not under an adapter layer, no trainable parameter) becomes its quantized
    // form at the same path (quantize returns null for one the kind cannot store: an NF4 embedding whose rows are not
    // whole blocks). One whose slot cannot hold another module type (a field declared Linear or Embedding) stays float.
    private static void QuantizeFrozen<T>(nn.Module model, Func<T, nn.Module<Tensor, Tensor>?> quantize, AppliedAdapters applied)
        where T : nn.Module<Tensor, Tensor>
    {
        foreach (var edge in LoraTree.Edges(model).Where(edge => edge.Module is T).ToList())
        {
            var layer = (T)edge.Module;
            if (layer.parameters().Any(parameter => parameter.requires_grad))
                continue;
            ModuleSlot slot;
            try
            {
                slot = ModuleSlot.Of(edge.Parent, edge.Name, layer, edge.Path);
            }
            catch (LoraConfigurationException)
            {
                continue;
            }
            if (quantize(layer) is { } quantized)
                applied.Replace(slot, layer, quantized);
        }
    }

    // A plain layer gets a wrapper whose first adapter is the plan's; a wrapper gets one more adapter, if the name is new.
    private static PlannedAdapter Checked(ModuleSlot slot, nn.Module<Tensor, Tensor> layer, LoraConfig config, LoraOptions options,
        string adapterName, QuantizationKind quantize)
    {
        if (layer is LoraLayer wrapper)
        {
            if (wrapper.QuantizedBase is not null)
                LoraTargetValidator.ValidateOverQuantized(slot.Path, config);
            if (wrapper.AdapterNames.Contains(adapterName))
                throw new LoraConfigurationException(slot.Path, wrapper.AdapterNames.Count == 1 && adapterName == LoraLayer.DefaultAdapter
                    ? "already holds a LoRA adapter: ApplyLora or LoadAdapter was called on this model before (AddAdapter adds another one by name)."
                    : $"already holds an adapter named '{adapterName}'; delete it first (DeleteAdapter) or choose another name.");
            LoraTargetValidator.Validate(slot.Path, wrapper.Shape, config, options);
            return new PlannedAdapter(slot, layer, config, QuantizationKind.None);
        }
        LoraTargetValidator.Validate(slot.Path, LoraLayer.ShapeOf(layer, slot.Path), config, options);
        if (!Enum.IsDefined(quantize))
            throw new LoraConfigurationException(slot.Path, $"Quantize = {(int)quantize} is not a QuantizationKind (None, Int8, Nf4, Nf4DoubleQuantized).");
        if (layer is QuantizedLinear || layer is Linear && quantize != QuantizationKind.None)
            LoraTargetValidator.ValidateOverQuantized(slot.Path, config);
        return new PlannedAdapter(slot, layer, config, quantize);
    }

    private static void Collect(List<LoraConfigurationException> problems, Action plan)
    {
        try
        {
            plan();
        }
        catch (LoraConfigurationException problem)
        {
            problems.Add(problem);
        }
    }

    private static void ThrowIfAny(List<LoraConfigurationException> problems)
    {
        if (problems.Count > 0)
            throw LoraConfigurationException.Combine(problems);
    }

    // "all-linear" leaves out the model's output head (PEFT: the output embeddings of a transformers model, or its
    // classification head). A TorchSharp model has no such marker: the head is the last Linear when it, or the
    // container holding it, has a head's name (lm_head, classifier, fc, ...), unless LoraOptions.OutputLayer names it.
    private static string? OutputLayer(List<string> linearKeys, LoraOptions options)
    {
        if (options.OutputLayer is { } chosen)
            return chosen.Length == 0 ? null : chosen;
        if (linearKeys.Count == 0)
            return null;
        var segments = linearKeys[^1].Split('.');
        bool named = HeadNames.Contains(segments[^1]) || segments.Length > 1 && HeadNames.Contains(segments[^2]);
        return named ? linearKeys[^1] : null;
    }

    private static string Describe(AdapterConfig config) =>
        config.TargetModulesPattern is { } pattern ? pattern : $"[{string.Join(", ", config.TargetModules)}]";

    private static string NothingTargeted(nn.Module model, AdapterConfig config, int excluded, int modules) =>
        (excluded > 0
            ? $"target_modules selects no module of this {model.GetType().Name} that exclude_modules or modules_to_save leave in ({excluded} excluded). "
            : $"target_modules matches none of the {modules} modules of this {model.GetType().Name}. ") +
        "A name matches a module path equal to it or ending in '.name' (e.g. 'q_proj' matches 'layers.0.attn.q_proj'); a string is a " +
        "regular expression that must match the whole path. List the model's paths with named_modules(). Nothing was changed.";
}

/// <summary>The layers an <see cref="AdapterPlan"/> wrapped, and the way back: the plain layers in their places, the
/// adapters disposed, every requires_grad flag and the remembered trainable modules as they were.</summary>
internal sealed class AppliedAdapters
{
    private readonly nn.Module model;
    private readonly List<(Parameter Parameter, bool RequiresGrad)> flags;
    private readonly System.Collections.Immutable.ImmutableDictionary<string, IReadOnlyList<string>>? trainableBefore;
    private readonly List<(PlannedAdapter Adapter, LoraLayer Wrapper)> wrapped = [];
    private readonly List<(LoraLayer Layer, string Adapter)> added = [];
    // QLoRA: the float layers replaced by quantized ones (disposed once everything succeeded), the quantized layers
    // made (disposed if it is undone), and frozen layers replaced in place.
    private readonly List<nn.Module> floatLayers = [];
    private readonly List<nn.Module> quantizedLayers = [];
    private readonly List<(ModuleSlot Slot, nn.Module<Tensor, Tensor> Layer)> replaced = [];

    public AppliedAdapters(nn.Module model)
    {
        this.model = model;
        flags = model.parameters().Select(parameter => (parameter, parameter.requires_grad)).ToList();
        trainableBefore = TrainableModules.Snapshot(model);
    }

    public void Wrap(PlannedAdapter adapter, LoraLayer wrapper)
    {
        adapter.Slot.Put(wrapper);
        wrapped.Add((adapter, wrapper));
    }

    public void Add(LoraLayer layer, string adapter, LoraConfig config, LoraOptions options)
    {
        layer.AddAdapter(adapter, config, options);
        added.Add((layer, adapter));
    }

    /// <summary>A quantized copy of <paramref name="linear"/>; the Linear is disposed at <see cref="Commit"/>.</summary>
    public QuantizedLinear Quantized(Linear linear, QuantizationKind kind)
    {
        var quantized = QuantizedLinear.FromLinear(linear, kind);
        quantizedLayers.Add(quantized);
        floatLayers.Add(linear);
        return quantized;
    }

    /// <summary>A quantized copy of <paramref name="embedding"/>; the Embedding is disposed at <see cref="Commit"/>.</summary>
    public QuantizedEmbedding Quantized(Embedding embedding, QuantizationKind kind)
    {
        var quantized = QuantizedEmbedding.FromEmbedding(embedding, kind);
        quantizedLayers.Add(quantized);
        floatLayers.Add(embedding);
        return quantized;
    }

    /// <summary>Puts <paramref name="module"/> where <paramref name="layer"/> was (a frozen layer quantized in place).</summary>
    public void Replace(ModuleSlot slot, nn.Module<Tensor, Tensor> layer, nn.Module<Tensor, Tensor> module)
    {
        slot.Put(module);
        replaced.Add((slot, layer));
    }

    /// <summary>Everything succeeded: the float Linears that quantized layers replaced are freed.</summary>
    public void Commit()
    {
        foreach (var layer in floatLayers)
            layer.Dispose();
        floatLayers.Clear();
        quantizedLayers.Clear();
        replaced.Clear();
    }

    public void Undo()
    {
        foreach (var (slot, layer) in Enumerable.Reverse(replaced))
            slot.Put(layer);
        replaced.Clear();
        foreach (var (layer, adapter) in Enumerable.Reverse(added))
            layer.DeleteAdapter(adapter);
        added.Clear();
        foreach (var (adapter, wrapper) in Enumerable.Reverse(wrapped))
        {
            adapter.Slot.Put(adapter.Layer);
            wrapper.BaseLayerReturned();
        }
        wrapped.Clear();
        foreach (var quantized in quantizedLayers)
            quantized.Dispose();
        quantizedLayers.Clear();
        floatLayers.Clear();
        foreach (var (parameter, requiresGrad) in flags)
            parameter.requires_grad = requiresGrad;
        TrainableModules.Restore(model, trainableBefore);
    }
}
