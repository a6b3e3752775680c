using System.Collections.Immutable;
using System.Composition;
using System.Threading.Tasks;
using LoraGen.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LoraGen.CodeFixes;

/// <summary>LORA0003: replaces a name that is not a field with the closest field name, when the
/// analyzer found exactly one close match.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ClosestNameFix)), Shared]
public sealed class ClosestNameFix : CodeFixProvider
{
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.UnknownName.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
            return;
        foreach (var diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(FixProperties.ClosestName, out var closest) || closest is null)
                continue;
            if (root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true) is not LiteralExpressionSyntax literal
                || !literal.IsKind(SyntaxKind.StringLiteralExpression))
                continue;
            context.RegisterCodeFix(
                CodeAction.Create(
                    $"Change to '{closest}'",
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(literal,
                        SyntaxFactory.LiteralExpression(SyntaxKind.StringLiteralExpression, SyntaxFactory.Literal(closest))
                            .WithTriviaFrom(literal)))),
                    nameof(ClosestNameFix)),
                diagnostic);
        }
    }
}
