using System.Buffers.Binary;
using LoraGen.Files;
using static LoraGen.Cli.Tests.CliHarness;

namespace LoraGen.Cli.Tests;

public sealed class CliTests
{
    [Fact]
    public void Budget_prints_the_seed_arithmetic()
    {
        var (code, output, _) = Run("budget", "--in", "4096", "--out", "4096", "--rank", "8");
        Assert.Equal(0, code);
        Assert.Contains("layer weight (in·out):       16,777,216 parameters", output);
        Assert.Contains("65,536 parameters = 0.3906% of the layer", output);
        Assert.Contains("saves 16,711,680 parameters (99.61%)", output);
        Assert.Contains("largest rank that saves at least half: 1024", output);

        (code, output, _) = Run("budget", "--in", "100", "--out", "100", "--rank", "3");
        Assert.Contains("600 parameters = 6.0000% of the layer", output); // the seed's example: 600 of 10,000

        (code, output, _) = Run("budget", "--in", "3", "--out", "16", "--rank", "4", "--kind", "conv", "--kernel", "3x3");
        Assert.Equal(0, code);
        Assert.Contains("adapter (r·(in·k + out)):             172 parameters", output);

        (code, output, _) = Run("budget", "--in", "4", "--out", "4", "--rank", "4");
        Assert.Contains("saves nothing: the adapter is 16 parameters larger than the layer", output);
    }

    [Theory]
    [InlineData(2, "Option '--out' is required", "budget", "--in", "8", "--rank", "2")]
    [InlineData(2, "error:", "budget", "--in", "eight", "--out", "8", "--rank", "2")]
    [InlineData(2, "error:", "frobnicate")]
    [InlineData(2, "error:", "budget", "--in", "8", "--out", "8", "--rank", "2", "--kind", "lstm")]
    [InlineData(1, "--rank must be at least 1, but it is 0", "budget", "--in", "8", "--out", "8", "--rank", "0")]
    [InlineData(1, "--kernel applies to --kind conv only", "budget", "--in", "8", "--out", "8", "--rank", "2", "--kernel", "3")]
    [InlineData(1, "Adapter directory '/no/such/dir' does not exist", "inspect", "/no/such/dir")]
    public void Bad_command_lines_get_the_documented_exit_code_and_a_message(int expectedCode, string expectedMessage, params string[] args)
    {
        var (code, _, error) = Run(args);
        Assert.Equal(expectedCode, code);
        Assert.Contains(expectedMessage, error);
    }

    [Fact]
    public void Inspect_shows_config_layers_and_size()
    {
        var adapter = Fixture(ScratchDirectories.New());
        var (code, output, error) = Run("inspect", adapter);
        Assert.True(code == 0, error);
        Assert.Contains("LoRA r 1, lora_alpha 2, dropout 0, use_rslora false", output);
        Assert.Contains("target_modules (names or .name suffixes): proj", output);
        Assert.Matches(@"proj\s+Linear\s+1\s+2\s+\[1, 3\]\s+\[2, 1\]\s+5", output);
        Assert.Contains("1 adapted layers, 5 adapter parameters; dtypes F32", output);
        long size = new FileInfo(Path.Combine(adapter, "adapter_model.safetensors")).Length + new FileInfo(Path.Combine(adapter, "adapter_config.json")).Length;
        Assert.Contains($"on disk: {size:N0} bytes", output);
    }

    [Fact]
    public void Inspect_of_a_damaged_file_is_exit_code_1_naming_the_problem()
    {
        var adapter = Fixture(ScratchDirectories.New());
        var weights = Path.Combine(adapter, "adapter_model.safetensors");
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..20]);
        var (code, _, error) = Run("inspect", adapter);
        Assert.Equal(1, code);
        Assert.Contains("Invalid safetensors file", error);
        Assert.Contains("the header claims", error);

        File.WriteAllText(Path.Combine(adapter, "adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": -3}");
        (code, _, error) = Run("inspect", adapter);
        Assert.Equal(1, code);
        Assert.Contains("r must be a whole number of at least 1, but it is -3", error);
    }

    [Fact]
    public void Merge_writes_the_closed_form_and_reports_progress()
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var output = Path.Combine(directory, "merged.safetensors");
        var (code, stdout, stderr) = Run("merge", "--base", Path.Combine(directory, "base.safetensors"), "--adapter", adapter, "--out", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("merged 1 weights, replaced 0 modules_to_save tensors, copied 1", stdout);
        Assert.Contains("[2/2]", stderr);

        using var merged = SafetensorsReader.Open(output);
        var bytes = merged.ReadBytes("proj.weight");
        var values = Enumerable.Range(0, 6).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4))).ToArray();
        // W + 2·B·A with B = [0.5, -1]ᵀ, A = [1, 2, 3]: rows W[0] + [1, 2, 3] and W[1] − [2, 4, 6].
        Assert.Equal([2f, 2f, 3f, -2f, -3f, -6f], values);
        Assert.Equal(F32(0.25f, 0.5f), merged.ReadBytes("proj.bias"));
    }

    [Fact]
    public void Merge_with_a_missing_base_key_or_file_is_exit_code_1_and_writes_nothing()
    {
        var directory = ScratchDirectories.New();
        var adapter = Fixture(directory);
        var basePath = Path.Combine(directory, "other.safetensors");
        SafetensorsWriter.WriteFile(basePath, [Tensor("head.weight", [1], 1f)]);
        var output = Path.Combine(directory, "merged.safetensors");
        var (code, _, error) = Run("merge", "--base", basePath, "--adapter", adapter, "--out", output);
        Assert.Equal(1, code);
        Assert.Contains("the base checkpoint has no 'proj.weight'", error);
        Assert.False(File.Exists(output));

        (code, _, error) = Run("merge", "--base", Path.Combine(directory, "missing.safetensors"), "--adapter", adapter, "--out", output);
        Assert.Equal(1, code);
        Assert.Contains("missing.safetensors", error);

        (code, _, error) = Run("merge", "--base", basePath, "--adapter", adapter);
        Assert.Equal(2, code);
        Assert.Contains("Option '--out' is required", error);
    }
}
