namespace LoraGen;

/// <summary>How a new adapter is initialised. <see cref="Default"/> and <see cref="Gaussian"/> start B (or the
/// embedding's A) at zero, so a fresh adapter leaves the model's outputs unchanged; <see cref="Pissa"/> and
/// <see cref="Olora"/> start A and B from the base weight and leave the residual W − scaling·B·A in the base, so
/// the outputs are unchanged too (up to rounding).</summary>
public enum LoraInit
{
    /// <summary>PEFT's default: A Kaiming-uniform (a = √5), B zeros; embeddings A zeros, B standard normal.</summary>
    Default,

    /// <summary>PEFT's <c>init_lora_weights="gaussian"</c>: A ~ N(0, (1/r)²), B zeros.</summary>
    Gaussian,

    /// <summary>PEFT's <c>init_lora_weights="pissa"</c> (Linear only): with W = U·S·Vᵀ, B = U_r·√(S_r/scaling),
    /// A = √(S_r/scaling)·V_rᵀ, and the base weight becomes W − scaling·B·A. With
    /// <see cref="LoraConfig.PissaIterations"/> set, the top-r singular vectors come from a randomized SVD with that
    /// many power iterations (PEFT's <c>"pissa_niter_N"</c>). Saving converts the adapter to a plain LoRA of rank 2r
    /// on the original base.</summary>
    Pissa,

    /// <summary>PEFT's <c>init_lora_weights="olora"</c> (Linear only): with W = Q·R, B = Q[:, :r], A = R[:r], and the base
    /// weight becomes W − scaling·B·A. Saving converts the adapter to a plain LoRA of rank 2r on the original base.</summary>
    Olora,
}
