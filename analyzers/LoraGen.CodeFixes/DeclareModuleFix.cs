using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading.Tasks;
using LoraGen.Analyzers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Simplification;

namespace LoraGen.CodeFixes;

/// <summary>LORA0005: declares the field <c>Module&lt;Tensor, Tensor&gt;</c> (written as short as the
/// file's usings allow) where its type cannot hold the LoRA wrapper, and drops <c>readonly</c> where it
/// has it; the diagnostic's properties say which, and the title names only what changes.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(DeclareModuleFix)), Shared]
public sealed class DeclareModuleFix : CodeFixProvider
{
    private const string ModuleType = "global::TorchSharp.torch.nn.Module<global::TorchSharp.torch.Tensor, global::TorchSharp.torch.Tensor>";

    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(Rules.CannotHoldWrapper.Id);

    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        var root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
            return;
        foreach (var diagnostic in context.Diagnostics)
        {
            var field = root.FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<FieldDeclarationSyntax>();
            if (field is null)
                continue;
            bool declareModule = diagnostic.Properties.ContainsKey(FixProperties.DeclareModule);
            bool removeReadOnly = diagnostic.Properties.ContainsKey(FixProperties.RemoveReadOnly);
            string? title = (declareModule, removeReadOnly) switch
            {
                (true, true) => "Declare it Module<Tensor, Tensor>, not readonly",
                (true, false) => "Declare it Module<Tensor, Tensor>",
                (false, true) => "Remove readonly",
                _ => null,
            };
            if (title is null)
                continue;
            context.RegisterCodeFix(
                CodeAction.Create(
                    title,
                    _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(field, Fixed(field, declareModule, removeReadOnly)))),
                    nameof(DeclareModuleFix)),
                diagnostic);
        }
    }

    private static FieldDeclarationSyntax Fixed(FieldDeclarationSyntax field, bool declareModule, bool removeReadOnly)
    {
        var fixedField = field;
        if (declareModule)
        {
            var type = SyntaxFactory.ParseTypeName(ModuleType)
                .WithTriviaFrom(field.Declaration.Type)
                .WithAdditionalAnnotations(Simplifier.Annotation);
            fixedField = field.WithDeclaration(field.Declaration.WithType(type));
        }
        var readOnly = fixedField.Modifiers.FirstOrDefault(m => m.IsKind(SyntaxKind.ReadOnlyKeyword));
        if (!removeReadOnly || readOnly.IsKind(SyntaxKind.None))
            return fixedField;
        var modifiers = fixedField.Modifiers.Remove(readOnly);
        // Keep what stood before 'readonly' (indentation, comments) when it was the first token.
        return modifiers.Count == 0
            ? fixedField.WithModifiers(modifiers).WithDeclaration(fixedField.Declaration.WithType(
                fixedField.Declaration.Type.WithLeadingTrivia(readOnly.LeadingTrivia)))
            : fixedField.WithModifiers(modifiers);
    }
}
