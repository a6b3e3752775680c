using Spectre.Console;

namespace LoraGen.Samples.Tests;

/// <summary>A Spectre console that writes plain text (no colours, no live redraws) into a string.</summary>
public sealed class RecordingConsole
{
    private readonly StringWriter text = new();

    public RecordingConsole() => Console = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Ansi = AnsiSupport.No,
        ColorSystem = ColorSystemSupport.NoColors,
        Interactive = InteractionSupport.No,
        Out = new AnsiConsoleOutput(text),
    });

    public IAnsiConsole Console { get; }

    public string Text => text.ToString();
}
