using Google.Protobuf;
using Onnx;
using SpamFilter.Import;

namespace LoraGen.Samples.Tests;

/// <summary>The MatMul + bias rule on hand-made graphs: a clear case is named, an ambiguous one refused.</summary>
public sealed class OnnxWeightMapTests
{
    [Fact]
    public void A_matmul_plus_named_bias_names_its_weight_from_the_bias()
    {
        var graph = Graph(
            [Float("7", 3, 2), Float("dense.bias", 2)],
            MatMul("x", "7", "h"), Add("h", "dense.bias", "y"));

        var parameters = OnnxWeightMap.Derive(graph);

        Assert.Equal(
            [new OnnxParameter("7", "dense.weight", Transposed: true), new OnnxParameter("dense.bias", "dense.bias", Transposed: false)],
            parameters);
    }

    [Fact]
    public void A_matmul_consumed_by_two_adds_is_refused()
    {
        var graph = Graph(
            [Float("7", 3, 2), Float("a.bias", 2), Float("b.bias", 2)],
            MatMul("x", "7", "h"), Add("h", "a.bias", "y"), Add("h", "b.bias", "z"));

        var error = Assert.Throws<ModelImportException>(() => OnnxWeightMap.Derive(graph));

        Assert.Contains("MatMul 'MatMul_h' (weight '7') feeds Add 'Add_y', Add 'Add_z', not exactly one Add of a bias", error.Message);
    }

    [Fact]
    public void An_add_of_an_unnamed_bias_and_an_unexplained_float_are_refused_together()
    {
        var graph = Graph(
            [Float("7", 3, 2), Float("8", 2)],
            MatMul("x", "7", "h"), Add("h", "8", "y"));

        var error = Assert.Throws<ModelImportException>(() => OnnxWeightMap.Derive(graph));

        Assert.Contains("(2 problems)", error.Message);
        Assert.Contains("whose other input '8' is not named like a bias (X.bias)", error.Message);
        Assert.Contains("float initializer '8' [2] is neither the weight of a MatMul + bias nor named like a parameter", error.Message);
    }

    private static GraphProto Graph(TensorProto[] initializers, params NodeProto[] nodes)
    {
        var graph = new GraphProto { Name = "tiny" };
        graph.Initializer.AddRange(initializers);
        graph.Node.AddRange(nodes);
        graph.Output.AddRange(nodes.Where(n => !nodes.Any(m => m.Input.Contains(n.Output[0]))).Select(n => new ValueInfoProto { Name = n.Output[0] }));
        return graph;
    }

    private static TensorProto Float(string name, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(dims);
        tensor.RawData = ByteString.CopyFrom(new byte[dims.Aggregate(4L, (p, d) => p * d)]);
        return tensor;
    }

    private static NodeProto MatMul(string x, string w, string y) => Node("MatMul", x, w, y);

    private static NodeProto Add(string a, string b, string y) => Node("Add", a, b, y);

    private static NodeProto Node(string op, string a, string b, string y)
    {
        var node = new NodeProto { OpType = op, Name = $"{op}_{y}" };
        node.Input.AddRange([a, b]);
        node.Output.Add(y);
        return node;
    }
}
