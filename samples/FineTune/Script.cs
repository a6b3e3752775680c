namespace FineTune;

/// <summary>
/// How a task writes a sum: <see cref="Characters"/> holds the numerals for 0–9, then the plus sign, the
/// equals sign and the blank that fills the answer slots of the model's input.
/// </summary>
public sealed record Script(string Characters)
{
    /// <summary>Task A's script: "123+456=????".</summary>
    public static Script Digits { get; } = new("0123456789+=?");

    /// <summary>Task B's script, a letter code with a = 0 … j = 9: "bcd&amp;efg:____" is 123 + 456.</summary>
    public static Script Letters { get; } = new("abcdefghij&:_");

    /// <summary>Task C's script, a keyboard code: each digit is the capital under it on a QWERTY keyboard (1 = Q …
    /// 9 = O, 0 = P), with its own signs: "QWE#RTY>...." is 123 + 456.</summary>
    public static Script Keyboard { get; } = new("PQWERTYUIO#>.");

    public char Plus => Characters[10];
    public char EqualsSign => Characters[11];
    public char Blank => Characters[12];

    /// <summary><paramref name="number"/> in this script, zero-padded to <paramref name="width"/> numerals.</summary>
    public string Write(int number, int width) =>
        new(number.ToString($"D{width}").Select(digit => Characters[digit - '0']).ToArray());
}
