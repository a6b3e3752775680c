using FineTune;
using static TorchSharp.torch;

namespace LoraGen.Samples.Tests;

public sealed class ArithmeticTaskTests
{
    [Theory]
    [InlineData('+', 123, 456, "123+456=9750")]   // 579, least significant digit first
    [InlineData('+', 999, 999, "999+999=8991")]   // 1998: the carry out fills the fourth digit
    [InlineData('-', 456, 123, "456-123=3330")]   // 333
    [InlineData('-', 123, 456, "456-123=3330")]   // the larger number goes first: never negative
    [InlineData('-', 7, 7, "007-007=0000")]
    public void Examples_are_written_answer_reversed(char op, int a, int b, string expected)
    {
        var task = op == '+' ? ArithmeticTask.Addition : ArithmeticTask.Subtraction;
        Assert.Equal(expected, task.Example(a, b));
        Assert.Equal(ArithmeticTask.SequenceLength, expected.Length);
    }

    [Fact]
    public void Batches_are_token_ids_of_examples_and_repeat_with_the_seed()
    {
        using var first = ArithmeticTask.Subtraction.Batch(32, new Random(3), CPU);
        using var again = ArithmeticTask.Subtraction.Batch(32, new Random(3), CPU);
        Assert.Equal([32L, ArithmeticTask.SequenceLength], first.shape);
        Assert.Equal(first.data<long>().ToArray(), again.data<long>().ToArray());
        var row = first[5].data<long>().Select(Vocabulary.Character).ToArray();
        var text = new string(row);
        int a = int.Parse(text[..3]), b = int.Parse(text[4..7]);
        Assert.Equal(ArithmeticTask.Subtraction.Example(a, b), text);
    }
}
