using System.Globalization;
using System.Net;
using System.Text;

namespace SpamFilter.Data;

/// <summary>
/// Turns a raw e-mail into the text the model reads: the subject, then the body, headers stripped, on one line.
/// Simple and forgiving, not a full MIME parser:
/// <list type="bullet">
/// <item>The headers run to the first blank line (folded lines unfolded); only Subject, Content-Type and
/// Content-Transfer-Encoding are used. An RFC 2047 encoded subject (<c>=?charset?B|Q?…?=</c>) is decoded.</item>
/// <item>A quoted-printable or base64 body is decoded, and its bytes read in the declared charset. Bytes that are
/// valid UTF-8 are read as UTF-8 whatever the charset says (mail often mislabels it); others in the declared
/// charset when .NET knows it and it is not a Latin one, else as UTF-8 where valid and Windows-1252 between.</item>
/// <item>Multipart bodies are split on their boundary and walked (nested parts and attached messages too, at most
/// 8 deep): of a multipart/alternative the text/plain part is taken, or the HTML one when the plain one is missing
/// or empty; the text parts of other multiparts are joined. Images and other attachments are dropped.</item>
/// <item>HTML (text/html, or a plain body that contains tags such as &lt;html&gt; or &lt;body&gt;) is stripped
/// crudely: comments, scripts and styles removed, block tags turned into spaces and other tags dropped, entities
/// decoded.</item>
/// <item>Whitespace runs and control characters become one space, and the text is cut to a character budget
/// (<see cref="DefaultMaxChars"/>), generous for the model's token budget: the tokenizer cuts it to tokens.</item>
/// </list>
/// </summary>
public static class EmailText
{
    /// <summary>
    /// 2,048 characters: on the corpus, a text cut there has 317 BERT tokens or more (median 509), so sequences up to
    /// 256 tokens never run short of text.
    /// </summary>
    public const int DefaultMaxChars = 2048;

    private const int MaxDepth = 8;

    private static readonly Encoding StrictUtf8 = new UTF8Encoding(false, throwOnInvalidBytes: true);
    private static readonly Encoding Windows1252 =
        CodePagesEncodingProvider.Instance.GetEncoding(1252) ?? Encoding.Latin1;

    private static readonly string[] HtmlMarkers =
        ["<html", "<body", "<head", "<table", "<font", "<div", "<br>", "<br ", "<br/", "<p>", "<a href", "<img "];

    private static readonly HashSet<string> BlockTags = new(StringComparer.OrdinalIgnoreCase)
    {
        "address", "blockquote", "body", "br", "center", "dd", "div", "dl", "dt", "form", "h1", "h2", "h3", "h4",
        "h5", "h6", "head", "hr", "html", "li", "ol", "option", "p", "pre", "table", "tbody", "td", "th", "thead",
        "title", "tr", "ul",
    };

    /// <summary>The subject and body of the raw e-mail <paramref name="raw"/>, as one line of at most <paramref name="maxChars"/> characters.</summary>
    public static string ToText(byte[] raw, int maxChars = DefaultMaxChars) =>
        // Latin-1 maps each byte to one char and back, so the bytes survive until a charset is known.
        ToText(Encoding.Latin1.GetString(raw), maxChars);

    /// <summary>As <see cref="ToText(byte[], int)"/>, from a message whose characters are its bytes (Latin-1).</summary>
    public static string ToText(string rawLatin1, int maxChars = DefaultMaxChars)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxChars);
        var (headers, body) = SplitEntity(rawLatin1.Replace("\r\n", "\n").Replace('\r', '\n'));
        var subject = headers.TryGetValue("subject", out var s) ? DecodeHeader(s) : "";
        return Collapse(subject + "\n" + Render(headers, body, 0).Text, maxChars);
    }

    /// <summary>The headers (lower-case names, first occurrence, unfolded) and the body of a MIME entity.</summary>
    internal static (Dictionary<string, string> Headers, string Body) SplitEntity(string entity)
    {
        var headers = new Dictionary<string, string>(StringComparer.Ordinal);
        int position = 0;
        string? name = null;
        var value = new StringBuilder();

        void Flush()
        {
            if (name is not null)
                headers.TryAdd(name, value.ToString().Trim());
            name = null;
            value.Clear();
        }

        while (position < entity.Length)
        {
            int end = entity.IndexOf('\n', position);
            var line = end < 0 ? entity[position..] : entity[position..end];
            position = end < 0 ? entity.Length : end + 1;
            if (line.Length == 0)
                break;
            if (line[0] is ' ' or '\t')
            {
                if (name is not null)
                    value.Append(' ').Append(line.Trim());
                continue;
            }
            Flush();
            int colon = line.IndexOf(':');
            // A header name is printable ASCII without spaces; anything else (the mbox "From " line) is skipped.
            if (colon > 0 && line.AsSpan(0, colon).IndexOfAny(' ', '\t') < 0)
            {
                name = line[..colon].ToLowerInvariant();
                value.Append(line[(colon + 1)..]);
            }
        }
        Flush();
        return (headers, position < entity.Length ? entity[position..] : "");
    }

    private static (string Text, bool IsPlain) Render(Dictionary<string, string> headers, string body, int depth)
    {
        var (mediaType, parameters) = ParseContentType(headers.GetValueOrDefault("content-type"));
        parameters.TryGetValue("charset", out var charset);

        if (mediaType.StartsWith("multipart/", StringComparison.Ordinal)
            && parameters.TryGetValue("boundary", out var boundary) && boundary.Length > 0 && depth < MaxDepth)
        {
            var parts = SplitMultipart(body, boundary)
                .Select(part => SplitEntity(part))
                .Select(part => Render(part.Headers, part.Body, depth + 1))
                .Where(part => !string.IsNullOrWhiteSpace(part.Text))
                .ToList();
            if (mediaType == "multipart/alternative")
            {
                var chosen = parts.FirstOrDefault(p => p.IsPlain);
                return chosen.Text is not null ? chosen : parts.FirstOrDefault(("", true));
            }
            return (string.Join("\n", parts.Select(p => p.Text)), parts.All(p => p.IsPlain));
        }

        if (mediaType == "message/rfc822" && depth < MaxDepth)
        {
            var (innerHeaders, innerBody) = SplitEntity(DecodeTransfer(headers, body));
            var subject = innerHeaders.TryGetValue("subject", out var s) ? DecodeHeader(s) : "";
            var inner = Render(innerHeaders, innerBody, depth + 1);
            return (subject + "\n" + inner.Text, inner.IsPlain);
        }

        // A multipart without a usable boundary is read as text.
        if (!(mediaType.StartsWith("text/", StringComparison.Ordinal) || mediaType.StartsWith("multipart/", StringComparison.Ordinal)))
            return ("", true);

        var text = DecodeBytes(Encoding.Latin1.GetBytes(DecodeTransfer(headers, body)), charset);
        if (mediaType == "text/html" || LooksLikeHtml(text))
            return (StripHtml(text), false);
        return (text, true);
    }

    /// <summary>The media type (lower case; text/plain when absent) and parameters (names lower case, values unquoted).</summary>
    internal static (string MediaType, Dictionary<string, string> Parameters) ParseContentType(string? header)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(header))
            return ("text/plain", parameters);
        var pieces = header.Split(';');
        // "text/plain charset=us-ascii" (no semicolon) occurs: the type ends at the first space too.
        var first = pieces[0].Trim().Split([' ', '\t'], 2);
        var mediaType = first[0].Trim().ToLowerInvariant();
        var rest = pieces.Skip(1);
        if (first.Length > 1)
            rest = rest.Prepend(first[1]);
        foreach (var piece in rest)
        {
            int equals = piece.IndexOf('=');
            if (equals <= 0)
                continue;
            var key = piece[..equals].Trim().ToLowerInvariant();
            var value = piece[(equals + 1)..].Trim();
            if (value.Length >= 2 && value[0] == '"')
            {
                int close = value.IndexOf('"', 1);
                value = close > 0 ? value[1..close] : value[1..];
            }
            parameters.TryAdd(key, value);
        }
        return (mediaType.Contains('/') ? mediaType : "text/plain", parameters);
    }

    private static IEnumerable<string> SplitMultipart(string body, string boundary)
    {
        var delimiter = "--" + boundary;
        var current = (StringBuilder?)null;
        foreach (var line in body.Split('\n'))
        {
            if (line.StartsWith(delimiter, StringComparison.Ordinal))
            {
                var tail = line[delimiter.Length..].TrimEnd();
                if (tail is "" or "--")
                {
                    if (current is not null)
                        yield return current.ToString();
                    if (tail == "--")
                        yield break;
                    current = new StringBuilder();
                    continue;
                }
            }
            current?.Append(line).Append('\n');
        }
        // An unclosed multipart: its last part runs to the end.
        if (current is not null)
            yield return current.ToString();
    }

    /// <summary>The body with its Content-Transfer-Encoding undone, as Latin-1 characters (one per byte).</summary>
    private static string DecodeTransfer(Dictionary<string, string> headers, string body)
    {
        var encoding = headers.GetValueOrDefault("content-transfer-encoding")?.Trim().ToLowerInvariant();
        return encoding switch
        {
            "quoted-printable" => Encoding.Latin1.GetString(DecodeQuotedPrintable(body, underscoreIsSpace: false)),
            "base64" => DecodeBase64(body) is { } bytes ? Encoding.Latin1.GetString(bytes) : body,
            _ => body,
        };
    }

    internal static byte[] DecodeQuotedPrintable(string text, bool underscoreIsSpace)
    {
        var bytes = new List<byte>(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '=')
            {
                if (i + 1 < text.Length && text[i + 1] == '\n')
                {
                    i++; // a soft line break
                    continue;
                }
                if (i + 2 < text.Length && IsHex(text[i + 1]) && IsHex(text[i + 2]))
                {
                    bytes.Add(byte.Parse(text.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += 2;
                    continue;
                }
                // "=" followed by spaces then the line's end is a soft break too; anything else stays as it is.
                int j = i + 1;
                while (j < text.Length && text[j] is ' ' or '\t')
                    j++;
                if (j < text.Length && text[j] == '\n')
                {
                    i = j;
                    continue;
                }
            }
            bytes.Add(underscoreIsSpace && c == '_' ? (byte)' ' : (byte)c);
        }
        return [.. bytes];
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);

    /// <summary>The bytes of a base64 text, ignoring characters outside the alphabet and a ragged end; null when nothing decodes.</summary>
    internal static byte[]? DecodeBase64(string text)
    {
        var clean = new StringBuilder(text.Length);
        foreach (char c in text)
        {
            if (c == '=')
                break; // padding: the data ends here
            if (char.IsAsciiLetterOrDigit(c) || c is '+' or '/')
                clean.Append(c);
        }
        int usable = clean.Length - clean.Length % 4;
        if (clean.Length % 4 is 2 or 3)
        {
            clean.Append('=', 4 - clean.Length % 4);
            usable = clean.Length;
        }
        if (usable == 0)
            return null;
        try
        {
            return Convert.FromBase64String(clean.ToString(0, usable));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// Text from bytes: ASCII as is; valid UTF-8 as UTF-8; else in the declared charset when .NET knows it (code
    /// pages included) and it is neither ASCII, UTF-8 nor Latin-1/Windows-1252; else UTF-8 where the bytes are
    /// valid UTF-8 and Windows-1252 for the stray bytes between (mail often mixes the two, whatever it declares).
    /// </summary>
    internal static string DecodeBytes(byte[] bytes, string? charset)
    {
        if (Array.TrueForAll(bytes, b => b < 0x80))
            return Encoding.ASCII.GetString(bytes);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException) { }
        if (FindEncoding(charset) is { CodePage: not (20127 or 65001 or 28591 or 1252) } declared)
            return declared.GetString(bytes);
        var text = new StringBuilder(bytes.Length);
        var rest = bytes.AsSpan();
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(rest, out var rune, out int consumed) == System.Buffers.OperationStatus.Done)
            {
                text.Append(rune.ToString());
                rest = rest[consumed..];
            }
            else
            {
                text.Append(Windows1252.GetString(rest[..1]));
                rest = rest[1..];
            }
        }
        return text.ToString();
    }

    private static Encoding? FindEncoding(string? charset)
    {
        if (string.IsNullOrWhiteSpace(charset))
            return null;
        var name = charset.Trim().Trim('"', '\'');
        try
        {
            return CodePagesEncodingProvider.Instance.GetEncoding(name) ?? Encoding.GetEncoding(name);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>A header value with its RFC 2047 encoded words (<c>=?charset?B|Q?text?=</c>) decoded.</summary>
    internal static string DecodeHeader(string value)
    {
        var result = new StringBuilder(value.Length);
        int position = 0;
        bool lastWasEncoded = false;
        while (position < value.Length)
        {
            int start = value.IndexOf("=?", position, StringComparison.Ordinal);
            int end = 0;
            var decoded = start < 0 ? null : TryDecodeWord(value, start, out end);
            if (decoded is null)
            {
                int stop = start < 0 ? value.Length : start + 2;
                AppendPlain(value[position..stop]);
                position = stop;
                continue;
            }
            var between = value[position..start];
            // Whitespace between two encoded words is dropped (RFC 2047 6.2).
            if (!(lastWasEncoded && string.IsNullOrWhiteSpace(between)))
                AppendPlain(between);
            result.Append(decoded);
            lastWasEncoded = true;
            position = end;
        }
        return result.ToString();

        void AppendPlain(string text)
        {
            if (text.Length == 0)
                return;
            result.Append(DecodeBytes(Encoding.Latin1.GetBytes(text), null));
            if (!string.IsNullOrWhiteSpace(text))
                lastWasEncoded = false;
        }
    }

    private static string? TryDecodeWord(string value, int start, out int end)
    {
        end = start;
        int q1 = value.IndexOf('?', start + 2);
        if (q1 < 0 || q1 + 2 >= value.Length || value[q1 + 2] != '?')
            return null;
        int close = value.IndexOf("?=", q1 + 3, StringComparison.Ordinal);
        if (close < 0)
            return null;
        var charset = value[(start + 2)..q1];
        int star = charset.IndexOf('*'); // RFC 2231 language: =?charset*lang?...
        if (star >= 0)
            charset = charset[..star];
        var text = value[(q1 + 3)..close];
        byte[]? bytes = char.ToUpperInvariant(value[q1 + 1]) switch
        {
            'B' => DecodeBase64(text) ?? [],
            'Q' => DecodeQuotedPrintable(text, underscoreIsSpace: true),
            _ => null,
        };
        if (bytes is null)
            return null;
        end = close + 2;
        return DecodeBytes(bytes, charset);
    }

    private static bool LooksLikeHtml(string text)
    {
        foreach (var marker in HtmlMarkers)
            if (text.Contains(marker, StringComparison.OrdinalIgnoreCase))
                return true;
        return false;
    }

    /// <summary>
    /// Crude HTML to text, in one linear pass: comments, &lt;script&gt; and &lt;style&gt; elements and
    /// declarations go, block tags become a space, other tags vanish (so "&lt;b&gt;F&lt;/b&gt;REE" stays "FREE"),
    /// then entities are decoded. A '&lt;' that opens no tag is kept.
    /// </summary>
    internal static string StripHtml(string html)
    {
        var text = new StringBuilder(html.Length);
        int i = 0;
        while (i < html.Length)
        {
            char c = html[i];
            if (c != '<')
            {
                text.Append(c);
                i++;
                continue;
            }
            if (string.CompareOrdinal(html, i, "<!--", 0, 4) == 0)
            {
                int close = html.IndexOf("-->", i + 4, StringComparison.Ordinal);
                i = close < 0 ? html.Length : close + 3;
                text.Append(' ');
                continue;
            }
            bool isTag = i + 1 < html.Length && (char.IsAsciiLetter(html[i + 1]) || html[i + 1] is '/' or '!' or '?');
            int end = isTag ? html.IndexOf('>', i + 1) : -1;
            if (end < 0)
            {
                text.Append(c);
                i++;
                continue;
            }
            var name = TagName(html, i + 1, end);
            i = end + 1;
            if (html[end - 1] != '/'
                && (name.Equals("script", StringComparison.OrdinalIgnoreCase) || name.Equals("style", StringComparison.OrdinalIgnoreCase)))
            {
                int close = html.IndexOf("</" + name, i, StringComparison.OrdinalIgnoreCase);
                int closeEnd = close < 0 ? -1 : html.IndexOf('>', close);
                i = closeEnd < 0 ? html.Length : closeEnd + 1;
                text.Append(' ');
                continue;
            }
            if (BlockTags.Contains(name))
                text.Append(' ');
        }
        return WebUtility.HtmlDecode(text.ToString());
    }

    private static string TagName(string html, int start, int end)
    {
        if (start < end && html[start] == '/')
            start++;
        int stop = start;
        while (stop < end && char.IsAsciiLetterOrDigit(html[stop]))
            stop++;
        return html[start..stop];
    }

    /// <summary>Whitespace runs and control characters as one space, trimmed, cut to <paramref name="maxChars"/> characters.</summary>
    internal static string Collapse(string text, int maxChars)
    {
        var result = new StringBuilder(Math.Min(text.Length, maxChars));
        bool pendingSpace = false;
        foreach (char c in text)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c) || c == '\uFFFD' || c == '\u200B')
            {
                pendingSpace = result.Length > 0;
                continue;
            }
            if (pendingSpace)
            {
                if (result.Length + 1 >= maxChars)
                    break;
                result.Append(' ');
                pendingSpace = false;
            }
            if (result.Length >= maxChars)
                break;
            result.Append(c);
        }
        // Never end on half a surrogate pair.
        if (result.Length > 0 && char.IsHighSurrogate(result[^1]))
            result.Length--;
        return result.ToString();
    }
}
