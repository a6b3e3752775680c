namespace LoraGen.Files;

/// <summary>The element types LoraGen reads and writes in safetensors files (the names are the format's).</summary>
public enum SafetensorsDType
{
    /// <summary>IEEE 754 binary64.</summary>
    F64,

    /// <summary>IEEE 754 binary32.</summary>
    F32,

    /// <summary>IEEE 754 binary16.</summary>
    F16,

    /// <summary>bfloat16: the upper half of a binary32.</summary>
    BF16,

    /// <summary>Signed 64-bit integer.</summary>
    I64,

    /// <summary>Signed 32-bit integer.</summary>
    I32,

    /// <summary>Signed 16-bit integer.</summary>
    I16,

    /// <summary>Signed 8-bit integer.</summary>
    I8,

    /// <summary>Unsigned 8-bit integer.</summary>
    U8,

    /// <summary>One byte per element, 0 or 1.</summary>
    BOOL,
}

/// <summary>Sizes and names of <see cref="SafetensorsDType"/>.</summary>
public static class SafetensorsDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int ElementSize(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F64 or SafetensorsDType.I64 => 8,
        SafetensorsDType.F32 or SafetensorsDType.I32 => 4,
        SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.I16 => 2,
        _ => 1,
    };

    /// <summary>Whether the type holds floating-point numbers.</summary>
    public static bool IsFloatingPoint(this SafetensorsDType dtype) =>
        dtype is SafetensorsDType.F64 or SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16;

    /// <summary>Parses the format's name for a dtype ("F32", "BF16", ...); case-sensitive, as the format is.</summary>
    public static bool TryParse(string? name, out SafetensorsDType dtype)
    {
        dtype = default;
        if (name is null || name.Length == 0 || !char.IsAsciiLetterUpper(name[0]))
            return false;
        return Enum.TryParse(name, ignoreCase: false, out dtype) && Enum.IsDefined(dtype) && dtype.ToString() == name;
    }
}
