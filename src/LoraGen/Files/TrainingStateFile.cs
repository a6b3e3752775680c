using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace LoraGen.Files;

/// <summary>
/// The training-state file: one safetensors file holding the slots of a <see cref="TrainingStateLayout"/>, with the
/// step, the optimizer's type, its param groups, the keys whose value is none, which parameters had a gradient,
/// the caller's metadata and a SHA-256 of everything in <c>__metadata__</c>. See docs/file-formats.md.
/// </summary>
internal static class TrainingStateFile
{
    /// <summary>The format version this code writes and reads.</summary>
    public const string FormatVersion = "1";

    /// <summary>Prefix of the caller's metadata keys in the file.</summary>
    public const string UserPrefix = "user.";

    private const string VersionKey = "loragen.training_state";
    private const string StepKey = "loragen.step";
    private const string OptimizerKey = "loragen.optimizer";
    private const string GroupsKey = "loragen.param_groups";
    private const string NoneKey = "loragen.none";
    private const string GradsKey = "loragen.grads";

    /// <summary>The checksum's key; it covers every other metadata entry and every tensor's name, dtype, shape and bytes.</summary>
    public const string ChecksumKey = "loragen.sha256";

    private const int NamesShown = 12;

    /// <summary>Writes the state of <paramref name="model"/>, <paramref name="optimizer"/> and the CPU generator to
    /// <paramref name="path"/>, atomically.</summary>
    public static void Save(nn.Module model, string path, optim.Optimizer optimizer, long step, IReadOnlyDictionary<string, string>? userMetadata)
    {
        var layout = TrainingStateLayout.Of(model, optimizer);
        var tensors = new List<SafetensorsTensor>();
        var none = new List<string>();
        foreach (var slot in layout.Slots)
        {
            var bytes = slot.Read();
            if (bytes is null)
                none.Add(slot.Key);
            else
                tensors.Add(new SafetensorsTensor(slot.Key, slot.DType, slot.Shape, () => bytes));
        }
        var grads = new List<string>();
        foreach (var (weightPath, parameter) in layout.Weights)
        {
            using var grad = parameter.grad;
            if (grad is not null)
                grads.Add(weightPath);
        }

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [VersionKey] = FormatVersion,
            [StepKey] = step.ToString(CultureInfo.InvariantCulture),
            [OptimizerKey] = layout.OptimizerKind,
            [GroupsKey] = JsonSerializer.Serialize(layout.Groups),
            [NoneKey] = JsonSerializer.Serialize(none),
            [GradsKey] = JsonSerializer.Serialize(grads),
        };
        foreach (var (key, value) in userMetadata ?? new Dictionary<string, string>())
            metadata[UserPrefix + key] = value;
        metadata[ChecksumKey] = Checksum(metadata, tensors.Select(t => (t.Name, t.DType, t.Shape, t.Data())));

        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        AtomicFile.Write(full, stream => SafetensorsWriter.Write(stream, tensors, metadata));
    }

    /// <summary>Checks the whole file against the model, the optimizer and this LibTorch, then restores all of it.</summary>
    public static TrainingState Load(nn.Module model, SafetensorsReader file, optim.Optimizer optimizer)
    {
        string what = $"Training state '{file.Source}'";
        var metadata = file.Metadata;
        if (!metadata.TryGetValue(VersionKey, out var version))
            throw new LoraFileException(
                $"{what} is not a training state: its metadata has no '{VersionKey}'. Training states are written by " +
                "SaveTrainingState; adapter directories load with LoadAdapter, checkpoints with LoadCheckpoint.");
        if (version != FormatVersion)
            throw new LoraFileException($"{what} has format version '{version}'; this LoraGen reads version {FormatVersion}.");

        var data = file.Tensors.Select(info => (Info: info, Bytes: file.ReadBytes(info))).ToList();
        string checksum = Checksum(metadata, data.Select(d => (d.Info.Name, d.Info.DType, d.Info.Shape, (ReadOnlyMemory<byte>)d.Bytes)));
        if (!metadata.TryGetValue(ChecksumKey, out var expectedChecksum) || !string.Equals(checksum, expectedChecksum, StringComparison.Ordinal))
            throw new LoraFileException(
                $"{what} is damaged: its content does not match the SHA-256 it was saved with ('{ChecksumKey}'); nothing was changed. " +
                "Resume from another save.");

        long step = ParseStep(Required(metadata, StepKey, what), what);
        string kind = Required(metadata, OptimizerKey, what);
        var groups = ParseJson<List<List<string>>>(Required(metadata, GroupsKey, what), GroupsKey, what);
        var none = ParseJson<List<string>>(Required(metadata, NoneKey, what), NoneKey, what);
        var grads = ParseJson<List<string>>(Required(metadata, GradsKey, what), GradsKey, what);
        var user = metadata.Where(entry => entry.Key.StartsWith(UserPrefix, StringComparison.Ordinal))
            .ToDictionary(entry => entry.Key[UserPrefix.Length..], entry => entry.Value, StringComparer.Ordinal);

        var layout = TrainingStateLayout.Of(model, optimizer);
        if (kind != layout.OptimizerKind)
            throw new LoraFileException(
                $"{what} was saved with a {kind} optimizer, but the optimizer given is a {layout.OptimizerKind}; nothing was " +
                "changed. Create the optimizer the way the run that saved the state did.");
        CheckGroups(groups, layout.Groups, what);
        var values = CheckSlots(layout, data, none, grads, what);

        var writes = new List<TrainingStateSlot.Write>(values.Count);
        try
        {
            foreach (var (slot, bytes) in values)
                writes.Add(slot.Prepare(bytes));
            foreach (var write in writes)
                write.Apply();
            RestoreGradients(layout, grads.ToHashSet(StringComparer.Ordinal));
        }
        finally
        {
            foreach (var write in writes)
                write.Temporary?.Dispose();
        }
        return new TrainingState(step, user);
    }

    /// <summary>SHA-256, lower-case hex, of the metadata (every entry but the checksum, by key) and of each tensor's
    /// name, dtype, shape and bytes in data order.</summary>
    internal static string Checksum(IReadOnlyDictionary<string, string> metadata,
        IEnumerable<(string Name, SafetensorsDType DType, IReadOnlyList<long> Shape, ReadOnlyMemory<byte> Data)> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (key, value) in metadata.Where(entry => entry.Key != ChecksumKey).OrderBy(entry => entry.Key, StringComparer.Ordinal))
        {
            Append(hash, key);
            Append(hash, value);
        }
        foreach (var (name, dtype, shape, data) in tensors)
        {
            Append(hash, name);
            Append(hash, dtype.ToString());
            Append(hash, string.Join(",", shape));
            hash.AppendData(data.Span);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void Append(IncrementalHash hash, string text)
    {
        hash.AppendData(Encoding.UTF8.GetBytes(text));
        hash.AppendData([0]);
    }

    private static void CheckGroups(List<List<string>> saved, List<List<string>> live, string what)
    {
        var problems = new List<string>();
        if (saved.Count != live.Count)
            problems.Add($"{saved.Count} param group(s) in the file, {live.Count} in the optimizer");
        for (int g = 0; g < Math.Min(saved.Count, live.Count); g++)
        {
            if (saved[g].SequenceEqual(live[g]))
                continue;
            var onlySaved = saved[g].Except(live[g]).ToList();
            var onlyLive = live[g].Except(saved[g]).ToList();
            if (onlySaved.Count + onlyLive.Count == 0)
                problems.Add($"param group {g} holds the same parameters in another order");
            else
                problems.Add($"param group {g}: in the file only ({onlySaved.Count}): {Names(onlySaved)}; in the optimizer only ({onlyLive.Count}): {Names(onlyLive)}");
        }
        if (problems.Count > 0)
            throw new LoraFileException(
                $"{what} was saved with an optimizer over other parameters; nothing was changed.\n  " + string.Join("\n  ", problems) +
                "\nApply LoRA with the same options as the run that saved the state, and create the optimizer the same way: the " +
                "same parameters, in the same param groups and order (e.g. torch.optim.AdamW(model.LoraParameters())).");
    }

    private static List<(TrainingStateSlot Slot, byte[]? Bytes)> CheckSlots(TrainingStateLayout layout,
        List<(SafetensorsTensorInfo Info, byte[] Bytes)> data, List<string> none, List<string> grads, string what)
    {
        var stored = data.ToDictionary(d => d.Info.Name, StringComparer.Ordinal);
        var noneSet = new HashSet<string>(StringComparer.Ordinal);
        var expected = layout.Slots.Select(slot => slot.Key).ToHashSet(StringComparer.Ordinal);
        var missing = new List<string>();
        var unexpected = new List<string>();
        var mismatched = new List<string>();
        foreach (var key in none)
        {
            if (!noneSet.Add(key) || stored.ContainsKey(key))
                mismatched.Add($"{key}: listed twice, or both stored and listed in {NoneKey}");
        }

        var values = new List<(TrainingStateSlot, byte[]?)>(layout.Slots.Count);
        foreach (var slot in layout.Slots)
        {
            if (stored.TryGetValue(slot.Key, out var entry))
            {
                var info = entry.Info;
                string? problem = info.DType != slot.DType || !info.Shape.SequenceEqual(slot.Shape)
                    ? $"{info.DType} {info.ShapeText} in the file, {slot.DType} {slot.ShapeText} expected"
                    : slot.Check(entry.Bytes);
                if (problem is null)
                    values.Add((slot, entry.Bytes));
                else
                    mismatched.Add($"{slot.Key}: {problem}");
            }
            else if (noneSet.Contains(slot.Key))
            {
                if (slot.CanBeNone)
                    values.Add((slot, null));
                else
                    mismatched.Add($"{slot.Key}: none in the file, but it must have a value");
            }
            else
            {
                missing.Add(slot.Key);
            }
        }
        unexpected.AddRange(data.Select(d => d.Info.Name).Concat(noneSet).Where(key => !expected.Contains(key)));
        var weights = layout.Weights.Select(w => w.Path).ToHashSet(StringComparer.Ordinal);
        mismatched.AddRange(grads.Where(path => !weights.Contains(path)).Select(path => $"{GradsKey} names '{path}', which is not a saved parameter"));

        if (missing.Count + unexpected.Count + mismatched.Count > 0)
        {
            var text = new StringBuilder($"{what} does not fit this model and optimizer; nothing was changed.");
            Append(text, "missing (in the model or optimizer, not in the file)", missing);
            Append(text, "unexpected (in the file, not in the model or optimizer)", unexpected);
            Append(text, "mismatched", mismatched);
            text.Append("\nLoad it into a model built and adapted as the saving run's (the same ApplyLora options) with an optimizer " +
                "created the same way.");
            throw new LoraFileException(text.ToString());
        }
        return values;
    }

    // TorchSharp's zero_grad() zeroes gradients but keeps them, and AdamW / Adam still step a parameter whose
    // gradient is zero while they skip one that has none: whether each parameter had a gradient is part of the state.
    private static void RestoreGradients(TrainingStateLayout layout, HashSet<string> hadGradient)
    {
        using var noGrad = no_grad();
        foreach (var (path, parameter) in layout.Weights)
        {
            using var grad = parameter.grad;
            if (hadGradient.Contains(path))
            {
                if (grad is null)
                {
                    using var zeros = zeros_like(parameter);
                    parameter.grad = zeros;
                }
                else
                {
                    grad.zero_();
                }
            }
            else if (grad is not null)
            {
                parameter.grad = null;
            }
        }
    }

    private static string Required(IReadOnlyDictionary<string, string> metadata, string key, string what) =>
        metadata.TryGetValue(key, out var value) ? value : throw new LoraFileException($"{what} lacks the metadata entry '{key}'.");

    private static long ParseStep(string text, string what) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long step)
            ? step
            : throw new LoraFileException($"{what}: '{StepKey}' is '{text}', not a non-negative integer.");

    private static T ParseJson<T>(string text, string key, string what) where T : class
    {
        try
        {
            var value = JsonSerializer.Deserialize<T>(text);
            if (value is not null && !ContainsNull(value))
                return value;
        }
        catch (JsonException)
        {
        }
        throw new LoraFileException($"{what}: the metadata entry '{key}' is not the JSON list of names it should be.");
    }

    private static bool ContainsNull(object value) => value switch
    {
        List<List<string>> groups => groups.Any(group => group is null || group.Any(name => name is null)),
        List<string> names => names.Any(name => name is null),
        _ => false,
    };

    private static string Names(List<string> names) =>
        names.Count == 0 ? "none" : string.Join(", ", names.Take(NamesShown)) + (names.Count > NamesShown ? $", and {names.Count - NamesShown} more" : "");

    private static void Append(StringBuilder text, string title, List<string> names)
    {
        if (names.Count > 0)
            text.Append($"\n  {title}, {names.Count}: {Names(names)}");
    }

    private sealed class Reset(Action reset) : IDisposable
    {
        public void Dispose() => reset();
    }
}
