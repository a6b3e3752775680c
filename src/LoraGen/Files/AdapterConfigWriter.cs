using System.Text.RegularExpressions;
using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>Describes a model's adapters as one PEFT config: the most common rank and alpha as <c>r</c> and
/// <c>lora_alpha</c>, every other layer in <c>rank_pattern</c> / <c>alpha_pattern</c> under its path.</summary>
internal static class AdapterConfigWriter
{
    public static AdapterConfig Describe(nn.Module model, AdapterFileOptions options, string adapter)
    {
        var layers = LoraTree.Layers(model)
            .Where(entry => entry.Layer.AdapterNames.Contains(adapter))
            .Select(entry => (Path: options.FilePath(entry.Path), Config: AsSaved(entry.Layer.ConfigOf(adapter))))
            .ToList();
        if (layers.Count == 0)
            throw new InvalidOperationException(
                $"This {model.GetType().Name} has no adapter '{adapter}' to save: call ApplyLora() (or LoadAdapter, AddAdapter) first.");
        if (layers.Select(layer => layer.Config.UseRsLora).Distinct().Count() > 1)
            throw new InvalidOperationException(
                "Some layers use rsLoRA scaling and others do not; PEFT's adapter_config.json has one use_rslora for all. " +
                "Set UseRsLora the same way on every target.");
        if (layers.Select(layer => layer.Config.UseDora).Distinct().Count() > 1)
            throw new InvalidOperationException(
                $"Adapter '{adapter}' is DoRA on some layers and plain LoRA on others; PEFT's adapter_config.json has one use_dora for all. " +
                "Set UseDora the same way on every target.");

        int rank = MostCommon(layers.Select(layer => layer.Config.Rank));
        double alpha = MostCommon(layers.Select(layer => layer.Config.EffectiveAlpha));
        var paths = layers.Select(layer => layer.Path).ToList();
        var rankPattern = new Dictionary<string, int>(StringComparer.Ordinal);
        var alphaPattern = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (path, config) in layers)
        {
            if (config.Rank != rank)
                rankPattern[PatternFor(path, paths)] = config.Rank;
            if (config.EffectiveAlpha != alpha)
                alphaPattern[PatternFor(path, paths)] = config.EffectiveAlpha;
        }

        // PEFT lists the task's head names after the user's modules_to_save (PeftModelForSequenceClassification).
        var heads = AdapterConfig.HeadModulesOf(options.TaskType);
        var modulePaths = LoraTree.Modules(model).Skip(1).Select(entry => entry.Path).ToList();
        var trainable = SavedModuleNames(TrainableModules.Of(model, adapter).Select(entry => entry.Path).ToList(), modulePaths, options)
            .Where(field => !heads.Contains(field))
            .Concat(heads)
            .ToList();
        return new AdapterConfig
        {
            Rank = rank,
            Alpha = alpha,
            // PEFT has one dropout for all layers; it only matters for further training.
            Dropout = MostCommon(layers.Select(layer => layer.Config.Dropout)),
            UseRsLora = layers[0].Config.UseRsLora,
            UseDora = layers[0].Config.UseDora,
            Init = MostCommon(layers.Select(layer => layer.Config.Init)),
            TargetModules = TargetNames(model, paths, options),
            RankPattern = rankPattern,
            AlphaPattern = alphaPattern,
            ModulesToSave = trainable.Count == 0 ? null : trainable,
            BaseModelNameOrPath = options.BaseModelNameOrPath,
            TaskType = options.TaskType,
        };
    }

    // A PiSSA/OLoRA adapter is saved converted (AdapterSlot.ForSaving): rank 2r, and PEFT's alpha for it, doubled
    // (× √2 with rsLoRA) so the scaling stays; a plain init, since the file is a plain LoRA on the original base.
    private static LoraConfig AsSaved(LoraConfig config) => !config.RewritesBase ? config : config with
    {
        Rank = 2 * config.Rank,
        Alpha = config.UseRsLora ? config.EffectiveAlpha * Math.Sqrt(2) : 2 * config.EffectiveAlpha,
        Init = LoraInit.Default,
        PissaIterations = null,
    };

    // target_modules as PEFT users write them, the layers' names (q_proj, v_proj), when those select exactly the
    // adapted layers among the model's adaptable ones; else the full paths, so that loading onto a model without
    // adapters (run-time targeting) puts them back exactly where they were.
    private static List<string> TargetNames(nn.Module model, List<string> adapted, AdapterFileOptions options)
    {
        var names = adapted.Select(Leaf).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (names.Count == 0)
            return names;
        var byNames = new AdapterConfig { TargetModules = names };
        var candidates = LoraTree.Modules(model)
            .Where(entry => entry.Module is LoraLayer or TorchSharp.Modules.Linear or QuantizedLinear or TorchSharp.Modules.Embedding
                or TorchSharp.Modules.Conv1d or TorchSharp.Modules.Conv2d)
            .Select(entry => MappedOrNull(entry.Path, options));
        var chosen = adapted.ToHashSet(StringComparer.Ordinal);
        bool exact = candidates.All(path => path is null || (byNames.Match(path) == TargetMatch.Targeted) == chosen.Contains(path));
        return exact ? names : [.. adapted.Order(StringComparer.Ordinal)];
    }

    // modules_to_save the same way: PEFT wraps every module whose path ends with an entry (a plain string suffix).
    private static IEnumerable<string> SavedModuleNames(List<string> trainable, List<string> modulePaths, AdapterFileOptions options)
    {
        var mapped = trainable.Select(options.FilePath).ToList();
        var names = mapped.Select(Leaf).Distinct(StringComparer.Ordinal).ToList();
        var chosen = mapped.ToHashSet(StringComparer.Ordinal);
        bool exact = modulePaths.Select(path => MappedOrNull(path, options)).All(path => path is null
            || chosen.Any(saved => path.StartsWith(saved + ".", StringComparison.Ordinal))
            || names.Any(name => path.EndsWith(name, StringComparison.Ordinal)) == chosen.Contains(path));
        return exact ? names : mapped.Distinct(StringComparer.Ordinal);
    }

    private static string Leaf(string path) => path[(path.LastIndexOf('.') + 1)..];

    // A user's MapPath is written for the paths it maps; one that refuses another module's path leaves it out of the check.
    private static string? MappedOrNull(string path, AdapterFileOptions options)
    {
        try
        {
            return options.FilePath(path);
        }
        catch (Exception error) when (error is ArgumentException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    // PEFT matches a pattern against the end of each module path: (.*\.)?pattern$. The plain path reads best;
    // where it would also match another layer (a root-level "up" and "blocks.0.up"), anchor and escape it.
    private static string PatternFor(string path, List<string> paths)
    {
        var anchored = "^" + Regex.Escape(path) + "$";
        if (path.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '.')))
            return anchored;
        bool ambiguous = paths.Any(other => other != path &&
            Regex.IsMatch(other, $"^(?:.*\\.)?(?:{path})$", RegexOptions.CultureInvariant));
        return ambiguous ? anchored : path;
    }

    // Ties go to the value seen first, so the choice follows the model's order.
    private static T MostCommon<T>(IEnumerable<T> values) where T : notnull =>
        values.Select((value, index) => (value, index))
            .GroupBy(entry => entry.value)
            .OrderByDescending(group => group.Count())
            .ThenBy(group => group.Min(entry => entry.index))
            .First().Key;
}
