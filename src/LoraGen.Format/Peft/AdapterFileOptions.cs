namespace LoraGen;

/// <summary>
/// How module paths in the model become keys in adapter files. A key is
/// <see cref="KeyPrefix"/> + <see cref="MapPath"/>(module path) + "." + parameter name, e.g.
/// <c>base_model.model.layers.0.q_proj.lora_A.weight</c>.
/// </summary>
public sealed record AdapterFileOptions
{
    /// <summary>The default: PEFT's prefix, paths unchanged.</summary>
    public static AdapterFileOptions Default { get; } = new();

    /// <summary>What PEFT puts before every module path: <c>base_model.model.</c> (the PeftModel wrapper
    /// and the LoraModel inside it). Use <c>""</c> for bare paths.</summary>
    public string KeyPrefix { get; init; } = Files.PeftLayout.KeyPrefix;

    /// <summary>
    /// Maps a module path in the C# model (e.g. <c>blocks.0.attn.q</c>) to the module path in the
    /// Python model the adapter is shared with (e.g. <c>model.layers.0.self_attn.q_proj</c>). Applied to
    /// every adapted layer's path and every <c>Trainable</c> field's path, when saving and when loading, and
    /// to the paths that <c>rank_pattern</c> and <c>alpha_pattern</c> are matched against. Null: unchanged.
    /// </summary>
    public Func<string, string>? MapPath { get; init; }

    /// <summary>Written as <c>base_model_name_or_path</c> (PEFT's pointer to the base model); null by default.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>Written as <c>task_type</c> (e.g. <c>"SEQ_CLS"</c> for a <c>…ForSequenceClassification</c> model);
    /// null by default. As PEFT does for that task, <c>modules_to_save</c> then also lists the head names PEFT
    /// adds (<see cref="Files.AdapterConfig.HeadModulesOf"/>: <c>classifier</c> and <c>score</c> for SEQ_CLS).</summary>
    public string? TaskType { get; init; }

    /// <summary>The path as written in files.</summary>
    internal string FilePath(string modulePath)
    {
        if (MapPath is null)
            return modulePath;
        var mapped = MapPath(modulePath);
        return string.IsNullOrEmpty(mapped)
            ? throw new ArgumentException($"AdapterFileOptions.MapPath mapped '{modulePath}' to an empty path.", nameof(MapPath))
            : mapped;
    }

    /// <summary>The full key of a parameter of the module at <paramref name="modulePath"/>.</summary>
    internal string Key(string modulePath, string parameterName) => KeyPrefix + FilePath(modulePath) + "." + parameterName;
}
