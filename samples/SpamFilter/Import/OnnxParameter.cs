namespace SpamFilter.Import;

/// <summary>A weight of the ONNX graph and the Hugging Face parameter it holds.</summary>
/// <param name="OnnxName">The initializer's name in the graph (a number for the exporter's anonymous ones).</param>
/// <param name="Name">The Hugging Face parameter name, e.g. <c>encoder.layer.0.attention.self.query.weight</c>.</param>
/// <param name="Transposed">The initializer is the parameter transposed: a MatMul's right-hand side [in, out],
/// where <c>nn.Linear</c> keeps [out, in].</param>
public sealed record OnnxParameter(string OnnxName, string Name, bool Transposed);
