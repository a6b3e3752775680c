using System.Text;
using SpamFilter.Data;

namespace LoraGen.Samples.Tests;

/// <summary>How a raw e-mail becomes the model's text (SpamFilter.Data.EmailText), on handmade messages.</summary>
public sealed class SpamDataParsingTests
{
    private static string Text(string message, int maxChars = EmailText.DefaultMaxChars) =>
        EmailText.ToText(Encoding.UTF8.GetBytes(message), maxChars);

    [Fact]
    public void Headers_are_stripped_and_the_folded_subject_kept()
    {
        var text = Text("""
            From someone@example.com  Thu Aug 22 12:36:23 2002
            Return-Path: <someone@example.com>
            Subject: Cheap
             meds today
            Content-Type: text/plain; charset=us-ascii
            X-Secret: header-value

            Hello   there,
            	this is the body.
            Subject: not a header any more
            """);
        Assert.Equal("Cheap meds today Hello there, this is the body. Subject: not a header any more", text);
    }

    [Fact]
    public void Crlf_line_endings_and_a_message_without_body_work()
    {
        Assert.Equal("Hi Body line", Text("Subject: Hi\r\nFrom: a@b.c\r\n\r\nBody\r\nline\r\n"));
        Assert.Equal("Only headers", Text("Subject: Only headers\nFrom: a@b.c\n"));
        Assert.Equal("No subject", Text("From: a@b.c\n\nNo subject"));
    }

    [Fact]
    public void A_quoted_printable_body_is_decoded_in_its_charset()
    {
        var text = Text("""
            Subject: QP
            Content-Type: text/plain; charset="iso-8859-1"
            Content-Transfer-Encoding: quoted-printable

            Caf=E9 au lait =3D tasty, soft=
            break and a trailing equals sign =  
            next line
            """);
        Assert.Equal("QP Café au lait = tasty, softbreak and a trailing equals sign next line", text);
    }

    [Fact]
    public void A_base64_body_is_decoded()
    {
        var encoded = Convert.ToBase64String(Encoding.UTF8.GetBytes("Grüße aus Köln,\nzweite Zeile."), Base64FormattingOptions.InsertLineBreaks);
        var chunked = string.Join("\n", Enumerable.Range(0, (encoded.Length + 19) / 20).Select(i => encoded.Substring(i * 20, Math.Min(20, encoded.Length - i * 20))));
        var text = Text($"Subject: B64\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: BASE64\n\n{chunked}\n");
        Assert.Equal("B64 Grüße aus Köln, zweite Zeile.", text);
    }

    [Fact]
    public void Html_is_stripped_crudely()
    {
        var text = Text("""
            Subject: Offer
            Content-Type: text/html

            <html><head><style>p { color: red }</style><title>Title</title></head>
            <body><p>Win <b>F</b>REE&nbsp;money &amp; prizes</p><!-- hidden <p>comment</p> -->
            <script type="text/javascript">alert("x < y")</script><br>Click <a href="http://x.example/">here</a>!
            1 < 2 stays.</body></html>
            """);
        Assert.Equal("Offer Title Win FREE money & prizes Click here! 1 < 2 stays.", text);
    }

    [Fact]
    public void Html_in_a_plain_body_is_stripped_too()
    {
        Assert.Equal("S Big sale", Text("Subject: S\n\n<HTML><BODY><FONT size=3>Big</FONT> <I>sale</I></BODY></HTML>"));
    }

    [Fact]
    public void Of_a_multipart_alternative_the_plain_part_is_taken()
    {
        var text = Text("""
            Subject: Alt
            MIME-Version: 1.0
            Content-Type: multipart/alternative;
              boundary="----=_NextPart_000"

            This is a multi-part message in MIME format.

            ------=_NextPart_000
            Content-Type: text/plain; charset=us-ascii

            plain version
            ------=_NextPart_000
            Content-Type: text/html; charset=us-ascii

            <p>html version</p>
            ------=_NextPart_000--
            epilogue
            """);
        Assert.Equal("Alt plain version", text);
    }

    [Fact]
    public void Of_a_multipart_alternative_without_plain_text_the_html_is_taken()
    {
        var text = Text("""
            Subject: Alt
            Content-Type: multipart/alternative; boundary=b1

            --b1
            Content-Type: text/plain

            --b1
            Content-Type: text/html
            Content-Transfer-Encoding: quoted-printable

            <p>only <i>html</i> =3D here</p>
            --b1--
            """);
        Assert.Equal("Alt only html = here", text);
    }

    [Fact]
    public void A_multipart_mixed_keeps_its_text_parts_and_drops_attachments()
    {
        var image = Convert.ToBase64String(new byte[300].Select((_, i) => (byte)i).ToArray(), Base64FormattingOptions.InsertLineBreaks);
        var text = Text($"""
            Subject: Mixed
            Content-Type: multipart/mixed; boundary="outer"

            --outer
            Content-Type: multipart/alternative; boundary="inner"

            --inner
            Content-Type: text/plain

            first part
            --inner
            Content-Type: text/html

            <b>first part as html</b>
            --inner--

            --outer
            Content-Type: image/gif; name="a.gif"
            Content-Transfer-Encoding: base64

            {image}
            --outer
            Content-Type: text/plain; charset=iso-8859-1
            Content-Transfer-Encoding: quoted-printable

            second part, =A3100
            --outer--
            """);
        Assert.Equal("Mixed first part second part, £100", text);
    }

    [Fact]
    public void Encoded_word_subjects_are_decoded()
    {
        var b = Convert.ToBase64String(Encoding.UTF8.GetBytes("Très bon"));
        Assert.Equal("Très bonprêt à partir x", Text($"Subject: =?utf-8?B?{b}?= =?iso-8859-1?Q?pr=EAt_=E0?= partir x\n\n"));
        Assert.Equal("plain =?bogus", Text("Subject: plain =?bogus\n\n"));
    }

    [Fact]
    public void Undeclared_8bit_text_is_read_as_utf8_where_valid_and_windows_1252_between()
    {
        // "café " in Windows-1252, then "café – ok" in UTF-8: a message that mixes the two, as some in the corpus do.
        byte[] raw = [.. "Subject: mix\n\n"u8, .. "caf"u8, 0xE9, (byte)' ', .. "café – ok"u8, 0x93, .. "q"u8, 0x94];
        Assert.Equal("mix café café – ok“q”", EmailText.ToText(raw));
    }

    [Fact]
    public void A_declared_non_latin_charset_is_used()
    {
        // "Привет" in KOI8-R.
        byte[] raw = [.. "Subject: ru\nContent-Type: text/plain; charset=koi8-r\n\n"u8, 0xF0, 0xD2, 0xC9, 0xD7, 0xC5, 0xD4];
        Assert.Equal("ru Привет", EmailText.ToText(raw));
    }

    [Fact]
    public void Whitespace_is_collapsed_and_the_text_cut_to_the_budget()
    {
        var text = Text("Subject: a  b\n\n" + string.Join("\n\n", Enumerable.Repeat("word\t\u00A0 word", 100)), maxChars: 20);
        Assert.Equal("a b word word word w", text);
        Assert.Equal(20, text.Length);
        Assert.Equal("a b", Text("Subject: a  b\n\n   word", maxChars: 4));
    }
}
