// The seed's arithmetic: see RankArithmeticSample.
using RankArithmetic;
using Spectre.Console;

bool quick = false;
int seed = 1;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--quick")
        quick = true;
    else if (args[i] == "--seed" && i + 1 < args.Length && int.TryParse(args[++i], out seed) && seed >= 0)
        continue;
    else
    {
        Console.Error.WriteLine("usage: dotnet run --project samples/RankArithmetic [-- --quick] [--seed S]");
        return 2;
    }
}
RankArithmeticSample.Run(quick, seed, AnsiConsole.Console);
return 0;
