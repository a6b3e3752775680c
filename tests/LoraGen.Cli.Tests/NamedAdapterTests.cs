using LoraGen.Files;
using static LoraGen.Cli.Tests.CliHarness;

namespace LoraGen.Cli.Tests;

/// <summary>Directories saved with several named adapters ("default" in the directory, the others in
/// <c>&lt;name&gt;/</c> sub-folders, as PEFT and SaveAdapter write them): <c>inspect</c> shows each, <c>merge</c> merges
/// several with weights.</summary>
public sealed class NamedAdapterTests
{
    // The fixture's "default" (A [1, 2, 3], B [0.5, −1]ᵀ, r 1, alpha 2: scaling 2) and a named adapter "letters" on the
    // same proj: r 2, alpha 2 (scaling 1), A = [[1, 0, 0], [0, 0, 1]], B = [[1, 0], [0, 2]], so B·A = [[1, 0, 0], [0, 0, 2]].
    private static (string Directory, string Default, string Letters) TwoAdapters()
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var letters = AdapterAt(Path.Combine(adapter, "letters"), new AdapterConfig { Rank = 2, Alpha = 2, TargetModules = ["proj"] },
            Tensor("base_model.model.proj.lora_A.weight", [2, 3], 1f, 0f, 0f, 0f, 0f, 1f),
            Tensor("base_model.model.proj.lora_B.weight", [2, 2], 1f, 0f, 0f, 2f));
        return (directory, adapter, letters);
    }

    private static float[] MergedProj(string checkpoint)
    {
        using var merged = SafetensorsReader.Open(checkpoint);
        return Singles(merged.ReadBytes("proj.weight"));
    }

    [Fact]
    public void Merge_of_two_adapters_with_weights_writes_the_closed_form()
    {
        var (directory, adapter, letters) = TwoAdapters();
        var output = Path.Combine(directory, "merged.safetensors");

        var (code, stdout, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", adapter, "--adapter", letters, "--weight", "0.5", "--weight", "-2", "--out", output);

        Assert.True(code == 0, stderr);
        Assert.Contains($"merged 1 weights from 2 adapters ({adapter} ×0.5, {letters} ×-2), replaced 0 modules_to_save tensors, copied 1", stdout);
        // W = [[1, 0, 0], [0, 1, 0]]
        //   + 0.5 · 2 · [0.5, −1]ᵀ·[1, 2, 3]    = [[0.5, 1, 1.5], [−1, −2, −3]]
        //   + (−2) · 1 · [[1, 0, 0], [0, 0, 2]] = [[−2, 0, 0], [0, 0, −4]]
        Assert.Equal([-0.5f, 1f, 1.5f, -1f, -1f, -7f], MergedProj(output));
        using var merged = SafetensorsReader.Open(output);
        Assert.Equal(F32(0.25f, 0.5f), merged.ReadBytes("proj.bias"));
    }

    [Fact]
    public void Without_weights_every_adapter_is_merged_whole()
    {
        var (directory, adapter, letters) = TwoAdapters();
        var output = Path.Combine(directory, "merged.safetensors");

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", adapter, "--adapter", letters, "--out", output);

        Assert.True(code == 0, stderr);
        // W + [[1, 2, 3], [−2, −4, −6]] + [[1, 0, 0], [0, 0, 2]]
        Assert.Equal([3f, 2f, 3f, -2f, -3f, -4f], MergedProj(output));
    }

    [Fact]
    public void The_library_overload_takes_directories_and_weights()
    {
        var (directory, adapter, letters) = TwoAdapters();
        var output = Path.Combine(directory, "merged.safetensors");

        var result = AdapterMerge.Merge(Path.Combine(directory, "base.safetensors"), [(adapter, 0.5), (letters, -2.0)], output);

        Assert.Equal(new AdapterMergeResult(1, 0, 1, 0), result);
        Assert.Equal([-0.5f, 1f, 1.5f, -1f, -1f, -7f], MergedProj(output));
        Assert.Throws<ArgumentException>(() => AdapterMerge.Merge(Path.Combine(directory, "base.safetensors"), [(adapter, double.NaN)], output));
        Assert.Throws<ArgumentException>(() => AdapterMerge.Merge(Path.Combine(directory, "base.safetensors"), [], output));
    }

    [Fact]
    public void Adapters_that_disagree_on_a_modules_shape_are_refused_and_nothing_is_written()
    {
        var (directory, adapter, _) = TwoAdapters();
        var wide = AdapterAt(Path.Combine(directory, "wide"), new AdapterConfig { Rank = 1, Alpha = 1, TargetModules = ["proj"] },
            Tensor("base_model.model.proj.lora_A.weight", [1, 4], 1f, 1f, 1f, 1f),
            Tensor("base_model.model.proj.lora_B.weight", [2, 1], 1f, 1f));
        var output = Path.Combine(directory, "merged.safetensors");

        var (code, stdout, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", adapter, "--adapter", wide, "--out", output);

        Assert.Equal(1, code);
        Assert.Contains($"Cannot merge adapters '{adapter}', '{wide}'", stderr);
        Assert.Contains($"'proj': adapter '{adapter}' has a Linear adapter A [1, 3] and B [2, 1] (a [2, 3] weight), " +
            $"adapter '{wide}' a Linear adapter A [1, 4] and B [2, 1] (a [2, 4] weight)", stderr);
        Assert.Contains("nothing was written", stderr);
        Assert.Equal("", stdout);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void An_adapter_that_disagrees_with_its_config_is_named_among_several()
    {
        var (directory, adapter, _) = TwoAdapters();
        var bad = AdapterAt(Path.Combine(directory, "bad"), new AdapterConfig { Rank = 4, Alpha = 4, TargetModules = ["proj"] },
            Tensor("base_model.model.proj.lora_A.weight", [1, 3], 1f, 1f, 1f),
            Tensor("base_model.model.proj.lora_B.weight", [2, 1], 1f, 1f));
        var output = Path.Combine(directory, "merged.safetensors");

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", adapter, "--adapter", bad, "--out", output);

        Assert.Equal(1, code);
        Assert.Contains($"Adapter '{bad}' does not agree with its adapter_config.json", stderr);
        Assert.Contains("have rank 1, but adapter_config.json gives rank 4 (r)", stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void The_same_modules_to_save_tensor_from_two_adapters_is_refused()
    {
        var directory = ScratchDirectories.New();
        var basePath = Path.Combine(directory, "base.safetensors");
        SafetensorsWriter.WriteFile(basePath,
        [
            Tensor("proj.weight", [2, 3], 1f, 0f, 0f, 0f, 1f, 0f),
            Tensor("norm.weight", [2], 1f, 1f),
        ]);
        var config = new AdapterConfig { Rank = 1, Alpha = 1, TargetModules = ["proj"], ModulesToSave = ["norm"] };
        var first = AdapterAt(Path.Combine(directory, "first"), config,
            Tensor("base_model.model.proj.lora_A.weight", [1, 3], 1f, 0f, 0f),
            Tensor("base_model.model.proj.lora_B.weight", [2, 1], 1f, 0f),
            Tensor("base_model.model.norm.weight", [2], 2f, 2f));
        var second = AdapterAt(Path.Combine(directory, "second"), config,
            Tensor("base_model.model.proj.lora_A.weight", [1, 3], 0f, 1f, 0f),
            Tensor("base_model.model.proj.lora_B.weight", [2, 1], 0f, 1f),
            Tensor("base_model.model.norm.weight", [2], 3f, 3f));
        var output = Path.Combine(directory, "merged.safetensors");

        var (code, _, stderr) = Run("merge", "--base", basePath, "--adapter", first, "--adapter", second, "--out", output);

        Assert.Equal(1, code);
        Assert.Contains($"'norm.weight' is in the modules_to_save of both adapter '{first}' and adapter '{second}'", stderr);
        Assert.Contains("a module_to_save belongs to one adapter", stderr);
        Assert.False(File.Exists(output));

        // Each alone is fine, and its copy replaces the base tensor unweighted.
        (code, _, stderr) = Run("merge", "--base", basePath, "--adapter", first, "--weight", "0.5", "--out", output);
        Assert.True(code == 0, stderr);
        using var merged = SafetensorsReader.Open(output);
        Assert.Equal(F32(2f, 2f), merged.ReadBytes("norm.weight"));
        // W + 0.5 · 1 · [1, 0]ᵀ·[1, 0, 0]
        Assert.Equal([1.5f, 0f, 0f, 0f, 1f, 0f], Singles(merged.ReadBytes("proj.weight")));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("0,5")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    public void A_weight_that_is_not_a_finite_number_is_a_usage_error(string weight)
    {
        var (directory, adapter, _) = TwoAdapters();
        var output = Path.Combine(directory, "merged.safetensors");

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", adapter, "--weight", weight, "--out", output);

        Assert.Equal(2, code);
        Assert.Contains($"--weight '{weight}' is not a number", stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Weights_must_be_one_per_adapter()
    {
        var (directory, adapter, letters) = TwoAdapters();
        var output = Path.Combine(directory, "merged.safetensors");

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", adapter, "--adapter", letters, "--weight", "0.5", "--out", output);

        Assert.Equal(1, code);
        Assert.Contains("2 --adapter but 1 --weight: give one --weight per --adapter, in the same order", stderr);
        Assert.DoesNotContain("[1/", stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Merge_of_a_directory_with_only_named_adapters_says_which_to_give()
    {
        var (directory, _, _) = TwoAdapters();
        var saved = Path.Combine(directory, "saved");
        Directory.CreateDirectory(saved);
        foreach (var name in (string[])["a", "b"])
            AdapterAt(Path.Combine(saved, name), new AdapterConfig { Rank = 1, Alpha = 1, TargetModules = ["proj"] },
                Tensor("base_model.model.proj.lora_A.weight", [1, 3], 1f, 0f, 0f),
                Tensor("base_model.model.proj.lora_B.weight", [2, 1], 1f, 0f));

        var (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", saved, "--out", Path.Combine(directory, "merged.safetensors"));

        Assert.Equal(1, code);
        Assert.Contains($"--adapter '{saved}' holds no adapter of its own, but 2 named adapters in sub-folders (a, b)", stderr);
        Assert.Contains($"--adapter '{Path.Combine(saved, "a")}'", stderr);

        // DIR/<name> is a plain adapter directory.
        (code, _, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"),
            "--adapter", Path.Combine(saved, "a"), "--adapter", Path.Combine(saved, "b"), "--weight", "1", "--weight", "1",
            "--out", Path.Combine(directory, "merged.safetensors"));
        Assert.True(code == 0, stderr);
    }

    [Fact]
    public void Inspect_shows_the_default_adapter_and_each_named_one()
    {
        var (_, adapter, letters) = TwoAdapters();

        var (code, output, error) = Run("inspect", adapter);

        Assert.True(code == 0, error);
        Assert.Contains($"{adapter}: 2 adapters: default (the directory's own files), letters (letters/)", output);
        Assert.Contains($"adapter 'default' {adapter}", output);
        Assert.Contains($"adapter 'letters' {letters}", output);
        Assert.Contains("LoRA r 1, lora_alpha 2", output);
        Assert.Contains("LoRA r 2, lora_alpha 2", output);
        Assert.Matches(@"proj\s+Linear\s+1\s+2\s+\[1, 3\]\s+\[2, 1\]\s+5", output);
        Assert.Matches(@"proj\s+Linear\s+2\s+1\s+\[2, 3\]\s+\[2, 2\]\s+10", output);
        Assert.True(output.IndexOf("adapter 'default'", StringComparison.Ordinal) < output.IndexOf("adapter 'letters'", StringComparison.Ordinal));
    }

    [Fact]
    public void Inspect_of_a_directory_with_only_named_adapters_shows_them_all()
    {
        var directory = ScratchDirectories.New();
        foreach (var (name, rank) in (ValueTuple<string, int>[])[("b", 2), ("a", 1)])
            AdapterAt(Path.Combine(directory, name), new AdapterConfig { Rank = rank, Alpha = 4, TargetModules = ["proj"] },
                Tensor("base_model.model.proj.lora_A.weight", [rank, 3], new float[rank * 3]),
                Tensor("base_model.model.proj.lora_B.weight", [2, rank], new float[2 * rank]));
        Directory.CreateDirectory(Path.Combine(directory, "logs")); // not an adapter: left out

        var (code, output, error) = Run("inspect", directory);

        Assert.True(code == 0, error);
        Assert.Contains($"{directory}: 2 adapters: a (a/), b (b/)", output);
        Assert.DoesNotContain("default", output);
        Assert.DoesNotContain("logs", output);
        Assert.Matches(@"proj\s+Linear\s+1\s+4\s+\[1, 3\]\s+\[2, 1\]\s+5", output);
        Assert.Matches(@"proj\s+Linear\s+2\s+2\s+\[2, 3\]\s+\[2, 2\]\s+10", output);
    }

    [Fact]
    public void Inspect_refuses_a_directory_with_a_broken_named_adapter_naming_it()
    {
        var (_, adapter, letters) = TwoAdapters();
        File.Delete(Path.Combine(letters, "adapter_model.safetensors"));
        var other = AdapterAt(Path.Combine(adapter, "other"), new AdapterConfig { Rank = 3, Alpha = 3, TargetModules = ["proj"] },
            Tensor("base_model.model.proj.lora_A.weight", [1, 3], 1f, 1f, 1f),
            Tensor("base_model.model.proj.lora_B.weight", [2, 1], 1f, 1f));

        var (code, output, error) = Run("inspect", adapter);

        Assert.Equal(1, code);
        Assert.Contains($"'{letters}' has no adapter_model.safetensors", error);
        Assert.Contains($"Adapter '{other}' does not agree with its adapter_config.json", error);
        Assert.Equal("", output); // nothing printed for an adapter that cannot be loaded
    }
}
