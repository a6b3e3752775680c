using static TorchSharp.torch;

namespace FineTune;

/// <summary>
/// A built-in task: a 3-digit sum written in a <see cref="Script"/>, followed by blank answer slots. The
/// model reads "123+456=????" and writes the four answer digits "0579" into the slots, all at once, in
/// digits whatever the script. Task A is sums in digits; task B the same sums in a letter code
/// ("bcd&amp;efg:____"), a new script for a skill the model has. Filling the slots in one pass, instead of
/// writing the answer a character at a time, keeps the answer digits out of B's input: the model reads only
/// B's characters in task B, and the digits of its answers are targets of the output head.
/// </summary>
public sealed record ArithmeticTask(string Name, Script Script)
{
    public const int Digits = 3;
    public const int PromptLength = 2 * Digits + 2;             // "123+456="
    public const int AnswerLength = Digits + 1;                 // "0579"
    public const int InputLength = PromptLength + AnswerLength; // "123+456=????", what the model reads

    /// <summary>An example row: the model's input, then the expected answer.</summary>
    public const int ExampleLength = InputLength + AnswerLength;

    public static ArithmeticTask DigitSums { get; } = new("sums in digits", Script.Digits);
    public static ArithmeticTask LetterSums { get; } = new("sums in letters", Script.Letters);
    public static ArithmeticTask KeyboardSums { get; } = new("sums in keyboard code", Script.Keyboard);

    private static readonly int Limit = (int)Math.Pow(10, Digits);

    /// <summary>The model's input for a + b, e.g. "123+456=????".</summary>
    public string Input(int a, int b) =>
        $"{Script.Write(a, Digits)}{Script.Plus}{Script.Write(b, Digits)}{Script.EqualsSign}{new string(Script.Blank, AnswerLength)}";

    /// <summary>The answer the model should write for a + b, always in digits: "0579".</summary>
    public static string Answer(int a, int b) => (a + b).ToString($"D{AnswerLength}");

    /// <summary>
    /// A batch of examples [count, <see cref="ExampleLength"/>] drawn from <paramref name="random"/>: each row
    /// the token ids of the input and of the answer; <see cref="Evaluation"/> splits them.
    /// </summary>
    public Tensor Batch(int count, Random random, Device device)
    {
        var ids = new long[count * ExampleLength];
        for (int row = 0; row < count; row++)
        {
            int a = random.Next(Limit), b = random.Next(Limit);
            var text = Input(a, b) + Answer(a, b);
            for (int i = 0; i < ExampleLength; i++)
                ids[row * ExampleLength + i] = Vocabulary.Id(text[i]);
        }
        return tensor(ids, [count, ExampleLength], device: device);
    }
}
