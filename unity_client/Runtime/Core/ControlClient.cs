// REQ client for the daemon's control socket (docs/protocol.md, "Control"): one msgpack map
// {"cmd": NAME} per request, one map {"ok": bool, "error"?: str, ...} per reply.
using System;
using System.Diagnostics;
using System.Text;

namespace PoseBridge.Core
{
    /// <summary>Outcome of one control request.</summary>
    public struct ControlReply
    {
        public bool Ok;
        /// <summary>Reason from the daemon or the client when <see cref="Ok"/> is false.</summary>
        public string Error;
    }

    public static class ControlClient
    {
        public const string DefaultEndpoint = "tcp://127.0.0.1:5571";

        /// <summary>
        /// Sends {"cmd": <paramref name="command"/>} and waits up to <paramref name="timeoutMs"/> for the
        /// reply. Blocking (call it off the main thread); never throws.
        /// </summary>
        public static ControlReply Send(string endpoint, string command, int timeoutMs = 2000, Func<bool> cancel = null)
        {
            var sw = Stopwatch.StartNew();
            ZmtpConnection conn = null;
            try
            {
                conn = ZmtpConnection.Open(endpoint, "REQ", new[] { "REP", "ROUTER" }, 1, timeoutMs, timeoutMs, cancel);
                conn.MaxFrameBytes = 1 << 16;
                // REQ envelope: an empty delimiter frame, then the request body.
                conn.SendMessage(new byte[0], EncodeRequest(command));
                var msg = new ZmtpMessage();
                int left = Math.Max(1, timeoutMs - (int)sw.ElapsedMilliseconds);
                conn.ReceiveMessage(msg, Stopwatch.StartNew(), left);
                if (msg.FrameCount < 2 || msg.Length(0) != 0)
                    return Fail("malformed reply (expected an empty delimiter and a body)");
                return ParseReply(msg.Buffer(1), msg.Length(1));
            }
            catch (Exception e)
            {
                return Fail("control request '" + command + "' to " + endpoint + " failed: " + e.Message);
            }
            finally
            {
                if (conn != null) conn.Dispose();
            }
        }

        static ControlReply Fail(string why)
        {
            return new ControlReply { Ok = false, Error = why };
        }

        /// <summary>msgpack {"cmd": command}.</summary>
        public static byte[] EncodeRequest(string command)
        {
            byte[] cmd = Encoding.UTF8.GetBytes(command);
            if (cmd.Length > 31) throw new ArgumentException("command name too long");
            var b = new byte[1 + 4 + 1 + cmd.Length];
            b[0] = 0x81; // fixmap, 1 entry
            b[1] = 0xa3; // fixstr "cmd"
            b[2] = (byte)'c';
            b[3] = (byte)'m';
            b[4] = (byte)'d';
            b[5] = (byte)(0xa0 | cmd.Length);
            Buffer.BlockCopy(cmd, 0, b, 6, cmd.Length);
            return b;
        }

        /// <summary>Reads "ok" and "error" from a reply map (other keys are ignored).</summary>
        public static ControlReply ParseReply(byte[] body, int length)
        {
            try
            {
                var r = new MsgPackReader(body, 0, length);
                int n = r.ReadMapHeader();
                var reply = new ControlReply();
                bool sawOk = false;
                for (int i = 0; i < n; i++)
                {
                    if (r.PeekKind() != MsgPackKind.Str) { r.Skip(); r.Skip(); continue; }
                    string key = r.ReadString();
                    if (key == "ok" && r.PeekKind() == MsgPackKind.Bool) { reply.Ok = r.ReadBool(); sawOk = true; }
                    else if (key == "error" && r.PeekKind() == MsgPackKind.Str) reply.Error = r.ReadString();
                    else r.Skip();
                }
                if (!sawOk) return Fail("reply has no 'ok' key");
                if (!reply.Ok && reply.Error == null) reply.Error = "daemon refused the request";
                return reply;
            }
            catch (MsgPackException e)
            {
                return Fail("reply is not a msgpack map: " + e.Message);
            }
        }
    }
}
