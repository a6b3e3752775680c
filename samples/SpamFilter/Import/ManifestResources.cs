using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace SpamFilter.Import;

/// <summary>
/// Reads a .NET assembly's embedded manifest resources straight from its PE file, without loading it: the
/// assembly is only a container for the model here, and loading it would run its module initialiser and tie
/// the process to its dependencies (Microsoft.ML, ONNX Runtime).
/// </summary>
internal static class ManifestResources
{
    /// <summary>The bytes of each named resource, in the order asked.</summary>
    /// <exception cref="ModelImportException">The file is not a .NET assembly, or a resource is missing or not embedded in it.</exception>
    public static byte[][] Read(string assemblyPath, params string[] names)
    {
        using var file = File.OpenRead(assemblyPath);
        using var pe = new PEReader(file);
        if (!pe.HasMetadata || pe.PEHeaders.CorHeader is not { } cor)
            throw new ModelImportException($"'{assemblyPath}' is not a .NET assembly.");
        var metadata = pe.GetMetadataReader();
        var resources = metadata.ManifestResources
            .Select(metadata.GetManifestResource)
            .ToDictionary(resource => metadata.GetString(resource.Name), StringComparer.Ordinal);
        return names.Select(name => resources.TryGetValue(name, out var resource)
                ? ReadEmbedded(pe, cor.ResourcesDirectory, resource, name, assemblyPath)
                : throw new ModelImportException(
                    $"'{assemblyPath}' has no resource '{name}'; it has: {string.Join(", ", resources.Keys.Order(StringComparer.Ordinal))}."))
            .ToArray();
    }

    // An embedded resource is a 4-byte little-endian length and then the bytes, at its offset in the CLI header's
    // resources directory (ECMA-335 II.24.2.4 and II.25.3.3).
    private static byte[] ReadEmbedded(PEReader pe, DirectoryEntry directory, ManifestResource resource, string name, string path)
    {
        if (!resource.Implementation.IsNil)
            throw new ModelImportException($"Resource '{name}' of '{path}' is stored in another file, not embedded.");
        long offset = resource.Offset;
        if (offset + sizeof(int) > directory.Size)
            throw new ModelImportException($"Resource '{name}' of '{path}' starts past the end of the resources directory.");
        var block = pe.GetSectionData(directory.RelativeVirtualAddress + (int)offset);
        if (block.Length < sizeof(int))
            throw new ModelImportException($"Resource '{name}' of '{path}' lies outside the file's sections.");
        var reader = block.GetReader();
        int length = reader.ReadInt32();
        if (length < 0 || offset + sizeof(int) + length > directory.Size || length > reader.RemainingBytes)
            throw new ModelImportException($"Resource '{name}' of '{path}' claims {length:N0} bytes, more than the resources directory holds.");
        return reader.ReadBytes(length);
    }
}
