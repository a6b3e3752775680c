using Onnx;

namespace SpamFilter.Import;

/// <summary>
/// Names every float weight of an ONNX graph exported from a PyTorch model by its Hugging Face parameter name.
/// <para>
/// PyTorch's exporter keeps a parameter's name when the graph reads it as it is (embeddings, LayerNorm, biases, a
/// Gemm's weight), but a <c>Linear</c> applied to a 3-D input becomes MatMul(x, Wᵀ) + b, and the transposed copy of
/// W is a new, anonymous initializer ("927"). Its name is recovered from the graph: the MatMul's only consumer is
/// an Add whose other input is the layer's bias, named <c>X.bias</c>, so the weight is <c>X.weight</c>, transposed.
/// </para>
/// <para>
/// Anything that leaves a weight's meaning open is refused, all problems in one error: a weight MatMul whose output
/// goes anywhere but one Add, an Add whose other input is not a named 1-D bias of the right length, a bias that feeds
/// more than one Add, a weight read by more than one node, a derived name that already exists, a duplicate
/// initializer, or a float initializer that is neither such a weight nor named like a parameter.
/// </para>
/// </summary>
public static class OnnxWeightMap
{
    private const string BiasSuffix = ".bias";
    private const string WeightSuffix = ".weight";

    /// <summary>Every float initializer of <paramref name="graph"/> and the parameter it holds, in the graph's order.</summary>
    /// <exception cref="ModelImportException">A weight's name or layout is ambiguous (every problem is listed).</exception>
    public static IReadOnlyList<OnnxParameter> Derive(GraphProto graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        var problems = new List<string>();
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var tensor in graph.Initializer)
            if (!initializers.TryAdd(tensor.Name, tensor))
                problems.Add($"initializer '{tensor.Name}' is defined more than once");

        // Who reads each value; a graph output is a reader too (a MatMul result that is also an output is not only a Linear's half).
        var readers = graph.Node
            .SelectMany(node => node.Input.Where(input => input.Length > 0).Select(input => (Value: input, Reader: Describe(node))))
            .Concat(graph.Output.Select(output => (Value: output.Name, Reader: $"graph output '{output.Name}'")))
            .ToLookup(edge => edge.Value, edge => edge.Reader, StringComparer.Ordinal);
        var consumers = graph.Node
            .SelectMany(node => node.Input.Where(input => input.Length > 0).Distinct().Select(input => (Value: input, Node: node)))
            .ToLookup(edge => edge.Value, edge => edge.Node, StringComparer.Ordinal);

        var derived = new Dictionary<string, OnnxParameter>(StringComparer.Ordinal); // by ONNX name
        var derivedNames = new Dictionary<string, string>(StringComparer.Ordinal);   // parameter name → ONNX name
        var matMulWeights = new HashSet<string>(StringComparer.Ordinal);
        foreach (var matMul in graph.Node.Where(node => node.OpType == "MatMul" && IsDefaultDomain(node)))
        {
            if (matMul.Input.Count != 2 || matMul.Output.Count != 1)
            {
                problems.Add($"{Describe(matMul)} does not have two inputs and one output");
                continue;
            }
            bool leftIsWeight = initializers.ContainsKey(matMul.Input[0]);
            if (!initializers.TryGetValue(matMul.Input[1], out var weight))
            {
                // Two activations (the attention's Q·Kᵀ and P·V): no parameter involved.
                if (leftIsWeight)
                    problems.Add($"{Describe(matMul)} has initializer '{matMul.Input[0]}' on the left, not the layout x·Wᵀ of a Linear");
                continue;
            }
            if (!matMulWeights.Add(weight.Name))
                continue; // a weight shared by MatMuls: reported once, at its first
            var (name, problem) = DeriveName(matMul, weight, initializers, readers, consumers);
            if (problem is not null)
                problems.Add(problem);
            else if (initializers.ContainsKey(name))
                problems.Add($"{Describe(matMul)}'s weight '{weight.Name}' would be named '{name}', which an initializer already has");
            else if (derivedNames.TryGetValue(name, out var other))
                problems.Add($"weights '{other}' and '{weight.Name}' would both be named '{name}'");
            else
            {
                derivedNames.Add(name, weight.Name);
                derived.Add(weight.Name, new OnnxParameter(weight.Name, name, Transposed: true));
            }
        }

        var parameters = new List<OnnxParameter>();
        foreach (var tensor in graph.Initializer.Where(IsFloat).DistinctBy(t => t.Name))
        {
            if (derived.TryGetValue(tensor.Name, out var parameter))
                parameters.Add(parameter);
            else if (LooksLikeParameter(tensor.Name))
                parameters.Add(new OnnxParameter(tensor.Name, tensor.Name, Transposed: false));
            else if (!matMulWeights.Contains(tensor.Name)) // a MatMul weight that could not be named is reported already
                problems.Add($"float initializer '{tensor.Name}' [{string.Join(", ", tensor.Dims)}] is neither the weight of a MatMul + bias nor named like a parameter");
        }

        if (problems.Count > 0)
            throw new ModelImportException(
                $"The ONNX graph does not name its weights unambiguously ({problems.Count} problem{(problems.Count == 1 ? "" : "s")}):" +
                string.Concat(problems.Select(p => Environment.NewLine + "  - " + p)));
        return parameters;
    }

    // The parameter name of one MatMul's weight, or why it cannot be told.
    private static (string Name, string? Problem) DeriveName(
        NodeProto matMul, TensorProto weight, Dictionary<string, TensorProto> initializers,
        ILookup<string, string> readers, ILookup<string, NodeProto> consumers)
    {
        string what = $"{Describe(matMul)} (weight '{weight.Name}')";
        if (!IsFloat(weight) || weight.Dims.Count != 2)
            return ("", $"{what}: the weight is not a 2-D float tensor");
        if (readers[weight.Name].Count() > 1)
            return ("", $"weight '{weight.Name}' is read by {string.Join(", ", readers[weight.Name])}: one parameter, several uses");

        var users = readers[matMul.Output[0]].ToList();
        if (users.Count != 1 || consumers[matMul.Output[0]].SingleOrDefault() is not { OpType: "Add" } add || !IsDefaultDomain(add))
            return ("", $"{what} feeds {(users.Count == 0 ? "nothing" : string.Join(", ", users))}, not exactly one Add of a bias");
        if (add.Input.Count != 2 || add.Input.Count(input => input == matMul.Output[0]) != 1)
            return ("", $"{what} feeds {Describe(add)}, which is not MatMul + bias");

        string biasName = add.Input.Single(input => input != matMul.Output[0]);
        if (!initializers.TryGetValue(biasName, out var bias))
            return ("", $"{what} feeds {Describe(add)}, whose other input '{biasName}' is not an initializer (a named bias)");
        if (!biasName.EndsWith(BiasSuffix, StringComparison.Ordinal) || biasName.Length == BiasSuffix.Length)
            return ("", $"{what} feeds {Describe(add)}, whose other input '{biasName}' is not named like a bias (X{BiasSuffix})");
        if (!IsFloat(bias) || bias.Dims.Count != 1 || bias.Dims[0] != weight.Dims[1])
            return ("", $"{what} [{string.Join(", ", weight.Dims)}] feeds {Describe(add)}, whose bias '{biasName}' is [{string.Join(", ", bias.Dims)}], not [{weight.Dims[1]}]");
        if (readers[biasName].Count() > 1)
            return ("", $"bias '{biasName}' is read by {string.Join(", ", readers[biasName])}: which weight it names is ambiguous");

        return (biasName[..^BiasSuffix.Length] + WeightSuffix, null);
    }

    private static bool LooksLikeParameter(string name) =>
        name.Contains('.') && (name.EndsWith(WeightSuffix, StringComparison.Ordinal) || name.EndsWith(BiasSuffix, StringComparison.Ordinal));

    private static bool IsFloat(TensorProto tensor) => tensor.DataType == (int)TensorProto.Types.DataType.Float;

    private static bool IsDefaultDomain(NodeProto node) => node.Domain is "" or "ai.onnx";

    private static string Describe(NodeProto node) => node.Name.Length > 0 ? $"{node.OpType} '{node.Name}'" : $"{node.OpType} → '{string.Join(", ", node.Output)}'";
}
