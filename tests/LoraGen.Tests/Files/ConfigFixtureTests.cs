using System.Text;
using System.Text.Json.Nodes;
using LoraGen.Files;

namespace LoraGen.Tests.Files;

/// <summary>
/// Real adapter_config.json files (Files/Configs, sources in its README.md) as they are, and with one key changed
/// for every key the reader refuses: each refusal names its key, every refusal of a file is in one message, and
/// the unset values PEFT writes (null, false, {}, []) pass.
/// </summary>
public sealed class ConfigFixtureTests
{
    private static string PathOf(string file) => Path.Combine(AppContext.BaseDirectory, "Files", "Configs", file);

    private static byte[] Bytes(string file) => File.ReadAllBytes(PathOf(file));

    private static JsonObject Json(string file) => JsonNode.Parse(Bytes(file))!.AsObject();

    /// <summary>The fixture with <paramref name="key"/> set to <paramref name="valueJson"/> (null: removed).</summary>
    private static byte[] With(string file, string key, string? valueJson)
    {
        var obj = Json(file);
        if (valueJson is null)
            obj.Remove(key);
        else
            obj[key] = JsonNode.Parse(valueJson);
        return Encoding.UTF8.GetBytes(obj.ToJsonString());
    }

    private static AdapterConfig Parse(byte[] json) => AdapterConfig.Parse(json, "fixture.json");

    private static string Refusal(byte[] json) => Assert.Throws<LoraFileException>(() => Parse(json)).Message;

    public static TheoryData<string> PeftFiles => new()
    {
        "old-peft02-llama-e.json", "peft012-llama31-unsloth.json", "flant5xxl-huge-rank.json", "seqcls-bert-modules-to-save.json",
        "seq2seq-flant5-peft018.json", "diffusers-unet-no-task-type.json", "vlm-smolvlm-short-suffixes.json",
        "regex-target-modules-gemma4-unsloth.json",
    };

    [Theory]
    [MemberData(nameof(PeftFiles))]
    public void Every_real_PEFT_config_reads_as_plain_LoRA_without_notes(string file)
    {
        var config = AdapterConfig.Read(PathOf(file));
        Assert.Empty(config.Notes);
        Assert.Equal("true", config.InitLoraWeights);
        Assert.True(config.TargetModules.Count > 0 || config.TargetModulesPattern is not null);
    }

    [Fact]
    public void The_file_without_peft_type_is_refused_by_name_as_maybe_not_a_PEFT_adapter()
    {
        string message = Assert.Throws<LoraFileException>(() => AdapterConfig.Read(PathOf("not-peft-no-peft-type.json"))).Message;
        Assert.Contains("peft_type is missing", message);
        Assert.Contains("may not be a PEFT adapter", message);
        Assert.Contains("\"peft_type\": \"LORA\"", message);

        // The same refusal for a real PEFT file that lost the key.
        Assert.Contains("peft_type is missing", Refusal(With("seq2seq-flant5-peft018.json", "peft_type", null)));
    }

    [Fact]
    public void The_CRLF_file_reads_with_its_values()
    {
        var bytes = Bytes("peft012-llama31-unsloth.json");
        Assert.Contains("\r\n", Encoding.UTF8.GetString(bytes));
        var config = Parse(bytes);
        Assert.Equal(64, config.Rank);
        Assert.Equal(16, config.Alpha);
        Assert.Equal(["q_proj", "v_proj", "gate_proj", "down_proj", "o_proj", "k_proj", "up_proj"], config.TargetModules);
        Assert.Equal("CAUSAL_LM", config.TaskType);
    }

    [Fact]
    public void The_regex_target_modules_match_as_PEFT_matches_them()
    {
        var config = AdapterConfig.Read(PathOf("regex-target-modules-gemma4-unsloth.json"));
        Assert.NotNull(config.TargetModulesPattern);
        Assert.Empty(config.TargetModules);
        Assert.Equal(TargetMatch.Targeted, config.Match("model.language_model.layers.0.self_attn.q_proj"));
        Assert.Equal(TargetMatch.Unmatched, config.Match("model.language_model.layers.0.self_attn.k_proj"));
        Assert.Equal(TargetMatch.Targeted, config.Match("model.language_model.layers.12.mlp.o_proj"));
        Assert.Equal(TargetMatch.Unmatched, config.Match("model.vision_tower.layers.0.self_attn.q_proj"));
    }

    [Fact]
    public void The_other_real_configs_keep_their_values()
    {
        var t5 = AdapterConfig.Read(PathOf("flant5xxl-huge-rank.json"));
        Assert.Equal((1000, 100000.0), (t5.Rank, t5.Alpha));
        Assert.Equal(TargetMatch.Targeted, t5.Match("encoder.block.0.layer.0.SelfAttention.q"));
        Assert.Equal(TargetMatch.Unmatched, t5.Match("encoder.block.0.layer.0.SelfAttention.k"));

        var unet = AdapterConfig.Read(PathOf("diffusers-unet-no-task-type.json"));
        Assert.Null(unet.TaskType);
        Assert.Null(unet.BaseModelNameOrPath);
        Assert.Equal(TargetMatch.Targeted, unet.Match("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0"));
        Assert.Equal(TargetMatch.Targeted, unet.Match("down_blocks.1.attentions.0.proj_in"));
        Assert.Equal(TargetMatch.Unmatched, unet.Match("down_blocks.1.attentions.1.proj_in"));

        var vlm = AdapterConfig.Read(PathOf("vlm-smolvlm-short-suffixes.json"));
        Assert.Equal(TargetMatch.Targeted, vlm.Match("model.vision_model.proj"));
        Assert.Equal(TargetMatch.Targeted, vlm.Match("model.text_model.layers.0.self_attn.q_proj"));
        Assert.Equal(TargetMatch.Unmatched, vlm.Match("model.text_model.layers.0.self_attn.qq_proj_x"));

        var old = AdapterConfig.Read(PathOf("old-peft02-llama-e.json"));   // enable_lora: null, merge_weights: false
        Assert.Equal((8, 16.0), (old.Rank, old.Alpha));
    }

    // ---- task_type → modules_to_save ----

    [Fact]
    public void A_saved_SEQ_CLS_config_keeps_its_heads_out_of_the_adapters()
    {
        var config = AdapterConfig.Read(PathOf("seqcls-bert-modules-to-save.json"));
        Assert.Equal(["classifier", "score"], config.EffectiveModulesToSave);
        Assert.True(config.SavesModule("classifier"));
        Assert.Equal(TargetMatch.Excluded, config.Match("classifier"));
        Assert.Equal(TargetMatch.Targeted, config.Match("bert.encoder.layer.0.attention.self.query"));
    }

    [Theory]
    [InlineData("SEQ_CLS", "classifier,score")]
    [InlineData("TOKEN_CLS", "classifier,score")]
    [InlineData("QUESTION_ANS", "qa_outputs")]
    [InlineData("CAUSAL_LM", "")]
    public void Without_modules_to_save_the_task_type_still_adds_PEFT_s_heads(string taskType, string heads)
    {
        var file = Json("seqcls-bert-modules-to-save.json");
        file["modules_to_save"] = null;
        file["task_type"] = taskType;
        var config = Parse(Encoding.UTF8.GetBytes(file.ToJsonString()));
        Assert.Null(config.ModulesToSave);
        Assert.Equal(heads.Split(',', StringSplitOptions.RemoveEmptyEntries), config.EffectiveModulesToSave);
        foreach (var head in config.EffectiveModulesToSave)
        {
            Assert.Equal(TargetMatch.Excluded, config.Match($"bert.{head}.dense"));
            Assert.True(config.SavesModule($"bert.{head}"));
        }
    }

    // ---- what the reader refuses, one key changed in a real file ----

    public static TheoryData<string, string, string> RefusedKeys => new()
    {
        // file, key, value
        { "seq2seq-flant5-peft018.json", "fan_in_fan_out", "true" },
        { "seq2seq-flant5-peft018.json", "bias", "\"lora_only\"" },
        { "seq2seq-flant5-peft018.json", "bias", "\"all\"" },
        { "seq2seq-flant5-peft018.json", "lora_bias", "true" },
        { "seq2seq-flant5-peft018.json", "layer_replication", "[[0, 4], [2, 8]]" },
        { "seq2seq-flant5-peft018.json", "target_parameters", "[\"experts.gate_up_proj\"]" },
        { "seq2seq-flant5-peft018.json", "trainable_token_indices", "[0, 1, 2]" },
        { "seq2seq-flant5-peft018.json", "megatron_config", "{\"tensor_model_parallel_size\": 2}" },
        { "seq2seq-flant5-peft018.json", "use_qalora", "true" },
        { "seq2seq-flant5-peft018.json", "alora_invocation_tokens", "[128000, 882]" },
        { "seq2seq-flant5-peft018.json", "arrow_config", "{\"top_k\": 3, \"router_temperature\": 1.0}" },
        { "regex-target-modules-gemma4-unsloth.json", "use_bdlora", "{\"target_blocks\": \"lora_A\", \"nblocks\": 4}" },
        { "regex-target-modules-gemma4-unsloth.json", "kasa_config", "{\"lambda_orthogonal\": 0.1}" },
        { "regex-target-modules-gemma4-unsloth.json", "velora_config", "{\"num_groups\": 32}" },
        { "regex-target-modules-gemma4-unsloth.json", "monteclora_config", "{\"num_samples\": 4}" },
        { "old-peft02-llama-e.json", "enable_lora", "[true, false, true]" },
    };

    [Theory]
    [MemberData(nameof(RefusedKeys))]
    public void A_key_that_changes_the_weights_meaning_is_refused_by_name(string file, string key, string value)
    {
        Parse(Bytes(file));   // the file as it is reads
        string message = Refusal(With(file, key, value));
        Assert.Contains($"{key} is {JsonNode.Parse(value)!.ToJsonString()}", message);
        Assert.Contains("fixture.json", message);
        Assert.DoesNotContain("reasons", message);   // one refusal: no list
    }

    public static TheoryData<string, string> UnsetValues => new()
    {
        { "use_dora", "false" }, { "lora_bias", "false" }, { "layer_replication", "[]" }, { "target_parameters", "[]" },
        { "trainable_token_indices", "{}" }, { "trainable_token_indices", "[]" }, { "megatron_config", "{}" },
        { "use_qalora", "false" }, { "alora_invocation_tokens", "[]" }, { "arrow_config", "null" }, { "kasa_config", "{}" },
        { "use_bdlora", "null" }, { "velora_config", "null" }, { "monteclora_config", "{}" }, { "enable_lora", "null" },
        { "bias", "\"none\"" }, { "some_future_option", "null" }, { "some_future_option", "false" }, { "some_future_option", "\"\"" },
    };

    [Theory]
    [MemberData(nameof(UnsetValues))]
    public void The_same_keys_unset_are_read(string key, string value)
    {
        var config = Parse(With("regex-target-modules-gemma4-unsloth.json", key, value));
        Assert.Empty(config.Notes);
    }

    [Theory]
    [InlineData("pissa")]
    [InlineData("pissa_niter_16")]
    [InlineData("olora")]
    [InlineData("corda")]
    [InlineData("lora_ga")]
    [InlineData("loftq")]
    public void An_init_that_rewrites_the_base_weights_is_refused_with_the_conversion_to_plain_LoRA(string init)
    {
        string message = Refusal(With("seq2seq-flant5-peft018.json", "init_lora_weights", $"\"{init}\""));
        Assert.Contains($"init_lora_weights is \"{init}\"", message);
        Assert.Contains("re-runs this initialisation when it loads", message);
        Assert.Contains("path_initial_model_for_weight_conversion", message);
        Assert.Contains("rank 2r", message);
    }

    [Fact]
    public void An_unknown_init_is_refused_naming_the_value()
    {
        string message = Refusal(With("seq2seq-flant5-peft018.json", "init_lora_weights", "\"kaiming_v2\""));
        Assert.Contains("init_lora_weights is \"kaiming_v2\"", message);
        Assert.Contains("not an initialisation PEFT knows", message);
        Assert.Contains("init_lora_weights is 3", Refusal(With("seq2seq-flant5-peft018.json", "init_lora_weights", "3")));
    }

    [Theory]
    [InlineData("true", LoraInit.Default, "true")]
    [InlineData("false", LoraInit.Default, "false")]
    [InlineData("\"gaussian\"", LoraInit.Gaussian, "gaussian")]
    [InlineData("\"eva\"", LoraInit.Default, "eva")]
    [InlineData("\"orthogonal\"", LoraInit.Default, "orthogonal")]
    [InlineData("\"mica\"", LoraInit.Default, "mica")]
    public void An_init_that_leaves_the_base_alone_is_read_as_plain_LoRA(string value, LoraInit init, string shown)
    {
        var config = Parse(With("seq2seq-flant5-peft018.json", "init_lora_weights", value));
        Assert.Equal(init, config.Init);
        Assert.Equal(shown, config.InitLoraWeights);
        if (shown == "mica")
            Assert.Contains(config.Notes, note => note.Contains("init_lora_weights \"mica\"") && note.Contains("lora_B frozen"));
        else
            Assert.Empty(config.Notes);
    }

    [Fact]
    public void An_init_s_own_config_is_ignored_without_that_init_as_PEFT_ignores_it()
    {
        // save_pretrained(path_initial_model_for_weight_conversion=...) writes init true and keeps corda_config /
        // lora_ga_config: that converted plain LoRA must read. loftq_config PEFT resets unless the init is loftq.
        foreach (var (key, value) in new[] { ("corda_config", "{\"cache_file\": \"c.pt\"}"), ("lora_ga_config", "{\"direction\": \"ArB2r\"}"),
                     ("loftq_config", "{\"loftq_bits\": 4, \"loftq_iter\": 1}"), ("eva_config", "{\"rho\": 2.0}") })
            Parse(With("regex-target-modules-gemma4-unsloth.json", key, value));
    }

    [Fact]
    public void Every_refusal_of_a_file_is_in_one_message()
    {
        var file = Json("seq2seq-flant5-peft018.json");
        file["fan_in_fan_out"] = true;   // (use_dora is read since DoRA is supported)
        file["lora_bias"] = true;
        file["init_lora_weights"] = "olora";
        file["layer_replication"] = JsonNode.Parse("[[0, 2]]");
        string message = Refusal(Encoding.UTF8.GetBytes(file.ToJsonString()));
        Assert.Contains("for 4 reasons", message);
        foreach (var key in new[] { "fan_in_fan_out is true", "lora_bias is true", "init_lora_weights is \"olora\"", "layer_replication is [[0,2]]" })
            Assert.Contains(key, message);
    }

    [Fact]
    public void An_unknown_key_that_is_set_is_read_with_a_note_naming_it()
    {
        var config = Parse(With("seq2seq-flant5-peft018.json", "frobnicate_config", "{\"level\": 3}"));
        var note = Assert.Single(config.Notes);
        Assert.Contains("frobnicate_config", note);
        Assert.Contains("ignored", note);
    }
}
