using FineTune;
using static TorchSharp.torch;

namespace LoraGen.Samples.Tests;

public sealed class ArithmeticTaskTests
{
    [Theory]
    [InlineData(123, 456, "123+456=????", "bcd&efg:____", "0579")]
    [InlineData(999, 999, "999+999=????", "jjj&jjj:____", "1998")]   // the carry out fills the fourth digit
    [InlineData(7, 30, "007+030=????", "aah&ada:____", "0037")]
    public void Both_scripts_write_the_same_sum_and_answer_in_digits(int a, int b, string digits, string letters, string answer)
    {
        Assert.Equal(digits, ArithmeticTask.DigitSums.Input(a, b));
        Assert.Equal(letters, ArithmeticTask.LetterSums.Input(a, b));
        Assert.Equal(answer, ArithmeticTask.Answer(a, b));
        Assert.Equal(ArithmeticTask.InputLength, digits.Length);
        Assert.Equal(ArithmeticTask.AnswerLength, answer.Length);
    }

    [Fact]
    public void The_three_scripts_share_no_character()
    {
        var charactersA = ArithmeticTask.DigitSums.Script.Characters;
        var charactersB = ArithmeticTask.LetterSums.Script.Characters;
        var charactersC = ArithmeticTask.KeyboardSums.Script.Characters;
        Assert.Equal(13, charactersA.Distinct().Count());
        Assert.Equal(13, charactersB.Distinct().Count());
        Assert.Equal(13, charactersC.Distinct().Count());
        Assert.Empty(charactersA.Intersect(charactersB));
        Assert.Empty(charactersA.Intersect(charactersC));
        Assert.Empty(charactersB.Intersect(charactersC));
    }

    [Fact]
    public void The_keyboard_code_writes_each_digit_as_the_capital_under_it()
    {
        Assert.Equal("QWE#RTY>....", ArithmeticTask.KeyboardSums.Input(123, 456));
        Assert.Equal("PPU#IOP>....", ArithmeticTask.KeyboardSums.Input(7, 890));
    }

    [Fact]
    public void Batches_are_token_ids_of_input_then_answer_and_repeat_with_the_seed()
    {
        using var first = ArithmeticTask.LetterSums.Batch(32, new Random(3), CPU);
        using var again = ArithmeticTask.LetterSums.Batch(32, new Random(3), CPU);
        Assert.Equal([32L, ArithmeticTask.ExampleLength], first.shape);
        Assert.Equal(first.data<long>().ToArray(), again.data<long>().ToArray());
        var text = new string(first[5].data<long>().Select(Vocabulary.Character).ToArray());
        int Number(string letters) => int.Parse(new string(letters.Select(c => (char)('0' + (c - 'a'))).ToArray()));
        int a = Number(text[..3]), b = Number(text[4..7]);
        Assert.Equal(ArithmeticTask.LetterSums.Input(a, b) + ArithmeticTask.Answer(a, b), text);
    }

    [Fact]
    public void The_vocabulary_is_printable_ascii()
    {
        Assert.Equal(95, Vocabulary.Size);
        Assert.Equal(0, Vocabulary.Id(' '));
        Assert.Equal(94, Vocabulary.Id('~'));
        Assert.Equal('a', Vocabulary.Character(Vocabulary.Id('a')));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Vocabulary.Id('é'));
        Assert.Contains("printable ASCII", error.Message);
    }
}
