using System.Reflection;
using LoraGen.Generators.Model;
using Microsoft.CodeAnalysis;

namespace LoraGen.Generators.Tests;

public sealed class SpecShapeTests
{
    private static readonly Type[] Forbidden = [typeof(ISymbol), typeof(Compilation), typeof(SyntaxNode), typeof(Location), typeof(SemanticModel), typeof(SyntaxTree)];

    /// <summary>Walks every type reachable from the spec's properties and fields: none may hold
    /// Roslyn objects, or the pipeline would keep whole compilations alive and never cache.</summary>
    [Fact]
    public void The_spec_holds_no_symbols_syntax_compilations_or_locations()
    {
        var seen = new HashSet<Type>();
        var pending = new Queue<Type>([typeof(LoraClassSpec)]);
        while (pending.Count > 0)
        {
            var type = pending.Dequeue();
            if (!seen.Add(type) || type.IsPrimitive || type == typeof(string) || type.IsEnum)
                continue;
            Assert.DoesNotContain(Forbidden, f => f.IsAssignableFrom(type));
            var members = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Select(f => f.FieldType);
            foreach (var memberType in members.Concat(type.IsGenericType ? type.GetGenericArguments() : []))
                pending.Enqueue(memberType.IsArray ? memberType.GetElementType()! : memberType);
        }
        Assert.Contains(typeof(LoraTargetSpec), seen);
        Assert.Contains(typeof(TypeDeclarationSpec), seen);
    }

    [Fact]
    public void Specs_are_equal_when_their_contents_are()
    {
        static LoraClassSpec Make() => new("Demo", new EquatableArray<TypeDeclarationSpec>([]),
            new TypeDeclarationSpec("class", "A", new EquatableArray<string>(["T"])),
            new EquatableArray<LoraTargetSpec>([new LoraTargetSpec("q", 8, null, 0, false, 0, "Linear", 4, 4, 1)]),
            new EquatableArray<string>(["norm"]));
        Assert.Equal(Make(), Make());
        Assert.Equal(Make().GetHashCode(), Make().GetHashCode());
        Assert.NotEqual(Make(), Make() with { Namespace = "Other" });
    }
}
