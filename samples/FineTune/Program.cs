// The main sample: LoRA against full fine-tuning. See FineTuneSample for the plan, README.md for a run.
using FineTune;
using Spectre.Console;

SampleOptions options;
try
{
    if (args.Contains("--help") || args.Contains("-h"))
    {
        Console.WriteLine(SampleOptions.Usage);
        return 0;
    }
    options = SampleOptions.Parse(args);
}
catch (ArgumentException error)
{
    Console.Error.WriteLine(error.Message);
    Console.Error.WriteLine(SampleOptions.Usage);
    return 2;
}
try
{
    FineTuneSample.Run(options, AnsiConsole.Console);
}
catch (Exception error) when (error is ArgumentException or InvalidOperationException)
{
    // A device that is not a device (ArgumentException) or is not there (InvalidOperationException), or a
    // --rank whose adapters would not save parameters (LoraConfigurationException).
    Console.Error.WriteLine(error.Message);
    return 2;
}
return 0;
