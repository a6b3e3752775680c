using LoraGen.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraGen.Tests;

public sealed class TrainingTests
{
    private static Tensor Loss(nn.Module<Tensor, Tensor> model, Tensor x, Tensor labels) =>
        nn.functional.cross_entropy(model.forward(x), labels);

    [Fact]
    public void After_backward_only_adapters_and_trainable_fields_have_gradients()
    {
        torch.manual_seed(30);
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        using (no_grad())
            foreach (var p in model.LoraParameters()) p.normal_(0, 0.1); // non-zero B so A gets a gradient too
        Loss(model, randn(8, 16), randint(0, 3, [8])).backward();

        var trainable = model.NamedLoraParameters().Select(p => p.Path).ToHashSet();
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (trainable.Contains(name))
            {
                Assert.NotNull(parameter.grad);
                Assert.True(parameter.grad!.abs().sum().item<float>() > 0, $"{name} got a zero gradient");
            }
            else
            {
                Assert.Null(parameter.grad);
            }
        }
    }

    [Fact]
    public void An_AdamW_step_changes_only_the_trainable_parameters()
    {
        torch.manual_seed(31);
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var optimizer = optim.AdamW(model.LoraParameters(), lr: 1e-2);
        optimizer.zero_grad();
        Loss(model, randn(8, 16), randint(0, 3, [8])).backward();
        optimizer.step();

        var trainable = model.NamedLoraParameters().Select(p => p.Path).ToHashSet();
        foreach (var (name, tensor) in model.state_dict())
        {
            bool changed = !Closeness.BitIdentical(tensor, before[name]);
            // lora_A does not move on the first step: its gradient is Bᵀ·(…) and B starts at zero.
            bool mustChange = trainable.Contains(name) && !name.EndsWith("lora_A.default.weight");
            if (mustChange)
                Assert.True(changed, $"{name} did not change");
            else if (!trainable.Contains(name))
                Assert.False(changed, $"{name} is frozen but changed");
        }
    }

    [Fact]
    public void Training_lowers_the_loss_of_a_task_the_frozen_model_gets_wrong()
    {
        torch.manual_seed(32);
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        var x = randn(64, 16);
        var labels = x.narrow(1, 0, 3).argmax(1); // the class is the largest of the first three inputs
        var optimizer = optim.AdamW(model.LoraParameters(), lr: 1e-2);
        float first = 0, last = 0;
        for (int step = 0; step < 100; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = Loss(model, x, labels);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < 0.5 * first, $"loss went from {first} to {last}");
    }

    [Fact]
    public void Five_hundred_steps_with_one_dispose_scope_each_keep_the_live_tensor_count_flat()
    {
        torch.manual_seed(33);
        var model = new Mlp(16, 32, 3);
        model.ApplyLora();
        var optimizer = optim.AdamW(model.LoraParameters(), lr: 1e-3);
        var x = randn(16, 16);
        var labels = randint(0, 3, [16]);
        long afterWarmup = 0;
        for (int step = 0; step < 500; step++)
        {
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                Loss(model, x, labels).backward();
                optimizer.step();
            }
            if (step == 9) // optimizer state and gradients exist by now
                afterWarmup = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        }
        Assert.Equal(afterWarmup, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
