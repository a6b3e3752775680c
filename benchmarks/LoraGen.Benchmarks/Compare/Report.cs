using System.Globalization;

namespace LoraGen.Benchmarks.Compare;

/// <summary>Results as <c>key value</c> lines, the format benchmarks/peer/ratios.py reads from both harnesses.</summary>
public static class Report
{
    public static void Line(string key, double value) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{key} {value:0.####}"));

    public static void Line(string key, string value) => Console.WriteLine($"{key} {value}");
}
