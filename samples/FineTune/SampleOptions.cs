using LoraGen;
using Samples.Shared;

namespace FineTune;

/// <summary>The command line of the sample. <see cref="Parse"/> throws <see cref="ArgumentException"/>
/// with a message meant for the user; <see cref="Usage"/> lists the options.</summary>
public sealed record SampleOptions
{
    public string Device { get; init; } = "auto";

    /// <summary>Training steps on task B, for full fine-tuning and for LoRA alike, and on task C for the second adapter.</summary>
    public int Steps { get; init; } = 2000;

    /// <summary>Training steps on task A before either fine-tune (the "pretrained" model).</summary>
    public int PretrainSteps { get; init; } = 2000;

    public int Rank { get; init; } = ModelSize.Rank;
    public int Seed { get; init; } = 7;
    public bool Quick { get; init; }
    public string OutputDirectory { get; init; } = "finetune-out";

    /// <summary>QLoRA: after the float-base LoRA run, run it again from the same pretrained weights with every
    /// frozen Linear of the base quantized to this kind, and compare. Null (the default): no second run.</summary>
    public QuantizationKind? Quantize { get; init; }

    /// <summary>Examples per task in the held-out accuracy sets.</summary>
    public int TestExamples => Quick ? 256 : 1000;

    public const string Usage = """
        usage: dotnet run --project samples/FineTune [-- options]
          --device auto|cpu|cuda   where to train (auto: cuda when TorchSharp sees one;       [auto]
                                   cuda:N for another GPU)
          --steps N                fine-tuning steps on task B, full and LoRA each, and on    [2000]
                                   task C for the second adapter
          --pretrain-steps N       pretraining steps on task A                                [2000]
          --rank R                 rank of the LoRA adapter on the token embedding            [16]
                                   (the model's [LoraTarget] attribute says 16)
          --seed S                 seed for weights and data                                  [7]
          --quick                  a small run for tests: 150 pretraining and 60 fine-tuning steps
          --out DIR                where the checkpoints, the adapters and the plot go        [finetune-out]
          --quantize nf4|int8      also run the LoRA fine-tune on a quantized base (QLoRA:    [none]
                                   every frozen Linear stored as NF4 or int8) and compare
        """;

    public static SampleOptions Parse(IReadOnlyList<string> args)
    {
        var options = new SampleOptions();
        bool stepsGiven = false, pretrainGiven = false;
        for (int i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--device": options = options with { Device = OptionValues.Device(Value()) }; break;
                case "--steps": options = options with { Steps = Positive("--steps", Value()) }; stepsGiven = true; break;
                case "--pretrain-steps": options = options with { PretrainSteps = Positive("--pretrain-steps", Value()) }; pretrainGiven = true; break;
                case "--rank": options = options with { Rank = Positive("--rank", Value()) }; break;
                case "--seed": options = options with { Seed = OptionValues.WholeNumber("--seed", Value(), minimum: 0) }; break;
                case "--out": options = options with { OutputDirectory = Value() }; break;
                case "--quantize": options = options with { Quantize = OptionValues.Quantization(Value()) }; break;
                case "--quick": options = options with { Quick = true }; break;
                default: throw new ArgumentException($"unknown option '{args[i]}'");
            }
        }
        // --quick shortens the defaults only: explicit step counts still win.
        if (options.Quick)
            options = options with
            {
                Steps = stepsGiven ? options.Steps : 60,
                PretrainSteps = pretrainGiven ? options.PretrainSteps : 150,
            };
        return options;
    }

    private static int Positive(string name, string text) => OptionValues.WholeNumber(name, text, minimum: 1);
}
