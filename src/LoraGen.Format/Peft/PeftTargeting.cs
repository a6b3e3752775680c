using System.Text.RegularExpressions;

namespace LoraGen.Files;

/// <summary>What PEFT's <c>check_target_module_exists</c> decides for one module path.</summary>
public enum TargetMatch
{
    /// <summary>No rule of <c>target_modules</c> selects the module.</summary>
    Unmatched,

    /// <summary>The module gets an adapter.</summary>
    Targeted,

    /// <summary><c>exclude_modules</c> names it, or it is (inside) a <c>modules_to_save</c> module.</summary>
    Excluded,
}

/// <summary>
/// PEFT's module-selection rules, in one place (PEFT 0.20, <c>tuners_utils.check_target_module_exists</c>,
/// <c>_maybe_include_all_linear_layers</c>, <c>utils.other.get_pattern_key</c>), matched against module paths
/// without the <c>base_model.model.</c> prefix. Patterns from files are used as PEFT uses them: raw regular
/// expressions, never escaped, each match limited in time so a pathological one cannot hang the caller.
/// </summary>
internal static class PeftTargeting
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(200);

    /// <summary>check_target_module_exists: exclude_modules, then the modules_to_save guard, then target_modules
    /// (a regex must match the whole path; a list item matches the path or its end after a dot, and only then
    /// do layers_to_transform / layers_pattern filter by the layer index).</summary>
    public static TargetMatch Match(AdapterConfig config, string path)
    {
        if (config.ExcludeModulesPattern is { } exclude ? FullMatch(exclude, path, "exclude_modules")
            : config.ExcludeModules.Any(name => IsNameOrSuffix(path, name)))
            return TargetMatch.Excluded;
        if (config.EffectiveModulesToSave.Any(saved => Matches($@"\A(?:^|.*\.){saved}(?:$|\..*)", path, "modules_to_save")))
            return TargetMatch.Excluded;

        if (config.TargetModulesPattern is { } pattern)
        {
            if (string.Equals(pattern, AdapterConfig.AllLinear, StringComparison.OrdinalIgnoreCase))
                throw new InvalidOperationException(
                    "target_modules \"all-linear\" must be expanded against the model's layers before matching (ExpandAllLinear).");
            return FullMatch(pattern, path, "target_modules") ? TargetMatch.Targeted : TargetMatch.Unmatched;
        }
        if (config.TargetModules.Contains(path, StringComparer.Ordinal))
            return TargetMatch.Targeted;
        if (!config.TargetModules.Any(name => path.EndsWith("." + name, StringComparison.Ordinal)))
            return TargetMatch.Unmatched;
        if (config.LayersToTransform is not { Count: > 0 } layers)
            return TargetMatch.Targeted;
        return LayerIndex(config.LayersPattern, path) is { } index && layers.Contains(index)
            ? TargetMatch.Targeted
            : TargetMatch.Unmatched;
    }

    /// <summary>The first key of <paramref name="patterns"/> (in order) that matches a dot-aligned end of
    /// <paramref name="path"/> (<c>(.*\.)?(key)$</c>; a leading <c>^</c> makes it a whole-path match), or null.</summary>
    public static string? PatternKey(IEnumerable<string> patterns, string path) =>
        patterns.FirstOrDefault(key => Matches($@"\A(?:.*\.)?(?:{key})$", path, "rank_pattern/alpha_pattern"));

    /// <summary>Whether PEFT wraps the module as a <c>modules_to_save</c> copy: its path ends with an entry
    /// (a plain string suffix, as PEFT's <c>_set_trainable</c>).</summary>
    public static bool IsSaved(AdapterConfig config, string path) =>
        config.EffectiveModulesToSave.Any(saved => path.EndsWith(saved, StringComparison.Ordinal));

    /// <summary>The layer index layers_to_transform compares: the first <c>.&lt;pattern&gt;.&lt;digits&gt;.</c> in
    /// the path (any segment name when there is no pattern); null when there is none.</summary>
    private static int? LayerIndex(IReadOnlyList<string>? layersPattern, string path)
    {
        var patterns = layersPattern is { Count: > 0 } ? layersPattern : [@"[^.]*"];
        foreach (var pattern in patterns)
        {
            var match = Run(() => Regex.Match(path, $@"\A.*?\.{pattern}\.(\d+)\.", RegexOptions.CultureInvariant, Timeout), pattern, "layers_pattern");
            if (match.Success)
                return int.TryParse(match.Groups[1].ValueSpan, System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out int index) ? index : null;
        }
        return null;
    }

    private static bool IsNameOrSuffix(string path, string name) =>
        path == name || path.EndsWith("." + name, StringComparison.Ordinal);

    private static bool FullMatch(string pattern, string path, string key) => Matches($@"\A(?:{pattern})\z", path, key);

    private static bool Matches(string regex, string path, string key) =>
        Run(() => Regex.IsMatch(path, regex, RegexOptions.CultureInvariant, Timeout), regex, key);

    private static T Run<T>(Func<T> match, string pattern, string key)
    {
        try
        {
            return match();
        }
        catch (RegexMatchTimeoutException error)
        {
            throw new LoraFileException($"{AdapterConfig.FileName}: the {key} pattern \"{pattern}\" took too long to match; simplify it.", error);
        }
        catch (ArgumentException error)
        {
            throw new LoraFileException($"{AdapterConfig.FileName}: the {key} entry \"{pattern}\" is not a valid regular expression ({error.Message}).", error);
        }
    }
}
