using LoraGen.Files;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>Creates adapters from a file's config, as PEFT's <c>from_pretrained</c> does, with a way back.</summary>
internal static class AdapterApplier
{
    /// <summary>
    /// Wraps every target of every host with the rank and alpha the config gives its path, and freezes the
    /// rest as ApplyLora does. Returns the action that puts the plain layers and the requires_grad flags back.
    /// Checks every target before changing anything.
    /// </summary>
    public static Action Apply(nn.Module model, List<(string Path, ILoraModule Host)> hosts, AdapterConfig config, AdapterFileOptions options)
    {
        // The file decides the rank; refusing one PEFT would load helps no one.
        var loraOptions = LoraOptions.Default with { AllowNoSavings = true };
        var plan = new List<(ILoraModule Host, LoraTargetInfo Target, nn.Module<Tensor, Tensor> Layer)>();
        foreach (var (path, host) in hosts)
        {
            foreach (var target in host.LoraTargets)
            {
                var where = LoraTree.Join(path, target.Field);
                var layer = host.GetLoraTarget(target.Field);
                var fromFile = target with { Config = config.ConfigFor(options.FilePath(where)) };
                LoraTargetValidator.Validate(where, LoraLayer.ShapeOf(layer, where), fromFile.Config, loraOptions);
                plan.Add((host, fromFile, layer));
            }
        }

        var requiresGrad = model.parameters().Select(parameter => (parameter, parameter.requires_grad)).ToList();
        LoraModelExtensions.WrapAll(plan, loraOptions);
        LoraModelExtensions.Freeze(model);
        return () =>
        {
            foreach (var (host, target, original) in plan)
            {
                if (host.GetLoraTarget(target.Field) is LoraLayer wrapper)
                    foreach (var (_, parameter) in wrapper.NamedAdapterParameters)
                        parameter.Dispose();
                host.SetLoraTarget(target.Field, original);
            }
            foreach (var (parameter, flag) in requiresGrad)
                parameter.requires_grad = flag;
        };
    }
}
