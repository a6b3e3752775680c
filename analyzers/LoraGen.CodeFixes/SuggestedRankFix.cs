using System.Collections.Generic;
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
using Microsoft.CodeAnalysis.Editing;

namespace LoraGen.CodeFixes;

/// <summary>
/// LORA0007/LORA0008: gives the field the largest rank that keeps at least half of the layer's
/// parameters saved (the analyzer computes it from the constant sizes), without changing the rank of
/// the class's other targets and without stating the field's options twice (LORA0009):
/// <list type="bullet">
/// <item>the field's own attribute sets Rank: that value is replaced;</item>
/// <item>the field is the only name in the class's Targets and no other field takes the class's
/// rank: the class's Rank is set;</item>
/// <item>otherwise the field's attribute gets <c>Rank = n</c> (the attribute is added if needed) and
/// its name leaves the class's Targets, which the attribute makes redundant.</item>
/// </list>
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
        if (root is null)
            return;
        foreach (var diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(FixProperties.SuggestedRank, out var rankText)
                || !int.TryParse(rankText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int rank))
                continue;
            var variable = root.FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<VariableDeclaratorSyntax>();
            if (variable?.Parent?.Parent is not FieldDeclarationSyntax field || field.Parent is not TypeDeclarationSyntax type)
                continue;
            string name = variable.Identifier.ValueText;
            context.RegisterCodeFix(
                CodeAction.Create(
                    $"Set Rank = {rank} for '{name}' (keeps at least half of its parameters saved)",
                    c => SetRank(context.Document, type, field, name, rank, c),
                    nameof(SuggestedRankFix)),
                diagnostic);
        }
    }

    private static async Task<Document> SetRank(
        Document document, TypeDeclarationSyntax type, FieldDeclarationSyntax field, string name, int rank, CancellationToken cancellation)
    {
        var editor = await DocumentEditor.CreateAsync(document, cancellation).ConfigureAwait(false);
        var model = editor.SemanticModel;
        var rankValue = SyntaxFactory.LiteralExpression(SyntaxKind.NumericLiteralExpression, SyntaxFactory.Literal(rank));
        var own = LoraAttribute(field.AttributeLists, model, cancellation);
        var classAttribute = LoraAttribute(type.AttributeLists, model, cancellation);

        if (own is not null && Argument(own, "Rank") is { } ownRank)
        {
            editor.ReplaceNode(ownRank.Expression, rankValue.WithTriviaFrom(ownRank.Expression));
            return editor.GetChangedDocument();
        }

        var targets = classAttribute is null ? [] : NamesIn(Argument(classAttribute, "Targets"));
        var namedHere = targets.FirstOrDefault(t => t.Token.ValueText == name);
        if (classAttribute is not null && namedHere is not null && targets.Count == 1 && !OthersTakeClassRank(type, field, model, cancellation))
        {
            SetRankArgument(editor, classAttribute, rankValue);
            return editor.GetChangedDocument();
        }

        if (own is not null)
        {
            SetRankArgument(editor, own, rankValue);
        }
        else
        {
            // Spell the attribute the way the class's attribute is spelled, so it resolves the same way.
            var attribute = SyntaxFactory.Attribute(classAttribute?.Name.WithoutTrivia() ?? SyntaxFactory.ParseName("LoraGen.LoraTarget"))
                .WithArgumentList(SyntaxFactory.AttributeArgumentList(SyntaxFactory.SingletonSeparatedList(RankArgument(rankValue))));
            var list = SyntaxFactory.AttributeList(SyntaxFactory.SingletonSeparatedList(attribute))
                .WithLeadingTrivia(field.GetLeadingTrivia()); // the formatter puts the field on the next line
            editor.ReplaceNode(field, field.WithoutLeadingTrivia().WithAttributeLists(field.AttributeLists.Insert(0, list)));
        }
        if (namedHere is not null)
            editor.RemoveNode(namedHere.Parent is ExpressionElementSyntax element ? element : namedHere);
        return editor.GetChangedDocument();
    }

    /// <summary>Whether another field has its own attribute that leaves the rank to the class.</summary>
    private static bool OthersTakeClassRank(TypeDeclarationSyntax type, FieldDeclarationSyntax field, SemanticModel model, CancellationToken cancellation) =>
        type.Members.OfType<FieldDeclarationSyntax>().Where(f => f != field)
            .Select(f => LoraAttribute(f.AttributeLists, model, cancellation))
            .Any(a => a is not null && Argument(a, "Rank") is null);

    private static void SetRankArgument(SyntaxEditor editor, AttributeSyntax attribute, ExpressionSyntax value)
    {
        if (Argument(attribute, "Rank") is { } existing)
            editor.ReplaceNode(existing.Expression, value.WithTriviaFrom(existing.Expression));
        else
            editor.ReplaceNode(attribute, attribute.WithArgumentList(
                (attribute.ArgumentList ?? SyntaxFactory.AttributeArgumentList()).AddArguments(RankArgument(value))));
    }

    private static AttributeArgumentSyntax RankArgument(ExpressionSyntax value) =>
        SyntaxFactory.AttributeArgument(SyntaxFactory.NameEquals("Rank"), null, value);

    private static AttributeArgumentSyntax? Argument(AttributeSyntax attribute, string name) =>
        attribute.ArgumentList?.Arguments.FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == name);

    private static List<LiteralExpressionSyntax> NamesIn(AttributeArgumentSyntax? argument) =>
        argument is null
            ? []
            : argument.Expression.DescendantNodes().OfType<LiteralExpressionSyntax>()
                .Where(l => l.IsKind(SyntaxKind.StringLiteralExpression)).ToList();

    private static AttributeSyntax? LoraAttribute(SyntaxList<AttributeListSyntax> lists, SemanticModel model, CancellationToken cancellation) =>
        lists.SelectMany(l => l.Attributes).FirstOrDefault(a =>
            model.GetSymbolInfo(a, cancellation).Symbol is IMethodSymbol constructor
            && constructor.ContainingType.ToDisplayString() == AttributeName);
}
