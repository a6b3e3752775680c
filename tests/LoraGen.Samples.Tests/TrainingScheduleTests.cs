using FineTune;

namespace LoraGen.Samples.Tests;

public sealed class TrainingScheduleTests
{
    [Theory]
    [InlineData(0, 0.01)]      // warm-up: (step + 1) / 100
    [InlineData(49, 0.5)]
    [InlineData(99, 1.0)]
    [InlineData(100, 1.0)]     // cosine from the full rate …
    [InlineData(550, 0.55)]    // … half-way: 0.1 + 0.45·(1 + cos π/2)
    [InlineData(1000, 0.1)]    // … to a tenth (LambdaLR applies factor(k) to step k + 1, so the last used is factor(999) ≈ 0.1)
    public void Warm_up_then_cosine_to_a_tenth(int step, double factor)
    {
        var settings = new TrainingSettings(Steps: 1000, LearningRate: 1e-3, WarmupSteps: 100);
        Assert.Equal(factor, settings.LearningRateFactor(step), 12);
    }

    [Fact]
    public void Without_warm_up_it_starts_at_the_full_rate()
    {
        var settings = new TrainingSettings(Steps: 200, LearningRate: 1e-3);
        Assert.Equal(1.0, settings.LearningRateFactor(0), 12);
        Assert.Equal(0.1, settings.LearningRateFactor(200), 12);
    }
}
