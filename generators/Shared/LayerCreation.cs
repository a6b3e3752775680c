using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace LoraGen.SourceShared;

/// <summary>
/// What the code that fills a field creates: the layer kind, and its sizes where the factory's
/// arguments are compile-time constants (literals, <c>const</c> fields, constant arithmetic).
/// </summary>
internal sealed class LayerCreation
{
    public LayerCreation(string? kind, long? inFeatures, long? outFeatures, long? kernelElements, long? groups, Location? location)
    {
        Kind = kind;
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        KernelElements = kernelElements;
        Groups = groups;
        Location = location;
    }

    /// <summary>A <see cref="LayerKinds"/> name, or null when the created type is not a supported layer.</summary>
    public string? Kind { get; }
    public long? InFeatures { get; }
    public long? OutFeatures { get; }
    public long? KernelElements { get; }
    public long? Groups { get; }
    public Location? Location { get; }

    /// <summary>The created type's name when it is a concrete type ("LayerNorm"), for messages; null when
    /// only an abstract module type is known.</summary>
    public string? TypeName { get; private set; }

    public bool HasSizes => InFeatures is not null && OutFeatures is not null && KernelElements is not null;

    /// <summary>
    /// Finds what is assigned to <paramref name="field"/> (its initializer, else the first assignment
    /// in a constructor) and reads it. Null when nothing is assigned that the compiler can see.
    /// </summary>
    public static LayerCreation? Find(IFieldSymbol field, TorchSharpTypes types, Compilation compilation, CancellationToken cancellation)
    {
        foreach (var reference in field.DeclaringSyntaxReferences)
        {
            // An initializer like `= null!` says nothing: the constructor's assignment does.
            if (reference.GetSyntax(cancellation) is VariableDeclaratorSyntax { Initializer.Value: { } initializer }
                && !IsPlaceholder(initializer, compilation, cancellation))
                return Read(initializer, types, compilation, cancellation);
        }

        foreach (var constructor in field.ContainingType.InstanceConstructors)
        {
            foreach (var reference in constructor.DeclaringSyntaxReferences)
            {
                var syntax = reference.GetSyntax(cancellation);
                var model = compilation.GetSemanticModel(syntax.SyntaxTree);
                foreach (var assignment in syntax.DescendantNodes().OfType<AssignmentExpressionSyntax>())
                {
                    cancellation.ThrowIfCancellationRequested();
                    if (SymbolEqualityComparer.Default.Equals(model.GetSymbolInfo(assignment.Left, cancellation).Symbol, field))
                        return Read(assignment.Right, types, compilation, cancellation);
                }
            }
        }
        return null;
    }

    private static bool IsPlaceholder(ExpressionSyntax expression, Compilation compilation, CancellationToken cancellation)
    {
        while (expression is PostfixUnaryExpressionSyntax { RawKind: (int)Microsoft.CodeAnalysis.CSharp.SyntaxKind.SuppressNullableWarningExpression } suppressed)
            expression = suppressed.Operand;
        var operation = compilation.GetSemanticModel(expression.SyntaxTree).GetOperation(expression, cancellation);
        while (operation is IConversionOperation conversion)
            operation = conversion.Operand;
        return operation is IDefaultValueOperation || operation is ILiteralOperation { ConstantValue: { HasValue: true, Value: null } };
    }

    private static LayerCreation Read(ExpressionSyntax expression, TorchSharpTypes types, Compilation compilation, CancellationToken cancellation)
    {
        var model = compilation.GetSemanticModel(expression.SyntaxTree);
        var operation = model.GetOperation(expression, cancellation);
        while (operation is IConversionOperation conversion)
            operation = conversion.Operand;
        var type = operation?.Type;
        var kind = types.LayerKindOf(type);
        var arguments = operation switch
        {
            IInvocationOperation invocation => invocation.Arguments,
            IObjectCreationOperation creation => creation.Arguments,
            _ => default,
        };

        long? Constant(params string[] names)
        {
            if (arguments.IsDefault) return null;
            foreach (var argument in arguments)
                if (argument.Parameter is { } parameter && names.Contains(parameter.Name))
                    return AsLong(argument.Value);
            return null;
        }

        long? inFeatures = null, outFeatures = null, kernel = null, groups = null;
        switch (kind)
        {
            case LayerKinds.Linear:
                (inFeatures, outFeatures, kernel) = (Constant("inputSize", "in_features"), Constant("outputSize", "out_features"), 1);
                break;
            case LayerKinds.Embedding:
                (inFeatures, outFeatures, kernel) = (Constant("num_embeddings"), Constant("embedding_dims", "embedding_dim"), 1);
                break;
            case LayerKinds.Conv1d:
            case LayerKinds.Conv2d:
                inFeatures = Constant("in_channels");
                outFeatures = Constant("out_channels");
                kernel = ReadKernelElements(arguments, kind == LayerKinds.Conv2d ? 2 : 1);
                groups = Constant("groups");
                break;
        }
        return new LayerCreation(kind, inFeatures, outFeatures, kernel, groups, expression.GetLocation())
        {
            // Only a concrete type says what the layer is: a helper that returns Module<Tensor, Tensor>
            // may build a Linear, which only the runtime can see.
            TypeName = type is null || type.TypeKind == TypeKind.Error || types.CanHoldWrapper(type) ? null : type.Name,
        };
    }

    private static long? ReadKernelElements(System.Collections.Immutable.ImmutableArray<IArgumentOperation> arguments, int dimensions)
    {
        if (arguments.IsDefault) return null;
        var kernel = arguments.FirstOrDefault(a => a.Parameter?.Name == "kernel_size")?.Value;
        while (kernel is IConversionOperation conversion)
            kernel = conversion.Operand;
        if (kernel is ITupleOperation tuple)
        {
            long product = 1;
            foreach (var element in tuple.Elements)
            {
                if (AsLong(element) is not { } size) return null;
                product *= size;
            }
            return product;
        }
        return kernel is not null && AsLong(kernel) is { } square ? Pow(square, dimensions) : null;
    }

    private static long Pow(long value, int power)
    {
        long result = 1;
        for (int i = 0; i < power; i++) result *= value;
        return result;
    }

    private static long? AsLong(IOperation operation)
    {
        var constant = operation.ConstantValue;
        if (!constant.HasValue) return null;
        return constant.Value switch
        {
            int i => i,
            long l => l,
            short s => s,
            byte b => b,
            uint u => u,
            _ => null,
        };
    }
}
