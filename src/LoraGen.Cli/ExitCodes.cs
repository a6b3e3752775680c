namespace LoraGen.Cli;

/// <summary>What <c>loragen</c> returns; stated in <c>--help</c> and docs/file-formats.md.</summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked.</summary>
    public const int Ok = 0;

    /// <summary>The command line parsed, but a value or a file is unusable: a missing or malformed file, a path of
    /// the wrong kind (a file for a directory, a directory for <c>--out</c>, a missing folder), <c>--out</c> that is
    /// <c>--base</c> without <c>--force</c>, tensors that disagree with their config, keys that do not match, a rank
    /// below 1.</summary>
    public const int BadInput = 1;

    /// <summary>The command line itself is wrong: an unknown command or option, a missing required option, a
    /// value that is not a number.</summary>
    public const int Usage = 2;

    public const string HelpText = "Exit codes: 0 ok, 1 bad input or file, 2 usage error.";
}
