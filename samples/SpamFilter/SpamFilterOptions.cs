using Samples.Shared;

namespace SpamFilter;

/// <summary>The command line of the sample. <see cref="Parse"/> throws <see cref="ArgumentException"/> with a
/// message meant for the user; <see cref="Usage"/> lists the options.</summary>
public sealed record SpamFilterOptions
{
    public string Device { get; init; } = "auto";

    /// <summary>Training steps of each run (head only, LoRA, full fine-tuning).</summary>
    public int Steps { get; init; } = 150;

    public int BatchSize { get; init; } = 16;

    /// <summary>Tokens per message, [CLS] and [SEP] included: the subject and the start of the body.</summary>
    public int SequenceLength { get; init; } = 64;

    public int Seed { get; init; } = 7;
    public bool Quick { get; init; }
    public string OutputDirectory { get; init; } = "spamfilter-out";

    /// <summary>Where the corpus and the imported model are kept between runs; null: ~/.cache/loragen.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Messages taken from the corpus (stratified); null: all 6,046.</summary>
    public int? Messages { get; init; }

    /// <summary>Held-out messages whose sentence embeddings measure what each model kept.</summary>
    public int ForgettingTexts => Quick ? 24 : 300;

    /// <summary>Test messages scored during training for the accuracy curve.</summary>
    public int CurveTexts => Quick ? 16 : 200;

    public const string Usage = """
        usage: dotnet run --project samples/SpamFilter [-- options]
          --device auto|cpu|cuda   where to train (auto: cuda when TorchSharp sees one)        [auto]
          --steps N                training steps of each run (head only, LoRA, full)        [150]
          --batch N                messages per step                                          [16]
          --seq N                  tokens per message, [CLS] and [SEP] included               [64]
          --messages N             use a stratified subset of N messages (default: all 6,046)
          --seed S                 seed for the head's weights, the split and the batches     [7]
          --cache DIR              where the corpus and the imported model are kept     [~/.cache/loragen]
          --quick                  a small run for tests: 240 messages, 8 steps, 32 tokens
          --out DIR                where the adapter, the base model and the plot go        [spamfilter-out]
        """;

    public static SpamFilterOptions Parse(IReadOnlyList<string> args)
    {
        var options = new SpamFilterOptions();
        bool stepsGiven = false, seqGiven = false, messagesGiven = false;
        for (int i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--device": options = options with { Device = OptionValues.Device(Value()) }; break;
                case "--steps": options = options with { Steps = Whole("--steps", Value(), 1) }; stepsGiven = true; break;
                case "--batch": options = options with { BatchSize = Whole("--batch", Value(), 2) }; break;
                case "--seq": options = options with { SequenceLength = Whole("--seq", Value(), 8) }; seqGiven = true; break;
                case "--messages": options = options with { Messages = Whole("--messages", Value(), 40) }; messagesGiven = true; break;
                case "--seed": options = options with { Seed = Whole("--seed", Value(), 0) }; break;
                case "--cache": options = options with { CacheDirectory = Value() }; break;
                case "--out": options = options with { OutputDirectory = Value() }; break;
                case "--quick": options = options with { Quick = true }; break;
                default: throw new ArgumentException($"unknown option '{args[i]}'");
            }
        }
        if (options.SequenceLength > 512)
            throw new ArgumentException($"--seq must be at most 512 (BERT's position embeddings), not {options.SequenceLength}");
        // --quick shortens the defaults only: explicit values still win.
        if (options.Quick)
            options = options with
            {
                Steps = stepsGiven ? options.Steps : 8,
                SequenceLength = seqGiven ? options.SequenceLength : 32,
                Messages = messagesGiven ? options.Messages : 240,
            };
        return options;
    }

    private static int Whole(string name, string text, int minimum) => OptionValues.WholeNumber(name, text, minimum);
}
