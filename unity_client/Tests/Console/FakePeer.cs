// Console test runner only: a raw TCP server that plays a scripted (possibly broken) ZMTP peer, to
// provoke faults the real daemon never produces. Real-publisher tests live in tests/end_to_end/test_unity_client.py.
using System;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using PoseBridge.Core;

namespace PoseBridge.ConsoleTests
{
    public sealed class FakePeer : IDisposable
    {
        readonly TcpListener _listener;
        readonly Thread _thread;
        readonly Action<Socket> _script;
        volatile bool _closed;
        public int Accepted;
        public string ScriptError;

        public FakePeer(Action<Socket> script)
        {
            _script = script;
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _thread = new Thread(Serve) { IsBackground = true, Name = "FakePeer" };
            _thread.Start();
        }

        public int Port { get { return ((IPEndPoint)_listener.LocalEndpoint).Port; } }
        public string Endpoint { get { return "tcp://127.0.0.1:" + Port; } }

        void Serve()
        {
            while (!_closed)
            {
                Socket s;
                try { s = _listener.AcceptSocket(); }
                catch (Exception) { return; }
                Interlocked.Increment(ref Accepted);
                var t = new Thread(() =>
                {
                    try { _script(s); }
                    catch (Exception e) { if (!_closed) ScriptError = e.GetType().Name + ": " + e.Message; }
                    finally { try { s.Close(); } catch (Exception) { } }
                }) { IsBackground = true };
                t.Start();
            }
        }

        public void Dispose()
        {
            _closed = true;
            try { _listener.Stop(); } catch (Exception) { }
        }

        // ---- helpers for scripts ----

        public static void SendAll(Socket s, byte[] data)
        {
            int off = 0;
            while (off < data.Length) off += s.Send(data, off, data.Length - off, SocketFlags.None);
        }

        public static byte[] ReadExactly(Socket s, int n, int timeoutMs = 5000)
        {
            var b = new byte[n];
            int off = 0;
            s.ReceiveTimeout = timeoutMs;
            while (off < n)
            {
                int k = s.Receive(b, off, n - off, SocketFlags.None);
                if (k == 0) throw new Exception("client closed");
                off += k;
            }
            return b;
        }

        /// <summary>Reads one frame: returns the body, flags out.</summary>
        public static byte[] ReadFrame(Socket s, out byte flags, int timeoutMs = 5000)
        {
            byte[] h = ReadExactly(s, 1, timeoutMs);
            flags = h[0];
            long size;
            if ((flags & Zmtp.FlagLong) != 0) size = Zmtp.ReadLongSize(ReadExactly(s, 8, timeoutMs), 0);
            else size = ReadExactly(s, 1, timeoutMs)[0];
            return ReadExactly(s, (int)size, timeoutMs);
        }

        /// <summary>Server half of a NULL handshake as a PUB (or another type); returns the client's greeting.</summary>
        public static byte[] Handshake(Socket s, string socketType, int minor = 1)
        {
            byte[] g = Zmtp.BuildGreeting(minor);
            g[32] = 1; // as-server
            SendAll(s, g);
            byte[] theirs = ReadExactly(s, 64);
            SendAll(s, Zmtp.BuildReady(socketType));
            byte flags;
            byte[] ready = ReadFrame(s, out flags);
            if ((flags & Zmtp.FlagCommand) == 0 || ready[0] != 5) throw new Exception("client READY missing");
            return theirs;
        }

        public static byte[] MessageFrames(params byte[][] frames)
        {
            int total = 0;
            foreach (var f in frames) total += Zmtp.HeaderSize(f.Length) + f.Length;
            var b = new byte[total];
            int p = 0;
            for (int i = 0; i < frames.Length; i++)
            {
                p += Zmtp.WriteHeader(b, p, i < frames.Length - 1 ? Zmtp.FlagMore : (byte)0, frames[i].Length);
                Buffer.BlockCopy(frames[i], 0, b, p, frames[i].Length);
                p += frames[i].Length;
            }
            return b;
        }
    }
}
