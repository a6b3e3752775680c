using System.Globalization;

namespace LoraGen.Benchmarks.Compare;

/// <summary><c>--name value</c> options of the compare and memory commands.</summary>
public sealed class Arguments(IReadOnlyList<string> args)
{
    public string Text(string name, string fallback)
    {
        for (var i = 0; i < args.Count - 1; i++)
            if (args[i] == "--" + name)
                return args[i + 1];
        return fallback;
    }

    public int Number(string name, int fallback) =>
        int.Parse(Text(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
}
