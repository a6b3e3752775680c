using SpamFilter.Data;

namespace LoraGen.Samples.Tests;

/// <summary>SpamFilter.Data.StratifiedSplit: stratified, seeded, duplicates on one side.</summary>
public sealed class SpamDataSplitTests
{
    // 100 ham and 40 spam, in a fixed interleaved order, all texts different.
    private static readonly IReadOnlyList<SpamMessage> Messages =
        Enumerable.Range(0, 140).Select(i => i % 7 < 2
            ? new SpamMessage($"spam {i}", true, $"spam/{i:D3}")
            : new SpamMessage($"ham {i}", false, $"ham/{i:D3}")).ToList();

    [Fact]
    public void The_fixture_has_100_ham_and_40_spam()
    {
        Assert.Equal(40, Messages.Count(m => m.IsSpam));
        Assert.Equal(100, Messages.Count(m => !m.IsSpam));
    }

    [Fact]
    public void Each_class_is_split_in_the_same_proportion()
    {
        var (train, test) = StratifiedSplit.Split(Messages, 0.25, seed: 7);
        Assert.Equal((75, 30), (train.Count(m => !m.IsSpam), train.Count(m => m.IsSpam)));
        Assert.Equal((25, 10), (test.Count(m => !m.IsSpam), test.Count(m => m.IsSpam)));
        Assert.Empty(train.Intersect(test));
        Assert.Equal(Messages.OrderBy(m => m.Source), train.Concat(test).OrderBy(m => m.Source));
    }

    [Fact]
    public void The_split_is_deterministic_for_a_seed_and_differs_between_seeds()
    {
        var first = StratifiedSplit.Split(Messages, 0.2, seed: 1);
        var again = StratifiedSplit.Split(Messages.ToList(), 0.2, seed: 1);
        var other = StratifiedSplit.Split(Messages, 0.2, seed: 2);
        Assert.Equal(first.Train, again.Train);
        Assert.Equal(first.Test, again.Test);
        Assert.NotEqual(first.Test.OrderBy(m => m.Source), other.Test.OrderBy(m => m.Source));
        // The generator is our own, not System.Random: the same draw on every machine and .NET version.
        Assert.Equal(["ham/101", "spam/057", "ham/045", "ham/138", "ham/122"], first.Test.Take(5).Select(m => m.Source));
    }

    [Fact]
    public void The_result_mixes_the_classes()
    {
        var (train, _) = StratifiedSplit.Split(Messages, 0.2, seed: 3);
        Assert.Contains(train.Take(20), m => m.IsSpam);
        Assert.Contains(train.Take(20), m => !m.IsSpam);
    }

    [Fact]
    public void Messages_of_the_same_text_stay_on_one_side()
    {
        // Ten spam texts each sent three times, beside the unique ones.
        var messages = Messages.Concat(Enumerable.Range(0, 30).Select(i => new SpamMessage($"resent {i % 10}", true, $"resent/{i:D3}"))).ToList();
        for (int seed = 0; seed < 20; seed++)
        {
            var (train, test) = StratifiedSplit.Split(messages, 0.2, seed);
            Assert.Empty(train.Select(m => m.Text).Intersect(test.Select(m => m.Text)));
            Assert.Equal(14, test.Count(m => m.IsSpam)); // round(70 × 0.2), met exactly: single messages fill the quota
            Assert.Equal(20, test.Count(m => !m.IsSpam));
        }
    }

    [Theory]
    [InlineData(0.0, 0, 0)]
    [InlineData(1.0, 100, 40)]
    [InlineData(0.5, 50, 20)]
    [InlineData(0.33, 33, 13)] // 13.2 rounds down
    [InlineData(0.4375, 44, 18)] // 43.75 and 17.5 round up
    public void Test_counts_are_rounded_per_class(double fraction, int ham, int spam)
    {
        var (train, test) = StratifiedSplit.Split(Messages, fraction, seed: 5);
        Assert.Equal((ham, spam), (test.Count(m => !m.IsSpam), test.Count(m => m.IsSpam)));
        Assert.Equal(140 - ham - spam, train.Count);
    }

    [Fact]
    public void A_fraction_outside_0_to_1_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => StratifiedSplit.Split(Messages, 1.5, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => StratifiedSplit.Split(Messages, double.NaN, 0));
    }

    [Theory]
    [InlineData(14, 10, 4)]
    [InlineData(10, 7, 3)] // 7.14 and 2.86: the larger remainder gets the extra one
    [InlineData(1, 1, 0)]
    [InlineData(0, 0, 0)]
    [InlineData(1000, 100, 40)] // more than there are: all of them
    public void A_subset_keeps_the_class_shares(int count, int ham, int spam)
    {
        var subset = StratifiedSplit.Subset(Messages, count, seed: 9);
        Assert.Equal((ham, spam), (subset.Count(m => !m.IsSpam), subset.Count(m => m.IsSpam)));
        Assert.Equal(subset.Count, subset.Distinct().Count());
        Assert.All(subset, m => Assert.Contains(m, Messages));
    }

    [Fact]
    public void A_subset_is_deterministic_for_a_seed()
    {
        Assert.Equal(StratifiedSplit.Subset(Messages, 30, seed: 4), StratifiedSplit.Subset(Messages, 30, seed: 4));
        Assert.NotEqual(StratifiedSplit.Subset(Messages, 30, seed: 4), StratifiedSplit.Subset(Messages, 30, seed: 5));
    }
}
