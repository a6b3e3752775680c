namespace SpamFilter.Import;

/// <summary>The pretrained model could not be imported faithfully: the package does not hold what it should, or the
/// ONNX graph leaves a weight's name or layout ambiguous. Nothing was written to the cache.</summary>
public sealed class ModelImportException(string message) : Exception(message);
