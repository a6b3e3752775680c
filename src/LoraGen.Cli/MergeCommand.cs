using LoraGen.Files;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Diagnostics;
using System.Globalization;

namespace LoraGen.Cli;

/// <summary><c>loragen merge</c>: base checkpoint + adapter directories, each with a weight → merged checkpoint, offline.</summary>
internal static class MergeCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var basePath = new Option<string>("--base") { Description = "The base model's .safetensors checkpoint.", Required = true };
        var adapter = new Option<string[]>("--adapter")
        {
            Description = "An adapter directory (adapter_config.json + adapter_model.safetensors). Repeat to merge several into the " +
                "one checkpoint. A named adapter of a directory saved with several is its sub-folder: --adapter DIR/<name>.",
            Required = true,
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var weight = new Option<double[]>("--weight")
        {
            Description = "The weight of each --adapter, in the same order: one --weight per --adapter, or none (every weight 1). " +
                "The merge adds Σ weight·scaling·B·A, so 0.5 merges half an adapter's update and -1 subtracts it. " +
                "modules_to_save tensors are copied as they are, unweighted.",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = ParseWeights,
        };
        var outPath = new Option<string>("--out")
        {
            Description = "Where to write the merged .safetensors checkpoint, in an existing folder. A file already there is replaced " +
                "atomically, but never --base (unless --force) or the adapters' own files.",
            Required = true,
        };
        var force = new Option<bool>("--force") { Description = "Allow --out to be the --base checkpoint itself (by any path or link): the base is replaced by the merge." };
        var prefix = new Option<string>("--key-prefix") { Description = "What precedes module paths in the adapters' keys.", DefaultValueFactory = _ => PeftLayout.KeyPrefix };
        var command = new Command("merge",
            "Write a checkpoint with W + Σ weight·scaling·B·A for every adapted weight, over every --adapter (computed in float32, " +
            "float64 for an F64 base, stored in the base dtype). Every adapter is checked (against its config, the base and the " +
            "others) before anything is written. Needs no model code and no TorchSharp. " +
            "Example: loragen merge --base model.safetensors --adapter out/adapter --adapter out/adapter/letters --weight 1 --weight 0.5 --out merged.safetensors")
        {
            basePath, adapter, weight, outPath, force, prefix,
        };
        command.SetAction(parsed =>
        {
            string baseFile = parsed.GetValue(basePath)!, outFile = parsed.GetValue(outPath)!;
            var adapterDirectories = parsed.GetValue(adapter)!;
            var weights = parsed.GetValue(weight) ?? [];
            // Every path is checked, and every problem reported, before a tensor is read.
            var problems = new List<string?>
            {
                PathArguments.InputFile(baseFile, "--base", "the base model's .safetensors checkpoint file"),
            };
            problems.AddRange(adapterDirectories.Select(directory => PathArguments.AdapterDirectory(directory, "--adapter")));
            if (weights.Length > 0 && weights.Length != adapterDirectories.Length)
                problems.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{adapterDirectories.Length} --adapter but {weights.Length} --weight: give one --weight per --adapter, in the same order, or no --weight (every weight 1)."));
            problems.Add(PathArguments.OutputFile(outFile, "--out"));
            problems.Add(PathArguments.MergeOutputIsNotAnInput(outFile, baseFile, adapterDirectories, parsed.GetValue(force)));
            if (problems.OfType<string>().ToList() is { Count: > 0 } found)
                throw new LoragenCommand.BadInputException(found);

            var clock = Stopwatch.StartNew();
            var progress = new ThrottledProgress(error);
            var sources = adapterDirectories.Select((directory, i) => (directory, weights.Length > 0 ? weights[i] : 1.0)).ToList();
            var result = AdapterMerge.Merge(baseFile, sources, outFile,
                new AdapterFileOptions { KeyPrefix = parsed.GetValue(prefix)! }, progress);
            string from = sources.Count == 1 ? "" : string.Create(CultureInfo.InvariantCulture,
                $" from {sources.Count} adapters ({string.Join(", ", sources.Select(s => $"{s.directory} ×{s.Item2:G6}"))})");
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"merged {result.MergedWeights} weights{from}, replaced {result.ReplacedTensors} modules_to_save tensors, copied {result.CopiedTensors}" +
                $"{(result.DroppedTensors > 0 ? $", dropped {result.DroppedTensors} adapter tensors of the base checkpoint" : "")} " +
                $"→ {outFile} in {clock.Elapsed.TotalSeconds:F1} s"));
            return ExitCodes.Ok;
        });
        return command;
    }

    // Decimal numbers with a '.' whatever the machine's culture, finite; anything else is a usage error (exit code 2).
    private static double[] ParseWeights(ArgumentResult result)
    {
        var values = new double[result.Tokens.Count];
        for (int i = 0; i < values.Length; i++)
        {
            string text = result.Tokens[i].Value;
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !double.IsFinite(values[i]))
            {
                result.AddError($"--weight '{text}' is not a number: give a finite decimal number such as 1, 0.5 or -1 (with '.' as the decimal point).");
                return [];
            }
        }
        return values;
    }

    /// <summary>Progress on standard error, at most a few lines a second, always the last one.</summary>
    private sealed class ThrottledProgress(TextWriter error) : IProgress<AdapterMergeProgress>
    {
        private readonly Stopwatch sinceLast = Stopwatch.StartNew();
        private bool first = true;

        public void Report(AdapterMergeProgress value)
        {
            if (!first && value.Done != value.Total && sinceLast.ElapsedMilliseconds < 250)
                return;
            first = false;
            sinceLast.Restart();
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[{value.Done}/{value.Total}] {value.Key}"));
        }
    }
}
