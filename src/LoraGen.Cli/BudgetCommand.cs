using System.CommandLine;
using System.Globalization;
using LoraGen.SourceShared;

namespace LoraGen.Cli;

/// <summary><c>loragen budget</c>: the seed's arithmetic for one layer — what an adapter of rank r costs and saves.</summary>
internal static class BudgetCommand
{
    public static Command Create(TextWriter output)
    {
        var inFeatures = new Option<long>("--in") { Description = "Input features (Linear), input channels (conv), or number of embeddings.", Required = true };
        var outFeatures = new Option<long>("--out") { Description = "Output features, output channels, or embedding dimension.", Required = true };
        var rank = new Option<int>("--rank") { Description = "The adapter's rank r.", Required = true };
        var kind = new Option<string>("--kind") { Description = "linear, conv or embedding.", DefaultValueFactory = _ => "linear" };
        kind.AcceptOnlyFromAmong("linear", "conv", "embedding");
        var kernel = new Option<string>("--kernel") { Description = "Conv kernel size: 3, or 3x3 (elements multiply). Conv only.", DefaultValueFactory = _ => "1" };

        var command = new Command("budget", "Adapter parameters r·(in·k + out), their share of the layer's in·out·k, whether the adapter saves anything, and the largest rank that still saves at least half.")
        {
            inFeatures, outFeatures, rank, kind, kernel,
        };
        command.SetAction(parsed =>
        {
            var layerKind = parsed.GetValue(kind) switch
            {
                "conv" => LoraLayerKind.Conv2d,
                "embedding" => LoraLayerKind.Embedding,
                _ => LoraLayerKind.Linear,
            };
            long kernelElements = KernelElements(parsed.GetValue(kernel)!, layerKind);
            long inSize = parsed.GetValue(inFeatures), outSize = parsed.GetValue(outFeatures);
            int r = parsed.GetValue(rank);
            if (inSize < 1 || outSize < 1)
                throw new LoragenCommand.BadInputException($"--in and --out must be at least 1, but they are {inSize} and {outSize}.");
            if (r < 1)
                throw new LoragenCommand.BadInputException($"--rank must be at least 1, but it is {r}.");
            Report(output, new LoraLayerShape(layerKind, inSize, outSize, kernelElements), r);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static long KernelElements(string text, LoraLayerKind kind)
    {
        var parts = text.Split('x', 'X', '×');
        long product = 1;
        foreach (var part in parts)
        {
            if (!long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long size) || size < 1)
                throw new LoragenCommand.BadInputException($"--kernel must be sizes of at least 1 such as 3 or 3x3, but it is '{text}'.");
            product = checked(product * size);
        }
        if (product != 1 && kind != LoraLayerKind.Conv2d)
            throw new LoragenCommand.BadInputException("--kernel applies to --kind conv only.");
        return product;
    }

    private static void Report(TextWriter output, LoraLayerShape shape, int rank)
    {
        long layer, adapter, perRank;
        try
        {
            layer = checked(shape.InFeatures * shape.OutFeatures * shape.KernelElements);
            perRank = checked(shape.InFeatures * shape.KernelElements + shape.OutFeatures);
            adapter = checked(rank * perRank);
        }
        catch (OverflowException)
        {
            throw new LoragenCommand.BadInputException("These sizes overflow 64-bit parameter counts.");
        }
        string formula = shape.Kind == LoraLayerKind.Conv2d ? "r·(in·k + out)" : "r·(in + out)";
        string layerFormula = shape.Kind == LoraLayerKind.Conv2d ? "in·out·k" : "in·out";
        // --kind conv stands for either convolution: its kernel may be 3 or 3x3.
        string name = LayerDescription.Describe(shape.Kind == LoraLayerKind.Conv2d ? "Conv" : shape.Kind.ToString(),
            shape.InFeatures, shape.OutFeatures, shape.KernelElements);
        long halfRank = shape.HalfSavingRank;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}, rank {rank}"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  layer weight ({layerFormula}):  {layer,15:N0} parameters"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  adapter ({formula}): {adapter,15:N0} parameters = {100.0 * adapter / layer:F4}% of the layer"));
        output.WriteLine(adapter < layer
            ? string.Create(CultureInfo.InvariantCulture, $"  saves {layer - adapter:N0} parameters ({100.0 * (layer - adapter) / layer:F2}%)")
            : string.Create(CultureInfo.InvariantCulture, $"  saves nothing: the adapter is {adapter - layer:N0} parameters larger than the layer"));
        output.WriteLine(halfRank >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"  largest rank that saves at least half: {halfRank} ({halfRank * perRank:N0} parameters)")
            : "  no rank saves at least half on a layer this small");
    }
}
