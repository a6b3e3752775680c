using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using LoraGen.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Editing;

namespace LoraGen.CodeFixes;

/// <summary>LORA0001: adds <c>partial</c> to the class and to every containing type that lacks it,
/// in every file that declares them.</summary>
[ExportCodeFixProvider(Microsoft.CodeAnalysis.LanguageNames.CSharp, Name = nameof(AddPartialFix)), Shared]
public sealed class AddPartialFix : CodeFixProvider
{
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.NotPartial.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        var model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null || model is null)
            return;
        foreach (var diagnostic in context.Diagnostics)
        {
            var declaration = root.FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<TypeDeclarationSyntax>();
            if (declaration is null || model.GetDeclaredSymbol(declaration, context.CancellationToken) is not INamedTypeSymbol type)
                continue;
            context.RegisterCodeFix(
                CodeAction.Create("Make it partial", c => AddPartial(context.Document.Project.Solution, type, c), nameof(AddPartialFix)),
                diagnostic);
        }
    }

    private static async Task<Solution> AddPartial(Solution solution, INamedTypeSymbol type, CancellationToken cancellation)
    {
        var editor = new SolutionEditor(solution);
        for (INamedTypeSymbol? current = type; current is not null; current = current.ContainingType)
        {
            foreach (var reference in current.DeclaringSyntaxReferences)
            {
                var node = await reference.GetSyntaxAsync(cancellation).ConfigureAwait(false);
                var document = solution.GetDocument(node.SyntaxTree);
                if (document is null || node is not TypeDeclarationSyntax declaration)
                    continue;
                var documentEditor = await editor.GetDocumentEditorAsync(document.Id, cancellation).ConfigureAwait(false);
                var generator = documentEditor.Generator;
                var modifiers = generator.GetModifiers(declaration);
                if (!modifiers.IsPartial)
                    documentEditor.SetModifiers(declaration, modifiers.WithPartial(true));
            }
        }
        return editor.GetChangedSolution();
    }
}
