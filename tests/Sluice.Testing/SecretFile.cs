// A key or password file as an operator must install it: readable by its owner only (0600), since
// Sluice refuses secrets that group or others can read.
namespace Sluice.Testing;

public static class SecretFile
{
    public static void Write(string path, string text)
    {
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var writer = new StreamWriter(path, options);
        writer.Write(text);
    }
}
