using FineTune;
using LoraGen;

namespace LoraGen.Samples.Tests;

public sealed class SampleOptionsTests
{
    [Fact]
    public void Defaults_and_quick()
    {
        var defaults = SampleOptions.Parse([]);
        Assert.Equal(("auto", 2000, 2000, 16, false), (defaults.Device, defaults.Steps, defaults.PretrainSteps, defaults.Rank, defaults.Quick));
        var quick = SampleOptions.Parse(["--quick"]);
        Assert.Equal((60, 150), (quick.Steps, quick.PretrainSteps));
        Assert.Equal(30, SampleOptions.Parse(["--quick", "--steps", "30"]).Steps);
    }

    [Fact]
    public void Every_option_is_read()
    {
        var options = SampleOptions.Parse(["--device", "cpu", "--steps", "5", "--pretrain-steps", "6", "--rank", "2", "--seed", "0", "--out", "x"]);
        Assert.Equal(("cpu", 5, 6, 2, 0, "x"), (options.Device, options.Steps, options.PretrainSteps, options.Rank, options.Seed, options.OutputDirectory));
    }

    [Fact]
    public void Quantize_reads_nf4_and_int8_and_is_off_by_default()
    {
        Assert.Null(SampleOptions.Parse([]).Quantize);
        Assert.Equal(QuantizationKind.Nf4, SampleOptions.Parse(["--quantize", "nf4"]).Quantize);
        Assert.Equal(QuantizationKind.Int8, SampleOptions.Parse(["--quantize", "int8"]).Quantize);
    }

    [Theory]
    [InlineData("--quantize", "fp4")]
    [InlineData("--quantize")]
    [InlineData("--device", "gpu")]
    [InlineData("--steps", "0")]
    [InlineData("--rank", "-1")]
    [InlineData("--seed", "x")]
    [InlineData("--steps")]
    [InlineData("--bogus")]
    public void Bad_options_are_refused_with_a_message(params string[] args)
    {
        var error = Assert.Throws<ArgumentException>(() => SampleOptions.Parse(args));
        Assert.Contains(args[0], error.Message);
    }
}
