using LoraGen.Files;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>One parameter an adapter file holds: its key, and where it lives in the model.</summary>
/// <param name="Key">The key in the file, e.g. <c>base_model.model.blocks.0.up.lora_A.weight</c>.</param>
/// <param name="Parameter">The parameter in the model.</param>
internal sealed record AdapterSlot(string Key, Parameter Parameter)
{
    /// <summary>Every parameter of adapter <paramref name="adapter"/> and of its trainable modules, in the model's
    /// order, under the keys PEFT writes (the adapter name left out).</summary>
    public static List<AdapterSlot> Of(nn.Module model, AdapterFileOptions options, string adapter)
    {
        var slots = new List<AdapterSlot>();
        foreach (var (path, layer) in LoraTree.Layers(model))
            if (layer.AdapterNames.Contains(adapter))
                foreach (var (name, parameter) in layer.AdapterParametersOf(adapter))
                    slots.Add(new AdapterSlot(options.Key(path, name), parameter));
        foreach (var (path, module) in TrainableModules.Of(model, adapter))
            foreach (var (name, parameter) in module.named_parameters())
                slots.Add(new AdapterSlot(options.Key(path, name), parameter));
        return slots;
    }

    /// <summary>What saving adapter <paramref name="adapter"/> writes, key and value: its parameters, except that a
    /// PiSSA/OLoRA adapter is written as PEFT's <c>path_initial_model_for_weight_conversion</c> writes it, a plain LoRA of
    /// rank 2r on the original base: A' = [A; A₀], B' = [B, −B₀] (with the alpha doubled by the config writer, the
    /// scaling is unchanged, so s·B'·A' = s·B·A − s·B₀·A₀, the change since initialisation). The caller disposes the
    /// converted tensors (<c>Owned</c>).</summary>
    public static List<(string Key, Tensor Value, bool Owned)> ForSaving(nn.Module model, AdapterFileOptions options, string adapter)
    {
        var converted = new Dictionary<Parameter, Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (_, layer) in LoraTree.Layers(model))
        {
            if (!layer.AdapterNames.Contains(adapter) || layer.InitialFactorsOf(adapter) is not { } initial)
                continue;
            if (layer.ConfigOf(adapter).UseDora)
                throw new InvalidOperationException(
                    $"Adapter '{adapter}' of {layer.Shape} combines {layer.ConfigOf(adapter).Init} with DoRA: its magnitude belongs to the residual " +
                    "base, so it cannot be saved as a plain LoRA on the original base. Use one of the two.");
            var (a, b) = layer.FactorsOf(adapter);
            using (no_grad())
            {
                converted[a] = cat([a.detach(), initial.A.to(a.dtype, a.device)], 0);
                converted[b] = cat([b.detach(), initial.B.to(b.dtype, b.device).neg()], 1);
            }
        }
        return Of(model, options, adapter)
            .Select(slot => converted.TryGetValue(slot.Parameter, out var value) ? (slot.Key, value, true) : (slot.Key, (Tensor)slot.Parameter, false))
            .ToList();
    }
}

/// <summary>Checks a file's tensors against the model's and copies them in, all or nothing.</summary>
internal static class TensorLoader
{
    private const int NamesShown = 12;

    /// <summary>
    /// Checks that the file holds exactly <paramref name="targets"/>' keys, with the same shapes and a usable
    /// dtype (any float into a float, otherwise the same type), reads and converts every tensor once without
    /// keeping it, and only then copies them in, one at a time, under no_grad. <paramref name="extraMismatches"/> adds problems found elsewhere
    /// (e.g. a scaling that differs), reported in the same error.
    /// In a model built on the meta device (<paramref name="meta"/>), a meta target's value goes into a new CPU tensor
    /// that takes the meta tensor's place once the copy is done (<see cref="MetaTensors.Destination"/>).
    /// </summary>
    /// <exception cref="LoraFileException">Keys are missing, unexpected or mismatched; nothing was changed.</exception>
    public static void CheckAndCopy(IReadOnlyList<(string Key, Tensor Target)> targets, ITensorSource file,
        string what, IEnumerable<string> extraMismatches, string advice, MetaTensors? meta = null)
    {
        var expected = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, target) in targets)
            expected[key] = target;
        var missing = expected.Keys.Where(key => file.Find(key) is null).ToList();
        var unexpected = file.Tensors.Select(t => t.Name).Where(name => !expected.ContainsKey(name)).ToList();
        var mismatched = new List<string>(extraMismatches);
        foreach (var info in file.Tensors)
        {
            if (!expected.TryGetValue(info.Name, out var target))
                continue;
            if (!info.Shape.SequenceEqual(target.shape))
                mismatched.Add($"{info.Name}: {info.DType} {info.ShapeText} in the file, [{string.Join(", ", target.shape)}] in the model");
            else if (!Convertible(info.DType, target.dtype))
                mismatched.Add($"{info.Name}: {info.DType} in the file cannot be stored in the model's {target.dtype}");
        }
        if (missing.Count + unexpected.Count + mismatched.Count > 0)
            throw new LoraFileException(Describe(what, missing, unexpected, mismatched, advice));

        // Tensor by tensor, so the extra memory is about one tensor, not the file. The first pass reads and converts
        // everything and keeps nothing: a file that cannot be read to the end fails there, with nothing changed.
        using (var staging = new StagingBuffers())
        {
            foreach (var (key, target) in targets)
            {
                using var raw = staging.Read(file, file.Find(key)!);
                using var converted = raw.to(target.dtype, target.is_meta ? CPU : target.device);
            }
        }
        // The second pass copies. A meta target's new CPU tensor in the file's dtype is read straight into (no
        // second copy of the tensor alive); anything else goes through a buffer and copy_, which converts.
        using (var staging = new StagingBuffers())
        {
            foreach (var (key, target) in targets)
            {
                var info = file.Find(key)!;
                var into = meta is not null ? meta.Destination(target) : target;
                bool fresh = !ReferenceEquals(into, target);   // (a tied meta target is disposed once replaced)
                if (fresh && into.dtype == TensorBytes.ToTorch(info.DType))
                    file.ReadInto(info, into.bytes);
                else
                {
                    using var raw = staging.Read(file, info);
                    using (no_grad())
                        into.copy_(raw);
                }
                meta?.Copied(target);
            }
        }
    }

    private static bool Convertible(SafetensorsDType file, ScalarType model) =>
        file.IsFloatingPoint() ? TensorBytes.IsFloatingPoint(model) : TensorBytes.ToTorch(file) == model;

    private static string Describe(string what, List<string> missing, List<string> unexpected, List<string> mismatched, string advice)
    {
        var text = new System.Text.StringBuilder($"{what} does not fit this model; nothing was changed.");
        Append(text, "missing (in the model, not in the file)", missing);
        Append(text, "unexpected (in the file, not in the model)", unexpected);
        Append(text, "mismatched", mismatched);
        text.Append('\n').Append(advice);
        return text.ToString();
    }

    private static void Append(System.Text.StringBuilder text, string title, List<string> names)
    {
        if (names.Count == 0)
            return;
        text.Append($"\n  {title}, {names.Count}: ");
        text.Append(string.Join(", ", names.Take(NamesShown)));
        if (names.Count > NamesShown)
            text.Append($", and {names.Count - NamesShown} more");
    }
}
