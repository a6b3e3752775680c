using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen;

/// <summary>
/// One named slot per adapter, as PEFT's <c>ModuleDict</c> / <c>ParameterDict</c>: registered under a LoRA layer as
/// <c>lora_A</c> (children <c>lora_A.default.weight</c>) or <c>lora_embedding_A</c> (parameters
/// <c>lora_embedding_A.default</c>), so in-memory paths are PEFT's. Unlike TorchSharp's dictionaries, an entry can
/// be removed again (deleting an adapter).
/// </summary>
internal sealed class AdapterContainer : nn.Module
{
    public AdapterContainer(string name) : base(name)
    {
    }

    /// <summary>The module registered under <paramref name="adapter"/>.</summary>
    public nn.Module<Tensor, Tensor> Module(string adapter) => (nn.Module<Tensor, Tensor>)_internal_submodules[adapter];

    /// <summary>The parameter registered under <paramref name="adapter"/>; read every time, since Module.to()
    /// replaces Parameter objects.</summary>
    public Parameter Parameter(string adapter) => _internal_params[adapter];

    /// <summary>The <c>weight</c> of the module registered under <paramref name="adapter"/> (DoRA's magnitude).</summary>
    public Parameter SubmoduleWeight(string adapter) =>
        _internal_submodules[adapter].named_parameters().First(p => p.name == "weight").parameter;

    public void AddModule(string adapter, nn.Module<Tensor, Tensor> module) => register_module(adapter, module);

    public void AddParameter(string adapter, Parameter parameter) => register_parameter(adapter, parameter);

    /// <summary>Removes and disposes what <paramref name="adapter"/> holds.</summary>
    public void Remove(string adapter)
    {
        if (_internal_submodules.ContainsKey(adapter))
        {
            var module = _internal_submodules[adapter];
            _internal_submodules.Remove(adapter);
            module.Dispose();
        }
        if (_internal_params.ContainsKey(adapter))
        {
            var parameter = _internal_params[adapter];
            _internal_params.Remove(adapter);
            parameter.Dispose();
        }
    }
}

/// <summary>DoRA's per-adapter module under <c>lora_magnitude_vector</c>, holding the magnitude as its <c>weight</c>
/// (PEFT's DoraLinearLayer / DoraEmbeddingLayer / DoraConvNdLayer); its computation lives in the LoRA layer.</summary>
internal sealed class MagnitudeVector : nn.Module<Tensor, Tensor>
{
    public MagnitudeVector(Parameter weight) : base(nameof(MagnitudeVector)) => register_parameter("weight", weight);

    public override Tensor forward(Tensor input) =>
        throw new InvalidOperationException("A DoRA magnitude vector is applied by its LoRA layer, not called.");
}
