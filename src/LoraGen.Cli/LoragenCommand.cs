using System.CommandLine;
using System.CommandLine.Help;

namespace LoraGen.Cli;

/// <summary>The <c>loragen</c> command line: parses, runs one command, maps failures to <see cref="ExitCodes"/>.</summary>
internal static class LoragenCommand
{
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        // A named root rather than RootCommand, whose name is the assembly's (LoraGen.Cli); the tool is installed as loragen.
        var root = new Command("loragen", $"LoRA adapter files in PEFT's format, offline merges, and rank budgets. {ExitCodes.HelpText}")
        {
            new HelpOption(),
            new VersionOption(),
        };
        root.Subcommands.Add(InspectCommand.Create(output));
        root.Subcommands.Add(MergeCommand.Create(output, error));
        root.Subcommands.Add(BudgetCommand.Create(output));

        var parsed = root.Parse(args);
        var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
        if (parsed.Errors.Count > 0)
        {
            foreach (var problem in parsed.Errors)
                error.WriteLine($"error: {problem.Message}");
            error.WriteLine("Run 'loragen --help' (or 'loragen <command> --help') for usage.");
            return ExitCodes.Usage;
        }
        try
        {
            return parsed.Invoke(configuration);
        }
        catch (BadInputException failure)
        {
            foreach (var problem in failure.Problems)
                error.WriteLine($"error: {problem}");
            return ExitCodes.BadInput;
        }
        catch (Exception failure) when (failure is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // LoraFileException and SafetensorsFormatException are IOExceptions: their messages name the file and key.
            error.WriteLine($"error: {failure.Message}");
            return ExitCodes.BadInput;
        }
    }

    /// <summary>Thrown by a command for values that parsed but make no sense (exit code 1): one line each on
    /// standard error, so a user fixes every argument in one go.</summary>
    internal sealed class BadInputException(IReadOnlyList<string> problems) : ArgumentException(string.Join(Environment.NewLine, problems))
    {
        public BadInputException(string problem)
            : this([problem])
        {
        }

        public IReadOnlyList<string> Problems { get; } = problems;
    }
}
