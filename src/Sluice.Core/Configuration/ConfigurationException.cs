namespace Sluice.Core.Configuration;

/// <summary>A configuration that cannot run; the message names the source, the key and the reason.</summary>
public sealed class ConfigurationException(string message) : Exception(message);
