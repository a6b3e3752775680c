using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace LoraGen.Analyzers;

/// <summary>Finds where in an attribute's source a named argument, or one name inside it, is written,
/// so a diagnostic underlines exactly what is wrong.</summary>
internal static class AttributeLocations
{
    /// <summary>The attribute's syntax, or null for an attribute from metadata.</summary>
    public static AttributeSyntax? Syntax(AttributeData attribute, CancellationToken cancellation) =>
        attribute.ApplicationSyntaxReference?.GetSyntax(cancellation) as AttributeSyntax;

    /// <summary>The named argument <c>Property = ...</c>, or null when it is not written.</summary>
    public static AttributeArgumentSyntax? Argument(AttributeData attribute, string property, CancellationToken cancellation) =>
        Syntax(attribute, cancellation)?.ArgumentList?.Arguments
            .FirstOrDefault(a => a.NameEquals?.Name.Identifier.ValueText == property);

    /// <summary>The argument's value if written, else the whole attribute.</summary>
    public static Location Of(AttributeData attribute, string property, CancellationToken cancellation) =>
        Argument(attribute, property, cancellation)?.Expression.GetLocation()
        ?? Syntax(attribute, cancellation)?.GetLocation()
        ?? Location.None;

    /// <summary>The string literal <paramref name="name"/> inside the list given to <paramref name="property"/>.</summary>
    public static Location OfName(AttributeData attribute, string property, string name, CancellationToken cancellation)
    {
        var argument = Argument(attribute, property, cancellation);
        var literal = argument?.Expression.DescendantNodesAndSelf().OfType<LiteralExpressionSyntax>()
            .FirstOrDefault(l => l.IsKind(SyntaxKind.StringLiteralExpression) && l.Token.ValueText == name);
        return literal?.GetLocation() ?? Of(attribute, property, cancellation);
    }
}
