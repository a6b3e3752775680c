namespace SpamFilter.Data;

/// <summary>
/// Seeded, stratified splits and subsets: every class keeps its share, and the same input, fraction or count and
/// seed give the same result on every machine and .NET version (an own SplitMix64 generator, not
/// <see cref="Random"/>). Results are shuffled, so classes come mixed.
/// </summary>
public static class StratifiedSplit
{
    /// <summary>
    /// Train and test sets: round(n × <paramref name="testFraction"/>) of each class's n messages go to test, and
    /// messages of the same text all go to the same side (the corpus has 111 texts that occur 2 to 5 times, 262
    /// messages: re-sent spam, repeated list posts), so no test message is one the model trained on.
    /// </summary>
    public static (IReadOnlyList<SpamMessage> Train, IReadOnlyList<SpamMessage> Test) Split(
        IReadOnlyList<SpamMessage> messages, double testFraction, int seed) =>
        Split(messages, m => m.IsSpam, testFraction, seed, m => m.Text);

    /// <summary>A stratified subset of <paramref name="count"/> messages (the quick run's, or a step budget's).</summary>
    public static IReadOnlyList<SpamMessage> Subset(IReadOnlyList<SpamMessage> messages, int count, int seed) =>
        Subset(messages, m => m.IsSpam, count, seed);

    /// <summary>
    /// Train and test sets, stratified by <paramref name="classOf"/>. Items with the same <paramref name="groupOf"/>
    /// key (when given) stay together: groups are drawn in a seeded order, each one going to test while it fits in
    /// the class's test quota, so a quota is met exactly unless only large groups are left.
    /// </summary>
    public static (IReadOnlyList<T> Train, IReadOnlyList<T> Test) Split<T, TClass>(
        IReadOnlyList<T> items, Func<T, TClass> classOf, double testFraction, int seed, Func<T, string>? groupOf = null)
        where TClass : notnull
    {
        if (!(testFraction >= 0 && testFraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "The test fraction is between 0 and 1.");
        var random = new SplitMix64(seed);
        var train = new List<T>();
        var test = new List<T>();
        foreach (var members in Classes(items, classOf))
        {
            int quota = (int)Math.Round(members.Count * testFraction, MidpointRounding.AwayFromZero), taken = 0;
            var units = groupOf is null
                ? members.Select(i => new List<int> { i }).ToList()
                : members.GroupBy(i => groupOf(items[i]), StringComparer.Ordinal).Select(g => g.ToList()).ToList();
            random.Shuffle(units);
            foreach (var unit in units)
            {
                bool toTest = taken + unit.Count <= quota;
                if (toTest)
                    taken += unit.Count;
                (toTest ? test : train).AddRange(unit.Select(i => items[i]));
            }
        }
        random.Shuffle(train);
        random.Shuffle(test);
        return (train, test);
    }

    /// <summary>
    /// <paramref name="count"/> items (all of them when there are fewer), each class's share rounded by largest
    /// remainder so the shares add up to <paramref name="count"/>.
    /// </summary>
    public static IReadOnlyList<T> Subset<T, TClass>(IReadOnlyList<T> items, Func<T, TClass> classOf, int count, int seed)
        where TClass : notnull
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        count = Math.Min(count, items.Count);
        var random = new SplitMix64(seed);
        var classes = Classes(items, classOf);
        var quotas = classes.Select(c => (long)count * c.Count / items.Count).Select(q => (int)q).ToArray();
        // Largest remainders first; ties to the class seen first.
        foreach (int k in Enumerable.Range(0, classes.Count)
                     .OrderByDescending(k => (long)count * classes[k].Count % items.Count)
                     .ThenBy(k => k)
                     .Take(count - quotas.Sum()))
            quotas[k]++;
        var subset = new List<T>(count);
        for (int k = 0; k < classes.Count; k++)
        {
            random.Shuffle(classes[k]);
            subset.AddRange(classes[k].Take(quotas[k]).Select(i => items[i]));
        }
        random.Shuffle(subset);
        return subset;
    }

    /// <summary>The indices of each class's items, classes in order of first appearance.</summary>
    private static List<List<int>> Classes<T, TClass>(IReadOnlyList<T> items, Func<T, TClass> classOf) where TClass : notnull
    {
        var byClass = new Dictionary<TClass, List<int>>();
        var order = new List<List<int>>();
        for (int i = 0; i < items.Count; i++)
        {
            if (!byClass.TryGetValue(classOf(items[i]), out var members))
            {
                members = [];
                byClass.Add(classOf(items[i]), members);
                order.Add(members);
            }
            members.Add(i);
        }
        return order;
    }

    /// <summary>SplitMix64 (Steele, Lea and Flood): small, fast, and fixed, unlike <see cref="Random"/>'s algorithm.</summary>
    private sealed class SplitMix64(int seed)
    {
        private ulong state = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL);

        private ulong Next()
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>A uniform integer in [0, bound), by rejection (no modulo bias).</summary>
        private int Below(int bound)
        {
            ulong limit = ulong.MaxValue - ulong.MaxValue % (ulong)bound;
            ulong x;
            do
                x = Next();
            while (x >= limit);
            return (int)(x % (ulong)bound);
        }

        /// <summary>Fisher-Yates.</summary>
        public void Shuffle<TItem>(IList<TItem> list)
        {
            for (int i = list.Count - 1; i > 0; i--)
            {
                int j = Below(i + 1);
                (list[i], list[j]) = (list[j], list[i]);
            }
        }
    }
}
