using System.CommandLine;
using System.Globalization;
using LoraGen.Files;

namespace LoraGen.Cli;

/// <summary><c>loragen inspect</c>: an adapter directory's config, its layers with shapes and counts, and its size.</summary>
internal static class InspectCommand
{
    public static Command Create(TextWriter output)
    {
        var directory = new Argument<string>("adapter-dir") { Description = "A directory holding adapter_config.json and adapter_model.safetensors." };
        var prefix = new Option<string>("--key-prefix") { Description = "What precedes module paths in the keys.", DefaultValueFactory = _ => "base_model.model." };
        var command = new Command("inspect", "Show an adapter's config, each adapted layer (kind, rank, scaling, shapes, parameters) and its size on disk.")
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
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Adapter directory '{directory}' does not exist.");
        var configPath = Path.Combine(directory, AdapterConfig.FileName);
        var weightsPath = Path.Combine(directory, AdapterFileExtensions.WeightsFileName);
        var config = AdapterConfig.Read(configPath);
        using var weights = SafetensorsReader.Open(weightsPath);

        var w = output;
        w.WriteLine($"adapter {directory}");
        w.WriteLine(Invariant($"  LoRA r {config.Rank}, lora_alpha {config.Alpha:G6}, dropout {config.Dropout:G6}, use_rslora {(config.UseRsLora ? "true" : "false")}, init {config.Init}"));
        w.WriteLine($"  target_modules: {Join(config.TargetModules)}");
        if (config.RankPattern.Count > 0)
            w.WriteLine($"  rank_pattern: {Join(config.RankPattern.Select(p => $"{p.Key}={p.Value}"))}");
        if (config.AlphaPattern.Count > 0)
            w.WriteLine($"  alpha_pattern: {Join(config.AlphaPattern.Select(p => Invariant($"{p.Key}={p.Value:G6}")))}");
        if (config.ModulesToSave is { Count: > 0 } modules)
            w.WriteLine($"  modules_to_save: {Join(modules)}");
        if (config.BaseModelNameOrPath is { } baseModel)
            w.WriteLine($"  base_model_name_or_path: {baseModel}");

        var layers = new SortedDictionary<string, (SafetensorsTensorInfo? A, SafetensorsTensorInfo? B)>(StringComparer.Ordinal);
        var others = new List<SafetensorsTensorInfo>();
        foreach (var tensor in weights.Tensors)
        {
            string key = tensor.Name.StartsWith(prefix, StringComparison.Ordinal) ? tensor.Name[prefix.Length..] : tensor.Name;
            if (AdapterMerge.SplitAdapterKey(key) is var (path, suffix))
            {
                var entry = layers.GetValueOrDefault(path);
                layers[path] = suffix.Contains("_A", StringComparison.Ordinal) ? (tensor, entry.B) : (entry.A, tensor);
            }
            else
            {
                others.Add(tensor);
            }
        }

        w.WriteLine();
        w.WriteLine($"{"layer",-28} {"kind",-9} {"rank",4} {"scaling",8} {"A",-16} {"B",-16} {"parameters",12}");
        long adapterParameters = 0;
        foreach (var (path, (a, b)) in layers)
        {
            long count = (a?.ElementCount ?? 0) + (b?.ElementCount ?? 0);
            adapterParameters += count;
            var lora = config.ConfigFor(path);
            w.WriteLine(Invariant($"{path,-28} {Kind(a, b),-9} {a?.Shape[0] ?? 0,4} {lora.Scaling,8:G4} {a?.ShapeText ?? "missing",-16} {b?.ShapeText ?? "missing",-16} {count,12:N0}"));
        }
        long savedParameters = others.Sum(t => t.ElementCount);
        foreach (var tensor in others)
            w.WriteLine(Invariant($"{tensor.Name,-28} {"trained",-9} {"",4} {"",8} {tensor.ShapeText,-16} {"",-16} {tensor.ElementCount,12:N0}"));

        w.WriteLine();
        w.WriteLine(Invariant($"{layers.Count} adapted layers, {adapterParameters:N0} adapter parameters") +
            (others.Count > 0 ? Invariant($", {savedParameters:N0} in {others.Count} modules_to_save tensors") : "") +
            $"; dtypes {Join(weights.Tensors.Select(t => t.DType.ToString()).Distinct())}");
        long weightsBytes = new FileInfo(weightsPath).Length, configBytes = new FileInfo(configPath).Length;
        w.WriteLine(Invariant($"on disk: {weightsBytes + configBytes:N0} bytes ({AdapterFileExtensions.WeightsFileName} {weightsBytes:N0}, {AdapterConfig.FileName} {configBytes:N0})"));
    }

    private static string Kind(SafetensorsTensorInfo? a, SafetensorsTensorInfo? b) => a?.Name.EndsWith("lora_embedding_A", StringComparison.Ordinal) == true
        ? "Embedding"
        : (a ?? b)?.Shape.Count switch { 2 => "Linear", 3 => "Conv1d", 4 => "Conv2d", _ => "?" };

    private static string Join(IEnumerable<string> values)
    {
        var text = string.Join(", ", values);
        return text.Length == 0 ? "(none)" : text;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
