using System.Buffers.Binary;
using LoraGen.Files;

namespace LoraGen.Cli.Tests;

/// <summary>Runs <c>loragen</c> in-process (the same entry point as Main, with its own writers) and builds
/// small adapter and checkpoint files to run it on.</summary>
internal static class CliHarness
{
    public static (int Code, string Output, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = LoragenCommand.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    public static byte[] F32(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    public static float[] Singles(byte[] bytes) =>
        Enumerable.Range(0, bytes.Length / 4).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4))).ToArray();

    public static SafetensorsTensor Tensor(string name, long[] shape, params float[] values) =>
        new(name, SafetensorsDType.F32, shape, () => F32(values));

    /// <summary>Writes an adapter directory with the given config and tensors; returns its path.</summary>
    public static string Adapter(string directory, AdapterConfig config, params SafetensorsTensor[] tensors) =>
        AdapterAt(Path.Combine(directory, "adapter"), config, tensors);

    /// <summary>Writes an adapter directory at <paramref name="adapter"/> itself (e.g. a named adapter's sub-folder).</summary>
    public static string AdapterAt(string adapter, AdapterConfig config, params SafetensorsTensor[] tensors)
    {
        Directory.CreateDirectory(adapter);
        File.WriteAllBytes(Path.Combine(adapter, "adapter_config.json"), config.ToJson());
        SafetensorsWriter.WriteFile(Path.Combine(adapter, "adapter_model.safetensors"), tensors,
            new Dictionary<string, string> { ["format"] = "pt" });
        return adapter;
    }

    /// <summary>Linear 3→2 with A [1, 3], B [2, 1], lora_alpha 2 at r = 1 (scaling 2), and a base checkpoint
    /// <c>base.safetensors</c> beside it with <c>proj.weight</c> [2, 3] and <c>proj.bias</c> [2].</summary>
    public static string Fixture(string directory)
    {
        var adapter = Adapter(directory, new AdapterConfig { Rank = 1, Alpha = 2, TargetModules = ["proj"] },
            Tensor("base_model.model.proj.lora_A.weight", [1, 3], 1f, 2f, 3f),
            Tensor("base_model.model.proj.lora_B.weight", [2, 1], 0.5f, -1f));
        SafetensorsWriter.WriteFile(Path.Combine(directory, "base.safetensors"),
        [
            Tensor("proj.weight", [2, 3], 1f, 0f, 0f, 0f, 1f, 0f),
            Tensor("proj.bias", [2], 0.25f, 0.5f),
        ]);
        return adapter;
    }
}
