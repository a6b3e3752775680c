namespace LoraGen.Files;

/// <summary>
/// One entry of a training state: a key, the dtype and shape it must have, how to read its bytes from the
/// live model / optimizer / generator, and how to write them back. Loading checks every slot
/// (<see cref="Check"/>), then prepares every value (<see cref="Prepare"/>, which changes nothing), and only then
/// applies them all, so a refused file changes nothing.
/// </summary>
/// <param name="Key">The key in the file.</param>
/// <param name="DType">The dtype the value must have.</param>
/// <param name="Shape">The shape the value must have (empty for a scalar).</param>
/// <param name="CanBeNone">Whether the value may be absent (a state tensor not created yet): such keys are
/// listed in the file's <c>loragen.none</c> metadata instead of being stored.</param>
/// <param name="Read">The value's little-endian bytes now, or null for none.</param>
/// <param name="Check">What is wrong with bytes of the right size (a bool that is not 0 or 1, an invalid generator
/// state), or null.</param>
/// <param name="Prepare">Turns checked bytes (null: none) into the action that stores them, allocating what it
/// needs but changing nothing; the action's temporaries are disposed after every action has run.</param>
internal sealed record TrainingStateSlot(
    string Key,
    SafetensorsDType DType,
    long[] Shape,
    bool CanBeNone,
    Func<byte[]?> Read,
    Func<byte[], string?> Check,
    Func<byte[]?, TrainingStateSlot.Write> Prepare)
{
    /// <summary>A prepared store: <paramref name="Apply"/> puts the value in place; <paramref name="Temporary"/>
    /// (if any) is disposed afterwards, applied or not.</summary>
    internal sealed record Write(Action Apply, IDisposable? Temporary = null);

    /// <summary>Bytes the value occupies.</summary>
    public long ByteLength => Shape.Aggregate(1L, (product, size) => product * size) * DType.ElementSize();

    /// <summary>The shape as PyTorch prints it.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
