using System.Text.RegularExpressions;

namespace LoraGen;

/// <summary>
/// How <see cref="CheckpointExtensions.LoadPretrained"/> matches a Hugging Face checkpoint's keys to the model's
/// parameter paths. A file key goes through <see cref="RemovePrefix"/>, then <see cref="AddPrefix"/>, then
/// <see cref="Rename"/>; the result must be a path in the model.
/// </summary>
public sealed record PretrainedLoadOptions
{
    /// <summary>Exact matching, nothing allowed to be missing or left over.</summary>
    public static PretrainedLoadOptions Default { get; } = new();

    /// <summary>A prefix taken off every file key that starts with it, e.g. <c>"bert."</c> to load a
    /// <c>BertForSequenceClassification</c> checkpoint into a bare encoder.</summary>
    public string? RemovePrefix { get; init; }

    /// <summary>A prefix put before every file key, e.g. <c>"bert."</c> to load a bare <c>BertModel</c> checkpoint
    /// (all-MiniLM-L6-v2) into a model wrapped like <c>BertForSequenceClassification</c>.</summary>
    public string? AddPrefix { get; init; }

    /// <summary>Any other renaming, applied last (e.g. <c>k => k.Replace("gamma", "weight")</c> for old BERT files).</summary>
    public Func<string, string>? Rename { get; init; }

    /// <summary>File keys the model may leave unused (e.g. a pooler the model does not have): each item is an exact
    /// key or a regular expression that must match the whole key, as written in the file.</summary>
    public IReadOnlyList<string> AllowUnexpected { get; init; } = [];

    /// <summary>Model paths the file may lack (e.g. a new classifier head, initialised by the model): exact paths or
    /// whole-path regular expressions. Those parameters keep their values.</summary>
    public IReadOnlyList<string> AllowMissing { get; init; } = [];

    /// <summary>
    /// Load straight into 4-bit (or 8-bit): every Linear of the model whose weight the file holds is replaced, at the
    /// same path, by a <see cref="QuantizedLinear"/> of this kind built from the file's tensor as it is read; the float
    /// Linear is disposed right after, so loading needs no more than the largest tensor beyond the model. The model
    /// must not hold adapters yet (apply LoRA after loading; a QuantizedLinear is wrapped as it is).
    /// <see cref="QuantizationKind.None"/> (the default): weights are copied into the model's float parameters. See
    /// docs/qlora.md.
    /// </summary>
    public QuantizationKind Quantize { get; init; }

    /// <summary>With <see cref="Quantize"/>: the Linears to keep in float (transformers' <c>llm_int8_skip_modules</c>,
    /// e.g. <c>lm_head</c>): each item is a module path, a last path segment (<c>lm_head</c> matches
    /// <c>model.lm_head</c>), or a regular expression that must match the whole path.</summary>
    public IReadOnlyList<string> KeepInFloat { get; init; } = [];

    /// <summary>The model path a file key maps to.</summary>
    public string Map(string fileKey)
    {
        string key = RemovePrefix is { Length: > 0 } remove && fileKey.StartsWith(remove, StringComparison.Ordinal) ? fileKey[remove.Length..] : fileKey;
        key = (AddPrefix ?? "") + key;
        return Rename is null ? key : Rename(key);
    }

    internal static bool Matches(IReadOnlyList<string> patterns, string key) =>
        patterns.Any(pattern => pattern == key || Regex.IsMatch(key, $"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)));
}
