namespace LoraGen;

/// <summary>The layer types LoRA can wrap.</summary>
public enum LoraLayerKind
{
    /// <summary><c>torch.nn.Linear</c>: adapters <c>lora_A</c> [r, in] and <c>lora_B</c> [out, r].</summary>
    Linear,

    /// <summary><c>torch.nn.Embedding</c>: adapters <c>lora_embedding_A</c> [r, num] and <c>lora_embedding_B</c> [dim, r].</summary>
    Embedding,

    /// <summary><c>torch.nn.Conv1d</c>: <c>lora_A</c> a k-wide conv to r channels, <c>lora_B</c> a 1-wide conv back.</summary>
    Conv1d,

    /// <summary><c>torch.nn.Conv2d</c>: <c>lora_A</c> a k×k conv to r channels, <c>lora_B</c> a 1×1 conv back.</summary>
    Conv2d,
}
