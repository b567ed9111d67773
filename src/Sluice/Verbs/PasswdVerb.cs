// `sluice passwd [--delete] USER`: set (password from the first line of stdin) or remove a user of
// SMTP AUTH in the users file; the running server sees the change at the next AUTH.
using System.CommandLine;
using System.Text;
using Sluice.Receive.Auth;

namespace Sluice.Verbs;

internal static class PasswdVerb
{
    public static Command Create(Option<string?> config)
    {
        var delete = new Option<bool>("--delete", "-d") { Description = "Remove the user instead of setting a password" };
        var user = new Argument<string>("user") { Description = "User name for SMTP AUTH (case-sensitive)" };
        var command = new Command("passwd", "Set a user's SMTP AUTH password, read from the first line of standard input") { delete, user };
        command.SetAction(parse =>
        {
            var options = ConfigOption.Load(parse.GetValue(config));
            if (options is null) return ExitCodes.Config;
            var name = parse.GetValue(user)!;
            var path = options.SmtpUsersPath;
            try
            {
                if (parse.GetValue(delete))
                {
                    if (!SmtpUserStore.Remove(path, name)) return Fail(ExitCodes.NoUser, $"no user {name} in {path}");
                    Console.WriteLine($"passwd: removed {name} from {path}");
                    return ExitCodes.Ok;
                }
                var password = Console.In.ReadLine()?.TrimEnd('\r', '\n');
                if (string.IsNullOrEmpty(password)) return Fail(ExitCodes.Usage, "no password: give it as the first line of standard input");
                SmtpUserStore.SetPassword(path, name, password);
                Console.WriteLine($"passwd: set {name} in {path}");
                return ExitCodes.Ok;
            }
            catch (DecoderFallbackException)
            {
                return Fail(ExitCodes.DataError, $"{path} is not valid UTF-8; not changed");
            }
            catch (ArgumentException e)
            {
                return Fail(ExitCodes.Usage, e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Fail(ExitCodes.IoError, $"cannot write {path}: {e.Message}");
            }
        });
        return command;
    }

    private static int Fail(int code, string why)
    {
        Console.Error.WriteLine($"sluice: passwd: {why}");
        return code;
    }
}
