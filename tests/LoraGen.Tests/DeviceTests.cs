using LoraGen.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraGen.Tests;

/// <summary>Device selection and placement, checked on a machine without a GPU: the meta device
/// (shapes, no storage) stands in for "a device other than the CPU".</summary>
public sealed class DeviceTests
{
    [Theory]
    [InlineData("cpu")]
    [InlineData(" CPU ")]
    public void Cpu_is_the_cpu(string choice) => Assert.Equal(DeviceType.CPU, LoraDevice.Select(choice).type);

    [Fact]
    public void Auto_falls_back_to_the_cpu_without_cuda()
    {
        Assert.False(cuda.is_available()); // these tests run on TorchSharp-cpu
        Assert.Equal(DeviceType.CPU, LoraDevice.Select("auto").type);
    }

    [Theory]
    [InlineData("cuda")]
    [InlineData("cuda:0")]
    public void Cuda_without_cuda_says_what_to_do(string choice)
    {
        var error = Assert.Throws<InvalidOperationException>(() => LoraDevice.Select(choice));
        Assert.Contains($"Device '{choice}' was asked for, but CUDA is not available", error.Message);
        Assert.Contains("TorchSharp-cuda-linux", error.Message);
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:x")]
    [InlineData("")]
    public void Anything_else_is_refused_with_the_choices(string choice)
    {
        var error = Assert.Throws<ArgumentException>(() => LoraDevice.Select(choice));
        Assert.Contains("use auto, cpu, cuda or cuda:N", error.Message);
    }

    [Theory]
    [InlineData("auto", true)]
    [InlineData("cuda:1", true)]
    [InlineData("cuda:", false)]
    [InlineData("cuda:+1", false)]
    [InlineData(null, false)]
    public void IsChoice_checks_the_spelling_only(string? choice, bool expected) =>
        Assert.Equal(expected, LoraDevice.IsChoice(choice));

    [Fact]
    public void Adapters_are_created_on_the_base_layers_device_after_the_model_moved()
    {
        // Module.to() does not reach modules added after the move, so ApplyLora must place each adapter
        // on its base layer's device itself (the optimizer is then built from LoraParameters()).
        var model = new Mlp(8, 16, 4);
        model.to(DeviceType.META);
        model.ApplyLora();
        Assert.NotEmpty(model.LoraParameters());
        Assert.All(model.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
    }

    [Fact]
    public void An_embedding_adapter_follows_its_base_too()
    {
        var layer = new LoraEmbedding(nn.Embedding(30, 6, device: new Device(DeviceType.META)), new LoraConfig { Rank = 2 });
        Assert.All(layer.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
    }
}
