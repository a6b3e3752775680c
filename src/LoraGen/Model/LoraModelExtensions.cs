using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Model-wide LoRA operations on any module tree that contains <see cref="LoraTargetAttribute"/>
/// classes: apply, merge, unmerge, unload, disable, and the parameters to train.
/// </summary>
public static class LoraModelExtensions
{
    /// <summary>
    /// Wraps every target of every annotated class in the tree with a fresh adapter, then freezes
    /// every parameter except the adapters and the <c>Trainable</c> fields. All targets are checked
    /// first: if one is refused, the model is left exactly as it was.
    /// </summary>
    /// <returns>The parameter counts, whose <c>ToString()</c> is PEFT's summary line.</returns>
    /// <exception cref="LoraConfigurationException">A target cannot be adapted; the message names it.</exception>
    /// <exception cref="InvalidOperationException">The tree holds no annotated class.</exception>
    public static LoraReport ApplyLora(this nn.Module model, LoraOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= LoraOptions.Default;
        var hosts = AnnotatedHostsOrThrow(model, "ApplyLora");
        var plan = AdapterPlan.FromAnnotations(model, options, options.Reconfigure);
        if (plan.Adapters.Count == 0 && !options.AllowNoAdapters)
            throw new InvalidOperationException(NothingToAdapt(model, hosts));
        plan.Apply(model, options);
        return LoraReport.Of(model);
    }

    /// <summary>
    /// Adapts any module tree by PEFT's rules, as <c>get_peft_model(model, LoraConfig(...))</c> does: every module
    /// whose path <paramref name="config"/> targets (<see cref="AdapterConfig.TargetModules"/>: a path or its
    /// <c>.name</c> end; <see cref="AdapterConfig.TargetModulesPattern"/>: a regular expression for the whole path,
    /// or <c>"all-linear"</c>; less <c>exclude_modules</c>; within <c>layers_to_transform</c>) is wrapped with the
    /// rank and alpha <c>rank_pattern</c> / <c>alpha_pattern</c> give it, the <c>modules_to_save</c> (and the
    /// task's heads) are trained in full, and everything else is frozen. Layers may sit anywhere: in fields typed
    /// <c>Module&lt;Tensor, Tensor&gt;</c>, in a <c>Sequential</c>, <c>ModuleList</c> or <c>ModuleDict</c>, in
    /// classes from other assemblies; <c>[LoraTarget]</c> attributes are not consulted. Every target is checked
    /// first: if one is refused, the model is left exactly as it was.
    /// </summary>
    /// <example><code>model.ApplyLora(new AdapterConfig { Rank = 8, Alpha = 16, TargetModules = ["query", "value"] });</code></example>
    /// <exception cref="LoraConfigurationException">A targeted module is not a Linear, Embedding, Conv1d or Conv2d,
    /// sits in a field whose type cannot hold the wrapper, or has options that make no sense; or nothing matched.
    /// Every problem is in the message; nothing was changed.</exception>
    public static LoraReport ApplyLora(this nn.Module model, AdapterConfig config, LoraOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        options ??= LoraOptions.Default;
        LoraTree.RefuseMerged(model, "apply LoRA to");
        AdapterPlan.FromConfig(model, config, options, path => path).Apply(model, options);
        return LoraReport.Of(model);
    }

    /// <summary>The parameters to give the optimizer: the active adapters', then their trainable modules'
    /// (<c>Trainable</c> fields, <c>modules_to_save</c>).</summary>
    public static List<Parameter> LoraParameters(this nn.Module model) =>
        model.NamedLoraParameters().Select(p => p.Parameter).ToList();

    /// <summary>The parameters of the named adapters and their trainable modules, active or not.</summary>
    public static List<Parameter> LoraParameters(this nn.Module model, IReadOnlyCollection<string> adapters) =>
        model.NamedLoraParameters(adapters).Select(p => p.Parameter).ToList();

    /// <summary>The trainable parameters with their paths in the model, as PEFT names them in memory,
    /// e.g. <c>layers.0.q_proj.lora_A.default.weight</c>: the active adapters' and their trainable modules'.</summary>
    public static IEnumerable<(string Path, Parameter Parameter)> NamedLoraParameters(this nn.Module model) =>
        model.NamedLoraParameters(ActiveAdapterNames(model));

    /// <summary>The parameters of the named adapters and of their trainable modules, with their paths.</summary>
    public static IEnumerable<(string Path, Parameter Parameter)> NamedLoraParameters(this nn.Module model, IReadOnlyCollection<string> adapters)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(adapters);
        foreach (var (path, layer) in LoraTree.Layers(model))
            foreach (var adapter in layer.AdapterNames.Where(adapters.Contains))
                foreach (var (name, parameter) in layer.NamedParametersOf(adapter))
                    yield return (LoraTree.Join(path, name), parameter);
        foreach (var adapter in adapters)
            foreach (var entry in TrainableModules.Parameters(model, adapter))
                yield return entry;
    }

    /// <summary>Every adapter name in the model, in the order layers first hold them.</summary>
    internal static List<string> AllAdapterNames(nn.Module model) =>
        LoraTree.Layers(model).SelectMany(entry => entry.Layer.AdapterNames).Distinct().ToList();

    /// <summary>The active adapters, in the order layers hold them; <c>"default"</c> for a model without layers (its
    /// trainable modules still train).</summary>
    internal static List<string> ActiveAdapterNames(nn.Module model)
    {
        var layers = LoraTree.Layers(model).ToList();
        return layers.Count == 0 ? [LoraLayer.DefaultAdapter] : layers.SelectMany(entry => entry.Layer.ActiveAdapters).Distinct().ToList();
    }

    /// <summary>Every adapter layer in the tree, with its path.</summary>
    public static IEnumerable<(string Path, LoraLayer Layer)> LoraLayers(this nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return LoraTree.Layers(model);
    }

    /// <summary>Adds every adapter's update into its base weight (computed in float32). All or
    /// nothing: if one layer's merged weight would not be finite, every layer is left unmerged as it
    /// was and the error names the layer. Layers already merged are left as they are.</summary>
    /// <returns>How many layers this call merged: 0 when every adapter was already merged (PEFT warns
    /// in that case; here the caller decides).</returns>
    /// <exception cref="InvalidOperationException">The model has no adapters (call ApplyLora or LoadAdapter
    /// first), or a merged weight would not be finite.</exception>
    public static int Merge(this nn.Module model) => MergeLayers(model, layer => layer.ActiveAdapters);

    /// <summary>Merges the named adapters into every layer that holds them, as <see cref="Merge(nn.Module)"/> does
    /// for the active ones. Adapters not merged stay as they were: active ones keep being added by forward.</summary>
    /// <returns>How many layers this call changed.</returns>
    /// <exception cref="ArgumentException">No layer holds one of the names.</exception>
    public static int Merge(this nn.Module model, IReadOnlyCollection<string> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        var known = AllAdapterNames(model);
        var unknown = adapters.Where(name => !known.Contains(name)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"This {model.GetType().Name} has no adapter {string.Join(", ", unknown.Select(n => $"'{n}'"))}.", nameof(adapters));
        return MergeLayers(model, layer => [.. adapters.Where(layer.AdapterNames.Contains)]);
    }

    private static int MergeLayers(nn.Module model, Func<LoraLayer, IReadOnlyCollection<string>> chosen)
    {
        var layers = LayersOrThrow(model, "merge");
        var mergedNow = new List<(LoraLayer Layer, IReadOnlyCollection<string> Adapters)>();
        foreach (var (path, layer) in layers)
        {
            var adapters = chosen(layer).Where(name => !layer.MergedAdapters.Contains(name)).ToList();
            try
            {
                if (layer.Merge(adapters))
                    mergedNow.Add((layer, adapters));
            }
            catch (InvalidOperationException error)
            {
                foreach (var (done, names) in mergedNow)
                    done.Unmerge(names);
                throw new InvalidOperationException($"'{path}': {error.Message}", error);
            }
        }
        return mergedNow.Count;
    }

    /// <summary>Restores every merged base weight exactly, bit for bit.</summary>
    /// <returns>How many layers this call unmerged: 0 when none was merged (PEFT warns "Already unmerged").</returns>
    /// <exception cref="InvalidOperationException">The model has no adapters.</exception>
    public static int Unmerge(this nn.Module model) =>
        LayersOrThrow(model, "unmerge").Count(entry => entry.Layer.Unmerge());

    /// <summary>Takes the named adapters out of every base weight they are merged into; a weight left with no merged
    /// adapter is restored bit for bit, one with others merged is recomputed from the original plus theirs.</summary>
    /// <returns>How many layers this call changed.</returns>
    public static int Unmerge(this nn.Module model, IReadOnlyCollection<string> adapters)
    {
        ArgumentNullException.ThrowIfNull(adapters);
        return LayersOrThrow(model, "unmerge").Count(entry => entry.Layer.Unmerge(adapters));
    }

    /// <summary>
    /// Until the returned scope is disposed, sample i of every batch goes through adapter
    /// <paramref name="adaptersPerSample"/>[i] only (<c>"__base__"</c>, <see cref="LoraLayer.BaseOnly"/>, for none), in
    /// one forward: PEFT's <c>adapter_names=[...]</c>. Each adapter runs on its own samples with the code a batch of
    /// them alone would use. For inference: a forward in training mode, or with an adapter merged, is refused.
    /// </summary>
    /// <example><code>using (model.AdapterPerSample(["default", "letters", "__base__"])) { var y = model.call(x); }</code></example>
    /// <exception cref="ArgumentException">A name is no adapter of the model.</exception>
    public static IDisposable AdapterPerSample(this nn.Module model, IReadOnlyList<string> adaptersPerSample)
    {
        ArgumentNullException.ThrowIfNull(adaptersPerSample);
        var layers = LayersOrThrow(model, "route samples to adapters in").Select(entry => entry.Layer).ToList();
        var known = AllAdapterNames(model);
        var unknown = adaptersPerSample.Where(name => name != LoraLayer.BaseOnly && !known.Contains(name)).Distinct().ToList();
        if (unknown.Count > 0)
            throw new ArgumentException(
                $"This {model.GetType().Name} has no adapter {string.Join(", ", unknown.Select(n => $"'{n}'"))} (use '{LoraLayer.BaseOnly}' for the base alone).",
                nameof(adaptersPerSample));
        var copy = adaptersPerSample.ToArray();
        foreach (var layer in layers)
            // A layer without a sample's adapter computes the base alone for that sample, as in PEFT.
            layer.PerSampleAdapters = copy.Select(name => layer.AdapterNames.Contains(name) ? name : LoraLayer.BaseOnly).ToArray();
        return new Restore(() =>
        {
            foreach (var layer in layers)
                layer.PerSampleAdapters = null;
        });
    }

    /// <summary>
    /// Merges every adapter for good and puts the plain layers back in their fields, so the model is
    /// again the plain model, with merged weights and the parameter names it had before
    /// <c>ApplyLora</c>. The base parameters stay frozen. Returns <paramref name="model"/>.
    /// </summary>
    /// <remarks>A layer over a quantized base (QLoRA) is merged to full precision: a float32 <c>Linear</c> with
    /// dequantize(codes) + the update, added exactly in float32, takes its place (paths <c>x.weight</c>,
    /// <c>x.bias</c>). Frozen Linears quantized without an adapter (<see cref="LoraOptions.QuantizeFrozenLinears"/>)
    /// stay quantized.</remarks>
    public static TModule MergeAndUnload<TModule>(this TModule model) where TModule : nn.Module
    {
        // A quantized layer merges in full precision in its own MergeAndUnload; re-quantizing first would be wasted.
        MergeLayers(model, layer => layer.QuantizedBase is null ? layer.ActiveAdapters : []);
        foreach (var edge in LoraTree.Edges(model).Where(edge => edge.Module is LoraLayer).ToList())
            ModuleSlot.Of(edge.Parent, edge.Name, edge.Module, edge.Path).Put(((LoraLayer)edge.Module).MergeAndUnload());
        return model;
    }

    /// <summary>
    /// Computes base-model outputs until the returned scope is disposed, without touching adapter
    /// weights. Merged layers are unmerged for the scope and merged again at its end.
    /// </summary>
    /// <example><code>using (model.DisableAdapters()) { var baseline = model.forward(x); }</code></example>
    public static IDisposable DisableAdapters(this nn.Module model)
    {
        var layers = model.LoraLayers().Select(entry => entry.Layer).ToList();
        var wasEnabled = layers.Select(layer => layer.AdapterEnabled).ToList();
        var wasMerged = layers.Where(layer => layer.IsMerged).Select(layer => (Layer: layer, Adapters: layer.MergedAdapters.ToList())).ToList();
        foreach (var (layer, _) in wasMerged)
            layer.Unmerge();
        foreach (var layer in layers)
            layer.AdapterEnabled = false;
        return new Restore(() =>
        {
            for (int i = 0; i < layers.Count; i++)
                layers[i].AdapterEnabled = wasEnabled[i];
            foreach (var (layer, adapters) in wasMerged)
                layer.Merge(adapters);
        });
    }

    internal static void Freeze(nn.Module model)
    {
        foreach (var parameter in model.parameters())
            parameter.requires_grad = false;
        foreach (var (_, parameter) in model.NamedLoraParameters())
            parameter.requires_grad = true;
    }

    /// <summary>The annotated classes, after making sure none was skipped by the generator and there is one.</summary>
    internal static List<(string Path, ILoraModule Host)> AnnotatedHostsOrThrow(nn.Module model, string verb)
    {
        var skipped = LoraTree.AnnotatedWithoutGeneratedCode(model).ToList();
        if (skipped.Count > 0)
            throw new InvalidOperationException(
                $"{string.Join(", ", skipped.Select(s => $"'{s.Path}' ({s.Module.GetType().Name})"))} carries [LoraTarget] " +
                "but the source generator did not implement ILoraModule for it, so nothing was changed. The generator " +
                "skips a class that is not partial (it and every containing class), a name in Targets/Exclude/Trainable " +
                "that is not a field, a target that is readonly or declared as a sealed layer type (declare it " +
                "Module<Tensor, Tensor>), or a target assigned a layer LoRA cannot adapt; the LoraGen analyzers report which. " +
                "Check too that the project references the generator (the LoraGen package does).");
        var hosts = LoraTree.Hosts(model).ToList();
        if (hosts.Count == 0)
            throw new InvalidOperationException(
                $"{verb} found no [LoraTarget] class in this {model.GetType().Name}: mark the classes whose layers should be " +
                "adapted with [LoraTarget] and declare them partial, or target modules by name at run time with " +
                "ApplyLora(new AdapterConfig { TargetModules = [...] }) (PEFT's target_modules rules).");
        return hosts;
    }

    private static List<(string Path, LoraLayer Layer)> LayersOrThrow(nn.Module model, string verb)
    {
        ArgumentNullException.ThrowIfNull(model);
        var layers = LoraTree.Layers(model).ToList();
        if (layers.Count == 0)
            throw new InvalidOperationException(
                $"Cannot {verb}: this {model.GetType().Name} has no LoRA adapters. Call ApplyLora() or LoadAdapter() first " +
                "(after MergeAndUnload() the adapters are gone for good).");
        return layers;
    }

    private static string NothingToAdapt(nn.Module model, List<(string Path, ILoraModule Host)> hosts)
    {
        string classes = string.Join(", ", hosts.Select(h => $"'{(h.Path.Length == 0 ? "(root)" : h.Path)}' ({h.Host.GetType().Name})"));
        bool trainsSomething = hosts.Any(h => h.Host.TrainableFields.Count > 0);
        return $"ApplyLora would adapt nothing in this {model.GetType().Name}: the [LoraTarget] classes {classes} have no " +
            "target LoRA can adapt (the analyzers report LORA0010). A target is a field of the class itself holding a " +
            "Linear, Embedding, Conv1d or Conv2d; layers inside a Sequential, ModuleList or another module are not " +
            "reached. Nothing was changed. Declare the layers as fields of the annotated class, annotate the class " +
            "that declares them, target them by path at run time (ApplyLora with an AdapterConfig), or set LoraOptions.AllowNoAdapters = true " +
            (trainsSomething ? "to train only the Trainable fields." : "(every parameter will then be frozen).");
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        private Action? pending = restore;

        public void Dispose()
        {
            pending?.Invoke();
            pending = null;
        }
    }
}
