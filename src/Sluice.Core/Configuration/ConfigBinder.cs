// Binds an IConfiguration tree onto the options types, reporting every unknown key and every value
// of the wrong type with its full key path. Hand-written because the stock binder either ignores
// unknown keys or stops at the first one, and names neither the file nor the expected type well.
using System.Collections;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Sluice.Core.Configuration;

internal sealed class ConfigBinder
{
    private readonly List<(string Key, string Reason)> _errors = [];

    public IReadOnlyList<(string Key, string Reason)> Errors => _errors;

    public void BindObject(IConfiguration section, object target, string path)
    {
        var props = target.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite).ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            var key = Join(path, child.Key);
            if (!props.TryGetValue(child.Key, out var prop))
            {
                _errors.Add((key, $"unknown key (known here: {string.Join(", ", props.Keys)})"));
                continue;
            }
            if (TryBind(child, prop.PropertyType, prop.GetValue(target), key, out var value))
                prop.SetValue(target, value);
        }
    }

    private bool TryBind(IConfigurationSection section, Type type, object? current, string key, out object? value)
    {
        value = null;
        var hasChildren = section.GetChildren().Any();
        var nullable = Nullable.GetUnderlyingType(type);
        if (nullable is not null)
        {
            if (!hasChildren && string.IsNullOrEmpty(section.Value)) return true;
            type = nullable;
        }
        if (IsScalar(type))
        {
            if (hasChildren) return Fail(key, $"expected {Describe(type)}, found an object or array");
            if (section.Value is null)
                return type == typeof(string) ? true : Fail(key, $"expected {Describe(type)}, found null");
            return TryConvert(section.Value, type, key, out value);
        }
        if (!hasChildren && !string.IsNullOrEmpty(section.Value))
            return Fail(key, $"expected {Describe(type)}, found \"{section.Value}\"");

        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            var itemType = type.GetGenericArguments()[0];
            var list = (IList)Activator.CreateInstance(type)!;
            var ok = true;
            foreach (var child in section.GetChildren().OrderBy(c => int.TryParse(c.Key, out var n) ? n : int.MaxValue))
            {
                var childKey = Join(key, child.Key);
                if (!int.TryParse(child.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    ok = Fail(childKey, "expected an array element");
                    continue;
                }
                if (TryBind(child, itemType, NewDefault(itemType), childKey, out var item)) list.Add(item);
                else ok = false;
            }
            value = list;
            return ok;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
        {
            var itemType = type.GetGenericArguments()[1];
            var dict = (IDictionary)Activator.CreateInstance(type, StringComparer.OrdinalIgnoreCase)!;
            var ok = true;
            foreach (var child in section.GetChildren())
            {
                if (TryBind(child, itemType, NewDefault(itemType), Join(key, child.Key), out var item)) dict[child.Key] = item;
                else ok = false;
            }
            value = dict;
            return ok;
        }
        var obj = current ?? Activator.CreateInstance(type)!;
        BindObject(section, obj, key);
        value = obj;
        return true;
    }

    private bool TryConvert(string text, Type type, string key, out object? value)
    {
        value = null;
        var inv = CultureInfo.InvariantCulture;
        if (type == typeof(string)) { value = text; return true; }
        if (type == typeof(int) && int.TryParse(text, NumberStyles.Integer, inv, out var i)) { value = i; return true; }
        if (type == typeof(long) && long.TryParse(text, NumberStyles.Integer, inv, out var l)) { value = l; return true; }
        if (type == typeof(double) && double.TryParse(text, NumberStyles.Float, inv, out var d) && double.IsFinite(d)) { value = d; return true; }
        if (type == typeof(bool) && bool.TryParse(text, out var b)) { value = b; return true; }
        if (type == typeof(TimeSpan) && Duration.TryParse(text, out var t)) { value = t; return true; }
        if (type == typeof(ByteSize) && ByteSize.TryParse(text, out var s)) { value = s; return true; }
        return Fail(key, $"\"{text}\" is not {Describe(type)}");
    }

    private bool Fail(string key, string reason)
    {
        _errors.Add((key, reason));
        return false;
    }

    private static bool IsScalar(Type t) =>
        t == typeof(string) || t == typeof(int) || t == typeof(long) || t == typeof(double) || t == typeof(bool)
        || t == typeof(TimeSpan) || t == typeof(ByteSize);

    private static object? NewDefault(Type t) => IsScalar(t) || t.IsValueType ? null : Activator.CreateInstance(t);

    private static string Describe(Type t) =>
        t == typeof(string) ? "a string"
        : t == typeof(int) || t == typeof(long) ? "a whole number"
        : t == typeof(double) ? "a number"
        : t == typeof(bool) ? "true or false"
        : t == typeof(TimeSpan) ? "a duration such as 200ms, 90s, 5m, 4h or 5d"
        : t == typeof(ByteSize) ? "a size such as 52428800, 64KB or 100MB"
        : t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>) ? "an array"
        : "an object";

    private static string Join(string path, string key) => path.Length == 0 ? key : path + ":" + key;
}
