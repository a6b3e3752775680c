using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace LoraGen.Files;

/// <summary>
/// PEFT's <c>adapter_config.json</c> for a LoRA adapter: the global rank and alpha, with per-module
/// overrides in <see cref="RankPattern"/> and <see cref="AlphaPattern"/>. Reading tolerates keys LoraGen
/// does not use (PEFT adds new ones often) and refuses, with a <see cref="LoraFileException"/>, values that
/// would change what the weights mean and that LoraGen does not implement (DoRA, trained biases,
/// <c>fan_in_fan_out</c>, another PEFT method).
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

    /// <summary>PEFT's <c>init_lora_weights</c>: <c>"gaussian"</c> or the default.</summary>
    public LoraInit Init { get; init; }

    /// <summary>PEFT's <c>target_modules</c>: the module names adapted (informational when loading into LoraGen,
    /// whose targets come from <c>[LoraTarget]</c>).</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = [];

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

    /// <summary>The hyperparameters PEFT would give the module at <paramref name="modulePath"/> (the path as
    /// written in the file's keys, without the <c>base_model.model.</c> prefix).</summary>
    /// <exception cref="LoraFileException">A pattern takes too long to match.</exception>
    public LoraConfig ConfigFor(string modulePath)
    {
        int rank = Match(RankPattern, modulePath) is { } rankKey ? RankPattern[rankKey] : Rank;
        double alpha = Match(AlphaPattern, modulePath) is { } alphaKey ? AlphaPattern[alphaKey] : Alpha;
        return new LoraConfig { Rank = rank, Alpha = alpha, Dropout = Dropout, UseRsLora = UseRsLora, Init = Init };
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
        if (Text(obj, "peft_type") is { } peftType && peftType != "LORA")
            throw Error(source, $"peft_type is \"{peftType}\"; LoraGen reads LoRA adapters only (\"LORA\").");
        if (Flag(obj, "use_dora", source))
            throw Error(source, "use_dora is true; DoRA adapters are not supported. Train a plain LoRA adapter.");
        if (Flag(obj, "fan_in_fan_out", source))
            throw Error(source, "fan_in_fan_out is true (weights stored transposed, GPT-2's Conv1D); LoraGen supports Linear, Embedding, Conv1d and Conv2d only.");
        if (Text(obj, "bias") is { } bias && bias != "none")
            throw Error(source, $"bias is \"{bias}\"; LoraGen adapters train no biases, so only \"none\" can be read.");

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

        return new AdapterConfig
        {
            Rank = rank,
            Alpha = alpha,
            Dropout = dropout,
            UseRsLora = Flag(obj, "use_rslora", source),
            Init = obj["init_lora_weights"] is JsonValue init && init.GetValueKind() == JsonValueKind.String
                && init.GetValue<string>() == "gaussian" ? LoraInit.Gaussian : LoraInit.Default,
            TargetModules = obj["target_modules"] switch
            {
                null => [],
                JsonValue single when single.GetValueKind() == JsonValueKind.String => [single.GetValue<string>()],
                JsonArray list => Strings(list, "target_modules", source),
                var other => throw Error(source, $"target_modules must be a list of names or a string, but it is {other.ToJsonString()}."),
            },
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
    /// does not vary: bias "none", peft_type "LORA", inference_mode true, fan_in_fan_out false.</summary>
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
            ["init_lora_weights"] = Init == LoraInit.Gaussian ? JsonValue.Create("gaussian") : JsonValue.Create(true),
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["lora_alpha"] = Alpha,
            ["lora_dropout"] = Dropout,
            ["modules_to_save"] = ModulesToSave is null ? null : new JsonArray(ModulesToSave.Select(m => (JsonNode?)m).ToArray()),
            ["peft_type"] = "LORA",
            ["r"] = Rank,
            ["rank_pattern"] = new JsonObject(RankPattern.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value)))),
            ["revision"] = null,
            ["target_modules"] = new JsonArray(TargetModules.Select(m => (JsonNode?)m).ToArray()),
            ["task_type"] = TaskType,
            ["use_dora"] = false,
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

    private static string? Match<T>(IReadOnlyDictionary<string, T> patterns, string modulePath)
    {
        foreach (var pattern in patterns.Keys)
        {
            try
            {
                if (Regex.IsMatch(modulePath, $"^(?:.*\\.)?(?:{pattern})$", RegexOptions.CultureInvariant, PatternTimeout))
                    return pattern;
            }
            catch (RegexMatchTimeoutException error)
            {
                throw new LoraFileException($"{FileName}: the pattern \"{pattern}\" took too long to match '{modulePath}'; simplify it.", error);
            }
        }
        return null;
    }

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
                    try
                    {
                        _ = new Regex($"(?:{pattern})", RegexOptions.CultureInvariant, PatternTimeout);
                    }
                    catch (ArgumentException error)
                    {
                        throw Error(source, $"{key} key \"{pattern}\" is not a valid regular expression ({error.Message}).", error);
                    }
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
