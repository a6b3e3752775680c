// Why this file exists: TorchSharp 0.107.0's libLibTorchSharp.so was linked against GCC 15's libstdc++ and
// declares that it needs the symbol version GLIBCXX_3.4.32. Debian 12 and Ubuntu 22.04 ship libstdc++ up to
// GLIBCXX_3.4.30, so the dynamic loader refuses the library and TorchSharp cannot start. The only symbol behind
// that version is std::ios_base_library_init(), which GCC 13+ references from <iostream> without any
// relocation: nothing ever calls it. Marking that one requirement weak (VER_FLG_WEAK in the Elf64_Vernaux entry)
// makes the loader accept the library. LoraGen writes such a patched copy into the build and publish output;
// the file in the NuGet cache is never written.
//
// This one file is compiled twice, which is why the MSBuild task is behind #if:
//  * by MSBuild's RoslynCodeTaskFactory (see LoraGen.targets), against netstandard 2.0 and Microsoft.Build.*,
//    with no preprocessor symbols defined: both classes are compiled, so no task DLL has to ship;
//  * by LoraGen.Tests, an ordinary SDK project, which defines NETCOREAPP and has no MSBuild references:
//    only the MSBuild-free ELF class is compiled there.
// Because of the first, the code below sticks to netstandard 2.0 APIs (no Span, no File.Move overwrite).
#nullable enable

namespace LoraGen.Build
{
    using System;
    using System.IO;
    using System.Text;

    /// <summary>What a library's GLIBCXX_3.4.32 requirement looks like.</summary>
    public enum GlibcxxRequirement
    {
        /// <summary>The library does not ask for GLIBCXX_3.4.32 at all: nothing to patch.</summary>
        None,
        /// <summary>The library needs GLIBCXX_3.4.32 and the loader fails where libstdc++ lacks it.</summary>
        Required,
        /// <summary>The requirement is already weak (patched): the loader accepts a libstdc++ without it.</summary>
        Weak,
    }

    /// <summary>
    /// Reads and patches the ELF symbol-version tables that the dynamic loader checks. Self-contained (no MSBuild)
    /// so tests compile it. Everything is found the way the loader finds it, through the PT_DYNAMIC segment
    /// (DT_VERNEED / DT_VERDEF / DT_STRTAB), so a library without section headers works too.
    /// Malformed input raises <see cref="InvalidDataException"/> with the reason, never an index error.
    /// </summary>
    public static class LibTorchSharpElfPatch
    {
        /// <summary>The one version requirement this patch makes weak.</summary>
        public const string GlibcxxVersion = "GLIBCXX_3.4.32";

        private const ushort VerFlgWeak = 2;            // VER_FLG_WEAK, <elf.h>
        private const uint PtLoad = 1, PtDynamic = 2;
        private const long DtNull = 0, DtStrtab = 5, DtStrsz = 10;
        private const long DtVerdef = 0x6ffffffc, DtVerdefnum = 0x6ffffffd;
        private const long DtVerneed = 0x6ffffffe, DtVerneednum = 0x6fffffff;

        /// <summary>Says whether <paramref name="elf"/> needs GLIBCXX_3.4.32, and whether weakly.</summary>
        /// <exception cref="InvalidDataException">Not a 64-bit little-endian ELF shared library, or corrupt.</exception>
        public static GlibcxxRequirement Inspect(byte[] elf)
        {
            long flags = FindVernauxFlags(elf, GlibcxxVersion);
            if (flags < 0)
                return GlibcxxRequirement.None;
            return (U16(elf, flags) & VerFlgWeak) != 0 ? GlibcxxRequirement.Weak : GlibcxxRequirement.Required;
        }

        /// <summary>True when the library needs GLIBCXX_3.4.32 and that requirement is not weak yet.</summary>
        /// <exception cref="InvalidDataException">Not a 64-bit little-endian ELF shared library, or corrupt.</exception>
        public static bool NeedsWeakGlibcxx(byte[] elf) => Inspect(elf) == GlibcxxRequirement.Required;

        /// <summary>
        /// Sets VER_FLG_WEAK on the GLIBCXX_3.4.32 requirement, in place; no other byte changes.
        /// Returns false (and changes nothing) when there is no such requirement or it is already weak.
        /// </summary>
        /// <exception cref="InvalidDataException">Not a 64-bit little-endian ELF shared library, or corrupt.</exception>
        public static bool Patch(byte[] elf)
        {
            long flags = FindVernauxFlags(elf, GlibcxxVersion);
            if (flags < 0)
                return false;
            ushort value = U16(elf, flags);
            if ((value & VerFlgWeak) != 0)
                return false;
            value |= VerFlgWeak;
            elf[flags] = (byte)value;
            elf[flags + 1] = (byte)(value >> 8);
            return true;
        }

        /// <summary>True when the shared library at <paramref name="path"/> defines <paramref name="version"/>
        /// (an entry of its DT_VERDEF table, which is what the loader matches requirements against).</summary>
        /// <exception cref="InvalidDataException">Not a 64-bit little-endian ELF shared library, or corrupt.</exception>
        public static bool DefinesVersion(string path, string version)
        {
            byte[] elf = File.ReadAllBytes(path);
            Dynamic d = ReadDynamic(elf);
            if (d.Verdef < 0)
                return false;
            long def = d.Verdef;
            for (long i = 0; i < d.VerdefNum; i++)
            {
                // Elf64_Verdef: vd_version, vd_flags, vd_ndx, vd_cnt (u16 each), vd_hash, vd_aux, vd_next (u32 each).
                // The first Elf64_Verdaux (vda_name, vda_next) names the version; later ones name its parents.
                if (U16(elf, def + 6) > 0 && Str(elf, d, U32(elf, Add(def, U32(elf, def + 12)))) == version)
                    return true;
                uint next = U32(elf, def + 16);
                if (next == 0)
                    break;
                def = Add(def, next);
            }
            return false;
        }

        /// <summary>
        /// The libstdc++.so.6 the dynamic loader would most likely pick for this process's architecture (first hit
        /// in the distributions' default library directories), or null when there is none.
        /// </summary>
        public static string? FindSystemLibStdCxx()
        {
            string multiarch = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture
                == System.Runtime.InteropServices.Architecture.Arm64 ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
            string[] dirs =
            {
                "/lib/" + multiarch, "/usr/lib/" + multiarch,   // Debian, Ubuntu
                "/lib64", "/usr/lib64",                          // Fedora, RHEL, SUSE
                "/usr/lib", "/lib",                              // Arch, Alpine, others
            };
            foreach (string dir in dirs)
            {
                string candidate = Path.Combine(dir, "libstdc++.so.6");
                if (File.Exists(candidate))
                    return candidate;
            }
            return null;
        }

        // Offset of vna_flags in the Elf64_Vernaux entry named `version`, or -1 when the library does not need it.
        private static long FindVernauxFlags(byte[] elf, string version)
        {
            Dynamic d = ReadDynamic(elf);
            if (d.Verneed < 0)
                return -1;
            long need = d.Verneed;
            for (long i = 0; i < d.VerneedNum; i++)
            {
                // Elf64_Verneed: vn_version, vn_cnt (u16), vn_file, vn_aux, vn_next (u32).
                if (U16(elf, need) != 1)
                    throw new InvalidDataException($"unknown version-needs format {U16(elf, need)} at offset {need}");
                ushort count = U16(elf, need + 2);
                long aux = Add(need, U32(elf, need + 8));
                for (int j = 0; j < count; j++)
                {
                    // Elf64_Vernaux: vna_hash (u32), vna_flags, vna_other (u16), vna_name, vna_next (u32).
                    if (Str(elf, d, U32(elf, aux + 8)) == version)
                        return aux + 4;
                    uint nextAux = U32(elf, aux + 12);
                    if (nextAux == 0)
                        break;
                    aux = Add(aux, nextAux);
                }
                uint next = U32(elf, need + 12);
                if (next == 0)
                    break;
                need = Add(need, next);
            }
            return -1;
        }

        // File offsets of the version tables and the dynamic string table (-1: absent), from PT_DYNAMIC.
        private sealed class Dynamic
        {
            public long Strtab = -1, StrSize, Verneed = -1, VerneedNum, Verdef = -1, VerdefNum;
        }

        private static Dynamic ReadDynamic(byte[] elf)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException("not an ELF file");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException("not a 64-bit little-endian ELF file");
            long phoff = ToOffset(U64(elf, 32));
            ushort phentsize = U16(elf, 54), phnum = U16(elf, 56);
            if (phentsize < 56)
                throw new InvalidDataException($"program header entries are {phentsize} bytes, expected 56");

            // Dynamic-table entries hold virtual addresses; PT_LOAD segments map them back to file offsets.
            long dynamic = -1, dynamicSize = 0;
            for (int i = 0; i < phnum; i++)
            {
                long ph = Add(phoff, (long)i * phentsize);
                if (U32(elf, ph) == PtDynamic)
                {
                    dynamic = ToOffset(U64(elf, ph + 8));
                    dynamicSize = ToOffset(U64(elf, ph + 32));
                }
            }
            if (dynamic < 0)
                throw new InvalidDataException("no PT_DYNAMIC segment (not a shared library)");

            var d = new Dynamic();
            ulong strtab = 0, verneed = 0, verdef = 0;
            bool hasStrtab = false, hasVerneed = false, hasVerdef = false;
            for (long e = dynamic; e + 16 <= Add(dynamic, dynamicSize); e += 16)
            {
                long tag = (long)U64(elf, e);
                ulong value = U64(elf, e + 8);
                if (tag == DtNull) break;
                else if (tag == DtStrtab) { strtab = value; hasStrtab = true; }
                else if (tag == DtStrsz) d.StrSize = ToOffset(value);
                else if (tag == DtVerneed) { verneed = value; hasVerneed = true; }
                else if (tag == DtVerneednum) d.VerneedNum = ToOffset(value);
                else if (tag == DtVerdef) { verdef = value; hasVerdef = true; }
                else if (tag == DtVerdefnum) d.VerdefNum = ToOffset(value);
            }
            if ((hasVerneed || hasVerdef) && !hasStrtab)
                throw new InvalidDataException("version tables without a DT_STRTAB string table");
            if (hasStrtab) d.Strtab = AddressToOffset(elf, phoff, phentsize, phnum, strtab);
            if (hasVerneed) d.Verneed = AddressToOffset(elf, phoff, phentsize, phnum, verneed);
            if (hasVerdef) d.Verdef = AddressToOffset(elf, phoff, phentsize, phnum, verdef);
            return d;
        }

        private static long AddressToOffset(byte[] elf, long phoff, ushort phentsize, ushort phnum, ulong address)
        {
            for (int i = 0; i < phnum; i++)
            {
                long ph = Add(phoff, (long)i * phentsize);
                if (U32(elf, ph) != PtLoad)
                    continue;
                ulong offset = U64(elf, ph + 8), vaddr = U64(elf, ph + 16), filesz = U64(elf, ph + 32);
                if (address >= vaddr && address - vaddr < filesz)
                    return ToOffset(offset + (address - vaddr));
            }
            throw new InvalidDataException($"address 0x{address:x} is in no PT_LOAD segment");
        }

        // NUL-terminated name at `index` in the dynamic string table.
        private static string Str(byte[] elf, Dynamic d, uint index)
        {
            if (index >= d.StrSize)
                throw new InvalidDataException($"string index {index} is past the string table ({d.StrSize} bytes)");
            long start = Add(d.Strtab, index), end = start;
            long limit = Math.Min(elf.Length, Add(d.Strtab, d.StrSize));
            while (end < limit && elf[end] != 0)
                end++;
            if (end >= limit)
                throw new InvalidDataException($"unterminated string at offset {start}");
            return Encoding.ASCII.GetString(elf, (int)start, (int)(end - start));
        }

        // Little-endian reads that turn any out-of-range offset into InvalidDataException.
        private static ushort U16(byte[] b, long at) { Check(b, at, 2); return (ushort)(b[at] | b[at + 1] << 8); }

        private static uint U32(byte[] b, long at)
        {
            Check(b, at, 4);
            return (uint)(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24);
        }

        private static ulong U64(byte[] b, long at) => U32(b, at) | (ulong)U32(b, at + 4) << 32;

        private static void Check(byte[] b, long at, int size)
        {
            if (at < 0 || at > b.Length - size)
                throw new InvalidDataException($"truncated or corrupt: offset {at} is outside the file ({b.Length} bytes)");
        }

        private static long ToOffset(ulong value) =>
            value <= int.MaxValue ? (long)value : throw new InvalidDataException($"offset or size 0x{value:x} is out of range");

        private static long Add(long offset, long delta) => ToOffset((ulong)offset + (ulong)delta);
    }

#if !NETCOREAPP
    /// <summary>
    /// MSBuild task: makes the GLIBCXX_3.4.32 requirement of each given libLibTorchSharp.so weak when this
    /// machine's libstdc++ lacks that version (or always, with <see cref="Always"/>). Runs on every build because
    /// the SDK's copy step may put the original file back; an already patched file is left alone.
    /// Never fails the build: a file it cannot understand gets a warning.
    /// </summary>
    public class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>The copies in the output or publish folder (never the NuGet cache's file).</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Libraries { get; set; } = new Microsoft.Build.Framework.ITaskItem[0];

        /// <summary>Patch even when this machine's libstdc++ has GLIBCXX_3.4.32 (for output deployed elsewhere).</summary>
        public bool Always { get; set; }

        /// <inheritdoc />
        public override bool Execute()
        {
            string? systemLibStdCxx = null;
            bool? systemHasVersion = null;   // computed only when some file needs the patch
            foreach (var item in Libraries)
            {
                string path = item.GetMetadata("FullPath");
                try
                {
                    byte[] elf = File.ReadAllBytes(path);
                    if (LibTorchSharpElfPatch.Inspect(elf) != GlibcxxRequirement.Required)
                        continue;
                    if (systemHasVersion == null)
                    {
                        systemLibStdCxx = LibTorchSharpElfPatch.FindSystemLibStdCxx();
                        systemHasVersion = SystemDefines(systemLibStdCxx);
                    }
                    if (systemHasVersion == true && !Always)
                        continue;

                    LibTorchSharpElfPatch.Patch(elf);
                    ReplaceWithPatchedCopy(path, elf);
                    string why = systemHasVersion == true ? "LoraGenPatchLibTorchSharp is 'always'"
                        : systemLibStdCxx == null ? "no libstdc++.so.6 was found to check"
                        : systemLibStdCxx + " lacks it";
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal,
                        "LoraGen: made the {0} requirement of {1} weak ({2}; the only symbol behind it is never called).",
                        LibTorchSharpElfPatch.GlibcxxVersion, path, why);
                }
                catch (Exception e)
                {
                    Log.LogWarning(null, "LORAGEN001", null, path, 0, 0, 0, 0,
                        "LoraGen could not check or patch this copy of libLibTorchSharp.so ({0}), so TorchSharp may fail to load where libstdc++ lacks {1}.",
                        e.Message, LibTorchSharpElfPatch.GlibcxxVersion);
                }
            }
            return true;
        }

        // A libstdc++ that cannot be found or read counts as lacking the version: the weak flag is harmless
        // where the version exists, while a missed patch makes TorchSharp unusable.
        private bool SystemDefines(string? libStdCxx)
        {
            if (libStdCxx == null)
                return false;
            try
            {
                return LibTorchSharpElfPatch.DefinesVersion(libStdCxx, LibTorchSharpElfPatch.GlibcxxVersion);
            }
            catch (Exception e)
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                    "LoraGen: could not read the versions of {0} ({1}); patching anyway.", libStdCxx, e.Message);
                return false;
            }
        }

        // Write a temporary file beside the target and rename it over the target. Renaming (never writing into the
        // existing file) matters: with CreateHardLinksForCopyLocalIfPossible or CreateSymbolicLinksForCopyLocalIfPossible
        // the output file is a link to the NuGet cache's file, which must stay untouched. It also means a running
        // process that has the old file mapped keeps a consistent view.
        private static void ReplaceWithPatchedCopy(string path, byte[] patched)
        {
            string temp = path + ".loragen-" + Guid.NewGuid().ToString("N") + ".tmp";
            try
            {
                File.Copy(path, temp);                 // a fresh file with the original's permission bits
                File.WriteAllBytes(temp, patched);     // same length, one flag differs
                // Keep the original's timestamp: the SDK's copy step (SkipUnchangedFiles compares size and time)
                // then sees the patched file as up to date instead of copying the original over it every build.
                File.SetLastWriteTimeUtc(temp, File.GetLastWriteTimeUtc(path));
                File.Replace(temp, path, null);        // rename(2) on Unix: atomic, replaces the link, not its target
            }
            finally
            {
                if (File.Exists(temp))
                    File.Delete(temp);
            }
        }
    }
#endif
}
