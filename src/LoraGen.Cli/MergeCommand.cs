using LoraGen.Files;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;

namespace LoraGen.Cli;

/// <summary><c>loragen merge</c>: base checkpoint + adapter directory → merged checkpoint, offline.</summary>
internal static class MergeCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var basePath = new Option<string>("--base") { Description = "The base model's .safetensors checkpoint.", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "The adapter directory (adapter_config.json + adapter_model.safetensors).", Required = true };
        var outPath = new Option<string>("--out")
        {
            Description = "Where to write the merged .safetensors checkpoint, in an existing folder. A file already there is replaced " +
                "atomically, but never --base (unless --force) or the adapter's own files.",
            Required = true,
        };
        var force = new Option<bool>("--force") { Description = "Allow --out to be the --base checkpoint itself (by any path or link): the base is replaced by the merge." };
        var prefix = new Option<string>("--key-prefix") { Description = "What precedes module paths in the adapter's keys.", DefaultValueFactory = _ => PeftLayout.KeyPrefix };
        var command = new Command("merge", "Write a checkpoint with W + scaling·B·A for every adapted weight (computed in float32, stored in the base dtype). Needs no model code and no TorchSharp.")
        {
            basePath, adapter, outPath, force, prefix,
        };
        command.SetAction(parsed =>
        {
            string baseFile = parsed.GetValue(basePath)!, adapterDirectory = parsed.GetValue(adapter)!, outFile = parsed.GetValue(outPath)!;
            // Every path is checked, and every problem reported, before a tensor is read.
            var problems = new[]
            {
                PathArguments.InputFile(baseFile, "--base", "the base model's .safetensors checkpoint file"),
                PathArguments.AdapterDirectory(adapterDirectory, "--adapter"),
                PathArguments.OutputFile(outFile, "--out"),
                PathArguments.MergeOutputIsNotAnInput(outFile, baseFile, adapterDirectory, parsed.GetValue(force)),
            }.OfType<string>().ToList();
            if (problems.Count > 0)
                throw new LoragenCommand.BadInputException(problems);

            var clock = Stopwatch.StartNew();
            var progress = new ThrottledProgress(error);
            var result = AdapterMerge.Merge(baseFile, adapterDirectory, outFile,
                new AdapterFileOptions { KeyPrefix = parsed.GetValue(prefix)! }, progress);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"merged {result.MergedWeights} weights, replaced {result.ReplacedTensors} modules_to_save tensors, copied {result.CopiedTensors}" +
                $"{(result.DroppedTensors > 0 ? $", dropped {result.DroppedTensors} adapter tensors of the base checkpoint" : "")} " +
                $"→ {outFile} in {clock.Elapsed.TotalSeconds:F1} s"));
            return ExitCodes.Ok;
        });
        return command;
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
