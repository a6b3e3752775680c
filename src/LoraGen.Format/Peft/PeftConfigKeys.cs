using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraGen.Files;

/// <summary>
/// The keys of PEFT's <c>LoraConfig</c> (0.20, plus the later <c>kasa_config</c> and PEFT ≤ 0.2's legacy keys) and
/// which of them LoraGen must refuse: the ones that, when set, make the weights mean something other than
/// W + scaling·B·A on the base model's own weights. Each refusal names the key, says what it means, why LoraGen
/// cannot read it as plain LoRA, and what to do. "Set" is Python's truthiness, as PEFT tests these keys:
/// null, false, 0, "", [] and {} are unset.
/// </summary>
internal static class PeftConfigKeys
{
    private const string MergeInPeft = "merge it into the base model in PEFT (merge_and_unload()) and use that checkpoint, or train a plain LoRA adapter";

    /// <summary>Keys that change what the weights mean when set: (meaning, what to do).</summary>
    private static readonly (string Key, string Meaning, string Todo)[] ChangesMeaning =
    [
        ("fan_in_fan_out", "the base weights are stored transposed (GPT-2's Conv1D), and so is the update",
            $"LoraGen adapts Linear, Embedding, Conv1d and Conv2d only; {MergeInPeft}"),
        ("lora_bias", "lora_B has a trained bias (lora_B.bias tensors) added to the layer's output",
            $"LoraGen's adapters have no bias; {MergeInPeft}"),
        ("layer_replication", "PEFT duplicates base layers (sharing their weights) before attaching adapters, so the file's module paths belong to a deeper model than the base",
            $"LoraGen does not replicate layers; {MergeInPeft}"),
        ("target_parameters", "LoRA on raw parameters (e.g. MoE expert weights, ParamWrapper), not on modules",
            $"LoraGen adapts modules only; {MergeInPeft}"),
        ("trainable_token_indices", "trained rows of the embedding (trainable_tokens_delta tensors) replace rows of the base embedding",
            $"LoraGen does not read trainable tokens; {MergeInPeft}"),
        ("megatron_config", "Megatron tensor-parallel LoRA layers: the adapter tensors are sharded across ranks",
            "LoraGen reads whole tensors; gather the adapter into a single-device PEFT model and save it without megatron_config"),
        ("use_qalora", "QA-LoRA: the input is pooled in groups (qalora_group_size) before lora_A, on a GPTQ-quantized base",
            $"LoraGen does not pool inputs; {MergeInPeft}"),
        ("alora_invocation_tokens", "activated LoRA: the adapter applies only from the invocation tokens on, not to the whole sequence",
            "LoraGen applies an adapter to every position; use a plain LoRA adapter"),
        ("use_bdlora", "block-diagonal lora_A or lora_B, with shapes other than [r, in] and [out, r]",
            $"LoraGen reads dense A and B only; {MergeInPeft}"),
        ("arrow_config", "Arrow routing: each token picks among several task adapters",
            "LoraGen applies one adapter everywhere; load the task adapters one at a time, without arrow_config"),
        ("kasa_config", "KaSA: the base weight is truncated by SVD (its r smallest components removed) and a lora_diag vector scales the update",
            $"the adapter only means something against the truncated base, which LoraGen does not compute; {MergeInPeft}"),
        ("enable_lora", "PEFT 0.2's MergedLinear: LoRA on some parts of a fused layer only (e.g. q and v of a fused qkv)",
            "LoraGen has no partly adapted fused layers; load it in that PEFT version and merge it (merge_and_unload()), or retrain with a current PEFT"),
        ("velora_config", "VeLoRA: the eval forward and merge are plain LoRA, but the weights file also holds lora_velora_embed buffers",
            "LoraGen would meet those tensors as unknown ones; to use it as plain LoRA, delete the lora_velora_embed tensors from adapter_model.safetensors and set velora_config to null"),
        ("monteclora_config", "MonteCLoRA: sampling happens in training only (the eval forward and merge are plain LoRA), but the weights file also holds lora_monteclora_sampler parameters",
            "LoraGen would meet those tensors as unknown ones; to use it as plain LoRA, delete the lora_monteclora_sampler tensors from adapter_model.safetensors and set monteclora_config to null"),
    ];

    /// <summary>Keys LoraGen reads, or knows to be harmless for applying an adapter (class C of docs/file-formats.md),
    /// or refuses above. Anything else is unknown: ignored like PEFT ignores it, with a note when it is set.</summary>
    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping", "peft_version",
        "r", "lora_alpha", "lora_dropout", "use_rslora", "target_modules", "exclude_modules", "layers_to_transform",
        "layers_pattern", "rank_pattern", "alpha_pattern", "modules_to_save", "bias", "init_lora_weights",
        "megatron_core", "loftq_config", "eva_config", "corda_config", "lora_ga_config", "qalora_group_size",
        "ensure_weight_tying", "runtime_config", "merge_weights", "use_dora",
    };

    /// <summary>init_lora_weights values that rewrite the base weights, so the adapter only means something against
    /// the rewritten (residual) base; PEFT re-runs the init when it loads the adapter.</summary>
    private static string? RewritesBase(string init) =>
        init.StartsWith("pissa", StringComparison.Ordinal) ? "PiSSA: the top-r singular vectors of W are moved into A and B, and W becomes W − scaling·B₀·A₀"
        : init.StartsWith("corda", StringComparison.Ordinal) ? "CorDA: A and B come from the covariance-weighted decomposition of W, and W becomes W − scaling·B₀·A₀"
        : string.Equals(init, "olora", StringComparison.OrdinalIgnoreCase) ? "OLoRA: A and B come from a QR decomposition of W, and W becomes W − scaling·B₀·A₀"
        : init == "lora_ga" ? "LoRA-GA: A and B come from the gradients, and W becomes W − scaling·B₀·A₀"
        : init == "loftq" ? "LoftQ: the base weight is replaced by a quantized one, alternating with the low-rank fit (loftq_config)"
        : null;

    /// <summary>Every reason the file cannot be read as plain LoRA, each naming its key; empty when it can.</summary>
    public static List<string> Refusals(JsonObject obj)
    {
        var refusals = new List<string>();
        switch (obj["peft_type"])
        {
            case null:
                refusals.Add("peft_type is missing: PEFT requires it too (its loader refuses a config without it), so this file may not be " +
                    "a PEFT adapter config at all. A PEFT LoRA adapter says \"peft_type\": \"LORA\"; if this is one written by hand, add that key");
                break;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                if (value.GetValue<string>() != "LORA")
                    refusals.Add($"peft_type is \"{value.GetValue<string>()}\"; LoraGen reads LoRA adapters only (\"LORA\"), and another PEFT method's weights are not a LoRA pair");
                break;
            case var other:
                refusals.Add($"peft_type is {other.ToJsonString()}; it must be the string \"LORA\"");
                break;
        }

        if (InitRefusal(obj["init_lora_weights"]) is { } initRefusal)
            refusals.Add(initRefusal);

        if (obj["bias"] is { } bias && !(bias is JsonValue b && b.GetValueKind() == JsonValueKind.String && b.GetValue<string>() == "none"))
            refusals.Add($"bias is {Show(bias)}: the trained biases (\"lora_only\", \"all\") are saved and replace the base model's biases; " +
                $"LoraGen adapters train no biases, so only \"none\" can be read. {Capitalized(MergeInPeft)}");

        foreach (var (key, meaning, todo) in ChangesMeaning)
            if (IsSet(obj[key]))
                refusals.Add($"{key} is {Show(obj[key]!)}: {meaning}. {Capitalized(todo)}");
        return refusals;
    }

    /// <summary>What LoraGen accepts but the reader should know: an init whose training differs (mica), or keys no
    /// PEFT version LoraGen knows writes, set to a value.</summary>
    public static List<string> Notes(JsonObject obj)
    {
        var notes = new List<string>();
        if (obj["init_lora_weights"] is JsonValue init && init.GetValueKind() == JsonValueKind.String
            && string.Equals(init.GetValue<string>(), "mica", StringComparison.OrdinalIgnoreCase))
            notes.Add("init_lora_weights \"mica\": PEFT keeps lora_B frozen in training; the forward and merge are plain LoRA, " +
                "so it is read as plain LoRA, but training it further in LoraGen trains B too");
        var unknown = obj.Where(entry => !Known.Contains(entry.Key) && !ChangesMeaning.Any(c => c.Key == entry.Key) && IsSet(entry.Value))
            .Select(entry => entry.Key).ToList();
        if (unknown.Count > 0)
            notes.Add($"{string.Join(", ", unknown)}: not {(unknown.Count == 1 ? "a key" : "keys")} of the PEFT versions LoraGen knows; ignored, as PEFT ignores unknown keys. " +
                "If a newer PEFT method wrote it, check that the adapter is plain LoRA");
        return notes;
    }

    private static string? InitRefusal(JsonNode? node)
    {
        if (node is null)
            return null;   // PEFT treats a null init like false: no init; the file's weights are loaded over it
        if (node is not JsonValue value)
            return $"init_lora_weights is {node.ToJsonString()}; PEFT accepts true, false or the name of an initialisation";
        switch (value.GetValueKind())
        {
            case JsonValueKind.True or JsonValueKind.False:
                return null;
            case JsonValueKind.String:
                string init = value.GetValue<string>();
                if (RewritesBase(init) is { } meaning)
                    return $"init_lora_weights is \"{init}\": {meaning}. PEFT re-runs this initialisation when it loads the adapter, so the " +
                        "weights only mean something against that residual base, not the base model LoraGen would apply them to. " +
                        "Save the adapter from PEFT with save_pretrained(..., path_initial_model_for_weight_conversion=<the initial adapter's directory>): " +
                        "it writes an equivalent plain LoRA (rank 2r, alpha doubled, init_lora_weights true) on the original base, which LoraGen reads " +
                        "(LoraGen's own PiSSA/OLoRA adapters are saved that way)";
                if (string.Equals(init, "gaussian", StringComparison.OrdinalIgnoreCase) || init is "eva" or "orthogonal"
                    || string.Equals(init, "mica", StringComparison.OrdinalIgnoreCase))
                    return null;   // only how A and B start; the base is untouched, the saved A and B are the adapter
                return $"init_lora_weights is \"{init}\", which is not an initialisation PEFT knows (true, false, \"gaussian\", \"eva\", " +
                    "\"orthogonal\", \"mica\", \"pissa\", \"pissa_niter_<N>\", \"olora\", \"corda\", \"loftq\", \"lora_ga\"); " +
                    "it may come from a newer PEFT whose adapter LoraGen cannot interpret. Save it as plain LoRA (init_lora_weights true)";
            default:
                return $"init_lora_weights is {value.ToJsonString()}; PEFT accepts true, false or the name of an initialisation";
        }
    }

    /// <summary>Python's truthiness, as PEFT tests these keys: null, false, 0, "", [] and {} are unset.</summary>
    public static bool IsSet(JsonNode? node) => node switch
    {
        null => false,
        JsonObject o => o.Count > 0,
        JsonArray a => a.Count > 0,
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.False or JsonValueKind.Null => false,
            JsonValueKind.String => v.GetValue<string>().Length > 0,
            JsonValueKind.Number => v.TryGetValue(out double number) && number != 0,
            _ => true,
        },
        _ => true,
    };

    private static string Show(JsonNode node)
    {
        string text = node.ToJsonString();
        return text.Length <= 80 ? text : string.Create(CultureInfo.InvariantCulture, $"{text[..77]}...");
    }

    private static string Capitalized(string text) => char.ToUpperInvariant(text[0]) + text[1..];
}
