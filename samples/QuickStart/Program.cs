// QuickStart, the README tutorial's code: pretrain a small classifier on task A, then teach it task B with LoRA adapters only,
// and show that the base model (adapters disabled) still knows task A.
using System.Diagnostics;
using LoraGen;
using QuickStart;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

TorchNative.EnsureLoaded();
torch.manual_seed(0);
// A tiny model: one thread is fastest, and stays fast on a busy machine where spinning LibTorch workers do not.
torch.set_num_threads(1);
var generator = new Generator(42);
var taskA = new ArgmaxTask("A", FirstFeature: 0);
var taskB = new ArgmaxTask("B", FirstFeature: 4);
var (trainA, labelsA) = taskA.Sample(4096, generator);
var (testA, testLabelsA) = taskA.Sample(1024, generator);
var (trainB, labelsB) = taskB.Sample(4096, generator);
var (testB, testLabelsB) = taskB.Sample(1024, generator);
var clock = Stopwatch.StartNew();

var model = new Classifier(ArgmaxTask.Features, width: 128, ArgmaxTask.Classes);
Console.WriteLine("1. Full training on task A (the 'pretrained' base model)");
Train(model, model.parameters().ToList(), trainA, labelsA, steps: 300, learningRate: 3e-3);
var accuracyA = Accuracy(model, testA, testLabelsA);
Console.WriteLine($"   accuracy on A: {accuracyA:P1}, on B: {Accuracy(model, testB, testLabelsB):P1}");

var output = Path.Combine(Path.GetTempPath(), "loragen-quickstart");
var basePath = Path.Combine(output, "base.safetensors");
Directory.CreateDirectory(output);
model.SaveCheckpoint(basePath);

Console.WriteLine("2. LoRA on task B: rank-4 adapters on hidden1 and hidden2, everything else frozen");
var report = model.ApplyLora();
Console.WriteLine($"   {report}");
foreach (var layer in report.Layers)
    Console.WriteLine($"   {layer}");
Train(model, model.LoraParameters(), trainB, labelsB, steps: 300, learningRate: 1e-2);
Console.WriteLine($"   accuracy on B with adapters: {Accuracy(model, testB, testLabelsB):P1}");
using (model.DisableAdapters())
{
    // The base weights never changed, so with the adapters off the model still knows task A.
    Console.WriteLine($"   accuracy on A with adapters disabled: {Accuracy(model, testA, testLabelsA):P1} (before LoRA: {accuracyA:P1})");
}

Console.WriteLine("3. Ship the adapter: save it, load it into a fresh model holding the base checkpoint");
var adapterPath = Path.Combine(output, "adapter");
model.SaveAdapter(adapterPath);
var fresh = new Classifier(ArgmaxTask.Features, width: 128, ArgmaxTask.Classes);
fresh.LoadCheckpoint(basePath);
fresh.LoadAdapter(adapterPath);
Console.WriteLine($"   {adapterPath}: {Directory.GetFiles(adapterPath).Sum(f => new FileInfo(f).Length):N0} bytes; " +
    $"accuracy on B after loading: {Accuracy(fresh, testB, testLabelsB):P1}");

Console.WriteLine("4. Merge for inference: same outputs, no adapter cost");
using (no_grad())
{
    model.eval();
    var unmerged = model.forward(testB);
    model.Merge();
    var merged = model.forward(testB);
    var gap = (merged - unmerged).abs().max().item<float>();
    Console.WriteLine($"   max |merged − unmerged| = {gap:E2}; accuracy on B merged: {Accuracy(model, testB, testLabelsB):P1}");
}
Console.WriteLine($"Done in {clock.Elapsed.TotalSeconds:F1} s.");

static void Train(nn.Module<Tensor, Tensor> model, IList<Parameter> parameters, Tensor x, Tensor labels, int steps, double learningRate)
{
    model.train();
    var optimizer = optim.AdamW(parameters, lr: learningRate);
    var batches = x.shape[0] / 256;
    for (int step = 0; step < steps; step++)
    {
        using var scope = NewDisposeScope();
        var start = step % batches * 256;
        optimizer.zero_grad();
        var loss = nn.functional.cross_entropy(model.forward(x.narrow(0, start, 256)), labels.narrow(0, start, 256));
        loss.backward();
        optimizer.step();
        if (step % 100 == 0 || step == steps - 1)
            Console.WriteLine($"   step {step,3}: loss {loss.item<float>():F4}");
    }
    model.eval();
}

static double Accuracy(nn.Module<Tensor, Tensor> model, Tensor x, Tensor labels)
{
    using var scope = NewDisposeScope();
    using var noGrad = no_grad();
    return model.forward(x).argmax(1).eq(labels).to(ScalarType.Float32).mean().item<float>();
}
