namespace LoraGen.Cli;

internal static class Program
{
    private static int Main(string[] args) => LoragenCommand.Run(args, Console.Out, Console.Error);
}
