using static TorchSharp.torch;

namespace FineTune;

/// <summary>
/// A built-in task: "123+456=" followed by the answer written least significant digit first
/// ("579" becomes "9750"), always <see cref="Digits"/> + 1 answer digits. Writing the answer reversed lets a
/// left-to-right model produce each digit after the carry that decides it, as in the grokking and
/// "teaching arithmetic to small transformers" literature. Task A is addition, task B subtraction
/// (larger number first, so answers are never negative).
/// </summary>
public sealed record ArithmeticTask(string Name, char Operator)
{
    public const int Digits = 3;
    public const int PromptLength = 2 * Digits + 2;             // "123+456="
    public const int AnswerLength = Digits + 1;                 // "9750"
    public const int SequenceLength = PromptLength + AnswerLength;

    public static ArithmeticTask Addition { get; } = new("addition", '+');
    public static ArithmeticTask Subtraction { get; } = new("subtraction", '-');

    private static readonly int Limit = (int)Math.Pow(10, Digits);

    /// <summary>The full text of one example, e.g. "123+456=9750".</summary>
    public string Example(int a, int b)
    {
        if (Operator == '-' && a < b)
            (a, b) = (b, a);
        int answer = Operator == '+' ? a + b : a - b;
        var reversed = answer.ToString($"D{AnswerLength}").Reverse().ToArray();
        return $"{a.ToString($"D{Digits}")}{Operator}{b.ToString($"D{Digits}")}={new string(reversed)}";
    }

    /// <summary>A batch of token ids [count, <see cref="SequenceLength"/>], drawn from <paramref name="random"/>.</summary>
    public Tensor Batch(int count, Random random, Device device)
    {
        var ids = new long[count * SequenceLength];
        for (int row = 0; row < count; row++)
        {
            var text = Example(random.Next(Limit), random.Next(Limit));
            for (int i = 0; i < SequenceLength; i++)
                ids[row * SequenceLength + i] = Vocabulary.Id(text[i]);
        }
        return tensor(ids, [count, SequenceLength], device: device);
    }
}
