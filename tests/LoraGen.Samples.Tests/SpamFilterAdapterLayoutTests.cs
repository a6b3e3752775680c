using System.Text.Json.Nodes;
using LoraGen;
using LoraGen.Files;
using SpamFilter;
using SpamFilter.Model;

namespace LoraGen.Samples.Tests;

/// <summary>
/// The sample's adapter is what PEFT itself writes for <c>BertForSequenceClassification</c> with
/// <c>LoraConfig(task_type="SEQ_CLS", target_modules=["query", "value"], r=8, lora_alpha=16)</c>: PEFT's
/// save_and_load.py keeps the LoRA weights under <c>base_model.model.</c> with the adapter name removed, and the
/// modules_to_save head as <c>classifier.{weight,bias}</c>; PeftModelForSequenceClassification puts "classifier" and
/// "score" into modules_to_save.
/// </summary>
public sealed class SpamFilterAdapterLayoutTests
{
    [Fact]
    public void The_adapter_has_PEFT_s_keys_shapes_and_config_for_sequence_classification()
    {
        using var model = new BertForSequenceClassification(BertConfig.MiniLmL6);
        model.ApplyLora();
        string directory = ScratchDirectories.NewPath();
        try
        {
            model.SaveAdapter(directory, SpamFilterSample.AdapterOptions);

            var expected = new Dictionary<string, long[]>
            {
                ["base_model.model.classifier.weight"] = [2, 384],
                ["base_model.model.classifier.bias"] = [2],
            };
            for (int layer = 0; layer < 6; layer++)
                foreach (var projection in new[] { "query", "value" })
                {
                    expected[$"base_model.model.bert.encoder.layer.{layer}.attention.self.{projection}.lora_A.weight"] = [8, 384];
                    expected[$"base_model.model.bert.encoder.layer.{layer}.attention.self.{projection}.lora_B.weight"] = [384, 8];
                }
            using (var weights = SafetensorsReader.Open(Path.Combine(directory, "adapter_model.safetensors")))
            {
                Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), weights.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
                foreach (var tensor in weights.Tensors)
                {
                    Assert.Equal(expected[tensor.Name], tensor.Shape);
                    Assert.Equal(SafetensorsDType.F32, tensor.DType);
                }
                Assert.Equal("pt", weights.Metadata["format"]);
            }

            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "adapter_config.json")))!.AsObject();
            Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
            Assert.Equal("SEQ_CLS", config["task_type"]!.GetValue<string>());
            Assert.Equal("sentence-transformers/all-MiniLM-L6-v2", config["base_model_name_or_path"]!.GetValue<string>());
            Assert.Equal(8, config["r"]!.GetValue<int>());
            Assert.Equal(16, config["lora_alpha"]!.GetValue<double>());
            Assert.Equal(0, config["lora_dropout"]!.GetValue<double>());
            Assert.Equal("none", config["bias"]!.GetValue<string>());
            Assert.False(config["use_rslora"]!.GetValue<bool>());
            Assert.False(config["use_dora"]!.GetValue<bool>());
            Assert.False(config["fan_in_fan_out"]!.GetValue<bool>());
            Assert.True(config["init_lora_weights"]!.GetValue<bool>());
            Assert.Equal(["query", "value"], config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()).Order(StringComparer.Ordinal));
            Assert.Equal(["classifier", "score"], config["modules_to_save"]!.AsArray().Select(n => n!.GetValue<string>()));
            Assert.Empty(config["rank_pattern"]!.AsObject());
            Assert.Empty(config["alpha_pattern"]!.AsObject());
        }
        finally
        {
            if (Directory.Exists(directory))
                Directory.Delete(directory, recursive: true);
        }
    }
}
