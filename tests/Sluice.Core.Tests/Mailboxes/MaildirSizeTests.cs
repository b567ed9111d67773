// Maildir++ quota bookkeeping on a real directory: the file is read as the spec sums it, rebuilt
// from the messages when missing, too long or carrying another limit, and appended to on delivery.
using Sluice.Core.Mailboxes;
using Sluice.Testing;

namespace Sluice.Core.Tests.Mailboxes;

public sealed class MaildirSizeTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public MaildirSizeTests()
    {
        foreach (var sub in new[] { "new", "cur", "tmp", ".tag/new", ".tag/cur" }) Directory.CreateDirectory(_dir.File(sub));
    }

    private string SizeFile => _dir.File(MaildirSize.FileName);

    [Fact]
    public void Usage_is_the_sum_of_the_lines_after_the_limit()
    {
        File.WriteAllText(SizeFile, "5000S,0C\n300 2\n-100 -1\n");
        Assert.Equal(200, MaildirSize.ReadUsage(_dir.Path));
        Assert.Equal(200, MaildirSize.Usage(_dir.Path, 5000));
    }

    [Fact]
    public void Without_a_file_usage_is_unknown_to_readers_and_counted_from_the_messages_by_the_agent()
    {
        File.WriteAllText(_dir.File("new/1.M1P1Q1.host,S=120"), "x"); // the size in the name wins over stat
        File.WriteAllText(_dir.File("cur/2.M1P1Q2.host:2,S"), new string('y', 30));
        File.WriteAllText(_dir.File(".tag/new/3.M1P1Q3.host,S=50"), "z");
        Assert.Null(MaildirSize.ReadUsage(_dir.Path));
        Assert.Equal(200, MaildirSize.Usage(_dir.Path, 4096));
        Assert.Equal("4096S\n200 3\n", File.ReadAllText(SizeFile));
    }

    [Fact]
    public void A_changed_limit_or_an_overlong_file_is_rebuilt()
    {
        File.WriteAllText(_dir.File("new/1.M1P1Q1.host,S=70"), "x");
        File.WriteAllText(SizeFile, "1000S\n999 1\n");
        Assert.Equal(70, MaildirSize.Usage(_dir.Path, 2000));
        File.WriteAllText(SizeFile, "2000S\n" + string.Concat(Enumerable.Repeat("1 1\n", 2000)));
        Assert.Equal(70, MaildirSize.Usage(_dir.Path, 2000));
    }

    [Fact]
    public void A_delivery_appends_a_line_only_where_the_file_is_kept()
    {
        MaildirSize.Add(_dir.Path, 10);
        Assert.False(File.Exists(SizeFile));
        File.WriteAllText(SizeFile, "2000S\n");
        MaildirSize.Add(_dir.Path, 10);
        Assert.Equal("2000S\n10 1\n", File.ReadAllText(SizeFile));
    }

    public void Dispose() => _dir.Dispose();
}
