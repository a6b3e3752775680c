using LoraGen.Files;

namespace LoraGen.Tests.Targeting;

/// <summary>PEFT's own matching examples (peft 0.20, tests/test_tuners_utils.py: REGEX_TEST_CASES,
/// TestExcludedModuleNames, TestRankAndAlphaPattern, the MoE layer-index test, test_custom_models' modules_to_save
/// case), each checked against <see cref="AdapterConfig.Match"/> and <see cref="AdapterConfig.ConfigFor"/>.</summary>
public class PeftMatchingTableTests
{
    // (key, target_modules: string[] = list, string = regex, layers_to_transform, layers_pattern, exclude_modules, expected)
    private static readonly (string Key, object Targets, int[]? Layers, string[]? Pattern, object? Exclude, bool Expected)[] Cases =
    [
        // REGEX_TEST_CASES, "basic"
        ("", Array.Empty<string>(), null, null, null, false),
        ("", new[] { "foo" }, null, null, null, false),
        ("foo", Array.Empty<string>(), null, null, null, false),
        ("foo", new[] { "foo" }, null, null, null, true),
        ("foo", new[] { "bar" }, null, null, null, false),
        ("foo", new[] { "foo", "bar" }, null, null, null, true),
        // with regex: the whole key must match
        ("foo", "foo", null, null, null, true),
        ("foo", ".*oo", null, null, null, true),
        ("foo", "fo.*", null, null, null, true),
        ("foo", ".*bar.*", null, null, null, false),
        ("foobar", ".*oba.*", null, null, null, true),
        // with layers_to_transform
        ("foo.bar.1.baz", new[] { "baz" }, [1], ["bar"], null, true),
        ("foo.bar.1.baz", new[] { "baz" }, [0], ["bar"], null, false),
        ("foo.bar.1.baz", new[] { "baz" }, [2], ["bar"], null, false),
        ("foo.bar.10.baz", new[] { "baz" }, [0], ["bar"], null, false),
        ("foo.bar.10.baz", new[] { "baz" }, [1], ["bar"], null, false),
        ("foo.bar.1.baz", new[] { "baz" }, [0, 1, 2], ["bar"], null, true),
        ("foo.bar.1.baz", new[] { "baz", "spam" }, [1], ["bar"], null, true),
        ("foo.bar.1.baz", new[] { "baz", "spam" }, [0, 1, 2], ["bar"], null, true),
        // empty or no layers_pattern: the first numbered segment after a named one
        ("foo.whatever.1.baz", new[] { "baz" }, [1], [], null, true),
        ("foo.whatever.1.baz", new[] { "baz" }, [0], [], null, false),
        ("foo.whatever.1.baz", new[] { "baz" }, [1], null, null, true),
        ("foo.whatever.1.baz", new[] { "baz" }, [0], null, null, false),
        // realistic: a transformers model
        ("transformer.h.1.attn.attention.q_proj.foo", new[] { "q_proj" }, null, [], null, false),
        ("transformer.h.1.attn.attention.q_proj", Array.Empty<string>(), null, [], null, false),
        ("transformer.h.1.attn.attention.q_proj", new[] { "q_proj" }, null, [], null, true),
        ("transformer.h.1.attn.attention.q_proj", new[] { "q_proj", "v_proj" }, null, [], null, true),
        ("transformer.h.1.attn.attention.resid_dropout", new[] { "q_proj", "v_proj" }, null, [], null, false),
        ("transformer.h.1.attn.attention.q_proj", new[] { "q_proj" }, [1], ["h"], null, true),
        ("transformer.h.1.attn.attention.q_proj", new[] { "q_proj" }, [0], ["h"], null, false),
        ("transformer.h.1.attn.attention.q_proj", new[] { "q_proj" }, [2], ["h"], null, false),
        ("transformer.h.1.attn.attention.q_proj", new[] { "q_proj" }, [0, 1, 2], ["h"], null, true),
        ("transformer.h.1.attn.attention.q_proj", new[] { "q_proj", "v_proj" }, [0, 1, 2], ["h"], null, true),
        ("foo.bar.q_proj", new[] { "q_proj" }, null, [], null, true),
        ("foo.bar.1.baz", new[] { "baz" }, [1], ["foo"], null, false),
        // corner cases
        ("foo.bar.1.baz", new[] { "baz" }, [1], ["baz"], null, false),
        ("bar.1.baz", new[] { "baz" }, [1], ["bar"], null, false),
        ("foo.bar.001.baz", new[] { "baz" }, [1], ["bar"], null, true),
        ("foo.bar.1.spam.2.baz", new[] { "baz" }, [1], ["bar"], null, true),
        ("foo.bar.2.spam.1.baz", new[] { "baz" }, [1], ["bar"], null, false),
        // nn.Sequential: the key must contain '.blocks'
        ("blocks.1.weight", new[] { "weight" }, [1], ["blocks"], null, false),
        ("blocks.1.bias", new[] { "weight" }, [1], ["blocks"], null, false),
        ("mlp.blocks.1.weight", new[] { "weight" }, [1], ["blocks"], null, true),
        ("mlp.blocks.1.bias", new[] { "weight" }, [1], ["blocks"], null, false),
        // test_layers_to_transform_filters_by_layer_not_expert_index: the layer's index, not the expert's
        ("model.layers.1.self_attn.q_proj", new[] { "q_proj", "up_proj" }, [1], null, null, true),
        ("model.layers.0.self_attn.q_proj", new[] { "q_proj", "up_proj" }, [1], null, null, false),
        ("model.layers.1.mlp.experts.0.up_proj", new[] { "q_proj", "up_proj" }, [1], ["layers"], null, true),
        ("model.layers.1.mlp.experts.1.up_proj", new[] { "q_proj", "up_proj" }, [1], ["h", "layers"], null, true),
        ("model.layers.2.mlp.experts.1.up_proj", new[] { "q_proj", "up_proj" }, [1], null, null, false),
        // TestExcludedModuleNames: a string is a whole-path regex, a list item a name or dotted suffix
        ("transformer.h.2.self_attention.query_key_value", new[] { "query_key_value" }, null, null, "transformer.h.2.self_attention.query_key_value", false),
        ("transformer.h.1.self_attention.query_key_value", new[] { "query_key_value" }, null, null, "transformer.h.2.self_attention.query_key_value", true),
        ("lin0", new[] { "lin0", "lin1" }, null, null, "lin0", false),
        ("lin1", new[] { "lin0", "lin1" }, null, null, "lin0", true),
        ("lin0", new[] { "lin0", "lin1" }, null, null, new[] { "lin0" }, false),
        ("lin1", "lin.*", null, null, "lin0", true),
        ("a.lin0", new[] { "lin0" }, null, null, "lin0", true),
        ("a.lin0", new[] { "lin0" }, null, null, new[] { "lin0" }, false),
    ];

    [Fact]
    public void Every_example_from_PEFTs_tests_matches_as_in_PEFT()
    {
        var wrong = new List<string>();
        foreach (var (key, targets, layers, pattern, exclude, expected) in Cases)
        {
            var config = new AdapterConfig
            {
                TargetModules = targets as string[] ?? [],
                TargetModulesPattern = targets as string,
                LayersToTransform = layers,
                LayersPattern = pattern,
                ExcludeModules = exclude as string[] ?? [],
                ExcludeModulesPattern = exclude as string,
            };
            bool targeted = config.Match(key) == TargetMatch.Targeted;
            if (targeted != expected)
                wrong.Add($"'{key}' with {Describe(targets)} layers {Describe(layers)} pattern {Describe(pattern)} exclude {Describe(exclude)}: {targeted}, PEFT {expected}");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        Assert.Equal(57, Cases.Length);
    }

    [Theory]
    [InlineData("lin1", false)] // test_custom_models "Vanilla MLP 6 LoRA": lin1 is a modules_to_save copy, not adapted
    [InlineData("lin0", true)]
    public void Modules_to_save_are_kept_out_of_the_adapters(string key, bool expected)
    {
        var config = new AdapterConfig { TargetModules = ["lin0", "lin1"], ModulesToSave = ["lin1"] };
        Assert.Equal(expected ? TargetMatch.Targeted : TargetMatch.Excluded, config.Match(key));
    }

    [Fact]
    public void A_task_heads_children_are_excluded_on_a_dot_boundary_and_saved_by_plain_suffix()
    {
        var config = new AdapterConfig { TargetModules = ["dense", "my_classifier"], TaskType = "SEQ_CLS" };
        Assert.Equal(TargetMatch.Excluded, config.Match("roberta.classifier.dense"));
        Assert.Equal(TargetMatch.Targeted, config.Match("roberta.encoder.layer.0.output.dense"));
        Assert.Equal(TargetMatch.Targeted, config.Match("my_classifier"));
        Assert.True(config.SavesModule("classifier"));
        Assert.True(config.SavesModule("my_classifier")); // PEFT's _set_trainable: endswith, no dot boundary
        Assert.False(config.SavesModule("classifier.dense"));
    }

    // TestRankAndAlphaPattern: Outer{foo, bar, module: Middle{foo, foobar, module: Inner{foo, barfoo}}}, r = 8.
    [Theory]
    [InlineData("{}", 8, 8, 8, 8, 8, 8)]
    [InlineData("""{"bla":4,"oof":6}""", 8, 8, 8, 8, 8, 8)]
    [InlineData("""{"foo":16}""", 16, 8, 16, 8, 16, 8)]
    [InlineData("""{"^foo":16}""", 16, 8, 8, 8, 8, 8)]
    [InlineData("""{"^module.foo":16}""", 8, 8, 16, 8, 8, 8)]
    [InlineData("""{"module.module.foo":16}""", 8, 8, 8, 8, 16, 8)]
    [InlineData("""{"^module.module.foo":16}""", 8, 8, 8, 8, 16, 8)]
    [InlineData("""{"module.foo":16}""", 8, 8, 16, 8, 16, 8)]
    [InlineData("""{"^module.foo":16,"^module.module.foo":24}""", 8, 8, 16, 8, 24, 8)]
    [InlineData("""{"^foo":16,"^module.foo":24}""", 16, 8, 24, 8, 8, 8)]
    [InlineData("""{"^foo":16,"module.module.foo":24}""", 16, 8, 8, 8, 24, 8)]
    [InlineData("""{"^module.module.foo":32,"^module.foo":24,"^foo":16}""", 16, 8, 24, 8, 32, 8)]
    public void Rank_pattern_keys_match_as_PEFTs_get_pattern_key(string rankPattern, params int[] expected)
    {
        var config = AdapterConfig.Parse(System.Text.Encoding.UTF8.GetBytes(
            $$"""{"peft_type": "LORA", "r": 8, "target_modules": "all-linear", "rank_pattern": {{rankPattern}}}"""), "test");
        string[] paths = ["foo", "bar", "module.foo", "module.foobar", "module.module.foo", "module.module.barfoo"];
        Assert.Equal(expected, paths.Select(path => config.ConfigFor(path).Rank).ToArray());
    }

    private static string Describe(object? value) => value switch
    {
        null => "null",
        string text => $"\"{text}\"",
        System.Collections.IEnumerable items => "[" + string.Join(", ", items.Cast<object>()) + "]",
        _ => value.ToString()!,
    };
}
