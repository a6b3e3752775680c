namespace FineTune;

/// <summary>
/// The characters the model reads and writes: printable ASCII, as in a character-level language model.
/// Task A uses 13 of them (<see cref="Script.Digits"/>), task B 13 others (<see cref="Script.Letters"/>), task C
/// 13 more (<see cref="Script.Keyboard"/>); the rest never appear. Because the tasks' inputs share no character, an
/// embedding adapter trained on task B moves B's rows of the embedding only.
/// </summary>
public static class Vocabulary
{
    public const char First = ' ';
    public const char Last = '~';
    public const int Size = Last - First + 1;   // 95

    public static long Id(char c) => c is >= First and <= Last
        ? c - First
        : throw new ArgumentOutOfRangeException(nameof(c), c, $"not a printable ASCII character ('{First}' to '{Last}')");

    public static char Character(long id) => id is >= 0 and < Size
        ? (char)(First + id)
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"not a token id (0 to {Size - 1})");
}
