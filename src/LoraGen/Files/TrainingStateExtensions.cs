using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// Resumable training: the adapters, the optimizer's state and the random generator saved together in one file,
/// so that a run stopped at step N and resumed in a new process continues exactly, bit for bit, as if it had never
/// stopped. See docs/runtime.md ("Resuming training") and docs/file-formats.md.
/// </summary>
public static class TrainingStateExtensions
{
    /// <summary>
    /// Writes the training state to one safetensors file at <paramref name="path"/> (its directory is created if
    /// needed): the value of every trainable parameter (<see cref="LoraModelExtensions.NamedLoraParameters(TorchSharp.torch.nn.Module)"/>: the
    /// adapters and the <c>Trainable</c> fields, plus any other model parameter the optimizer updates) and of every
    /// persistent buffer (BatchNorm's running statistics); the optimizer's
    /// param-group hyperparameters (<c>lr</c>, <c>initial_lr</c>, betas, weight decay, …) and per-parameter state
    /// (step counts, moments, momentum buffers); which parameters have a gradient; the state of the default CPU
    /// random generator; <paramref name="step"/>; and <paramref name="metadata"/>. The file is written to a temporary
    /// file, flushed to disk and renamed over <paramref name="path"/>, so a crash at any instant leaves the previous
    /// state or the new one, never a mix. Nothing in the model, the optimizer or the generator changes.
    /// </summary>
    /// <remarks>Call it between steps, after <c>optimizer.step()</c>: gradient values are not saved (only whether each
    /// parameter has one), as the next step's <c>zero_grad()</c> clears them. A learning-rate scheduler's own position
    /// is not saved (TorchSharp does not expose it); the optimizer's current <c>lr</c> is — see docs/runtime.md.</remarks>
    /// <param name="model">The model being trained, with LoRA applied.</param>
    /// <param name="path">The file to write, e.g. <c>out/training_state.safetensors</c>.</param>
    /// <param name="optimizer">The optimizer training <paramref name="model"/>: one of TorchSharp's managed optimizers
    /// (AdamW, Adam, SGD, RMSProp, … — every subclass of <c>OptimizerHelper</c>).</param>
    /// <param name="step">The number of optimizer steps taken so far; <see cref="LoadTrainingState"/> returns it.</param>
    /// <param name="metadata">Entries of the caller's to keep with the state (an epoch, a data-loader position);
    /// <see cref="LoadTrainingState"/> returns them.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> is negative.</exception>
    /// <exception cref="ArgumentException">A metadata key is empty, or the optimizer updates a tensor that is not a
    /// parameter of <paramref name="model"/>, or one parameter twice.</exception>
    /// <exception cref="NotSupportedException">The optimizer keeps its state in native code (LBFGS), or holds a value
    /// of a type that cannot be stored.</exception>
    /// <exception cref="IOException">The file cannot be written; the previous one, if any, is unchanged.</exception>
    public static void SaveTrainingState(this nn.Module model, string path, optim.Optimizer optimizer, long step,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>())
        {
            if (string.IsNullOrEmpty(key))
                throw new ArgumentException("A metadata key is empty.", nameof(metadata));
            ArgumentNullException.ThrowIfNull(value, $"{nameof(metadata)}[\"{key}\"]");
        }
        TrainingStateFile.Save(model, path, optimizer, step, metadata);
    }

    /// <summary>
    /// Restores a state written by <see cref="SaveTrainingState"/> into <paramref name="model"/>, <paramref name="optimizer"/>
    /// and the default CPU random generator, all or nothing. Build the model and the optimizer as the run that saved the
    /// state did (same model, same <c>ApplyLora</c> options, same optimizer type over the same parameters in the same
    /// param groups), then load, then continue the loop at <see cref="TrainingState.Step"/> + 1. Before anything changes,
    /// the whole file is read and checked: its SHA-256, the optimizer's type, its parameters and groups, every key,
    /// dtype and shape (exactly: no conversion), and the generator state; on any mismatch the error lists what differs,
    /// and the model, the optimizer and the generator are left exactly as they were. The optimizer's hyperparameters
    /// (<c>lr</c>, …) are the file's afterwards, as PyTorch's <c>load_state_dict</c> does.
    /// </summary>
    /// <returns>The saved step and the caller's metadata.</returns>
    /// <exception cref="LoraFileException">The file is damaged (truncated, altered: <see cref="SafetensorsFormatException"/>
    /// or a checksum error), is not a training state, or does not fit the model and optimizer; nothing was changed.</exception>
    /// <exception cref="ArgumentException">The optimizer updates a tensor that is not a parameter of <paramref name="model"/>,
    /// or one parameter twice.</exception>
    /// <exception cref="NotSupportedException">The optimizer keeps its state in native code (LBFGS).</exception>
    /// <exception cref="IOException">The file is missing or cannot be read.</exception>
    public static TrainingState LoadTrainingState(this nn.Module model, string path, optim.Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(optimizer);
        using var file = SafetensorsReader.Open(path);
        return TrainingStateFile.Load(model, file, optimizer);
    }
}
