// sysexits(3) codes, which sendmail-compatible callers of `inject` understand.
namespace Sluice.Verbs;

internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Usage = 64;
    public const int DataError = 65;
    public const int NoUser = 67;
    public const int Unavailable = 69;
    public const int IoError = 74;
    public const int TempFail = 75;
    public const int NoPermission = 77;
    public const int Config = 78;
}
