using LoraGen.Files;
using static LoraGen.Cli.Tests.CliHarness;

namespace LoraGen.Cli.Tests;

/// <summary><c>inspect</c> and <c>merge</c> refuse an adapter whose tensors disagree with its config, as
/// <c>LoadAdapter</c> does, listing every problem in one message.</summary>
public sealed class ConsistencyTests
{
    // The case: adapter_config.json says r 64 (alpha 128, scaling 2), the tensors have rank 32
    // (read with r 32, the same alpha would scale by 4).
    private static string RankMismatch(string directory) => Adapter(directory,
        new AdapterConfig { Rank = 64, Alpha = 128, TargetModules = ["proj"] },
        Tensor("base_model.model.proj.lora_A.weight", [32, 3], new float[96]),
        Tensor("base_model.model.proj.lora_B.weight", [2, 32], new float[64]));

    [Fact]
    public void Inspect_refuses_a_rank_that_differs_from_the_config()
    {
        var adapter = RankMismatch(ScratchDirectories.New());

        var (code, output, error) = Run("inspect", adapter);

        Assert.Equal(1, code);
        Assert.Contains($"Adapter '{adapter}'", error);
        Assert.Contains("'proj': lora_A.weight [32, 3] and lora_B.weight [2, 32] have rank 32, but adapter_config.json gives rank 64 (r)", error);
        Assert.DoesNotContain("Linear", output); // no table with a scaling computed from the wrong rank
    }

    [Fact]
    public void Inspect_lists_every_problem_in_one_message()
    {
        var adapter = Adapter(ScratchDirectories.New(),
            new AdapterConfig { Rank = 2, Alpha = 2, RankPattern = new Dictionary<string, int> { ["down"] = 4 } },
            Tensor("base_model.model.up.lora_A.weight", [2, 3], new float[6]),                 // no lora_B
            Tensor("base_model.model.down.lora_A.weight", [2, 3], new float[6]),               // rank 2, pattern says 4
            Tensor("base_model.model.down.lora_B.weight", [3, 2], new float[6]),
            Tensor("base_model.model.emb.lora_A.weight", [2, 5], new float[10]),               // A of a Linear,
            Tensor("base_model.model.emb.lora_embedding_B", [4, 2], new float[8]));            // B of an Embedding

        var (code, _, error) = Run("inspect", adapter);

        Assert.Equal(1, code);
        Assert.Contains("3 problems", error);
        Assert.Contains("'up': lora_A.weight [2, 3] has no lora_B.weight", error);
        Assert.Contains("'down': lora_A.weight [2, 3] and lora_B.weight [3, 2] have rank 2, but adapter_config.json gives rank 4 (rank_pattern)", error);
        Assert.Contains("'emb': lora_A.weight (Linear and convolutions) cannot pair with lora_embedding_B (Embedding)", error);
    }

    [Fact]
    public void Merge_refuses_what_inspect_refuses_before_writing()
    {
        var directory = ScratchDirectories.New();
        // A of a Linear with B of an Embedding: shapes that fit an Embedding's [3, 2] weight.
        var adapter = Adapter(directory, new AdapterConfig { Rank = 1, Alpha = 1 },
            Tensor("base_model.model.proj.lora_A.weight", [1, 3], 1f, 2f, 3f),
            Tensor("base_model.model.proj.lora_embedding_B", [2, 1], 1f, 1f));
        var basePath = Path.Combine(directory, "base.safetensors");
        SafetensorsWriter.WriteFile(basePath, [Tensor("proj.weight", [3, 2], new float[6])]);
        var output = Path.Combine(directory, "merged.safetensors");

        var (code, _, error) = Run("merge", "--base", basePath, "--adapter", adapter, "--out", output);

        Assert.Equal(1, code);
        Assert.Contains("'proj': lora_A.weight (Linear and convolutions) cannot pair with lora_embedding_B (Embedding)", error);
        Assert.Contains("nothing was written", error);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Merge_refuses_the_rank_mismatch_with_the_same_words_as_inspect()
    {
        var directory = ScratchDirectories.New();
        var adapter = RankMismatch(directory);
        var basePath = Path.Combine(directory, "base.safetensors");
        SafetensorsWriter.WriteFile(basePath, [Tensor("proj.weight", [2, 3], new float[6])]);

        var (code, _, error) = Run("merge", "--base", basePath, "--adapter", adapter, "--out", Path.Combine(directory, "merged.safetensors"));

        Assert.Equal(1, code);
        Assert.Contains("'proj': lora_A.weight [32, 3] and lora_B.weight [2, 32] have rank 32, but adapter_config.json gives rank 64 (r)", error);
    }
}
