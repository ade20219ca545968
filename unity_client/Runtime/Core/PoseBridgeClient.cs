// Background-thread subscriber for the posebridge pose stream. Keeps the newest pose behind a lock,
// reconnects with exponential backoff, and stops promptly (Stop never waits on the network).
using System;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Threading;

namespace PoseBridge.Core
{
    public enum ConnectionState { Stopped, Connecting, Connected, WaitingToRetry }

    /// <summary>Settings for <see cref="PoseBridgeClient"/> (defaults match the daemon's defaults).</summary>
    public sealed class PoseBridgeClientOptions
    {
        public string Endpoint = "tcp://127.0.0.1:5570";
        public string Topic = "pose";
        /// <summary>First reconnect delay; doubles after each failure up to <see cref="MaxBackoffMs"/>.</summary>
        public int MinBackoffMs = 100;
        public int MaxBackoffMs = 2000;
        public int ConnectTimeoutMs = 2000;
        public int HandshakeTimeoutMs = 3000;
        /// <summary>PING the publisher after this long without traffic (ZMTP 3.1 only); 0 = never.</summary>
        public int HeartbeatIntervalMs = 1000;
        /// <summary>Reconnect when the publisher sends nothing, not even a PONG, for this long; 0 = never.</summary>
        public int SilenceTimeoutMs = 3000;
        /// <summary>ZMTP minor version to announce: 1 (3.1, SUBSCRIBE command) or 0 (3.0, subscribe message).</summary>
        public int ZmtpMinor = 1;
        public long MaxFrameBytes = 1 << 20;
        /// <summary>Keep only messages of this `face_id` (daemon run with --all-faces); -1 = every message.</summary>
        public int FaceId = -1;
        /// <summary>Log sink, called from the client thread (null = silent).</summary>
        public Action<string> Log;
    }

    /// <summary>
    /// Subscribes to `pose` messages on a background thread. Read the newest pose with
    /// <see cref="TryGetLatest"/> from any thread; <see cref="MessageReceived"/> sees every message
    /// (on the client thread, so handlers must be quick and must not touch engine objects).
    /// </summary>
    public sealed class PoseBridgeClient : IDisposable
    {
        readonly PoseBridgeClientOptions _opt;
        readonly byte[] _topic;
        readonly object _lock = new object();
        readonly ManualResetEvent _wake = new ManualResetEvent(false);
        readonly ZmtpMessage _msg = new ZmtpMessage();
        Thread _thread;
        volatile bool _stop;
        volatile ZmtpConnection _conn;
        PoseSample _latest;
        bool _hasLatest;
        PoseSample _scratch;
        long _lastSeq = -1;
        string _lastError;
        string _lastRejection;
        int _state;

        long _received, _rejected, _connections, _failures, _gaps, _restarts, _ignored;

        /// <summary>Called on the client thread for every accepted message.</summary>
        public event Action<PoseSample> MessageReceived;

        public PoseBridgeClient(PoseBridgeClientOptions options)
        {
            _opt = options ?? new PoseBridgeClientOptions();
            string host;
            int port;
            ZmtpConnection.ParseEndpoint(_opt.Endpoint, out host, out port); // fail fast on a bad endpoint
            _topic = Encoding.ASCII.GetBytes(_opt.Topic ?? "pose");
        }

        public PoseBridgeClient(string endpoint) : this(new PoseBridgeClientOptions { Endpoint = endpoint }) { }

        public string Endpoint { get { return _opt.Endpoint; } }
        public ConnectionState State { get { return (ConnectionState)Volatile.Read(ref _state); } }
        public bool IsRunning { get { return _thread != null && _thread.IsAlive; } }
        /// <summary>Messages accepted.</summary>
        public long MessagesReceived { get { return Interlocked.Read(ref _received); } }
        /// <summary>Messages rejected as malformed (connection kept).</summary>
        public long MessagesRejected { get { return Interlocked.Read(ref _rejected); } }
        /// <summary>Messages on other topics, with unexpected frame counts or of another face (ignored).</summary>
        public long MessagesIgnored { get { return Interlocked.Read(ref _ignored); } }
        /// <summary>Successful handshakes (1 after the first connect; +1 per reconnect).</summary>
        public long Connections { get { return Interlocked.Read(ref _connections); } }
        /// <summary>Connections that failed or broke (refused, closed, junk, timeouts).</summary>
        public long Failures { get { return Interlocked.Read(ref _failures); } }
        /// <summary>Messages missed, from forward jumps in `seq`.</summary>
        public long SequenceGaps { get { return Interlocked.Read(ref _gaps); } }
        /// <summary>Times `seq` went backwards (the publisher restarted).</summary>
        public long PublisherRestarts { get { return Interlocked.Read(ref _restarts); } }
        public string LastError { get { return Volatile.Read(ref _lastError); } }
        public string LastRejection { get { return Volatile.Read(ref _lastRejection); } }

        /// <summary>Copies the newest pose; false until the first message arrives.</summary>
        public bool TryGetLatest(out PoseSample pose)
        {
            lock (_lock)
            {
                pose = _latest;
                return _hasLatest;
            }
        }

        /// <summary>Seconds since the newest pose was received (infinity before the first).</summary>
        public double LatestAgeSeconds
        {
            get
            {
                long ts;
                lock (_lock)
                {
                    if (!_hasLatest) return double.PositiveInfinity;
                    ts = _latest.ReceiveTimestamp;
                }
                return (Stopwatch.GetTimestamp() - ts) / (double)Stopwatch.Frequency;
            }
        }

        /// <summary>Starts the background thread (no-op if running; waits for a previous Stop to finish).</summary>
        public void Start()
        {
            Thread old = _thread;
            if (old != null && old.IsAlive)
            {
                if (!_stop) return; // already running
                if (!old.Join(1000)) throw new InvalidOperationException("the previous client thread is still stopping");
            }
            _stop = false;
            _wake.Reset();
            _thread = new Thread(Run) { IsBackground = true, Name = "PoseBridgeClient " + _opt.Endpoint };
            _thread.Start();
        }

        /// <summary>
        /// Stops the thread: closes the socket so blocked reads return at once, then waits up to
        /// <paramref name="timeoutMs"/>. Returns false if the thread is still alive (it is a background
        /// thread and exits on its own; the caller is never blocked longer than the timeout).
        /// </summary>
        public bool Stop(int timeoutMs = 1000)
        {
            _stop = true;
            _wake.Set();
            ZmtpConnection c = _conn;
            if (c != null) c.Abort();
            Thread t = _thread;
            if (t == Thread.CurrentThread) return false; // called from a MessageReceived handler: the loop exits on return
            bool joined = t == null || t.Join(timeoutMs);
            Volatile.Write(ref _state, (int)ConnectionState.Stopped);
            return joined;
        }

        public void Dispose()
        {
            Stop();
        }

        void Log(string text)
        {
            Action<string> log = _opt.Log;
            if (log == null) return;
            try { log("[posebridge] " + text); } catch (Exception) { }
        }

        void SetState(ConnectionState s)
        {
            Volatile.Write(ref _state, (int)s);
        }

        void Run()
        {
            int backoff = Math.Max(1, _opt.MinBackoffMs);
            string[] peers = { "PUB", "XPUB" };
            while (!_stop)
            {
                SetState(ConnectionState.Connecting);
                bool gotMessages = false;
                try
                {
                    _conn = ZmtpConnection.Open(_opt.Endpoint, "SUB", peers, _opt.ZmtpMinor,
                        _opt.ConnectTimeoutMs, _opt.HandshakeTimeoutMs, () => _stop);
                    if (_stop) break;
                    _conn.MaxFrameBytes = _opt.MaxFrameBytes;
                    _conn.HeartbeatIntervalMs = _opt.HeartbeatIntervalMs;
                    _conn.SilenceTimeoutMs = _opt.SilenceTimeoutMs;
                    _conn.Send(Zmtp.BuildSubscribe(_topic, _conn.NegotiatedMinor));
                    Interlocked.Increment(ref _connections);
                    _lastLoggedFailure = null;
                    SetState(ConnectionState.Connected);
                    Log("connected to " + _opt.Endpoint + " (ZMTP 3." + _conn.NegotiatedMinor + ", peer " + _conn.PeerSocketType + ")");
                    while (!_stop)
                    {
                        _conn.ReceiveMessage(_msg);
                        if (Handle()) gotMessages = true;
                        if (gotMessages) backoff = Math.Max(1, _opt.MinBackoffMs);
                    }
                }
                catch (Exception e)
                {
                    if (_stop) break;
                    Interlocked.Increment(ref _failures);
                    string why = Describe(e);
                    Volatile.Write(ref _lastError, why);
                    LogFailure(why, backoff);
                }
                finally
                {
                    ZmtpConnection c = _conn;
                    _conn = null;
                    if (c != null) c.Dispose();
                }
                if (_stop) break;
                SetState(ConnectionState.WaitingToRetry);
                _wake.WaitOne(backoff);
                backoff = Math.Min(Math.Max(1, _opt.MaxBackoffMs), backoff * 2);
            }
            SetState(ConnectionState.Stopped);
        }

        string _lastLoggedFailure;
        int _repeats;
        readonly Stopwatch _sinceFailureLog = new Stopwatch();

        /// <summary>Logs a failure; the same failure again is summarised every 10 s instead of every retry.</summary>
        void LogFailure(string why, int backoff)
        {
            if (why == _lastLoggedFailure && _sinceFailureLog.ElapsedMilliseconds < 10000)
            {
                _repeats++;
                return;
            }
            string again = why == _lastLoggedFailure && _repeats > 0 ? " (" + _repeats + " more times)" : "";
            Log(why + again + "; retrying in " + backoff + " ms (backoff up to " + _opt.MaxBackoffMs + " ms)");
            _lastLoggedFailure = why;
            _repeats = 0;
            _sinceFailureLog.Restart();
        }

        string Describe(Exception e)
        {
            var se = e as SocketException;
            if (se != null)
            {
                if (se.SocketErrorCode == SocketError.ConnectionRefused)
                    return "connection refused by " + _opt.Endpoint + " (is the daemon running? right port?)";
                return "socket error " + se.SocketErrorCode + " on " + _opt.Endpoint;
            }
            if (e is PeerClosedException) return e.Message + " (" + _opt.Endpoint + ")";
            if (e is ZmtpException) return "protocol error from " + _opt.Endpoint + ": " + e.Message;
            if (e is TimeoutException) return e.Message;
            return e.GetType().Name + ": " + e.Message;
        }

        /// <summary>Decodes one message; true if it was an accepted pose.</summary>
        bool Handle()
        {
            if (_msg.FrameCount != 2 || !_msg.FrameEquals(0, _topic))
            {
                Interlocked.Increment(ref _ignored);
                return false;
            }
            double now = UnixClock.Now();
            long ts = Stopwatch.GetTimestamp();
            string err = PoseDecoder.TryDecode(_msg.Buffer(1), 0, _msg.Length(1), ref _scratch);
            if (err != null)
            {
                long n = Interlocked.Increment(ref _rejected);
                Volatile.Write(ref _lastRejection, err);
                if (n <= 10 || (n & (n - 1)) == 0) Log("rejected message #" + n + ": " + err);
                return false;
            }
            if (_opt.FaceId >= 0 && _scratch.FaceId != _opt.FaceId)
            {
                Interlocked.Increment(ref _ignored);
                return false;
            }
            _scratch.TReceive = now;
            _scratch.ReceiveTimestamp = ts;
            if (_lastSeq >= 0)
            {
                if (_scratch.Seq <= _lastSeq) Interlocked.Increment(ref _restarts);
                else if (_scratch.Seq > _lastSeq + 1) Interlocked.Add(ref _gaps, _scratch.Seq - _lastSeq - 1);
            }
            _lastSeq = _scratch.Seq;
            lock (_lock)
            {
                _latest = _scratch;
                _hasLatest = true;
            }
            Interlocked.Increment(ref _received);
            Action<PoseSample> handler = MessageReceived;
            if (handler != null)
            {
                try { handler(_scratch); }
                catch (Exception e) { Log("MessageReceived handler threw " + e.GetType().Name + ": " + e.Message); }
            }
            return true;
        }
    }

    /// <summary>Wall-clock time in seconds since the Unix epoch (comparable with the daemon's time.time()).</summary>
    public static class UnixClock
    {
        static readonly long EpochTicks = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;

        public static double Now()
        {
            return (DateTime.UtcNow.Ticks - EpochTicks) / (double)TimeSpan.TicksPerSecond;
        }
    }
}
