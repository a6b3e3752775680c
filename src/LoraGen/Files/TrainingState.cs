namespace LoraGen;

/// <summary>
/// What <see cref="TrainingStateExtensions.LoadTrainingState"/> gives back besides the restored model, optimizer
/// and generator: the step the state was saved at, and the metadata the caller saved with it.
/// </summary>
/// <param name="Step">The step given to <see cref="TrainingStateExtensions.SaveTrainingState"/>: resume the loop
/// at the step after it.</param>
/// <param name="Metadata">The caller's entries given to <see cref="TrainingStateExtensions.SaveTrainingState"/>
/// (an epoch, a data-loader position, a scheduler's settings); empty when none were given.</param>
public sealed record TrainingState(long Step, IReadOnlyDictionary<string, string> Metadata);
