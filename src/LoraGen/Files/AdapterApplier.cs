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
        // The file decides each target's options; refusing a rank PEFT would load helps no one.
        var loraOptions = LoraOptions.Default with
        {
            AllowNoSavings = true,
            Reconfigure = (where, _) => config.ConfigFor(options.FilePath(where)),
        };
        var plan = LoraModelExtensions.Plan(hosts, loraOptions);

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
