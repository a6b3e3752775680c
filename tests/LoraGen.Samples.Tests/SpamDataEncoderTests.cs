using SpamFilter.Data;

namespace LoraGen.Samples.Tests;

/// <summary>
/// SpamFilter.Data.TextEncoder on a small handmade uncased vocabulary. The expected ids are what Hugging Face's
/// BertTokenizer(do_lower_case=True) gives with this vocab.txt: basic tokenization (lower case, accents stripped,
/// split on whitespace and punctuation), then greedy longest-match WordPiece, a word that cannot be covered
/// being one [UNK]; then [CLS] … [SEP], cut to max_length.
/// </summary>
public sealed class SpamDataEncoderTests : IDisposable
{
    private static readonly string[] Vocabulary =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",         // 0-4
        "!", ",", ".", "?", "$", "'",                          // 5-10
        "hello", "world", "free", "money", "un", "##believ",   // 11-16
        "##able", "cafe", "win", "##ning", "5", "##00",        // 17-22
        "don", "t", "the", "a", "##s", "_", "=", "中",         // 23-30
    ];

    private readonly string directory = ScratchDirectories.New();
    private readonly string vocabPath;

    public SpamDataEncoderTests()
    {
        vocabPath = Path.Combine(directory, "vocab.txt");
        File.WriteAllLines(vocabPath, Vocabulary);
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private static long[] Row(long[] values, int row, int length) => values.AsSpan(row * length, length).ToArray();

    [Theory]
    [InlineData("Hello, World!", new long[] { 11, 6, 12, 5 })]
    [InlineData("UNBELIEVABLE free money!!!", new long[] { 15, 16, 17, 13, 14, 5, 5, 5 })]
    [InlineData("Café WINNING $500", new long[] { 18, 19, 20, 9, 21, 22 })]
    [InlineData("don't\twin\n the  a", new long[] { 23, 10, 24, 19, 25, 26 })]
    [InlineData("hello zebra unbeliev", new long[] { 11, 1, 15, 16 })]  // "zebra" cannot be covered: one [UNK]
    [InlineData("wins winning?", new long[] { 19, 27, 19, 20, 8 })]
    [InlineData("Ünbelievable", new long[] { 15, 16, 17 })]
    [InlineData("free_money=win", new long[] { 13, 28, 14, 29, 19 })]
    [InlineData("a中a", new long[] { 26, 30, 26 })]
    [InlineData("hel\u0000lo wor\u200Bld\uFFFD", new long[] { 11, 12 })] // control and format characters dropped
    [InlineData("hello [SEP] world[CLS]", new long[] { 11, 3, 12, 2 })]   // special tokens in the text stay special
    [InlineData("", new long[0])]
    public void Tokens_are_those_of_the_uncased_bert_tokenizer(string text, long[] expected)
    {
        Assert.Equal(expected, new TextEncoder(vocabPath, 16).Tokenize(text).Select(id => (long)id));
    }

    [Fact]
    public void Basic_tokenization_is_hugging_faces()
    {
        Assert.Equal(
            "hello , world ! $ 5 a _ b [SEP] unicode tab + < = > | ~ ` ^ “ quoted ” 中 文",
            TextEncoder.BasicTokenize("  Hello, World! $5 a_b [SEP] Ünïcödé\tTab\r\n+<=>|~`^ “Quoted” 中文  "));
    }

    [Fact]
    public void A_batch_is_cls_tokens_sep_then_padding_with_its_attention_mask()
    {
        var batch = new TextEncoder(vocabPath, 8).Encode(["Hello, World!", "", "free money"]);
        Assert.Equal((3, 8, 0), (batch.Count, batch.SequenceLength, batch.Truncated));
        Assert.Equal(24, batch.InputIds.Length);
        Assert.Equal([2, 11, 6, 12, 5, 3, 0, 0], Row(batch.InputIds, 0, 8));
        Assert.Equal([1, 1, 1, 1, 1, 1, 0, 0], Row(batch.AttentionMask, 0, 8));
        Assert.Equal([2, 3, 0, 0, 0, 0, 0, 0], Row(batch.InputIds, 1, 8));
        Assert.Equal([1, 1, 0, 0, 0, 0, 0, 0], Row(batch.AttentionMask, 1, 8));
        Assert.Equal([2, 13, 14, 3, 0, 0, 0, 0], Row(batch.InputIds, 2, 8));
        Assert.Equal([1, 1, 1, 1, 0, 0, 0, 0], Row(batch.AttentionMask, 2, 8));
        Assert.All(batch.TokenTypeIds, id => Assert.Equal(0, id));
        Assert.Equal(24, batch.TokenTypeIds.Length);

        var (ids, mask) = batch;
        Assert.Same(batch.InputIds, ids);
        Assert.Same(batch.AttentionMask, mask);
    }

    [Fact]
    public void Long_texts_are_cut_to_the_sequence_length_keeping_sep_last()
    {
        // As truncation=True, max_length=5: [CLS], the first 3 tokens (even mid-word), [SEP].
        var batch = new TextEncoder(vocabPath, 5).Encode(["hello unbelievable world", "hello world !", "free"]);
        Assert.Equal([2, 11, 15, 16, 3], Row(batch.InputIds, 0, 5));
        Assert.Equal([1, 1, 1, 1, 1], Row(batch.AttentionMask, 0, 5));
        Assert.Equal([2, 11, 12, 5, 3], Row(batch.InputIds, 1, 5));
        Assert.Equal([2, 13, 3, 0, 0], Row(batch.InputIds, 2, 5));
        Assert.Equal(1, batch.Truncated);
    }

    [Fact]
    public void A_missing_vocabulary_or_a_too_short_length_is_refused()
    {
        Assert.Throws<FileNotFoundException>(() => new TextEncoder(Path.Combine(directory, "missing.txt"), 8));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TextEncoder(vocabPath, 1));
    }
}
