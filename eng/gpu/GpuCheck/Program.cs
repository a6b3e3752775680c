using System.Text.Json;
using LoraGen;
using LoraGen.Benchmarks.Models;
using LoraGen.GpuCheck;
using TorchSharp;
using static TorchSharp.torch;

// Usage: GpuCheck [--out DIR] [--device auto|cpu|cuda] [--steps N]
// Reports whether TorchSharp loads here and whether CUDA is available, then times the LoRA and the full
// fine-tuning step of the benchmark MLP in float32 and bfloat16, and writes results.json and results.md.
var options = Options.Parse(args);
Directory.CreateDirectory(options.Out);
var report = new Dictionary<string, object?>
{
    ["machine"] = Environment.MachineName,
    ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
    ["ld_library_path"] = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH"),
};

try
{
    TorchNative.EnsureLoaded();
    report["torchsharp_loads"] = true;
}
catch (Exception error)
{
    report["torchsharp_loads"] = false;
    report["load_error"] = error.ToString();
    Write(options.Out, report, []);
    Console.Error.WriteLine($"TorchSharp does not load here: {error.Message}");
    return 1;
}

report["cuda_available"] = cuda.is_available();
report["cuda_devices"] = cuda.is_available() ? cuda.device_count() : 0;
Console.WriteLine($"TorchSharp loads; CUDA available: {report["cuda_available"]} ({report["cuda_devices"]} device(s))");

Device device;
try
{
    device = LoraDevice.Select(options.Device);
}
catch (Exception error) when (error is InvalidOperationException or ArgumentException)
{
    report["device_error"] = error.Message;
    Write(options.Out, report, []);
    Console.Error.WriteLine(error.Message);
    return 1;
}
var results = new List<TrainingStep.Result>();
foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
{
    foreach (bool lora in new[] { true, false })
    {
        try
        {
            var result = TrainingStep.Run(lora, device, dtype, warmup: 5, steps: options.Steps);
            results.Add(result);
            Console.WriteLine($"{result.Mode,-4} {result.DType,-8} on {result.Device}: {result.MillisecondsPerStep:F2} ms/step, loss {result.FirstLoss:F4} → {result.LastLoss:F4}");
        }
        catch (Exception error)
        {
            report[$"error_{(lora ? "lora" : "full")}_{dtype}"] = error.ToString();
            Console.Error.WriteLine($"{(lora ? "lora" : "full")} {dtype} failed: {error.Message}");
        }
    }
}
Write(options.Out, report, results);
return results.Count == 4 && results.All(r => r.LastLoss < r.FirstLoss) ? 0 : 1;

static void Write(string directory, Dictionary<string, object?> report, List<TrainingStep.Result> results)
{
    report["steps"] = results;
    File.WriteAllText(Path.Combine(directory, "loragen.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
}

internal sealed record Options(string Out, string Device, int Steps)
{
    public static Options Parse(string[] args)
    {
        var options = new Options("gpu-results", "auto", 50);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            options = args[i] switch
            {
                "--out" => options with { Out = Value() },
                "--device" => options with { Device = Value() },
                "--steps" => options with { Steps = int.Parse(Value(), System.Globalization.CultureInfo.InvariantCulture) },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'. Usage: GpuCheck [--out DIR] [--device {LoraDevice.Choices}] [--steps N]"),
            };
        }
        return options;
    }
}
