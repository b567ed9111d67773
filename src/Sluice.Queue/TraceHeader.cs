// What the receiver puts in front of a message it queues: its Received header (RFC 5321 §4.4), made
// once the queue has given the message its id, so that the header's id clause is the queue id the log
// ("new msg ID") and `sluice queue show ID` use. It is part of the spooled bytes.
namespace Sluice.Queue;

/// <summary>The bytes to store in front of the message's own, given the id it is queued under.</summary>
public delegate ReadOnlyMemory<byte> TraceHeader(string queueId);
