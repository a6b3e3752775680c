using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace SpamFilter.Data;

/// <summary>
/// Texts as BERT inputs, row-major [<see cref="Count"/>, <see cref="SequenceLength"/>] int64 arrays ready for
/// <c>torch.tensor(array, [Count, SequenceLength])</c>: <see cref="InputIds"/> is <c>[CLS] tokens… [SEP]</c> then
/// padding, <see cref="AttentionMask"/> is 1 over the real tokens and 0 over the padding, <see cref="TokenTypeIds"/>
/// all 0 (one segment). <see cref="Truncated"/> counts the texts that had more tokens than fit.
/// </summary>
public sealed record EncodedBatch(long[] InputIds, long[] AttentionMask, long[] TokenTypeIds, int Count, int SequenceLength, int Truncated)
{
    public void Deconstruct(out long[] inputIds, out long[] attentionMask) =>
        (inputIds, attentionMask) = (InputIds, AttentionMask);
}

/// <summary>
/// The uncased BERT tokenizer of all-MiniLM-L6-v2 on its vocab.txt, giving the ids Hugging Face's
/// <c>BertTokenizer(do_lower_case=True)</c> gives. Its basic tokenization is done here, as in Hugging Face:
/// control characters, U+0000 and U+FFFD dropped, whitespace made spaces, CJK characters set apart, NFC, then per
/// word lower case, accents stripped (NFD, non-spacing marks dropped) and split on punctuation (every ASCII
/// non-alphanumeric symbol counts, as do Unicode punctuation categories); the special tokens ([CLS], [SEP], [PAD],
/// [MASK], [UNK]) written in the text stay special. Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/> then only
/// splits on whitespace and does WordPiece (longest match first, <c>##</c> continuations, one [UNK] for a word it
/// cannot cover or longer than 100 characters): its own basic tokenization (2.0.1) differs from Hugging Face's,
/// dropping symbols such as <c>$ + = &lt; &gt; | ~</c> and not splitting on tabs or line breaks.
/// Sequences are cut as Hugging Face's <c>truncation=True, max_length=N</c> does: [CLS], the first N - 2 tokens,
/// [SEP].
/// </summary>
public sealed class TextEncoder
{
    private static readonly string[] SpecialTokens = ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"];

    public TextEncoder(string vocabPath, int maxTokens)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 2);
        if (!File.Exists(vocabPath))
            throw new FileNotFoundException($"No BERT vocabulary at {vocabPath}.", vocabPath);
        MaxTokens = maxTokens;
        Tokenizer = BertTokenizer.Create(vocabPath, new BertOptions
        {
            ApplyBasicTokenization = false, // done by BasicTokenize, as Hugging Face does it
            LowerCaseBeforeTokenization = false,
            RemoveNonSpacingMarks = false,
            IndividuallyTokenizeCjk = false,
            SplitOnSpecialTokens = true,
        });
    }

    /// <summary>The sequence length, [CLS] and [SEP] included.</summary>
    public int MaxTokens { get; }

    public BertTokenizer Tokenizer { get; }

    /// <summary>The word-piece ids of <paramref name="text"/>, without [CLS], [SEP] or any cut.</summary>
    public IReadOnlyList<int> Tokenize(string text) =>
        Tokenizer.EncodeToIds(BasicTokenize(text), addSpecialTokens: false, considerPreTokenization: true, considerNormalization: false);

    public EncodedBatch Encode(IReadOnlyList<string> texts)
    {
        int length = MaxTokens, count = texts.Count, truncated = 0;
        var ids = new long[count * length];
        var mask = new long[count * length];
        long cls = Tokenizer.ClassificationTokenId, sep = Tokenizer.SeparatorTokenId, pad = Tokenizer.PaddingTokenId;
        for (int row = 0; row < count; row++)
        {
            var tokens = Tokenize(texts[row]);
            int kept = Math.Min(tokens.Count, length - 2);
            if (kept < tokens.Count)
                truncated++;
            var rowIds = ids.AsSpan(row * length, length);
            var rowMask = mask.AsSpan(row * length, length);
            rowIds[0] = cls;
            for (int i = 0; i < kept; i++)
                rowIds[1 + i] = tokens[i];
            rowIds[1 + kept] = sep;
            rowIds[(kept + 2)..].Fill(pad);
            rowMask[..(kept + 2)].Fill(1);
        }
        return new EncodedBatch(ids, mask, new long[count * length], count, length, truncated);
    }

    /// <summary>
    /// Hugging Face's BasicTokenizer (do_lower_case, tokenize_chinese_chars, accents stripped): the words and
    /// punctuation marks of <paramref name="text"/>, separated by single spaces.
    /// </summary>
    public static string BasicTokenize(string text)
    {
        var words = new StringBuilder(text.Length + 16);
        int position = 0;
        while (position < text.Length)
        {
            // Special tokens written in the text are split off first, as Hugging Face's added-tokens trie does.
            int next = -1;
            string? special = null;
            foreach (var token in SpecialTokens)
            {
                int at = text.IndexOf(token, position, StringComparison.Ordinal);
                if (at >= 0 && (next < 0 || at < next))
                    (next, special) = (at, token);
            }
            int end = next < 0 ? text.Length : next;
            BasicTokenizeSegment(text.AsSpan(position, end - position), words);
            if (special is null)
                break;
            words.Append(special).Append(' ');
            position = next + special.Length;
        }
        if (words.Length > 0 && words[^1] == ' ')
            words.Length--;
        return words.ToString();
    }

    private static void BasicTokenizeSegment(ReadOnlySpan<char> segment, StringBuilder words)
    {
        var cleaned = new StringBuilder(segment.Length);
        foreach (var rune in segment.EnumerateRunes())
        {
            if (rune.Value is 0 or 0xFFFD)
                continue;
            if (IsWhitespace(rune))
                cleaned.Append(' ');
            else if (IsControl(rune))
                continue;
            else if (IsCjk(rune.Value))
                cleaned.Append(' ').Append(rune.ToString()).Append(' ');
            else
                cleaned.Append(rune.ToString());
        }
        foreach (var word in cleaned.ToString().Normalize(NormalizationForm.FormC).Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var folded = word.ToLowerInvariant().Normalize(NormalizationForm.FormD);
            bool inWord = false;
            foreach (var rune in folded.EnumerateRunes())
            {
                if (Rune.GetUnicodeCategory(rune) == UnicodeCategory.NonSpacingMark)
                    continue;
                if (IsPunctuation(rune))
                {
                    if (inWord)
                        words.Append(' ');
                    words.Append(rune.ToString()).Append(' ');
                    inWord = false;
                }
                else
                {
                    words.Append(rune.ToString());
                    inWord = true;
                }
            }
            if (inWord)
                words.Append(' ');
        }
    }

    /// <summary>Space, tab, line breaks and the space separators (Zs); line and paragraph separators split words too.</summary>
    private static bool IsWhitespace(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r'
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator;

    /// <summary>Categories C* (control, format, unassigned, private use, surrogate), tab and line breaks excepted.</summary>
    private static bool IsControl(Rune rune) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
            or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;

    /// <summary>Every ASCII non-alphanumeric symbol, and the Unicode punctuation categories P*.</summary>
    private static bool IsPunctuation(Rune rune) =>
        rune.Value is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    /// <summary>The CJK Unified Ideographs blocks Hugging Face sets apart.</summary>
    private static bool IsCjk(int codePoint) =>
        codePoint is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
