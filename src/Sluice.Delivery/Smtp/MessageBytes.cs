// MimeKit parses from a stream: the spooled bytes are read in place, not copied, when they are an array.
using System.Runtime.InteropServices;

namespace Sluice.Delivery.Smtp;

internal static class MessageBytes
{
    public static MemoryStream OpenRead(ReadOnlyMemory<byte> message) =>
        MemoryMarshal.TryGetArray(message, out var bytes) ? new(bytes.Array!, bytes.Offset, bytes.Count, writable: false) : new(message.ToArray(), writable: false);
}
