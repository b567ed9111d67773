// The delivery log as operators grep it across restarts: a delivery number names one delivery, whichever
// run of the server made it, and the Received header's id is the queue id the log and `queue show` use.
using System.Text.RegularExpressions;

namespace Sluice.EndToEnd;

public sealed partial class DeliveryLogTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Delivery_numbers_go_on_across_a_clean_restart_and_a_kill_and_never_repeat()
    {
        await using var sluice = await Instance.StartAsync(c => c["Queue"] = new { Count = 2 });
        var runs = new List<long[]>();
        async Task DeliverThreeAsync(string run)
        {
            var before = sluice.Sink.Messages.Count;
            foreach (var n in Enumerable.Range(0, 3)) await TestMail.SendAsync(sluice.Process.SmtpPort, $"{run}{n}@remote.test");
            await sluice.Sink.WaitForCountAsync(before + 3, Wait);
            await sluice.Process.WaitForLogAsync(_ => sluice.Process.Log.Count(l => Success().IsMatch(l)) == 3, Wait);
            var started = sluice.Process.Log.Select(l => Starting().Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value)).ToArray();
            var succeeded = sluice.Process.Log.Select(l => Success().Match(l)).Where(m => m.Success).Select(m => long.Parse(m.Groups[1].Value));
            Assert.Equal(started.Order(), succeeded.Order());
            runs.Add(started);
        }

        await DeliverThreeAsync("first");
        Assert.Equal(0, await sluice.Process.StopAsync());
        await sluice.RestartAsync();
        await DeliverThreeAsync("second");
        sluice.Process.Kill(); // no clean stop: what was reserved but not used must not come round again
        await sluice.RestartAsync();
        await DeliverThreeAsync("third");

        var all = runs.SelectMany(r => r).ToList();
        Assert.Equal(9, all.Count);
        Assert.Equal(9, all.Distinct().Count());
        // Each run numbers after every number of the runs before it, so the log reads in order; after a clean stop none is skipped.
        for (int i = 1; i < runs.Count; i++) Assert.True(runs[i].Min() > runs[i - 1].Max(), $"run {i + 1} numbered {string.Join(",", runs[i])} after {string.Join(",", runs[i - 1])}");
        Assert.Equal(runs[0].Max() + 1, runs[1].Min());
    }

    [GeneratedRegex(@"starting delivery (\d+): msg ")]
    private static partial Regex Starting();

    [GeneratedRegex(@"\bdelivery (\d+): success: ")]
    private static partial Regex Success();
}
