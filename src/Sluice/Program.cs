// The `sluice` command: serve, inject, queue, top, setqload, reload and passwd verbs of the operator contract (design.md §3),
// and sendmail's interface (`sluice sendmail`, or run as sendmail or mailq), whose arguments are parsed by hand.
using System.CommandLine;
using Sluice.Verbs;

if (SendmailVerb.ArgumentsIfSendmail(args) is { } sendmailArgs) return await SendmailVerb.RunAsync(sendmailArgs, CancellationToken.None);

var config = new Option<string?>("--config", "-c") { Description = "JSON configuration file (default: embedded defaults)", Recursive = true };
var root = new RootCommand("Sluice, a mail transfer agent with a multi-queue, group-committed spool");
root.Options.Add(config);
root.Subcommands.Add(ServeVerb.Create(config));
root.Subcommands.Add(InjectVerb.Create(config));
root.Subcommands.Add(QueueVerb.Create(config));
root.Subcommands.Add(TopVerb.Create(config));
root.Subcommands.Add(SetqloadVerb.Create(config));
root.Subcommands.Add(ReloadVerb.Create(config));
root.Subcommands.Add(PasswdVerb.Create(config));
root.Subcommands.Add(DeliveryWorkerVerb.Create());
// Each verb handles SIGTERM/SIGINT itself (serve drains its queues, which can take longer than System.CommandLine's
// default grace of two seconds before it ends the process): no termination timeout.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
