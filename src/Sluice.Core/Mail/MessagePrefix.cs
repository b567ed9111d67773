// Header lines put on top of a message (a Received, a Delivered-To): the one place their bytes are joined.
namespace Sluice.Core.Mail;

public static class MessagePrefix
{
    /// <summary><paramref name="top"/> then <paramref name="message"/>, in one new array (the message itself when there is nothing on top).</summary>
    public static ReadOnlyMemory<byte> Join(ReadOnlyMemory<byte> top, ReadOnlyMemory<byte> message)
    {
        if (top.IsEmpty) return message;
        var joined = new byte[top.Length + message.Length];
        top.CopyTo(joined);
        message.CopyTo(joined.AsMemory(top.Length));
        return joined;
    }
}
