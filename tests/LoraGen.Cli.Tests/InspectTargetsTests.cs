using System.Text.Json.Nodes;
using LoraGen.Files;
using static LoraGen.Cli.Tests.CliHarness;

namespace LoraGen.Cli.Tests;

/// <summary><c>loragen inspect</c> shows the targets as PEFT matches them (AdapterConfig.Match), the heads a task
/// type adds to modules_to_save, and refuses by name, all at once, what the reader refuses.</summary>
public sealed class InspectTargetsTests
{
    private static string AdapterWith(AdapterConfig config) =>
        Adapter(ScratchDirectories.New(), config,
            Tensor("base_model.model.proj.lora_A.weight", [1, 3], 1f, 2f, 3f),
            Tensor("base_model.model.proj.lora_B.weight", [2, 1], 0.5f, -1f));

    private static string Inspect(AdapterConfig config)
    {
        var (code, output, error) = Run("inspect", AdapterWith(config));
        Assert.True(code == 0, error);
        return output;
    }

    private static readonly AdapterConfig Plain = new() { Rank = 1, Alpha = 2, TargetModules = ["proj", "self_attn.q_proj"] };

    [Fact]
    public void A_list_of_target_modules_is_shown_as_names_or_suffixes()
    {
        string output = Inspect(Plain);
        Assert.Contains("target_modules (names or .name suffixes): proj, self_attn.q_proj", output);
        Assert.DoesNotContain("modules_to_save", output.Split("\n\n")[0]);
    }

    [Fact]
    public void A_string_target_modules_is_shown_as_a_whole_path_regex_or_all_linear()
    {
        Assert.Contains(@"target_modules: regex (whole path): .*\.(q_proj|v_proj)|proj",
            Inspect(Plain with { TargetModules = [], TargetModulesPattern = @".*\.(q_proj|v_proj)|proj" }));
        Assert.Contains("target_modules: all-linear (every Linear but the output head)",
            Inspect(Plain with { TargetModules = [], TargetModulesPattern = "all-linear" }));
    }

    [Fact]
    public void Exclusions_and_the_layer_filter_are_shown()
    {
        string output = Inspect(Plain with { ExcludeModules = ["lm_head"], LayersToTransform = [0, 2], LayersPattern = ["layers"] });
        Assert.Contains("exclude_modules (names or .name suffixes): lm_head", output);
        Assert.Contains("layers_to_transform: 0, 2 (the index after layers_pattern layers)", output);

        output = Inspect(Plain with { ExcludeModulesPattern = @".*vision.*", LayersToTransform = [1] });
        Assert.Contains(@"exclude_modules: regex (whole path): .*vision.*", output);
        Assert.Contains("layers_to_transform: 1 (the index of the first numbered segment after a named one)", output);
    }

    [Fact]
    public void The_heads_a_task_type_adds_are_shown_and_said_to_come_from_it()
    {
        string output = Inspect(Plain with { TaskType = "SEQ_CLS" });
        Assert.Contains("modules_to_save (trained in full, not adapted): classifier, score", output);
        Assert.Contains("classifier, score: the heads PEFT adds for task_type SEQ_CLS (classifier, score not in the file's list, added as PEFT does)", output);
        Assert.Contains("task_type: SEQ_CLS", output);

        // As PEFT saves it: the heads already in the list, after the user's own.
        output = Inspect(Plain with { TaskType = "SEQ_CLS", ModulesToSave = ["norm", "classifier", "score"] });
        Assert.Contains("modules_to_save (trained in full, not adapted): norm, classifier, score", output);
        Assert.Contains("classifier, score: the heads PEFT adds for task_type SEQ_CLS", output);
        Assert.DoesNotContain("not in the file's list", output);

        output = Inspect(Plain with { TaskType = "QUESTION_ANS" });
        Assert.Contains("modules_to_save (trained in full, not adapted): qa_outputs", output);

        Assert.DoesNotContain("modules_to_save", Inspect(Plain with { TaskType = "CAUSAL_LM" }).Split("\n\n")[0]);
    }

    [Fact]
    public void A_config_the_reader_refuses_is_exit_code_1_naming_every_key()
    {
        var adapter = AdapterWith(Plain);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, AdapterConfig.FileName)))!.AsObject();
        json["fan_in_fan_out"] = true;
        json["init_lora_weights"] = "pissa_niter_4";
        File.WriteAllText(Path.Combine(adapter, AdapterConfig.FileName), json.ToJsonString());
        var (code, output, error) = Run("inspect", adapter);
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Contains("for 2 reasons", error);
        Assert.Contains("fan_in_fan_out is true", error);
        Assert.Contains("init_lora_weights is \"pissa_niter_4\"", error);
        Assert.Contains("path_initial_model_for_weight_conversion", error);
    }

    [Fact]
    public void An_accepted_init_is_shown_as_written_with_its_note()
    {
        var adapter = AdapterWith(Plain);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, AdapterConfig.FileName)))!.AsObject();
        json["init_lora_weights"] = "mica";
        File.WriteAllText(Path.Combine(adapter, AdapterConfig.FileName), json.ToJsonString());
        var (code, output, error) = Run("inspect", adapter);
        Assert.True(code == 0, error);
        Assert.Contains("init mica", output);
        Assert.Contains("note: init_lora_weights \"mica\": PEFT keeps lora_B frozen", output);
    }
}
