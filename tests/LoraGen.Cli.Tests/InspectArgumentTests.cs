using static LoraGen.Cli.Tests.CliHarness;

namespace LoraGen.Cli.Tests;

/// <summary><c>loragen inspect</c> on something that is not an adapter directory says what it is and what to give.</summary>
public sealed class InspectArgumentTests
{
    [Fact]
    public void A_file_is_called_a_file_and_the_expected_directory_is_described()
    {
        var directory = ScratchDirectories.New();
        Fixture(directory);
        var checkpoint = Path.Combine(directory, "base.safetensors");

        var (code, _, error) = Run("inspect", checkpoint);

        Assert.Equal(1, code);
        Assert.Contains($"'{checkpoint}' is a file, not a directory", error);
        Assert.Contains("adapter_config.json and adapter_model.safetensors", error);
        Assert.DoesNotContain("does not exist", error);
    }

    [Fact]
    public void A_file_inside_an_adapter_directory_points_to_that_directory()
    {
        var adapter = Fixture(ScratchDirectories.New());
        var weights = Path.Combine(adapter, "adapter_model.safetensors");

        var (code, _, error) = Run("inspect", weights);

        Assert.Equal(1, code);
        Assert.Contains($"'{weights}' is a file, not a directory", error);
        Assert.Contains($"give '{adapter}'", error);
    }

    [Fact]
    public void A_directory_without_the_adapter_files_names_the_missing_file()
    {
        var directory = ScratchDirectories.New();

        var (code, _, error) = Run("inspect", directory);

        Assert.Equal(1, code);
        Assert.Contains($"'{directory}' has no adapter_config.json", error);
        Assert.DoesNotContain("Could not find", error); // .NET's message for the missing file, not ours
    }
}
