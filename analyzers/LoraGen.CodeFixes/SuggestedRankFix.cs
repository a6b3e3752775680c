using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LoraGen.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LoraGen.CodeFixes;

/// <summary>
/// LORA0007/LORA0008: sets the field's rank to the largest one that keeps at least half of the
/// layer's parameters saved (the analyzer computes it from the constant sizes). The rank is set on
/// the field, never on the class, so the class's other targets keep theirs: an existing
/// <c>Rank = ...</c> on the field's attribute is replaced, otherwise the field gets one.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(SuggestedRankFix)), Shared]
public sealed class SuggestedRankFix : CodeFixProvider
{
    private const string AttributeName = "LoraGen.LoraTargetAttribute";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } =
        ImmutableArray.Create(Rules.RankNotLow.Id, Rules.NoSavings.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null)
            return;
        foreach (var diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(FixProperties.SuggestedRank, out var rankText)
                || !int.TryParse(rankText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int rank))
                continue;
            var field = root.FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<FieldDeclarationSyntax>();
            if (field is null)
                continue;
            var fieldName = field.Declaration.Variables.FirstOrDefault()?.Identifier.ValueText;
            context.RegisterCodeFix(
                CodeAction.Create(
                    $"Set Rank = {rank} on '{fieldName}' (keeps at least half of its parameters saved)",
                    c => Task.FromResult(context.Document.WithSyntaxRoot(
                        root.ReplaceNode(field, WithRank(field, rank, model, c)))),
                    nameof(SuggestedRankFix)),
                diagnostic);
        }
    }

    private static FieldDeclarationSyntax WithRank(FieldDeclarationSyntax field, int rank, SemanticModel model, CancellationToken cancellation)
    {
        var rankArgument = SyntaxFactory.AttributeArgument(
            SyntaxFactory.NameEquals("Rank"), null,
            SyntaxFactory.LiteralExpression(SyntaxKind.NumericLiteralExpression, SyntaxFactory.Literal(rank)));

        var own = LoraAttributes(field.AttributeLists, model, cancellation).FirstOrDefault();
        if (own is not null)
        {
            var existing = own.ArgumentList?.Arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == "Rank");
            var updated = existing is not null
                ? own.ReplaceNode(existing.Expression, rankArgument.Expression.WithTriviaFrom(existing.Expression))
                : own.WithArgumentList((own.ArgumentList ?? SyntaxFactory.AttributeArgumentList())
                    .AddArguments(rankArgument));
            return field.ReplaceNode(own, updated);
        }

        // Spell the attribute the way the class's attribute is spelled, so it resolves the same way.
        var classDeclaration = field.FirstAncestorOrSelf<TypeDeclarationSyntax>();
        var name = classDeclaration is null ? null : LoraAttributes(classDeclaration.AttributeLists, model, cancellation).FirstOrDefault()?.Name;
        var attribute = SyntaxFactory.Attribute(name?.WithoutTrivia() ?? SyntaxFactory.ParseName("LoraGen.LoraTarget"))
            .WithArgumentList(SyntaxFactory.AttributeArgumentList(SyntaxFactory.SingletonSeparatedList(rankArgument)));
        var list = SyntaxFactory.AttributeList(SyntaxFactory.SingletonSeparatedList(attribute))
            .WithLeadingTrivia(field.GetLeadingTrivia()); // the formatter puts the field on the next line
        return field.WithoutLeadingTrivia().WithAttributeLists(field.AttributeLists.Insert(0, list));
    }

    private static System.Collections.Generic.IEnumerable<AttributeSyntax> LoraAttributes(
        SyntaxList<AttributeListSyntax> lists, SemanticModel model, CancellationToken cancellation) =>
        lists.SelectMany(l => l.Attributes).Where(a =>
            model.GetSymbolInfo(a, cancellation).Symbol is IMethodSymbol constructor
            && constructor.ContainingType.ToDisplayString() == AttributeName);
}
