using LoraGen.Files;
using LoraGen.SaveLoop;

// Usage: LoraGen.SaveLoop <adapter-dir> <first-k>
// Saves adapter k, k+1, … to <adapter-dir> until killed. Prints "ready" once the first save is complete (the
// code is then compiled and warm), so the parent's kills land among the saves and not in the runtime's start.
string directory = args[0];
long k = long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture);
AdapterDirectory.Write(directory, SaveContent.ConfigJson(k), SaveContent.Tensors(k));
Console.WriteLine("ready");
Console.Out.Flush();
while (true)
{
    k++;
    AdapterDirectory.Write(directory, SaveContent.ConfigJson(k), SaveContent.Tensors(k));
}
