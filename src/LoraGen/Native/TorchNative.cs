using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using TorchSharp;

namespace LoraGen;

/// <summary>
/// Loads TorchSharp's native backend and, when that fails, says why. TorchSharp's own error blames a missing
/// libtorch package even when the real cause is the dynamic loader rejecting libLibTorchSharp.so, as on
/// Debian 12 and Ubuntu 22.04, whose libstdc++ lacks the GLIBCXX_3.4.32 that TorchSharp 0.107.0 asks for.
/// </summary>
public static class TorchNative
{
    private const string PatchedVersion = "GLIBCXX_3.4.32";   // the one LoraGen's build step makes optional
    private static readonly object Gate = new();
    private static volatile bool loaded;

    /// <summary>
    /// Makes sure TorchSharp's native libraries are loaded (CPU backend). Calls after the first success return
    /// at once.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// TorchSharp could not load. The message states the dynamic loader's actual reason (for example
    /// "version `GLIBCXX_3.4.32' not found") and what to do; the inner exception is TorchSharp's.
    /// </exception>
    public static void EnsureLoaded()
    {
        if (loaded)
            return;
        lock (Gate)
        {
            if (loaded)
                return;
            try
            {
                torch.InitializeDeviceType(DeviceType.CPU);
            }
            catch (Exception e) when (e is TypeInitializationException or NotSupportedException
                                        or DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
            {
                throw new InvalidOperationException(Diagnose(), e);
            }
            loaded = true;
        }
    }

    // Loads libLibTorchSharp.so from where the app would load it, only to capture the loader's message.
    private static string Diagnose()
    {
        string file = OperatingSystem.IsWindows() ? "LibTorchSharp.dll"
            : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib" : "libLibTorchSharp.so";
        string? path = FindNativeLibrary(file);
        if (path is null)
            return $"TorchSharp could not load: {file} is not in the application folder {AppContext.BaseDirectory}. "
                 + "Reference a TorchSharp backend package such as TorchSharp-cpu from the application project.";

        string loader;
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(path));
            return $"TorchSharp could not initialize, although {path} loads; see the inner exception.";
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            // .NET puts dlerror()'s text on the last line, after its generic advice.
            loader = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .LastOrDefault() ?? e.Message;
        }

        Match missing = Regex.Match(loader, @"^(?<lib>[^:]+): version `(?<version>[^']+)' not found");
        if (!missing.Success)
            return $"The dynamic loader rejected {path}: {loader} (TorchSharp's own message, in the inner exception, "
                 + "may blame a missing package instead).";

        string lib = missing.Groups["lib"].Value, version = missing.Groups["version"].Value;
        string provides = HighestVersion(lib, "GLIBCXX_") is { } highest ? $"only provides up to {highest}" : "lacks it";
        if (version == PatchedVersion)
            return $"{file} needs {version} but {lib} {provides}. LoraGen's build step makes that requirement optional "
                 + $"in the copy of {file} in the output folder (the only symbol behind it is never called), but it did "
                 + $"not run for {path}. Reference the LoraGen package (or import LoraGen's build/LoraGen.targets) in the "
                 + "application project and rebuild; when the build runs on a machine whose libstdc++ has the version, "
                 + $"also set the MSBuild property LoraGenPatchLibTorchSharp=always. Loader: {loader}";
        return $"{file} needs {version} but {lib} {provides}: this system's C++ runtime is older than the one TorchSharp "
             + $"was built with, and LoraGen's build step only covers {PatchedVersion}. Use a newer Linux distribution "
             + $"or a TorchSharp build made for this one. Loader: {loader}";
    }

    // Where the host looks first (the deps.json native directories), then the usual layouts of the output folder.
    private static string? FindNativeLibrary(string file)
    {
        var dirs = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchDirs)
            dirs.AddRange(searchDirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        string os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        string rid = $"{os}-{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}";
        dirs.Add(Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native"));
        dirs.Add(AppContext.BaseDirectory);
        return dirs.Select(dir => Path.Combine(dir, file)).FirstOrDefault(File.Exists);
    }

    // Highest "GLIBCXX_x.y.z" named in the library (its version definitions are NUL-terminated strings), or null.
    private static string? HighestVersion(string library, string prefix)
    {
        try
        {
            byte[] bytes = File.ReadAllBytes(library);
            byte[] key = System.Text.Encoding.ASCII.GetBytes(prefix);
            Version? best = null;
            for (int at = bytes.AsSpan().IndexOf(key); at >= 0;)
            {
                int start = at + key.Length, end = start;
                while (end < bytes.Length && (bytes[end] == '.' || char.IsAsciiDigit((char)bytes[end])))
                    end++;
                if (end < bytes.Length && bytes[end] == 0
                    && Version.TryParse(System.Text.Encoding.ASCII.GetString(bytes, start, end - start), out var v)
                    && (best is null || v > best))
                    best = v;
                int next = bytes.AsSpan(end).IndexOf(key);
                at = next < 0 ? -1 : end + next;
            }
            return best is null ? null : prefix + best;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
