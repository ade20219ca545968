// Console test runner for the plain-C# core (compiled with mcs/csc, run with mono or .NET).
//   selftest --vectors DIR                       in-process tests (vectors, codecs, fake peers, Stop)
//   receive  --endpoint E --count N --out F      receive N messages from a real publisher, check them, dump JSONL
//   restart  --endpoint E --count N              N messages, "PHASE1 OK", then N more after a reconnect
//   recover  --endpoint E --count N              after >= 1 failed connection, N good messages
//   latency  --endpoint E --count N [--out F]    publish->receive latency over N messages
//   control  --endpoint E --cmd NAME             one control request
// Exit code 0 = all checks passed. Not part of the Unity package runtime.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using System.Threading;
using PoseBridge.Core;

namespace PoseBridge.ConsoleTests
{
    public static class Program
    {
        static readonly Dictionary<string, string> Args = new Dictionary<string, string>();

        static string Arg(string name, string fallback = null)
        {
            string v;
            if (Args.TryGetValue(name, out v)) return v;
            if (fallback == null) throw new ArgumentException("missing --" + name);
            return fallback;
        }

        static int IntArg(string name, int fallback) { return int.Parse(Arg(name, fallback.ToString()), CultureInfo.InvariantCulture); }

        public static int Main(string[] argv)
        {
            Thread.CurrentThread.CurrentCulture = CultureInfo.InvariantCulture;
            if (argv.Length == 0)
            {
                Console.WriteLine("usage: PoseBridgeTests.exe selftest|receive|restart|recover|latency|control [--key value ...]");
                return 2;
            }
            for (int i = 1; i + 1 < argv.Length; i += 2) Args[argv[i].TrimStart('-')] = argv[i + 1];
            try
            {
                switch (argv[0])
                {
                    case "selftest": return SelfTests.Run(Arg("vectors"));
                    case "receive": return Receive();
                    case "restart": return Restart();
                    case "recover": return Recover();
                    case "latency": return Latency();
                    case "control": return Control();
                    default:
                        Console.WriteLine("unknown mode " + argv[0]);
                        return 2;
                }
            }
            catch (Exception e)
            {
                Console.WriteLine("FAIL " + e.GetType().Name + ": " + e.Message);
                return 1;
            }
        }

        static PoseBridgeClient NewClient()
        {
            var opt = new PoseBridgeClientOptions
            {
                Endpoint = Arg("endpoint"),
                ZmtpMinor = IntArg("zmtp-minor", 1),
                MinBackoffMs = IntArg("min-backoff-ms", 50),
                MaxBackoffMs = IntArg("max-backoff-ms", 500),
                Log = s => Console.WriteLine("LOG " + s),
            };
            return new PoseBridgeClient(opt);
        }

        static bool WaitFor(Func<bool> cond, double seconds)
        {
            var sw = Stopwatch.StartNew();
            while (!cond())
            {
                if (sw.Elapsed.TotalSeconds > seconds) return false;
                Thread.Sleep(5);
            }
            return true;
        }

        static string F(double d) { return d.ToString("R", CultureInfo.InvariantCulture); }

        /// <summary>Receives N messages; checks v, seq order, finite unit q; writes one JSON line per message.</summary>
        static int Receive()
        {
            int count = IntArg("count", 100);
            double timeout = double.Parse(Arg("timeout", "30"), CultureInfo.InvariantCulture);
            var got = new List<PoseSample>(count);
            using (var c = NewClient())
            {
                c.MessageReceived += p => { lock (got) if (got.Count < count) got.Add(p); };
                c.Start();
                bool ok = WaitFor(() => { lock (got) return got.Count >= count; }, timeout);
                c.Stop();
                Console.WriteLine("received " + got.Count + " messages, rejected " + c.MessagesRejected + ", gaps " + c.SequenceGaps
                                  + ", connections " + c.Connections);
                Check.That(ok, "received " + count + " messages within " + timeout + " s");
                Check.That(c.MessagesRejected == 0, "no message from the daemon rejected (" + c.LastRejection + ")");
            }
            long lastSeq = -1;
            double worstNorm = 0, worstEuler = 0;
            int tracked = 0;
            var sb = new StringBuilder();
            foreach (PoseSample p in got)
            {
                Check.That(p.Version == 1, "schema version 1 (got " + p.Version + ")");
                Check.That(p.Seq > lastSeq, "seq increasing (" + lastSeq + " -> " + p.Seq + ")");
                lastSeq = p.Seq;
                worstNorm = Math.Max(worstNorm, Math.Abs(p.Rotation.Norm - 1));
                if (p.Tracked) tracked++;
                // Our own conversion of the published euler, for comparison with the published q.
                QuatD mine = HeadRotation.ToUnity(p.Euler, false);
                worstEuler = Math.Max(worstEuler, QuatD.AngleBetween(mine, p.Rotation));
                sb.Append("{\"v\": ").Append(p.Version).Append(", \"seq\": ").Append(p.Seq)
                  .Append(", \"tracked\": ").Append(p.Tracked ? "true" : "false")
                  .Append(", \"q\": [").Append(F(p.Rotation.X)).Append(", ").Append(F(p.Rotation.Y)).Append(", ")
                  .Append(F(p.Rotation.Z)).Append(", ").Append(F(p.Rotation.W)).Append("]")
                  .Append(", \"euler\": [").Append(F(p.Euler.Yaw)).Append(", ").Append(F(p.Euler.Pitch)).Append(", ").Append(F(p.Euler.Roll)).Append("]")
                  .Append(", \"q_from_euler\": [").Append(F(mine.X)).Append(", ").Append(F(mine.Y)).Append(", ")
                  .Append(F(mine.Z)).Append(", ").Append(F(mine.W)).Append("]")
                  .Append(", \"pos\": ").Append(p.HasPos ? "[" + F(p.Position.X) + ", " + F(p.Position.Y) + ", " + F(p.Position.Z) + "]" : "null")
                  .Append(", \"t_capture\": ").Append(F(p.TCapture)).Append(", \"t_publish\": ").Append(F(p.TPublish))
                  .Append(", \"t_receive\": ").Append(F(p.TReceive)).Append("}\n");
            }
            Check.That(worstNorm < 1e-6, "q is a unit quaternion (worst |norm-1| " + worstNorm + ")");
            Console.WriteLine("tracked " + tracked + "/" + got.Count + "; max angle between published q and C# ToUnity(euler): "
                              + worstEuler.ToString("E3") + " degrees");
            string outPath = Arg("out", "");
            if (outPath != "") File.WriteAllText(outPath, sb.ToString());
            return Check.Summary("receive");
        }

        /// <summary>Daemon restart: the test harness kills and restarts the publisher after "PHASE1 OK".</summary>
        static int Restart()
        {
            int count = IntArg("count", 20);
            double timeout = double.Parse(Arg("timeout", "30"), CultureInfo.InvariantCulture);
            using (var c = NewClient())
            {
                long afterReconnect = 0;
                long firstConnections = 0;
                c.MessageReceived += p => { if (firstConnections > 0 && c.Connections > firstConnections) Interlocked.Increment(ref afterReconnect); };
                c.Start();
                bool phase1 = WaitFor(() => c.MessagesReceived >= count, timeout);
                Check.That(phase1, "phase 1: " + count + " messages from the first publisher");
                if (!phase1) return Check.Summary("restart");
                firstConnections = c.Connections;
                Console.WriteLine("PHASE1 OK connections=" + firstConnections);
                Console.Out.Flush();
                bool resumed = WaitFor(() => Interlocked.Read(ref afterReconnect) >= count, timeout);
                Console.WriteLine("after restart: connections " + c.Connections + ", failures " + c.Failures + ", publisher restarts (seq reset) "
                                  + c.PublisherRestarts + ", messages since reconnect " + Interlocked.Read(ref afterReconnect)
                                  + ", last error: " + c.LastError);
                Check.That(resumed, "client reconnected and resumed (" + count + " messages from the new publisher)");
                Check.That(c.Connections > firstConnections, "a new connection was made");
                Check.That(c.PublisherRestarts >= 1, "seq reset seen (publisher restart detected)");
                Check.That(c.Stop(), "Stop after restart test");
            }
            return Check.Summary("restart");
        }

        /// <summary>Garbage on the port first (the harness's junk server), then a real publisher.</summary>
        static int Recover()
        {
            int count = IntArg("count", 20);
            double timeout = double.Parse(Arg("timeout", "30"), CultureInfo.InvariantCulture);
            using (var c = NewClient())
            {
                c.Start();
                bool failed = WaitFor(() => c.Failures >= 1, timeout);
                Check.That(failed, "junk on the port was detected as a failed connection");
                Console.WriteLine("JUNK SEEN failures=" + c.Failures + " last error: " + c.LastError);
                Console.Out.Flush();
                bool ok = WaitFor(() => c.MessagesReceived >= count, timeout);
                Console.WriteLine("recovered: received " + c.MessagesReceived + ", connections " + c.Connections + ", failures " + c.Failures
                                  + ", rejected " + c.MessagesRejected);
                Check.That(ok, "recovered and received " + count + " messages from the real publisher");
                Check.That(c.Stop(), "Stop after recover test");
            }
            return Check.Summary("recover");
        }

        /// <summary>t_receive - t_publish over N messages (same machine, same wall clock).</summary>
        static int Latency()
        {
            int count = IntArg("count", 10000);
            double timeout = double.Parse(Arg("timeout", "60"), CultureInfo.InvariantCulture);
            var lat = new double[count];
            int n = 0;
            int gen0 = 0;
            long heapAt100 = 0, heapAtEnd = 0;
            using (var c = NewClient())
            {
                c.MessageReceived += p =>
                {
                    if (n == 100) { gen0 = GC.CollectionCount(0); heapAt100 = GC.GetAllocatedBytesForCurrentThread(); }
                    if (n == count - 1) heapAtEnd = GC.GetAllocatedBytesForCurrentThread();
                    if (n < count) lat[n++] = p.TransportLatency;
                };
                c.Start();
                bool ok = WaitFor(() => Volatile.Read(ref n) >= count, timeout);
                int collections = GC.CollectionCount(0) - gen0;
                c.Stop();
                Check.That(ok, "received " + count + " messages (got " + n + ", gaps " + c.SequenceGaps + ")");
                if (n == 0) return Check.Summary("latency");
                var sorted = new double[n];
                Array.Copy(lat, sorted, n);
                Array.Sort(sorted);
                double median = sorted[n / 2] * 1000, p99 = sorted[Math.Min(n - 1, (int)(n * 0.99))] * 1000;
                double max = sorted[n - 1] * 1000, min = sorted[0] * 1000;
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                    "LATENCY publish->C# receive over {0} messages: median {1:F3} ms, p99 {2:F3} ms, min {3:F3} ms, max {4:F3} ms; gaps {5}; "
                    + "gen0 GCs while receiving {6}; client thread allocated {7:F1} bytes/message",
                    n, median, p99, min, max, c.SequenceGaps, collections,
                    n > 101 ? (heapAtEnd - heapAt100) / (double)(n - 101) : double.NaN));
                if (n > 101)
                    Check.That((heapAtEnd - heapAt100) / (double)(n - 101) < 1.0, "receiving does not allocate per message");
                string outPath = Arg("out", "");
                if (outPath != "")
                {
                    var sb = new StringBuilder();
                    for (int i = 0; i < n; i++) sb.Append(F(lat[i])).Append('\n');
                    File.WriteAllText(outPath, sb.ToString());
                }
            }
            return Check.Summary("latency");
        }

        static int Control()
        {
            ControlReply r = ControlClient.Send(Arg("endpoint"), Arg("cmd"), IntArg("timeout-ms", 2000));
            Console.WriteLine("CONTROL ok=" + r.Ok + " error=" + (r.Error ?? ""));
            return r.Ok ? 0 : 1;
        }
    }
}
