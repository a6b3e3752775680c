using System.Globalization;
using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Adapter directories in PEFT's format (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>).
/// See docs/file-formats.md; whole-model checkpoints are <see cref="CheckpointExtensions"/>.
/// </summary>
public static class AdapterFileExtensions
{
    /// <summary>The weights file inside an adapter directory.</summary>
    public const string WeightsFileName = AdapterDirectory.WeightsFileName;

    /// <summary>
    /// Writes every adapter and its trainable modules as PEFT does: <c>"default"</c> to <paramref name="directory"/>
    /// (created if needed), any other adapter to <c>directory/&lt;name&gt;/</c>. Each directory's two files are written
    /// to temporary files and flushed first, then moved into place: after a failed save, or a crash at any instant,
    /// <see cref="LoadAdapter(nn.Module, string, AdapterFileOptions?)"/> reads the complete previous adapter or the
    /// complete new one (see <see cref="AdapterDirectory"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no adapters, or an adapter's layers mix
    /// rsLoRA and plain LoRA, which one PEFT config cannot say.</exception>
    public static void SaveAdapter(this nn.Module model, string directory, AdapterFileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        options ??= AdapterFileOptions.Default;
        var adapters = LoraModelExtensions.AllAdapterNames(model);
        if (adapters.Count == 0)
            adapters = [LoraLayer.DefaultAdapter]; // Describe says what is missing
        foreach (var adapter in adapters)
            Save(model, AdapterDirectoryOf(directory, adapter), options, adapter);
    }

    /// <summary>Where PEFT keeps adapter <paramref name="adapter"/> of a save to <paramref name="directory"/>:
    /// the directory itself for <c>"default"</c>, else its sub-folder named after the adapter.</summary>
    public static string AdapterDirectoryOf(string directory, string adapter) =>
        adapter == LoraLayer.DefaultAdapter ? directory : Path.Combine(directory, adapter);

    private static void Save(nn.Module model, string directory, AdapterFileOptions options, string adapter)
    {
        var config = AdapterConfigWriter.Describe(model, options, adapter);
        var tensors = AdapterSlot.Of(model, options, adapter)
            .OrderBy(slot => slot.Key, StringComparer.Ordinal)
            .Select(slot => TensorBytes.ToEntry(slot.Key, slot.Parameter))
            .ToList();
        AdapterDirectory.Write(directory, config.ToJson(), tensors);
    }

    /// <summary>
    /// Loads an adapter directory into the model as its <c>"default"</c> adapter, all or nothing. If the model has no
    /// such adapter yet, it is created first from the file's config (its ranks and alphas, as PEFT's
    /// <c>from_pretrained</c> does) on the model's <see cref="LoraTargetAttribute"/> targets, or where the config's
    /// <c>target_modules</c> say on a model without annotations; if it has, each layer must have the file's rank and
    /// scaling. Every key, shape and dtype is checked before any value is copied; on any error the model is
    /// left exactly as it was, adapters (or their absence) included. Values are converted to the adapters' dtype.
    /// </summary>
    /// <exception cref="LoraFileException">A file is malformed, or its keys, shapes, dtypes, ranks or scalings
    /// do not match the model; the message lists them.</exception>
    /// <exception cref="InvalidOperationException">The adapter is merged (unmerge first).</exception>
    /// <exception cref="IOException">A file is missing or cannot be read.</exception>
    public static void LoadAdapter(this nn.Module model, string directory, AdapterFileOptions? options = null) =>
        LoadAdapter(model, directory, LoraLayer.DefaultAdapter, options);

    /// <summary>
    /// Loads an adapter directory under the name <paramref name="adapter"/> (PEFT's <c>load_adapter</c>), as
    /// <see cref="LoadAdapter(nn.Module, string, AdapterFileOptions?)"/> does for <c>"default"</c>. A directory saved with
    /// several adapters holds each non-default one in a sub-folder named after it: when <paramref name="directory"/>
    /// has a sub-folder named <paramref name="adapter"/> holding an adapter, that is read; otherwise the directory itself. A new adapter is not made active (see
    /// <see cref="NamedAdapterExtensions.SetActiveAdapters"/>) unless it is the model's first.
    /// </summary>
    /// <exception cref="LoraFileException">A file is malformed or does not fit; the message lists every problem.</exception>
    /// <exception cref="InvalidOperationException">The adapter is merged (unmerge first).</exception>
    public static void LoadAdapter(this nn.Module model, string directory, string adapter, AdapterFileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentException.ThrowIfNullOrWhiteSpace(adapter);
        // A save of several adapters keeps this one in its own sub-folder; a single adapter directory is read as it is.
        if (adapter != LoraLayer.DefaultAdapter && File.Exists(Path.Combine(directory, adapter, AdapterConfig.FileName)))
            directory = Path.Combine(directory, adapter);
        var (config, weights) = AdapterDirectory.Open(directory);
        using (weights)
            LoadAdapter(model, config, weights, options ?? AdapterFileOptions.Default, directory, adapter);
    }

    /// <summary>The load itself, from an already opened weights file (the fuzz tests use memory streams).</summary>
    internal static void LoadAdapter(nn.Module model, AdapterConfig config, SafetensorsReader weights, AdapterFileOptions options, string what,
        string adapter = LoraLayer.DefaultAdapter)
    {
        var layers = LoraTree.Layers(model).ToList();
        var mergedHere = layers.Where(entry => entry.Layer.MergedAdapters.Contains(adapter)).Select(entry => entry.Path).ToList();
        if (mergedHere.Count > 0)
            throw new InvalidOperationException(
                $"Cannot load adapter '{adapter}' while it is merged into {string.Join(", ", mergedHere)}: call Unmerge() first.");
        bool hadAdapter = layers.Any(entry => entry.Layer.AdapterNames.Contains(adapter));
        var applied = hadAdapter ? null : NamedAdapterExtensions.Create(model, adapter, PlanFromFile(model, config, options, adapter), FromFile);
        try
        {
            // The file against itself (A/B pairs, the ranks the config gives), as `loragen inspect` checks it, then
            // against the model; every problem goes into one error.
            var mismatches = AdapterConsistency.Examine(config, weights, options.KeyPrefix).Problems.ToList();
            if (hadAdapter)
                mismatches.AddRange(ConfigMismatches(model, config, options, adapter));
            var targets = AdapterSlot.Of(model, options, adapter).Select(slot => (slot.Key, (Tensor)slot.Parameter)).ToList();
            TensorLoader.CheckAndCopy(targets, weights, $"Adapter '{what}'", mismatches,
                "Save the adapter from a model with the same targets, or map C# module paths to the file's with " +
                "AdapterFileOptions.MapPath (and KeyPrefix if the keys do not start with 'base_model.model.').");
        }
        catch
        {
            applied?.Undo();
            throw;
        }
    }

    // The file decides each target's options; refusing a rank PEFT would load helps no one.
    private static readonly LoraOptions FromFile = LoraOptions.Default with { AllowNoSavings = true };

    // As PEFT's from_pretrained: adapters where the file's config puts them, with its ranks and alphas. An annotated
    // model keeps its compile-time-checked targets; any other model is targeted by the config's target_modules.
    private static AdapterPlan PlanFromFile(nn.Module model, AdapterConfig config, AdapterFileOptions options, string adapter)
    {
        if (LoraTree.Hosts(model).Any() || LoraTree.AnnotatedWithoutGeneratedCode(model).Any())
        {
            LoraModelExtensions.AnnotatedHostsOrThrow(model, "LoadAdapter");
            return AdapterPlan.FromAnnotations(model, FromFile, (where, _) => config.ConfigFor(options.FilePath(where)), adapter);
        }
        if (config.TargetModules.Count == 0 && config.TargetModulesPattern is null)
            throw new LoraFileException(
                $"This {model.GetType().Name} has no adapter '{adapter}' and no [LoraTarget] classes, and the adapter's {AdapterConfig.FileName} " +
                "names no target_modules, so nothing says where its adapters go; nothing was changed. Apply LoRA first " +
                "(ApplyLora), or give the config the target_modules it was trained with.");
        return AdapterPlan.FromConfig(model, config, FromFile, options.FilePath, adapter);
    }

    // With adapters already in place, the file's config must give each the same rank and scaling:
    // weights trained at another scaling would load without error and compute something else.
    private static List<string> ConfigMismatches(nn.Module model, AdapterConfig config, AdapterFileOptions options, string adapter)
    {
        var mismatches = new List<string>();
        foreach (var (path, layer) in LoraTree.Layers(model))
        {
            if (!layer.AdapterNames.Contains(adapter))
                continue;
            var wanted = config.ConfigFor(options.FilePath(path));
            var have = layer.ConfigOf(adapter);
            if (wanted.Rank != have.Rank)
                mismatches.Add($"{path}: rank {wanted.Rank} in {AdapterConfig.FileName}, {have.Rank} in the model");
            else if (Math.Abs(wanted.Scaling - have.Scaling) > 1e-9 * Math.Abs(have.Scaling))
                mismatches.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{path}: scaling {wanted.Scaling:G6} in {AdapterConfig.FileName} (alpha {wanted.EffectiveAlpha:G6}), {have.Scaling:G6} in the model"));
        }
        return mismatches;
    }
}
