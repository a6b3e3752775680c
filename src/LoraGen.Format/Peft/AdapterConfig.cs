using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace LoraGen.Files;

/// <summary>
/// PEFT's <c>adapter_config.json</c> for a LoRA adapter: the global rank and alpha, with per-module
/// overrides in <see cref="RankPattern"/> and <see cref="AlphaPattern"/>. Reading tolerates keys LoraGen
/// does not use (PEFT adds new ones often) and refuses, with a <see cref="LoraFileException"/> that names every
/// such key at once, values that would change what the weights mean and that LoraGen does not implement (another
/// PEFT method, no <c>peft_type</c>, DoRA, trained biases, <c>fan_in_fan_out</c>, an <c>init_lora_weights</c> that
/// rewrites the base weights such as PiSSA, and the other variants; see docs/file-formats.md).
/// </summary>
public sealed record AdapterConfig
{
    /// <summary>The file name inside an adapter directory.</summary>
    public const string FileName = "adapter_config.json";

    /// <summary>Time allowed for one pattern match: a pathological pattern in a file must not hang the caller.</summary>
    private static readonly TimeSpan PatternTimeout = TimeSpan.FromMilliseconds(200);

    /// <summary>PEFT's <c>r</c>: the rank of modules no rank pattern matches. PEFT's default is 8.</summary>
    public int Rank { get; init; } = 8;

    /// <summary>PEFT's <c>lora_alpha</c> for modules no alpha pattern matches. PEFT's default is 8.</summary>
    public double Alpha { get; init; } = 8;

    /// <summary>PEFT's <c>lora_dropout</c>.</summary>
    public double Dropout { get; init; }

    /// <summary>PEFT's <c>use_rslora</c>: scaling alpha / √r.</summary>
    public bool UseRsLora { get; init; }

    /// <summary>PEFT's <c>init_lora_weights</c>: <c>"gaussian"</c> or the default when read from a file (a file with
    /// <c>"pissa"</c> or <c>"olora"</c> is refused: see <see cref="LoraInit.Pissa"/>); any value for run-time targeting.</summary>
    public LoraInit Init { get; init; }

    /// <summary>With <see cref="Init"/> = <see cref="LoraInit.Pissa"/>: see <see cref="LoraConfig.PissaIterations"/>.</summary>
    public int? PissaIterations { get; init; }

    /// <summary>PEFT's <c>use_dora</c>: every adapted layer is a DoRA layer, with a <c>lora_magnitude_vector</c> tensor.</summary>
    public bool UseDora { get; init; }

    /// <summary>PEFT's <c>init_lora_weights</c> as the file writes it (<c>true</c>, <c>false</c>, <c>gaussian</c>,
    /// <c>eva</c>, <c>orthogonal</c>, <c>mica</c>: the ones LoraGen reads as plain LoRA, since they only decide how A and B
    /// start); null when the file does not say, or for a config not read from a file.</summary>
    public string? InitLoraWeights { get; init; }

    /// <summary>What the reader accepted but a user should know (e.g. <c>init_lora_weights "mica"</c>, or a set key no
    /// PEFT version LoraGen knows writes); empty for a config not read from a file.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>The <c>target_modules</c> value that selects every Linear layer except the model's output head.</summary>
    public const string AllLinear = "all-linear";

    /// <summary>PEFT's <c>target_modules</c> as a list: a module is adapted when its path equals a name or ends with
    /// <c>.name</c> (<c>"q_proj"</c> matches <c>layers.0.attn.q_proj</c>, not <c>qq_proj</c>).
    /// See <see cref="Match"/>.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = [];

    /// <summary>PEFT's <c>target_modules</c> as a string: a regular expression that must match the whole module path
    /// (<c>.*\.(q_proj|v_proj)</c>), or <see cref="AllLinear"/>. Null when <see cref="TargetModules"/> is the list.</summary>
    public string? TargetModulesPattern { get; init; }

    /// <summary>PEFT's <c>exclude_modules</c> as a list, matched like <see cref="TargetModules"/>: never adapted.</summary>
    public IReadOnlyList<string> ExcludeModules { get; init; } = [];

    /// <summary>PEFT's <c>exclude_modules</c> as a string: a regular expression that must match the whole path.</summary>
    public string? ExcludeModulesPattern { get; init; }

    /// <summary>PEFT's <c>layers_to_transform</c>: with a list <see cref="TargetModules"/>, only modules in these
    /// layers (by the index after <see cref="LayersPattern"/>, e.g. <c>layers.3.</c>) are adapted. Null: all.</summary>
    public IReadOnlyList<int>? LayersToTransform { get; init; }

    /// <summary>PEFT's <c>layers_pattern</c>: the name(s) of the layer list whose index <see cref="LayersToTransform"/>
    /// reads (<c>"layers"</c>, <c>"h"</c>); null or empty: the first numbered segment after a named one.</summary>
    public IReadOnlyList<string>? LayersPattern { get; init; }

    /// <summary>PEFT's <c>rank_pattern</c>: a regular expression matched against the end of a module path
    /// (<c>(.*\.)?pattern$</c>), and the rank for the modules it matches.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary>PEFT's <c>alpha_pattern</c>, matched like <see cref="RankPattern"/>.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary>PEFT's <c>modules_to_save</c>: module names trained in full (LoraGen's <c>Trainable</c>), or null.</summary>
    public IReadOnlyList<string>? ModulesToSave { get; init; }

    /// <summary>PEFT's <c>base_model_name_or_path</c>.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary>PEFT's <c>task_type</c> (e.g. <c>"SEQ_CLS"</c>), or null.</summary>
    public string? TaskType { get; init; }

    /// <summary>The head names PEFT adds to <c>modules_to_save</c> for a task type (its
    /// <c>PeftModelForSequenceClassification</c> / <c>…TokenClassification</c> / <c>…QuestionAnswering</c>).</summary>
    public static IReadOnlyList<string> HeadModulesOf(string? taskType) => taskType switch
    {
        "SEQ_CLS" or "TOKEN_CLS" => ["classifier", "score"],
        "QUESTION_ANS" => ["qa_outputs"],
        _ => [],
    };

    /// <summary><see cref="ModulesToSave"/> with the heads PEFT adds for <see cref="TaskType"/> (when it wraps a
    /// model for that task): what is trained in full, and kept out of the adapters.</summary>
    public IReadOnlyList<string> EffectiveModulesToSave =>
        [.. (ModulesToSave ?? []).Concat(HeadModulesOf(TaskType)).Distinct(StringComparer.Ordinal)];

    /// <summary>Whether PEFT adapts the module at <paramref name="modulePath"/> (without the <c>base_model.model.</c>
    /// prefix), by its rules: <c>exclude_modules</c> and <c>modules_to_save</c> first, then <c>target_modules</c>
    /// with <c>layers_to_transform</c>. Only the path decides; which layer kinds can be adapted is the caller's.</summary>
    /// <exception cref="InvalidOperationException"><see cref="TargetModulesPattern"/> is still <see cref="AllLinear"/>
    /// (see <see cref="ExpandAllLinear"/>).</exception>
    /// <exception cref="LoraFileException">A pattern is not a valid regular expression or takes too long.</exception>
    public TargetMatch Match(string modulePath)
    {
        ArgumentNullException.ThrowIfNull(modulePath);
        return PeftTargeting.Match(this, modulePath);
    }

    /// <summary>Whether the module is one PEFT trains in full and saves whole (<c>modules_to_save</c>: its path ends
    /// with an entry, or a task head).</summary>
    public bool SavesModule(string modulePath)
    {
        ArgumentNullException.ThrowIfNull(modulePath);
        return PeftTargeting.IsSaved(this, modulePath);
    }

    /// <summary>With <see cref="TargetModulesPattern"/> = <see cref="AllLinear"/>: the config PEFT saves, whose
    /// <see cref="TargetModules"/> are the full paths of <paramref name="linearPaths"/> except
    /// <paramref name="outputLayer"/>. Any other config is returned as it is.</summary>
    public AdapterConfig ExpandAllLinear(IEnumerable<string> linearPaths, string? outputLayer)
    {
        ArgumentNullException.ThrowIfNull(linearPaths);
        if (!string.Equals(TargetModulesPattern, AllLinear, StringComparison.OrdinalIgnoreCase))
            return this;
        return this with
        {
            TargetModulesPattern = null,
            TargetModules = [.. linearPaths.Where(path => path != outputLayer).Distinct(StringComparer.Ordinal)],
        };
    }

    /// <summary>The hyperparameters PEFT would give the module at <paramref name="modulePath"/> (the path as
    /// written in the file's keys, without the <c>base_model.model.</c> prefix).</summary>
    /// <exception cref="LoraFileException">A pattern takes too long to match.</exception>
    public LoraConfig ConfigFor(string modulePath)
    {
        int rank = PeftTargeting.PatternKey(RankPattern.Keys, modulePath) is { } rankKey ? RankPattern[rankKey] : Rank;
        double alpha = PeftTargeting.PatternKey(AlphaPattern.Keys, modulePath) is { } alphaKey ? AlphaPattern[alphaKey] : Alpha;
        return new LoraConfig
        {
            Rank = rank, Alpha = alpha, Dropout = Dropout, UseRsLora = UseRsLora, Init = Init, UseDora = UseDora,
            PissaIterations = Init == LoraInit.Pissa ? PissaIterations : null,
        };
    }

    /// <summary>Reads and checks an <c>adapter_config.json</c>.</summary>
    /// <exception cref="LoraFileException">It is not JSON, or a value is missing its meaning for LoraGen.</exception>
    public static AdapterConfig Read(string path) => Parse(File.ReadAllBytes(path), path);

    /// <summary>Parses and checks the JSON text of an adapter config; <paramref name="source"/> names it in errors.</summary>
    /// <exception cref="LoraFileException">It is not a JSON object, or a value is unusable.</exception>
    public static AdapterConfig Parse(ReadOnlySpan<byte> json, string source)
    {
        // Editors on Windows save UTF-8 with a byte-order mark; JSON parsers refuse it, the text is fine.
        if (json.StartsWith("\uFEFF"u8))
            json = json[3..];
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException error)
        {
            throw Error(source, $"it is not valid JSON ({error.Message}).", error);
        }
        catch (ArgumentException error)
        {
            // JsonObject refuses duplicate property names with an ArgumentException.
            throw Error(source, $"a key appears twice ({error.Message}).", error);
        }
        if (root is not JsonObject obj)
            throw Error(source, "it must be a JSON object.");
        try
        {
            return FromJson(obj, source);
        }
        catch (Exception error) when (error is InvalidOperationException or FormatException or ArgumentException)
        {
            throw Error(source, $"a value has the wrong type ({error.Message}).", error);
        }
    }

    private static AdapterConfig FromJson(JsonObject obj, string source)
    {
        // Everything that makes the weights mean something other than plain LoRA, in one message: a user who fixes
        // one key should not meet the next on the following try.
        var refusals = PeftConfigKeys.Refusals(obj);
        if (refusals.Count == 1)
            throw Error(source, refusals[0] + ".");
        if (refusals.Count > 1)
            throw Error(source, $"LoraGen cannot read it as a plain LoRA adapter, for {refusals.Count} reasons: " +
                string.Join("; ", refusals.Select((refusal, i) => $"({i + 1}) {refusal}")) + ".");

        int rank = obj["r"] is null ? 8 : PositiveRank(obj["r"]!, "r", source);
        double alpha = obj["lora_alpha"] is null ? 8 : PositiveNumber(obj["lora_alpha"]!, "lora_alpha", source);
        double dropout = obj["lora_dropout"] is null ? 0 : Number(obj["lora_dropout"]!, "lora_dropout", source);
        if (!(dropout >= 0 && dropout < 1))
            throw Error(source, $"lora_dropout must be in [0, 1), but it is {dropout.ToString(CultureInfo.InvariantCulture)}.");

        var rankPattern = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (pattern, value) in Patterns(obj, "rank_pattern", source))
            rankPattern[pattern] = PositiveRank(value, $"rank_pattern[\"{pattern}\"]", source);
        var alphaPattern = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (pattern, value) in Patterns(obj, "alpha_pattern", source))
            alphaPattern[pattern] = PositiveNumber(value, $"alpha_pattern[\"{pattern}\"]", source);

        var target = Selection(obj, "target_modules", source);
        var exclude = Selection(obj, "exclude_modules", source);
        var layers = obj["layers_to_transform"] switch
        {
            null => null,
            JsonArray list => list.Select((item, i) => LayerIndex(item, $"layers_to_transform[{i}]", source)).ToArray(),
            var single => (int[])[LayerIndex(single, "layers_to_transform", source)],
        };
        var layersPattern = obj["layers_pattern"] switch
        {
            null => null,
            JsonArray list => Strings(list, "layers_pattern", source),
            JsonValue single when single.GetValueKind() == JsonValueKind.String => [single.GetValue<string>()],
            var other => throw Error(source, $"layers_pattern must be a name, a list of names or null, but it is {other.ToJsonString()}."),
        };
        if (target.Pattern is not null && (layers is { Length: > 0 } || layersPattern is { Length: > 0 }))
            throw Error(source, "layers_to_transform and layers_pattern apply to a list of target_modules, not to a regular " +
                "expression (PEFT refuses this too): write the layer into the expression, or give target_modules as a list.");
        if (layersPattern is { Length: > 0 } && layers is null)
            throw Error(source, "layers_pattern is set but layers_to_transform is not (PEFT refuses this too): give the layer indices.");

        return new AdapterConfig
        {
            Rank = rank,
            Alpha = alpha,
            Dropout = dropout,
            UseRsLora = Flag(obj, "use_rslora", source),
            UseDora = Flag(obj, "use_dora", source),
            Init = obj["init_lora_weights"] is JsonValue init && init.GetValueKind() == JsonValueKind.String
                && string.Equals(init.GetValue<string>(), "gaussian", StringComparison.OrdinalIgnoreCase) ? LoraInit.Gaussian : LoraInit.Default,
            InitLoraWeights = obj["init_lora_weights"]?.ToJsonString().Trim('"'),
            Notes = PeftConfigKeys.Notes(obj),
            TargetModules = target.Names,
            TargetModulesPattern = target.Pattern,
            ExcludeModules = exclude.Names,
            ExcludeModulesPattern = exclude.Pattern,
            LayersToTransform = layers,
            LayersPattern = layersPattern,
            RankPattern = rankPattern,
            AlphaPattern = alphaPattern,
            ModulesToSave = obj["modules_to_save"] switch
            {
                null => null,
                JsonArray list => Strings(list, "modules_to_save", source),
                var other => throw Error(source, $"modules_to_save must be a list of names or null, but it is {other.ToJsonString()}."),
            },
            BaseModelNameOrPath = Text(obj, "base_model_name_or_path"),
            TaskType = Text(obj, "task_type"),
        };
    }

    /// <summary>The JSON PEFT writes (keys sorted, two-space indent), with PEFT's fixed values for what LoraGen
    /// does not vary: bias "none", peft_type "LORA", inference_mode true, fan_in_fan_out false. (Saving a PiSSA/OLoRA
    /// adapter writes its plain-LoRA conversion, whose config says <c>true</c>.)</summary>
    public byte[] ToJson()
    {
        var obj = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = new JsonObject(AlphaPattern.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value)))),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = BaseModelNameOrPath,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = Init switch
            {
                LoraInit.Gaussian => JsonValue.Create("gaussian"),
                LoraInit.Pissa or LoraInit.Olora => JsonValue.Create(new LoraConfig { Init = Init, PissaIterations = PissaIterations }.PeftInitName),
                _ => JsonValue.Create(true),
            },
            ["exclude_modules"] = ExcludeModulesPattern is { } excludePattern ? JsonValue.Create(excludePattern)
                : ExcludeModules.Count == 0 ? null : new JsonArray(ExcludeModules.Select(m => (JsonNode?)m).ToArray()),
            ["layers_pattern"] = LayersPattern is null ? null : new JsonArray(LayersPattern.Select(m => (JsonNode?)m).ToArray()),
            ["layers_to_transform"] = LayersToTransform is null ? null : new JsonArray(LayersToTransform.Select(i => (JsonNode?)i).ToArray()),
            ["lora_alpha"] = Alpha,
            ["lora_dropout"] = Dropout,
            ["modules_to_save"] = ModulesToSave is null ? null : new JsonArray(ModulesToSave.Select(m => (JsonNode?)m).ToArray()),
            ["peft_type"] = "LORA",
            ["r"] = Rank,
            ["rank_pattern"] = new JsonObject(RankPattern.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value)))),
            ["revision"] = null,
            ["target_modules"] = TargetModulesPattern is { } targetPattern ? JsonValue.Create(targetPattern)
                : new JsonArray(TargetModules.Select(m => (JsonNode?)m).ToArray()),
            ["task_type"] = TaskType,
            ["use_dora"] = UseDora,
            ["use_rslora"] = UseRsLora,
        };
        var json = new JsonObject(obj);
        return JsonSerializerToUtf8(json);
    }

    private static byte[] JsonSerializerToUtf8(JsonObject json)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            json.WriteTo(writer);
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    // PEFT's target_modules / exclude_modules: a list of names, or one string that is a regular expression.
    private static (string[] Names, string? Pattern) Selection(JsonObject obj, string key, string source)
    {
        switch (obj[key])
        {
            case null:
                return ([], null);
            case JsonArray list:
                return (Strings(list, key, source), null);
            case JsonValue single when single.GetValueKind() == JsonValueKind.String:
                var pattern = single.GetValue<string>();
                if (!string.Equals(pattern, AllLinear, StringComparison.OrdinalIgnoreCase))
                    CheckRegex(pattern, key, source);
                return ([], pattern);
            case var other:
                throw Error(source, $"{key} must be a list of module names or a regular expression, but it is {other.ToJsonString()}.");
        }
    }

    private static void CheckRegex(string pattern, string key, string source)
    {
        try
        {
            _ = new Regex($"(?:{pattern})", RegexOptions.CultureInvariant, PatternTimeout);
        }
        catch (ArgumentException error)
        {
            throw Error(source, $"{key} \"{pattern}\" is not a valid regular expression for .NET ({error.Message}). " +
                "Python-only syntax such as (?P<name>...) must be written (?<name>...).", error);
        }
    }

    private static int LayerIndex(JsonNode? node, string key, string source) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue(out double number)
            && number >= 0 && number <= int.MaxValue && Math.Floor(number) == number
            ? (int)number
            : throw Error(source, $"{key} must be a layer index (a whole number of at least 0), but it is {node?.ToJsonString() ?? "null"}.");

    private static IEnumerable<(string Pattern, JsonNode Value)> Patterns(JsonObject obj, string key, string source)
    {
        switch (obj[key])
        {
            case null:
                yield break;
            case JsonObject patterns:
                foreach (var (pattern, value) in patterns)
                {
                    if (value is null)
                        throw Error(source, $"{key}[\"{pattern}\"] is null.");
                    CheckRegex(pattern, $"{key} key", source);
                    yield return (pattern, value);
                }
                break;
            default:
                throw Error(source, $"{key} must be an object mapping module patterns to values, but it is {obj[key]!.ToJsonString()}.");
        }
    }

    private static string[] Strings(JsonArray list, string key, string source) =>
        list.Select((item, i) => item is JsonValue value && value.GetValueKind() == JsonValueKind.String
            ? value.GetValue<string>()
            : throw Error(source, $"{key}[{i}] must be a string, but it is {item?.ToJsonString() ?? "null"}.")).ToArray();

    private static string? Text(JsonObject obj, string key) =>
        obj[key] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static bool Flag(JsonObject obj, string key, string source) => obj[key] switch
    {
        null => false,
        JsonValue value when value.GetValueKind() is JsonValueKind.True => true,
        JsonValue value when value.GetValueKind() is JsonValueKind.False => false,
        var other => throw Error(source, $"{key} must be true or false, but it is {other.ToJsonString()}."),
    };

    private static double Number(JsonNode node, string key, string source) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.Number && value.TryGetValue(out double number)
            ? number
            : throw Error(source, $"{key} must be a number, but it is {node.ToJsonString()}.");

    private static double PositiveNumber(JsonNode node, string key, string source)
    {
        double number = Number(node, key, source);
        return double.IsFinite(number) && number > 0
            ? number
            : throw Error(source, $"{key} must be a finite number greater than 0, but it is {number.ToString(CultureInfo.InvariantCulture)}.");
    }

    private static int PositiveRank(JsonNode node, string key, string source)
    {
        double number = Number(node, key, source);
        return number >= 1 && number <= int.MaxValue && Math.Floor(number) == number
            ? (int)number
            : throw Error(source, $"{key} must be a whole number of at least 1, but it is {node.ToJsonString()}.");
    }

    private static LoraFileException Error(string source, string problem, Exception? inner = null) =>
        new($"Adapter config '{source}': {problem}", inner);
}
