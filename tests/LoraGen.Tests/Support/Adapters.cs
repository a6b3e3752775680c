using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests.Support;

public static class Adapters
{
    /// <summary>Gives every adapter matrix random values, so the update is not zero.</summary>
    public static void Randomize(LoraLayer layer, double std = 0.5)
    {
        using var noGrad = no_grad();
        foreach (var (_, parameter) in layer.NamedAdapterParameters)
            parameter.normal_(0, std);
    }

    /// <summary>Randomizes every adapter in the model.</summary>
    public static void RandomizeAll(nn.Module model, double std = 0.2)
    {
        foreach (var (_, layer) in model.LoraLayers())
            Randomize(layer, std);
    }

    /// <summary>One matrix of the default adapter by its name in PEFT's files, e.g. "lora_A.weight".</summary>
    public static Parameter Adapter(LoraLayer layer, string name) =>
        layer.AdapterParametersOf(LoraLayer.DefaultAdapter).Single(p => p.Name == name).Parameter;

    /// <summary>Numbers in the adapter.</summary>
    public static long Count(LoraLayer layer) => layer.NamedAdapterParameters.Sum(p => p.Parameter.numel());
}
