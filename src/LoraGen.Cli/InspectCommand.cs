using System.CommandLine;
using System.Globalization;
using LoraGen.Files;

namespace LoraGen.Cli;

/// <summary><c>loragen inspect</c>: an adapter directory's config, its layers with shapes and counts, and its size;
/// exit code 1, with every problem listed, for an adapter LoadAdapter would refuse. A directory saved with several
/// named adapters (its own files for "default", <c>&lt;name&gt;/</c> sub-folders for the others) shows each.</summary>
internal static class InspectCommand
{
    public static Command Create(TextWriter output)
    {
        var directory = new Argument<string>("adapter-dir")
        {
            Description = "A directory holding adapter_config.json and adapter_model.safetensors, and/or named adapters in " +
                "sub-folders <name>/ (as a save of several adapters writes them): each is shown.",
        };
        var prefix = new Option<string>("--key-prefix") { Description = "What precedes module paths in the keys.", DefaultValueFactory = _ => PeftLayout.KeyPrefix };
        var command = new Command("inspect",
            "Show an adapter's config, each adapted layer (kind, rank, scaling, shapes, parameters) and its size on disk, " +
            "after the checks LoadAdapter makes (tensors that disagree with the config: exit code 1, every problem listed). " +
            "A directory saved with several named adapters shows its own as \"default\" and each sub-folder adapter by its name.")
        {
            directory, prefix,
        };
        command.SetAction(parsed =>
        {
            Inspect(output, parsed.GetValue(directory)!, parsed.GetValue(prefix)!);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static void Inspect(TextWriter output, string directory, string prefix)
    {
        if (PathArguments.AdapterCollection(directory) is { } problem)
            throw new LoragenCommand.BadInputException(problem);
        // The directory's own adapter ("default", as SaveAdapter and PEFT write it), then each named one in a sub-folder.
        var adapters = new List<(string Name, string Path)>();
        if (PathArguments.HasAdapterFile(directory))
            adapters.Add(("default", directory));
        adapters.AddRange(PathArguments.NamedAdapters(directory).Select(name => (name, Path.Combine(directory, name))));
        bool several = adapters.Count > 1 || adapters[0].Path != directory;

        // Every adapter is opened and checked before anything is printed; one refused refuses the whole directory,
        // with every adapter's problems listed.
        var opened = new List<(string Name, string Path, AdapterConfig Config, SafetensorsReader Weights, AdapterContents Contents)>();
        var problems = new List<string>();
        try
        {
            foreach (var (name, path) in adapters)
            {
                if (PathArguments.MissingAdapterFile(path, $"'{path}'") is { } missing)
                {
                    problems.Add(missing);
                    continue;
                }
                try
                {
                    // The pair a load would read: after a crash mid-save, the config the weights were saved with.
                    var (config, weights) = AdapterDirectory.Open(path);
                    try
                    {
                        // LoadAdapter's checks: a table showing a rank and scaling the config does not give would
                        // describe an adapter that cannot be loaded.
                        var contents = AdapterConsistency.Check(config, weights, prefix, $"Adapter '{path}'");
                        opened.Add((name, path, config, weights, contents));
                    }
                    catch
                    {
                        weights.Dispose();
                        throw;
                    }
                }
                catch (IOException failure) when (several)
                {
                    problems.Add(failure.Message);
                }
            }
            if (problems.Count > 0)
                throw new LoragenCommand.BadInputException(problems);

            if (several)
            {
                output.WriteLine($"{directory}: {adapters.Count} adapter{(adapters.Count == 1 ? "" : "s")}: " +
                    string.Join(", ", adapters.Select(a => a.Path == directory ? "default (the directory's own files)" : $"{a.Name} ({a.Name}/)")) +
                    "; LoadAdapter(dir, name) reads each by its name.");
                output.WriteLine();
            }
            for (int i = 0; i < opened.Count; i++)
            {
                if (i > 0)
                    output.WriteLine();
                var (name, path, config, weights, contents) = opened[i];
                Describe(output, several ? $"adapter '{name}' {path}" : $"adapter {path}", path, config, weights, contents);
            }
        }
        finally
        {
            foreach (var entry in opened)
                entry.Weights.Dispose();
        }
    }

    private static void Describe(TextWriter output, string title, string directory, AdapterConfig config, SafetensorsReader weights, AdapterContents contents)
    {
        var w = output;
        w.WriteLine(title);
        w.WriteLine(Invariant($"  LoRA r {config.Rank}, lora_alpha {config.Alpha:G6}, dropout {config.Dropout:G6}, use_rslora {(config.UseRsLora ? "true" : "false")}, init {config.InitLoraWeights ?? config.Init.ToString()}"));
        foreach (var line in Targets(config))
            w.WriteLine($"  {line}");
        if (config.RankPattern.Count > 0)
            w.WriteLine($"  rank_pattern: {Join(config.RankPattern.Select(p => $"{p.Key}={p.Value}"))}");
        if (config.AlphaPattern.Count > 0)
            w.WriteLine($"  alpha_pattern: {Join(config.AlphaPattern.Select(p => Invariant($"{p.Key}={p.Value:G6}")))}");
        if (config.TaskType is { } taskType)
            w.WriteLine($"  task_type: {taskType}");
        if (config.BaseModelNameOrPath is { } baseModel)
            w.WriteLine($"  base_model_name_or_path: {baseModel}");
        foreach (var note in config.Notes)
            w.WriteLine($"  note: {note}");

        w.WriteLine();
        w.WriteLine($"{"layer",-28} {"kind",-9} {"rank",4} {"scaling",8} {"A",-16} {"B",-16} {"parameters",12}");
        long adapterParameters = 0;
        foreach (var layer in contents.Layers)
        {
            long count = layer.A.ElementCount + layer.B.ElementCount;
            adapterParameters += count;
            w.WriteLine(Invariant($"{layer.Path,-28} {layer.Kind,-9} {layer.Rank,4} {layer.Config.Scaling,8:G4} {layer.A.ShapeText,-16} {layer.B.ShapeText,-16} {count,12:N0}"));
        }
        var saved = contents.SavedTensors.Select(entry => entry.Tensor).ToList();
        foreach (var tensor in saved)
            w.WriteLine(Invariant($"{tensor.Name,-28} {"trained",-9} {"",4} {"",8} {tensor.ShapeText,-16} {"",-16} {tensor.ElementCount,12:N0}"));

        w.WriteLine();
        w.WriteLine(Invariant($"{contents.Layers.Count} adapted layers, {adapterParameters:N0} adapter parameters") +
            (saved.Count > 0 ? Invariant($", {saved.Sum(t => t.ElementCount):N0} in {saved.Count} modules_to_save tensors") : "") +
            $"; dtypes {Join(weights.Tensors.Select(t => t.DType.ToString()).Distinct())}");
        long weightsBytes = new FileInfo(weights.Source).Length, configBytes = new FileInfo(Path.Combine(directory, AdapterConfig.FileName)).Length;
        w.WriteLine(Invariant($"on disk: {weightsBytes + configBytes:N0} bytes ({AdapterDirectory.WeightsFileName} {weightsBytes:N0}, {AdapterConfig.FileName} {configBytes:N0})"));
    }

    /// <summary>The module selection as PEFT matches it (AdapterConfig.Match): target_modules as names or
    /// <c>.name</c> suffixes, a whole-path regex, or all-linear; then exclude_modules, the layer filter and
    /// modules_to_save with the heads PEFT adds for the task type.</summary>
    private static IEnumerable<string> Targets(AdapterConfig config)
    {
        yield return config.TargetModulesPattern switch
        {
            { } all when string.Equals(all, AdapterConfig.AllLinear, StringComparison.OrdinalIgnoreCase) =>
                "target_modules: all-linear (every Linear but the output head)",
            { } pattern => $"target_modules: regex (whole path): {pattern}",
            null when config.TargetModules.Count == 0 => "target_modules: (none; PEFT would use its default for the model's architecture)",
            null => $"target_modules (names or .name suffixes): {Join(config.TargetModules)}",
        };
        if (config.ExcludeModulesPattern is { } exclude)
            yield return $"exclude_modules: regex (whole path): {exclude}";
        else if (config.ExcludeModules.Count > 0)
            yield return $"exclude_modules (names or .name suffixes): {Join(config.ExcludeModules)}";
        if (config.LayersToTransform is { Count: > 0 } layers)
            yield return $"layers_to_transform: {Join(layers.Select(i => i.ToString(CultureInfo.InvariantCulture)))} " +
                (config.LayersPattern is { Count: > 0 } patterns
                    ? $"(the index after layers_pattern {Join(patterns)})"
                    : "(the index of the first numbered segment after a named one)");
        var saved = config.EffectiveModulesToSave;
        if (saved.Count > 0)
        {
            yield return $"modules_to_save (trained in full, not adapted): {Join(saved)}";
            var heads = AdapterConfig.HeadModulesOf(config.TaskType);
            if (heads.Count > 0)
            {
                var added = heads.Where(head => config.ModulesToSave?.Contains(head, StringComparer.Ordinal) != true).ToList();
                yield return $"  {Join(heads)}: the heads PEFT adds for task_type {config.TaskType}" +
                    (added.Count > 0 ? $" ({Join(added)} not in the file's list, added as PEFT does)" : "");
            }
        }
    }

    private static string Join(IEnumerable<string> values)
    {
        var text = string.Join(", ", values);
        return text.Length == 0 ? "(none)" : text;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
