namespace FineTune;

/// <summary>The characters the model reads and writes: ten digits and three operators.</summary>
public static class Vocabulary
{
    public const string Characters = "0123456789+-=";
    public const int Size = 13;

    public static long Id(char c) => Characters.IndexOf(c) is var id and >= 0
        ? id
        : throw new ArgumentOutOfRangeException(nameof(c), c, $"not one of \"{Characters}\"");

    public static char Character(long id) => Characters[(int)id];
}
