// Minimal allocation-free msgpack reader: just enough for posebridge protocol v1 maps.
// Plain C# 7.2, no UnityEngine references.
using System;
using System.Runtime.InteropServices;

namespace PoseBridge.Core
{
    /// <summary>Thrown for truncated or malformed msgpack input. The decoder turns it into a rejected message.</summary>
    public sealed class MsgPackException : Exception
    {
        public MsgPackException(string message) : base(message) { }
    }

    /// <summary>The msgpack type family of the next value.</summary>
    public enum MsgPackKind { Nil, Bool, Int, Float, Str, Bin, Array, Map, Ext }

    /// <summary>
    /// Forward-only reader over a byte range. A struct so that reading one message allocates nothing
    /// (strings are compared in place with <see cref="ReadStrEquals"/> instead of being materialised).
    /// </summary>
    public struct MsgPackReader
    {
        const int MaxSkipDepth = 32;

        readonly byte[] _buf;
        readonly int _end;
        int _pos;

        public MsgPackReader(byte[] buffer, int offset, int count)
        {
            if (buffer == null) throw new ArgumentNullException(nameof(buffer));
            if (offset < 0 || count < 0 || offset + count > buffer.Length)
                throw new ArgumentOutOfRangeException(nameof(count));
            _buf = buffer;
            _pos = offset;
            _end = offset + count;
        }

        public int Position { get { return _pos; } }
        public byte[] Buffer { get { return _buf; } }
        public int Remaining { get { return _end - _pos; } }

        byte Peek()
        {
            if (_pos >= _end) throw new MsgPackException("truncated: expected a value");
            return _buf[_pos];
        }

        void Need(int n)
        {
            if (n < 0 || _end - _pos < n) throw new MsgPackException("truncated: value runs past the end");
        }

        byte U8() { Need(1); return _buf[_pos++]; }

        ushort U16()
        {
            Need(2);
            int v = (_buf[_pos] << 8) | _buf[_pos + 1];
            _pos += 2;
            return (ushort)v;
        }

        uint U32()
        {
            Need(4);
            uint v = ((uint)_buf[_pos] << 24) | ((uint)_buf[_pos + 1] << 16) | ((uint)_buf[_pos + 2] << 8) | _buf[_pos + 3];
            _pos += 4;
            return v;
        }

        ulong U64()
        {
            ulong hi = U32();
            ulong lo = U32();
            return (hi << 32) | lo;
        }

        /// <summary>Type family of the next value without consuming it.</summary>
        public MsgPackKind PeekKind()
        {
            byte b = Peek();
            if (b <= 0x7f || b >= 0xe0) return MsgPackKind.Int;
            if (b <= 0x8f) return MsgPackKind.Map;
            if (b <= 0x9f) return MsgPackKind.Array;
            if (b <= 0xbf) return MsgPackKind.Str;
            switch (b)
            {
                case 0xc0: return MsgPackKind.Nil;
                case 0xc2: case 0xc3: return MsgPackKind.Bool;
                case 0xc4: case 0xc5: case 0xc6: return MsgPackKind.Bin;
                case 0xc7: case 0xc8: case 0xc9: return MsgPackKind.Ext;
                case 0xca: case 0xcb: return MsgPackKind.Float;
                case 0xcc: case 0xcd: case 0xce: case 0xcf:
                case 0xd0: case 0xd1: case 0xd2: case 0xd3: return MsgPackKind.Int;
                case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return MsgPackKind.Ext;
                case 0xd9: case 0xda: case 0xdb: return MsgPackKind.Str;
                case 0xdc: case 0xdd: return MsgPackKind.Array;
                case 0xde: case 0xdf: return MsgPackKind.Map;
                default: throw new MsgPackException("invalid type byte 0x" + b.ToString("x2"));
            }
        }

        /// <summary>True (and consumes it) when the next value is nil.</summary>
        public bool TryReadNil()
        {
            if (Peek() != 0xc0) return false;
            _pos++;
            return true;
        }

        public bool ReadBool()
        {
            byte b = U8();
            if (b == 0xc3) return true;
            if (b == 0xc2) return false;
            throw new MsgPackException("expected bool");
        }

        /// <summary>Any msgpack integer that fits in a long.</summary>
        public long ReadInt64()
        {
            byte b = U8();
            if (b <= 0x7f) return b;
            if (b >= 0xe0) return (sbyte)b;
            switch (b)
            {
                case 0xcc: return U8();
                case 0xcd: return U16();
                case 0xce: return U32();
                case 0xcf:
                    ulong u = U64();
                    if (u > long.MaxValue) throw new MsgPackException("integer out of range");
                    return (long)u;
                case 0xd0: return (sbyte)U8();
                case 0xd1: return (short)U16();
                case 0xd2: return (int)U32();
                case 0xd3: return (long)U64();
                default: throw new MsgPackException("expected integer");
            }
        }

        /// <summary>A float32/float64, or an integer widened to double (encoders may shrink 1.0 to 1).</summary>
        public double ReadDouble()
        {
            byte b = Peek();
            if (b == 0xcb)
            {
                _pos++;
                return BitConverter.Int64BitsToDouble((long)U64());
            }
            if (b == 0xca)
            {
                _pos++;
                return SingleFromBits(U32());
            }
            if (PeekKind() == MsgPackKind.Int) return ReadInt64();
            throw new MsgPackException("expected number");
        }

        [StructLayout(LayoutKind.Explicit)]
        struct FloatBits
        {
            [FieldOffset(0)] public uint Bits;
            [FieldOffset(0)] public float Value;
        }

        static float SingleFromBits(uint bits)
        {
            var u = new FloatBits();
            u.Bits = bits;
            return u.Value;
        }

        public int ReadArrayHeader()
        {
            byte b = U8();
            if (b >= 0x90 && b <= 0x9f) return b & 0x0f;
            if (b == 0xdc) return U16();
            if (b == 0xdd) return CheckedCount(U32());
            throw new MsgPackException("expected array");
        }

        public int ReadMapHeader()
        {
            byte b = U8();
            if (b >= 0x80 && b <= 0x8f) return b & 0x0f;
            if (b == 0xde) return U16();
            if (b == 0xdf) return CheckedCount(U32());
            throw new MsgPackException("expected map");
        }

        int CheckedCount(uint n)
        {
            // Every element takes at least one byte, so a count beyond the remaining bytes is malformed.
            if (n > (uint)Remaining) throw new MsgPackException("count larger than the message");
            return (int)n;
        }

        /// <summary>Reads a str header and returns the byte length; the bytes follow at <see cref="Position"/>.</summary>
        int ReadStrHeader()
        {
            byte b = U8();
            int len;
            if (b >= 0xa0 && b <= 0xbf) len = b & 0x1f;
            else if (b == 0xd9) len = U8();
            else if (b == 0xda) len = U16();
            else if (b == 0xdb) len = CheckedCount(U32());
            else throw new MsgPackException("expected string");
            Need(len);
            return len;
        }

        /// <summary>Consumes a string; returns its byte length, with its first byte at <paramref name="start"/> in <see cref="Buffer"/>.</summary>
        public int ReadStrSpan(out int start)
        {
            int len = ReadStrHeader();
            start = _pos;
            _pos += len;
            return len;
        }

        /// <summary>True when bytes [start, start+len) of <paramref name="buf"/> equal <paramref name="ascii"/>.</summary>
        public static bool SpanEquals(byte[] buf, int start, int len, byte[] ascii)
        {
            if (len != ascii.Length) return false;
            for (int i = 0; i < len; i++)
                if (buf[start + i] != ascii[i]) return false;
            return true;
        }

        /// <summary>Consumes a string and reports whether its UTF-8 bytes equal <paramref name="ascii"/>.</summary>
        public bool ReadStrEquals(byte[] ascii)
        {
            int len = ReadStrHeader();
            bool eq = len == ascii.Length;
            for (int i = 0; eq && i < len; i++) eq = _buf[_pos + i] == ascii[i];
            _pos += len;
            return eq;
        }

        /// <summary>Consumes a string and returns it (allocates; for tools and tests, not the hot path).</summary>
        public string ReadString()
        {
            int len = ReadStrHeader();
            string s = System.Text.Encoding.UTF8.GetString(_buf, _pos, len);
            _pos += len;
            return s;
        }

        /// <summary>Skips one complete value of any type (bounded nesting depth).</summary>
        public void Skip()
        {
            Skip(0);
        }

        void Skip(int depth)
        {
            if (depth > MaxSkipDepth) throw new MsgPackException("nesting too deep");
            byte b = Peek();
            switch (PeekKind())
            {
                case MsgPackKind.Nil: _pos++; return;
                case MsgPackKind.Bool: _pos++; return;
                case MsgPackKind.Int: ReadInt64OrUInt64(); return;
                case MsgPackKind.Float: _pos++; Advance(b == 0xca ? 4 : 8); return;
                case MsgPackKind.Str: Advance(ReadStrHeader()); return;
                case MsgPackKind.Bin:
                    _pos++;
                    Advance(b == 0xc4 ? U8() : b == 0xc5 ? U16() : CheckedCount(U32()));
                    return;
                case MsgPackKind.Array:
                {
                    int n = ReadArrayHeader();
                    for (int i = 0; i < n; i++) Skip(depth + 1);
                    return;
                }
                case MsgPackKind.Map:
                {
                    int n = ReadMapHeader();
                    for (int i = 0; i < n; i++) { Skip(depth + 1); Skip(depth + 1); }
                    return;
                }
                default: SkipExt(b); return;
            }
        }

        void ReadInt64OrUInt64()
        {
            if (Peek() == 0xcf) { _pos++; Advance(8); }
            else ReadInt64();
        }

        void SkipExt(byte b)
        {
            _pos++;
            int len;
            switch (b)
            {
                case 0xd4: len = 1; break;
                case 0xd5: len = 2; break;
                case 0xd6: len = 4; break;
                case 0xd7: len = 8; break;
                case 0xd8: len = 16; break;
                case 0xc7: len = U8(); break;
                case 0xc8: len = U16(); break;
                default: len = CheckedCount(U32()); break;
            }
            Advance(1 + len); // type byte + data
        }

        void Advance(int n)
        {
            Need(n);
            _pos += n;
        }
    }
}
