using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace LoraGen.Analyzers.Tests;

/// <summary>
/// The pages in docs/diagnostics stay true: each page's "Bad" example makes the analyzer report the
/// page's rule, with the message (and position) the page quotes; its "Good" example compiles and makes
/// the analyzer report nothing.
/// </summary>
public sealed partial class DocsExamplesTests
{
    public static TheoryData<string> Pages()
    {
        var data = new TheoryData<string>();
        foreach (var page in Directory.GetFiles(DiagnosticsDirectory(), "LORA*.md").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileNameWithoutExtension(page));
        return data;
    }

    [Fact]
    public void Every_rule_has_a_page() =>
        Assert.Equal(Enumerable.Range(1, 14).Select(i => $"LORA{i:D4}"), ((IEnumerable<object[]>)Pages()).Select(row => (string)row[0]));

    [Fact]
    public void Every_rule_links_to_its_page()
    {
        var descriptors = new LoraTargetAnalyzer().SupportedDiagnostics;
        Assert.Equal(14, descriptors.Length);
        foreach (var descriptor in descriptors)
        {
            Assert.Equal($"https://github.com/loragen/loragen/blob/main/docs/diagnostics/{descriptor.Id}.md", descriptor.HelpLinkUri);
            Assert.True(File.Exists(Path.Combine(DiagnosticsDirectory(), descriptor.Id + ".md")), descriptor.Id);
        }
    }

    [Theory]
    [MemberData(nameof(Pages))]
    public void The_bad_example_reports_the_rule_as_quoted(string id)
    {
        var (code, quoted) = Example(id, "Bad");
        var reported = RunAnalyzer.On(code);
        Assert.Contains(reported, d => d.Id == id);
        var printed = reported.Select(d => (Line: d.Location.GetLineSpan().StartLinePosition.Line + 1,
            Column: d.Location.GetLineSpan().StartLinePosition.Character + 1, Text: $"{d.Severity.ToString().ToLowerInvariant()} {d.Id}: {d.GetMessage()}")).ToList();
        var quotes = quoted.Select(line => QuotedDiagnostic().Match(line)).Where(m => m.Success && m.Groups["id"].Value == id).ToList();
        Assert.NotEmpty(quotes);
        foreach (var quote in quotes)
        {
            var text = $"{quote.Groups["severity"].Value} {id}: {quote.Groups["message"].Value}";
            Assert.Contains(printed, p => p.Text == text);
            if (quote.Groups["line"].Success)
                Assert.Contains(printed, p => p.Text == text && p.Line == int.Parse(quote.Groups["line"].Value) && p.Column == int.Parse(quote.Groups["column"].Value));
        }
    }

    [Theory]
    [MemberData(nameof(Pages))]
    public void The_good_example_compiles_and_reports_nothing(string id)
    {
        var (code, _) = Example(id, "Good");
        Assert.Empty(RunAnalyzer.On(code).Select(d => $"{d.Id}: {d.GetMessage()}"));
        var compilation = CSharpCompilation.Create("Good",
            [CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Latest))],
            TestReferences.All, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()));
    }

    /// <summary>The first C# block under "## <paramref name="section"/>", and the lines of the plain block after it.</summary>
    private static (string Code, string[] Quoted) Example(string id, string section)
    {
        var text = File.ReadAllText(Path.Combine(DiagnosticsDirectory(), id + ".md")).ReplaceLineEndings("\n");
        int start = text.IndexOf($"\n## {section}", StringComparison.Ordinal);
        Assert.True(start >= 0, $"{id}.md has no '## {section}' section");
        int end = text.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        var body = text[start..(end < 0 ? text.Length : end)];
        var blocks = CodeBlock().Matches(body).ToList();
        var code = blocks.First(b => b.Groups["language"].Value == "csharp");
        var quoted = blocks.FirstOrDefault(b => b.Index > code.Index && b.Groups["language"].Value == "");
        return (code.Groups["body"].Value, quoted?.Groups["body"].Value.Split('\n') ?? []);
    }

    private static string DiagnosticsDirectory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            if (File.Exists(Path.Combine(directory.FullName, "LoraGen.sln")))
                return Path.Combine(directory.FullName, "docs", "diagnostics");
        throw new InvalidOperationException($"No LoraGen.sln above {AppContext.BaseDirectory}.");
    }

    [GeneratedRegex(@"```(?<language>\w*)\n(?<body>.*?)```", RegexOptions.Singleline)]
    private static partial Regex CodeBlock();

    [GeneratedRegex(@"^(?:\S+\((?<line>\d+),(?<column>\d+)\): )?(?<severity>error|warning|info) (?<id>LORA\d{4}): (?<message>.*)$")]
    private static partial Regex QuotedDiagnostic();
}
