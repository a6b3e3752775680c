// A real pretrained model: all-MiniLM-L6-v2 fine-tuned to tell spam from ham, three ways. See SpamFilterSample.
using Spectre.Console;
using SpamFilter;

SpamFilterOptions options;
try
{
    if (args.Contains("--help") || args.Contains("-h"))
    {
        Console.WriteLine(SpamFilterOptions.Usage);
        return 0;
    }
    options = SpamFilterOptions.Parse(args);
}
catch (ArgumentException error)
{
    Console.Error.WriteLine(error.Message);
    Console.Error.WriteLine(SpamFilterOptions.Usage);
    return 2;
}
try
{
    SpamFilterSample.Run(options, AnsiConsole.Console);
}
catch (Exception error) when (error is ArgumentException or InvalidOperationException or IOException)
{
    // A device that is not there, npm missing, a corrupt cached download: the message says what to do.
    Console.Error.WriteLine(error.Message);
    return 1;
}
return 0;
