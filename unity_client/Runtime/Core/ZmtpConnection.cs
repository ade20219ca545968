// One ZMTP 3.x connection over a TCP socket (NULL security), client side. Used for the SUB pose
// stream and the REQ control socket. Reads are polled in short slices so that a stop request or a
// silent peer is noticed promptly; buffers are reused so steady-state reading does not allocate.
using System;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace PoseBridge.Core
{
    /// <summary>The owner asked the connection to stop (not an error).</summary>
    public sealed class StopRequestedException : Exception
    {
        public StopRequestedException() : base("stop requested") { }
    }

    /// <summary>The peer closed the TCP connection (a daemon that exits or restarts).</summary>
    public sealed class PeerClosedException : System.IO.IOException
    {
        public PeerClosedException() : base("the peer closed the connection") { }
    }

    /// <summary>Frames of one received message, held in buffers reused from message to message.</summary>
    public sealed class ZmtpMessage
    {
        public const int MaxFrames = 16;
        readonly byte[][] _frames = new byte[MaxFrames][];
        readonly int[] _lengths = new int[MaxFrames];

        /// <summary>Frames kept (frames beyond <see cref="MaxFrames"/> are read and dropped).</summary>
        public int FrameCount { get; internal set; }
        public byte[] Buffer(int i) { return _frames[i]; }
        public int Length(int i) { return _lengths[i]; }

        internal byte[] Rent(int i, int size)
        {
            byte[] b = _frames[i];
            if (b == null || b.Length < size) _frames[i] = b = new byte[Math.Max(size, 256)];
            _lengths[i] = size;
            return b;
        }

        /// <summary>True when frame <paramref name="i"/> equals the ASCII bytes given.</summary>
        public bool FrameEquals(int i, byte[] ascii)
        {
            if (i >= FrameCount || _lengths[i] != ascii.Length) return false;
            byte[] b = _frames[i];
            for (int k = 0; k < ascii.Length; k++)
                if (b[k] != ascii[k]) return false;
            return true;
        }
    }

    public sealed class ZmtpConnection : IDisposable
    {
        const int PollSliceMicros = 50000;

        readonly Socket _socket;
        readonly Func<bool> _shouldStop;
        readonly byte[] _rbuf = new byte[64 * 1024];
        int _rpos, _rlen;
        byte[] _command = new byte[256];
        readonly byte[] _pong;
        readonly Stopwatch _sinceReceive = Stopwatch.StartNew();
        long _lastPingMs = -1;

        /// <summary>ZMTP minor version agreed with the peer (0 or 1).</summary>
        public int NegotiatedMinor { get; private set; }
        /// <summary>Socket-Type the peer announced in its READY.</summary>
        public string PeerSocketType { get; private set; }
        /// <summary>Largest accepted frame; anything bigger is a protocol error (junk or a foreign peer).</summary>
        public long MaxFrameBytes { get; set; }
        /// <summary>Send a PING after this long without incoming traffic (ZMTP 3.1 peers only; 0 = never).</summary>
        public int HeartbeatIntervalMs { get; set; }
        /// <summary>Give up on a peer that sends nothing (not even a PONG) for this long (0 = never).</summary>
        public int SilenceTimeoutMs { get; set; }

        ZmtpConnection(Socket socket, Func<bool> shouldStop)
        {
            _socket = socket;
            _shouldStop = shouldStop ?? (() => false);
            MaxFrameBytes = 1 << 20;
            _pong = Zmtp.BuildCommand("PONG", null);
        }

        /// <summary>Parses "tcp://host:port".</summary>
        public static void ParseEndpoint(string endpoint, out string host, out int port)
        {
            const string prefix = "tcp://";
            if (endpoint == null || !endpoint.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException("endpoint must look like tcp://127.0.0.1:5570, got '" + endpoint + "'");
            string rest = endpoint.Substring(prefix.Length);
            int colon = rest.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(rest.Substring(colon + 1), out port) || port <= 0 || port > 65535)
                throw new ArgumentException("endpoint needs a port 1-65535: '" + endpoint + "'");
            host = rest.Substring(0, colon).Trim('[', ']');
        }

        /// <summary>Connects (polling <paramref name="shouldStop"/>) and performs the ZMTP handshake.</summary>
        public static ZmtpConnection Open(string endpoint, string socketType, string[] acceptedPeerTypes,
            int ourMinor, int connectTimeoutMs, int handshakeTimeoutMs, Func<bool> shouldStop)
        {
            string host;
            int port;
            ParseEndpoint(endpoint, out host, out port);
            IPAddress address = Resolve(host);
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            var conn = new ZmtpConnection(socket, shouldStop);
            try
            {
                socket.NoDelay = true;
                conn.Connect(new IPEndPoint(address, port), connectTimeoutMs);
                conn.Handshake(socketType, acceptedPeerTypes, ourMinor, handshakeTimeoutMs);
                return conn;
            }
            catch
            {
                conn.Dispose();
                throw;
            }
        }

        static IPAddress Resolve(string host)
        {
            IPAddress ip;
            if (IPAddress.TryParse(host, out ip)) return ip;
            IPAddress[] all = Dns.GetHostAddresses(host);
            foreach (IPAddress a in all)
                if (a.AddressFamily == AddressFamily.InterNetwork) return a;
            if (all.Length == 0) throw new SocketException((int)SocketError.HostNotFound);
            return all[0];
        }

        void Connect(EndPoint ep, int timeoutMs)
        {
            IAsyncResult ar = _socket.BeginConnect(ep, null, null);
            var sw = Stopwatch.StartNew();
            while (!ar.AsyncWaitHandle.WaitOne(50))
            {
                if (_shouldStop()) throw new StopRequestedException();
                if (sw.ElapsedMilliseconds > timeoutMs)
                    throw new TimeoutException("connect to " + ep + " timed out after " + timeoutMs + " ms");
            }
            _socket.EndConnect(ar);
        }

        void Handshake(string socketType, string[] acceptedPeerTypes, int ourMinor, int timeoutMs)
        {
            Send(Zmtp.BuildGreeting(ourMinor));
            var deadline = Stopwatch.StartNew();
            Fill(Zmtp.GreetingSize, deadline, timeoutMs);
            var greeting = new byte[Zmtp.GreetingSize];
            Buffer.BlockCopy(_rbuf, _rpos, greeting, 0, Zmtp.GreetingSize);
            Consume(Zmtp.GreetingSize);
            NegotiatedMinor = Math.Min(ourMinor, Zmtp.ParseGreeting(greeting));
            Send(Zmtp.BuildReady(socketType));

            byte flags;
            int len;
            ReadFrameInto(ref _command, out flags, out len, deadline, timeoutMs);
            if ((flags & Zmtp.FlagCommand) == 0) throw new ZmtpException("expected READY, got a message frame");
            int dataOffset;
            string name = Zmtp.CommandName(_command, len, out dataOffset);
            if (name == "ERROR") throw new ZmtpException("peer refused the handshake: " + ErrorReason(dataOffset, len));
            if (name != "READY") throw new ZmtpException("expected READY, got " + name);
            PeerSocketType = Zmtp.FindProperty(_command, dataOffset, len, "Socket-Type");
            if (Array.IndexOf(acceptedPeerTypes, PeerSocketType) < 0)
                throw new ZmtpException("peer socket type " + (PeerSocketType ?? "(none)") + " cannot talk to " + socketType);
            _sinceReceive.Restart();
        }

        string ErrorReason(int offset, int len)
        {
            if (offset >= len) return "(no reason)";
            int n = Math.Min(_command[offset], len - offset - 1);
            return System.Text.Encoding.ASCII.GetString(_command, offset + 1, n);
        }

        public void Send(byte[] data)
        {
            Send(data, 0, data.Length);
        }

        public void Send(byte[] data, int offset, int count)
        {
            while (count > 0)
            {
                SocketError err;
                int n = _socket.Send(data, offset, count, SocketFlags.None, out err);
                if (err != SocketError.Success || n <= 0) throw new SocketException((int)err);
                offset += n;
                count -= n;
            }
        }

        /// <summary>Sends a multi-frame message (small control messages; allocates).</summary>
        public void SendMessage(params byte[][] frames)
        {
            for (int i = 0; i < frames.Length; i++)
            {
                byte[] f = frames[i];
                var header = new byte[9];
                int h = Zmtp.WriteHeader(header, 0, i < frames.Length - 1 ? Zmtp.FlagMore : (byte)0, f.Length);
                Send(header, 0, h);
                if (f.Length > 0) Send(f);
            }
        }

        /// <summary>
        /// Reads the next message (all its frames) into <paramref name="msg"/>. Commands in between are
        /// handled (PING answered, ERROR raised). Throws on stop, peer close, silence or protocol error.
        /// </summary>
        public void ReceiveMessage(ZmtpMessage msg)
        {
            ReceiveMessage(msg, null, 0);
        }

        /// <summary>As <see cref="ReceiveMessage(ZmtpMessage)"/>, with an overall timeout.</summary>
        public void ReceiveMessage(ZmtpMessage msg, Stopwatch deadline, int timeoutMs)
        {
            int count = 0;
            while (true)
            {
                Fill(2, deadline, timeoutMs);
                byte flags = _rbuf[_rpos];
                Zmtp.CheckFlags(flags);
                if ((flags & Zmtp.FlagCommand) != 0)
                {
                    if (count > 0) throw new ZmtpException("command frame inside a multi-frame message");
                    int len;
                    ReadFrameInto(ref _command, out flags, out len, deadline, timeoutMs);
                    HandleCommand(len);
                    continue;
                }
                long size = ReadHeader(deadline, timeoutMs, out flags);
                int keep = count < ZmtpMessage.MaxFrames ? count : -1;
                if (keep >= 0)
                {
                    byte[] dst = msg.Rent(keep, (int)size);
                    ReadBody(dst, (int)size, deadline, timeoutMs);
                }
                else
                {
                    SkipBody(size, deadline, timeoutMs);
                }
                count++;
                if ((flags & Zmtp.FlagMore) == 0) break;
            }
            msg.FrameCount = Math.Min(count, ZmtpMessage.MaxFrames);
        }

        void HandleCommand(int len)
        {
            int dataOffset;
            string name = CommandNameNoAlloc(len, out dataOffset);
            if (name == "PING")
            {
                // PONG echoes the ping context (data after the 2-byte TTL).
                int ctx = Math.Max(0, len - dataOffset - 2);
                if (ctx == 0) Send(_pong);
                else
                {
                    var data = new byte[ctx];
                    Buffer.BlockCopy(_command, dataOffset + 2, data, 0, ctx);
                    Send(Zmtp.BuildCommand("PONG", data));
                }
            }
            else if (name == "ERROR")
            {
                throw new ZmtpException("peer sent ERROR: " + ErrorReason(dataOffset, len));
            }
            // PONG, SUBSCRIBE, CANCEL and unknown commands need nothing from a client.
        }

        static readonly string[] KnownCommands = { "PING", "PONG", "ERROR", "READY", "SUBSCRIBE", "CANCEL" };

        string CommandNameNoAlloc(int len, out int dataOffset)
        {
            if (len < 1 || _command[0] + 1 > len) throw new ZmtpException("malformed command frame");
            dataOffset = 1 + _command[0];
            foreach (string k in KnownCommands)
            {
                if (k.Length != _command[0]) continue;
                bool eq = true;
                for (int i = 0; eq && i < k.Length; i++) eq = _command[1 + i] == k[i];
                if (eq) return k;
            }
            return "";
        }

        long ReadHeader(Stopwatch deadline, int timeoutMs, out byte flags)
        {
            Fill(2, deadline, timeoutMs);
            flags = _rbuf[_rpos];
            Zmtp.CheckFlags(flags);
            long size;
            if ((flags & Zmtp.FlagLong) != 0)
            {
                Fill(9, deadline, timeoutMs);
                size = Zmtp.ReadLongSize(_rbuf, _rpos + 1);
                Consume(9);
            }
            else
            {
                size = _rbuf[_rpos + 1];
                Consume(2);
            }
            if (size > MaxFrameBytes)
                throw new ZmtpException("frame of " + size + " bytes exceeds the limit of " + MaxFrameBytes);
            return size;
        }

        void ReadFrameInto(ref byte[] dst, out byte flags, out int len, Stopwatch deadline, int timeoutMs)
        {
            long size = ReadHeader(deadline, timeoutMs, out flags);
            if (dst.Length < size) dst = new byte[size];
            len = (int)size;
            ReadBody(dst, len, deadline, timeoutMs);
        }

        void ReadBody(byte[] dst, int size, Stopwatch deadline, int timeoutMs)
        {
            int done = 0;
            while (done < size)
            {
                if (_rlen - _rpos == 0) Fill(1, deadline, timeoutMs);
                int n = Math.Min(size - done, _rlen - _rpos);
                Buffer.BlockCopy(_rbuf, _rpos, dst, done, n);
                Consume(n);
                done += n;
            }
        }

        void SkipBody(long size, Stopwatch deadline, int timeoutMs)
        {
            while (size > 0)
            {
                if (_rlen - _rpos == 0) Fill(1, deadline, timeoutMs);
                int n = (int)Math.Min(size, _rlen - _rpos);
                Consume(n);
                size -= n;
            }
        }

        void Consume(int n)
        {
            _rpos += n;
            if (_rpos == _rlen) _rpos = _rlen = 0;
        }

        /// <summary>Ensures at least <paramref name="need"/> unread bytes are buffered.</summary>
        void Fill(int need, Stopwatch deadline, int timeoutMs)
        {
            if (_rlen - _rpos >= need) return;
            if (_rpos > 0)
            {
                Buffer.BlockCopy(_rbuf, _rpos, _rbuf, 0, _rlen - _rpos);
                _rlen -= _rpos;
                _rpos = 0;
            }
            while (_rlen < need)
            {
                if (_shouldStop()) throw new StopRequestedException();
                if (deadline != null && deadline.ElapsedMilliseconds > timeoutMs)
                    throw new TimeoutException("peer did not answer within " + timeoutMs + " ms");
                if (!_socket.Poll(PollSliceMicros, SelectMode.SelectRead))
                {
                    OnIdle();
                    continue;
                }
                SocketError err;
                int n = _socket.Receive(_rbuf, _rlen, _rbuf.Length - _rlen, SocketFlags.None, out err);
                if (err != SocketError.Success && err != SocketError.WouldBlock) throw new SocketException((int)err);
                if (n == 0 && err == SocketError.Success) throw new PeerClosedException();
                _rlen += n;
                _sinceReceive.Restart();
                _lastPingMs = -1;
            }
        }

        void OnIdle()
        {
            long idle = _sinceReceive.ElapsedMilliseconds;
            if (NegotiatedMinor < 1) return; // ZMTP 3.0 has no PING: a quiet publisher is not an error
            if (SilenceTimeoutMs > 0 && idle > SilenceTimeoutMs)
                throw new TimeoutException("no data or PONG from the publisher for " + idle + " ms");
            if (HeartbeatIntervalMs > 0 && idle > HeartbeatIntervalMs
                && (_lastPingMs < 0 || idle - _lastPingMs > HeartbeatIntervalMs))
            {
                Send(PingTtlZero);
                _lastPingMs = idle;
            }
        }

        // PING with TTL 0: we ask for a PONG but never ask the publisher to time us out.
        static readonly byte[] PingTtlZero = Zmtp.BuildCommand("PING", new byte[] { 0, 0 });

        public void Dispose()
        {
            try { _socket.Close(); } catch (Exception) { }
        }

        /// <summary>Closes the socket from another thread, which makes a blocked read return at once.</summary>
        public void Abort()
        {
            Dispose();
        }
    }
}
