// ZMTP 3.x (rfc.zeromq.org 23/ZMTP and 37/ZMTP) wire constants and codecs: greeting, command and
// frame headers. Pure functions over byte arrays so they can be unit-tested without sockets.
using System;
using System.Text;

namespace PoseBridge.Core
{
    /// <summary>A ZMTP protocol violation by the peer (bad greeting, bad frame, wrong socket type...).</summary>
    public sealed class ZmtpException : Exception
    {
        public ZmtpException(string message) : base(message) { }
    }

    public static class Zmtp
    {
        public const int GreetingSize = 64;
        public const byte FlagMore = 0x01;
        public const byte FlagLong = 0x02;
        public const byte FlagCommand = 0x04;
        const byte ReservedMask = 0xF8;

        /// <summary>Our greeting: signature, version 3.<paramref name="minor"/>, NULL mechanism, as-server 0.</summary>
        public static byte[] BuildGreeting(int minor)
        {
            var g = new byte[GreetingSize];
            g[0] = 0xFF;
            g[9] = 0x7F;
            g[10] = 3;
            g[11] = (byte)minor;
            WriteAscii(g, 12, "NULL");
            g[32] = 0; // as-server: we are the client
            return g;
        }

        /// <summary>Checks a peer greeting; returns the peer's minor version (major must be 3 or more).</summary>
        public static int ParseGreeting(byte[] g)
        {
            if (g.Length < GreetingSize) throw new ZmtpException("greeting too short");
            if (g[0] != 0xFF || (g[9] & 0x01) != 0x01)
                throw new ZmtpException("not a ZeroMQ peer (bad greeting signature)");
            if (g[10] < 3)
                throw new ZmtpException("peer speaks ZMTP " + g[10] + ".x; ZMTP 3.x (libzmq 4+) is required");
            int end = 12;
            while (end < 32 && g[end] != 0) end++;
            string mech = Encoding.ASCII.GetString(g, 12, end - 12);
            if (mech != "NULL")
                throw new ZmtpException("peer uses security mechanism '" + mech + "'; only NULL is supported");
            return g[10] > 3 ? 1 : g[11];
        }

        /// <summary>Size of the frame header for a body of <paramref name="size"/> bytes.</summary>
        public static int HeaderSize(long size)
        {
            return size > 255 ? 9 : 2;
        }

        /// <summary>Writes a frame header; returns the number of bytes written (2 or 9).</summary>
        public static int WriteHeader(byte[] dst, int offset, byte flags, long size)
        {
            if (size > 255)
            {
                dst[offset] = (byte)(flags | FlagLong);
                for (int i = 0; i < 8; i++) dst[offset + 1 + i] = (byte)(size >> (56 - 8 * i));
                return 9;
            }
            dst[offset] = (byte)(flags & ~FlagLong);
            dst[offset + 1] = (byte)size;
            return 2;
        }

        /// <summary>Validates a flags byte (reserved bits must be zero; commands cannot have MORE).</summary>
        public static void CheckFlags(byte flags)
        {
            if ((flags & ReservedMask) != 0)
                throw new ZmtpException("invalid frame flags 0x" + flags.ToString("x2"));
            if ((flags & FlagCommand) != 0 && (flags & FlagMore) != 0)
                throw new ZmtpException("command frame with MORE flag");
        }

        /// <summary>Decodes an 8-byte big-endian long-frame size.</summary>
        public static long ReadLongSize(byte[] src, int offset)
        {
            ulong v = 0;
            for (int i = 0; i < 8; i++) v = (v << 8) | src[offset + i];
            if (v > long.MaxValue) throw new ZmtpException("frame size out of range");
            return (long)v;
        }

        /// <summary>A complete command frame (header + name + data).</summary>
        public static byte[] BuildCommand(string name, byte[] data)
        {
            int bodyLen = 1 + name.Length + (data == null ? 0 : data.Length);
            var frame = new byte[HeaderSize(bodyLen) + bodyLen];
            int p = WriteHeader(frame, 0, FlagCommand, bodyLen);
            frame[p++] = (byte)name.Length;
            p += WriteAscii(frame, p, name);
            if (data != null) Buffer.BlockCopy(data, 0, frame, p, data.Length);
            return frame;
        }

        /// <summary>READY command data: properties as name-length, name, 4-byte value-length, value.</summary>
        public static byte[] BuildReady(string socketType)
        {
            return BuildCommand("READY", BuildProperty("Socket-Type", socketType));
        }

        static byte[] BuildProperty(string name, string value)
        {
            var p = new byte[1 + name.Length + 4 + value.Length];
            p[0] = (byte)name.Length;
            int o = 1 + WriteAscii(p, 1, name);
            p[o] = (byte)(value.Length >> 24);
            p[o + 1] = (byte)(value.Length >> 16);
            p[o + 2] = (byte)(value.Length >> 8);
            p[o + 3] = (byte)value.Length;
            WriteAscii(p, o + 4, value);
            return p;
        }

        /// <summary>Subscription for a SUB socket: a SUBSCRIBE command (3.1) or a 0x01-prefixed message (3.0).</summary>
        public static byte[] BuildSubscribe(byte[] topic, int negotiatedMinor)
        {
            if (negotiatedMinor >= 1) return BuildCommand("SUBSCRIBE", topic);
            var body = new byte[1 + topic.Length];
            body[0] = 0x01;
            Buffer.BlockCopy(topic, 0, body, 1, topic.Length);
            var frame = new byte[HeaderSize(body.Length) + body.Length];
            int p = WriteHeader(frame, 0, 0, body.Length);
            Buffer.BlockCopy(body, 0, frame, p, body.Length);
            return frame;
        }

        /// <summary>Splits a command body into its name; returns the offset of its data.</summary>
        public static string CommandName(byte[] body, int length, out int dataOffset)
        {
            if (length < 1 || body[0] + 1 > length) throw new ZmtpException("malformed command frame");
            dataOffset = 1 + body[0];
            return Encoding.ASCII.GetString(body, 1, body[0]);
        }

        /// <summary>Looks up a property (case-insensitive name) in READY data; null when absent.</summary>
        public static string FindProperty(byte[] body, int offset, int end, string wanted)
        {
            int p = offset;
            while (p < end)
            {
                int nameLen = body[p];
                if (p + 1 + nameLen + 4 > end) throw new ZmtpException("malformed READY properties");
                string name = Encoding.ASCII.GetString(body, p + 1, nameLen);
                p += 1 + nameLen;
                long valueLen = ((long)body[p] << 24) | ((long)body[p + 1] << 16) | ((long)body[p + 2] << 8) | body[p + 3];
                p += 4;
                if (p + valueLen > end) throw new ZmtpException("malformed READY property value");
                if (string.Equals(name, wanted, StringComparison.OrdinalIgnoreCase))
                    return Encoding.ASCII.GetString(body, p, (int)valueLen);
                p += (int)valueLen;
            }
            return null;
        }

        static int WriteAscii(byte[] dst, int offset, string s)
        {
            for (int i = 0; i < s.Length; i++) dst[offset + i] = (byte)s[i];
            return s.Length;
        }
    }
}
