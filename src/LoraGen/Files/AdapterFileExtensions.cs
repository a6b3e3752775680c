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
    /// Writes the adapters and the <c>Trainable</c> fields to <paramref name="directory"/> (created if needed)
    /// as PEFT does. Both files are written to temporary files and flushed first, then moved into place: after a
    /// failed save, or a crash at any instant, <see cref="LoadAdapter(nn.Module, string, AdapterFileOptions?)"/>
    /// reads the complete previous adapter or the complete new one (see <see cref="AdapterDirectory"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no adapters, or its layers mix
    /// rsLoRA and plain LoRA, which one PEFT config cannot say.</exception>
    public static void SaveAdapter(this nn.Module model, string directory, AdapterFileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        options ??= AdapterFileOptions.Default;
        var config = AdapterConfigWriter.Describe(model, options);
        var tensors = AdapterSlot.Of(model, options)
            .OrderBy(slot => slot.Key, StringComparer.Ordinal)
            .Select(slot => TensorBytes.ToEntry(slot.Key, slot.Parameter))
            .ToList();
        AdapterDirectory.Write(directory, config.ToJson(), tensors);
    }

    /// <summary>
    /// Loads an adapter directory into the model, all or nothing. If the model has no adapters yet, they are
    /// created first from the file's config (its ranks and alphas, as PEFT's <c>from_pretrained</c> does) on
    /// the model's <see cref="LoraTargetAttribute"/> targets; if it has, each must have the file's rank and
    /// scaling. Every key, shape and dtype is checked before any value is copied; on any error the model is
    /// left exactly as it was, adapters (or their absence) included. Values are converted to the adapters' dtype.
    /// </summary>
    /// <exception cref="LoraFileException">A file is malformed, or its keys, shapes, dtypes, ranks or scalings
    /// do not match the model; the message lists them.</exception>
    /// <exception cref="InvalidOperationException">An adapter is merged (unmerge first), or the model has no
    /// <see cref="LoraTargetAttribute"/> classes.</exception>
    /// <exception cref="IOException">A file is missing or cannot be read.</exception>
    public static void LoadAdapter(this nn.Module model, string directory, AdapterFileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        var (config, weights) = AdapterDirectory.Open(directory);
        using (weights)
            LoadAdapter(model, config, weights, options ?? AdapterFileOptions.Default, directory);
    }

    /// <summary>The load itself, from an already opened weights file (the fuzz tests use memory streams).</summary>
    internal static void LoadAdapter(nn.Module model, AdapterConfig config, SafetensorsReader weights, AdapterFileOptions options, string what)
    {
        LoraTree.RefuseMerged(model, "load an adapter into");
        bool hadAdapters = LoraTree.Layers(model).Any();
        var applied = hadAdapters ? null : PlanFromFile(model, config, options).Apply(model, FromFile);
        try
        {
            // The file against itself (A/B pairs, the ranks the config gives), as `loragen inspect` checks it, then
            // against the model; every problem goes into one error.
            var mismatches = AdapterConsistency.Examine(config, weights, options.KeyPrefix).Problems.ToList();
            if (hadAdapters)
                mismatches.AddRange(ConfigMismatches(model, config, options));
            var targets = AdapterSlot.Of(model, options).Select(slot => (slot.Key, (Tensor)slot.Parameter)).ToList();
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
    private static AdapterPlan PlanFromFile(nn.Module model, AdapterConfig config, AdapterFileOptions options)
    {
        if (LoraTree.Hosts(model).Any() || LoraTree.AnnotatedWithoutGeneratedCode(model).Any())
        {
            LoraModelExtensions.AnnotatedHostsOrThrow(model, "LoadAdapter");
            return AdapterPlan.FromAnnotations(model, FromFile, (where, _) => config.ConfigFor(options.FilePath(where)));
        }
        if (config.TargetModules.Count == 0 && config.TargetModulesPattern is null)
            throw new LoraFileException(
                $"This {model.GetType().Name} has no adapters and no [LoraTarget] classes, and the adapter's {AdapterConfig.FileName} " +
                "names no target_modules, so nothing says where its adapters go; nothing was changed. Apply LoRA first " +
                "(ApplyLora), or give the config the target_modules it was trained with.");
        return AdapterPlan.FromConfig(model, config, FromFile, options.FilePath);
    }

    // With adapters already in place, the file's config must give each the same rank and scaling:
    // weights trained at another scaling would load without error and compute something else.
    private static List<string> ConfigMismatches(nn.Module model, AdapterConfig config, AdapterFileOptions options)
    {
        var mismatches = new List<string>();
        foreach (var (path, layer) in LoraTree.Layers(model))
        {
            var wanted = config.ConfigFor(options.FilePath(path));
            if (wanted.Rank != layer.Rank)
                mismatches.Add($"{path}: rank {wanted.Rank} in {AdapterConfig.FileName}, {layer.Rank} in the model");
            else if (Math.Abs(wanted.Scaling - layer.Scaling) > 1e-9 * Math.Abs(layer.Scaling))
                mismatches.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{path}: scaling {wanted.Scaling:G6} in {AdapterConfig.FileName} (alpha {wanted.EffectiveAlpha:G6}), {layer.Scaling:G6} in the model"));
        }
        return mismatches;
    }
}
