namespace LoraGen;

/// <summary>
/// A LoRA option or target that cannot work: a bad rank, alpha or dropout, a layer LoRA cannot wrap,
/// or an adapter that would not save parameters. Thrown before anything in the model is changed.
/// </summary>
public sealed class LoraConfigurationException : ArgumentException
{
    /// <summary>Creates the exception for the named target (a field or module path).</summary>
    public LoraConfigurationException(string target, string problem)
        : base($"LoRA target '{target}': {problem}")
    {
        Target = target;
    }

    /// <summary>The field or module path the problem is about.</summary>
    public string Target { get; }
}
