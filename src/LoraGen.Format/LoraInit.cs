namespace LoraGen;

/// <summary>How a new adapter is initialised. Either way B (or the embedding's A) starts at zero,
/// so a fresh adapter leaves the model's outputs unchanged.</summary>
public enum LoraInit
{
    /// <summary>PEFT's default: A Kaiming-uniform (a = √5), B zeros; embeddings A zeros, B standard normal.</summary>
    Default,

    /// <summary>PEFT's <c>init_lora_weights="gaussian"</c>: A ~ N(0, (1/r)²), B zeros.</summary>
    Gaussian,
}
