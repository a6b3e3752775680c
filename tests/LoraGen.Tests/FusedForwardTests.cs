using TorchSharp;
using static LoraGen.Tests.Support.Adapters;
using static LoraGen.Tests.Support.Closeness;
using static TorchSharp.torch;

namespace LoraGen.Tests;

/// <summary>The forward path adds the adapter with one fused addmm; these pin it to the closed forms
/// where the fusion reshapes: inputs with more than two axes, half-precision bases, and gradients.</summary>
public sealed class FusedForwardTests
{
    [Fact]
    public void Linear_over_a_3d_input_matches_the_closed_form_and_its_gradients()
    {
        torch.manual_seed(60);
        var linear = nn.Linear(24, 40);
        var layer = new LoraLinear(linear, new LoraConfig { Rank = 4, Alpha = 8 });
        Randomize(layer);
        var x = randn(3, 5, 24);

        var output = layer.forward(x);
        output.square().sum().backward();

        // Closed form in float64 with its own autograd: y = x·Wᵀ + b + 2 · x·Aᵀ·Bᵀ.
        var a = Adapter(layer, "lora_A.weight").detach().to(float64).requires_grad_();
        var b = Adapter(layer, "lora_B.weight").detach().to(float64).requires_grad_();
        var x64 = x.to(float64);
        var expected = x64.matmul(linear.weight!.to(float64).t()) + linear.bias!.to(float64) + 2.0 * x64.matmul(a.t()).matmul(b.t());
        expected.square().sum().backward();

        Assert.Equal([3L, 5L, 40L], output.shape);
        AssertClose(output, expected, 1e-5);
        AssertClose(Adapter(layer, "lora_A.weight").grad!, a.grad!, 1e-4);
        AssertClose(Adapter(layer, "lora_B.weight").grad!, b.grad!, 1e-4);
        Assert.Null(linear.weight!.grad);
    }

    [Fact]
    public void Embedding_over_a_bf16_base_adds_in_float32_and_rounds_back_once()
    {
        torch.manual_seed(61);
        var embedding = nn.Embedding(30, 16).to(bfloat16);
        var layer = new LoraEmbedding(embedding, new LoraConfig { Rank = 4, Alpha = 8 });
        Randomize(layer, std: 0.1);
        var tokens = randint(0, 30, [2, 3, 5]);

        var output = layer.forward(tokens);

        var a = Adapter(layer, "lora_embedding_A").to(float64);
        var b = Adapter(layer, "lora_embedding_B").to(float64);
        var table = embedding.weight!.to(float64) + 2.0 * b.matmul(a).t();
        var expected = nn.functional.one_hot(tokens, 30).to(float64).matmul(table);
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        Assert.Equal([2L, 3L, 5L, 16L], output.shape);
        AssertClose(output.to(float64), expected, 1e-2);
    }

    [Fact]
    public void Dropout_zero_in_training_mode_changes_nothing()
    {
        torch.manual_seed(62);
        var layer = new LoraLinear(nn.Linear(32, 32), new LoraConfig { Rank = 4, Dropout = 0 });
        Randomize(layer);
        var x = randn(6, 32);
        layer.eval();
        var evaluated = layer.forward(x);
        layer.train();
        AssertBitIdentical(layer.forward(x), evaluated);
    }
}
