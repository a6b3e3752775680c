using System.Text.Json.Nodes;
using LoraGen.Files;
using LoraGen.Tests.Support;

namespace LoraGen.Tests.Files;

/// <summary>task_type as PEFT writes it: LoraConfig(task_type="SEQ_CLS") with modules_to_save=None saves
/// "modules_to_save": ["classifier", "score"] (PeftModelForSequenceClassification adds both names).</summary>
public sealed class TaskTypeTests
{
    [Fact]
    public void A_sequence_classification_adapter_says_so_and_lists_PEFT_s_head_names()
    {
        var model = new Mlp(16, 32, 3);   // Trainable: norm (in each block)
        model.ApplyLora();
        string directory = ScratchDirectories.New();
        model.SaveAdapter(directory, new AdapterFileOptions { TaskType = "SEQ_CLS", BaseModelNameOrPath = "org/base" });

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, AdapterConfig.FileName)))!;
        Assert.Equal("SEQ_CLS", json["task_type"]!.GetValue<string>());
        Assert.Equal("org/base", json["base_model_name_or_path"]!.GetValue<string>());
        Assert.Equal(["norm", "classifier", "score"], json["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()));

        var config = AdapterConfig.Read(Path.Combine(directory, AdapterConfig.FileName));
        Assert.Equal("SEQ_CLS", config.TaskType);
        new Mlp(16, 32, 3).LoadAdapter(directory);   // the extra head names are PEFT's, not keys the file must hold
    }

    [Fact]
    public void Without_a_task_type_nothing_is_added()
    {
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        string directory = ScratchDirectories.New();
        model.SaveAdapter(directory);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, AdapterConfig.FileName)))!;
        Assert.Null(json["task_type"]);
        Assert.Equal(["norm"], json["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()));
    }
}
