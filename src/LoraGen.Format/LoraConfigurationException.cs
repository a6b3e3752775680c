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

    private LoraConfigurationException(string target, string message, Exception? inner)
        : base(message, inner)
    {
        Target = target;
    }

    /// <summary>One exception for several refused targets, every problem in its message (the first one's target).</summary>
    internal static LoraConfigurationException Combine(IReadOnlyList<LoraConfigurationException> problems) => problems.Count == 1
        ? problems[0]
        : new(problems[0].Target, $"{problems.Count} LoRA targets cannot be adapted; nothing was changed.\n" +
            string.Join("\n", problems.Select(problem => "  " + problem.Message)), problems[0]);

    /// <summary>The field or module path the problem is about.</summary>
    public string Target { get; }
}
