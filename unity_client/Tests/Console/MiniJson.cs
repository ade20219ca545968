// Console test runner only: a tiny JSON reader for tests/vectors/*.json (objects -> Dictionary,
// arrays -> List, numbers -> double, plus string/bool/null). Not part of the package runtime.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace PoseBridge.ConsoleTests
{
    public static class MiniJson
    {
        public static object Parse(string text)
        {
            int pos = 0;
            object v = Value(text, ref pos);
            SkipWs(text, ref pos);
            if (pos != text.Length) throw new FormatException("trailing characters at " + pos);
            return v;
        }

        static void SkipWs(string s, ref int p)
        {
            while (p < s.Length && char.IsWhiteSpace(s[p])) p++;
        }

        static object Value(string s, ref int p)
        {
            SkipWs(s, ref p);
            if (p >= s.Length) throw new FormatException("unexpected end");
            char c = s[p];
            if (c == '{')
            {
                var d = new Dictionary<string, object>();
                p++;
                SkipWs(s, ref p);
                if (s[p] == '}') { p++; return d; }
                while (true)
                {
                    SkipWs(s, ref p);
                    string key = Str(s, ref p);
                    SkipWs(s, ref p);
                    Expect(s, ref p, ':');
                    d[key] = Value(s, ref p);
                    SkipWs(s, ref p);
                    if (s[p] == ',') { p++; continue; }
                    Expect(s, ref p, '}');
                    return d;
                }
            }
            if (c == '[')
            {
                var l = new List<object>();
                p++;
                SkipWs(s, ref p);
                if (s[p] == ']') { p++; return l; }
                while (true)
                {
                    l.Add(Value(s, ref p));
                    SkipWs(s, ref p);
                    if (s[p] == ',') { p++; continue; }
                    Expect(s, ref p, ']');
                    return l;
                }
            }
            if (c == '"') return Str(s, ref p);
            if (s.Substring(p).StartsWith("true")) { p += 4; return true; }
            if (s.Substring(p).StartsWith("false")) { p += 5; return false; }
            if (s.Substring(p).StartsWith("null")) { p += 4; return null; }
            int start = p;
            while (p < s.Length && "+-0123456789.eE".IndexOf(s[p]) >= 0) p++;
            if (p == start) throw new FormatException("unexpected '" + c + "' at " + p);
            return double.Parse(s.Substring(start, p - start), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        static void Expect(string s, ref int p, char c)
        {
            if (p >= s.Length || s[p] != c) throw new FormatException("expected '" + c + "' at " + p);
            p++;
        }

        static string Str(string s, ref int p)
        {
            Expect(s, ref p, '"');
            var sb = new StringBuilder();
            while (s[p] != '"')
            {
                char c = s[p++];
                if (c != '\\') { sb.Append(c); continue; }
                char e = s[p++];
                switch (e)
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case 'b': sb.Append('\b'); break;
                    case 'f': sb.Append('\f'); break;
                    case 'u':
                        sb.Append((char)int.Parse(s.Substring(p, 4), NumberStyles.HexNumber));
                        p += 4;
                        break;
                    default: sb.Append(e); break;
                }
            }
            p++;
            return sb.ToString();
        }

        public static Dictionary<string, object> Obj(object o) { return (Dictionary<string, object>)o; }
        public static List<object> Arr(object o) { return (List<object>)o; }
        public static double Num(object o) { return (double)o; }

        public static double[] Nums(object o)
        {
            var l = Arr(o);
            var r = new double[l.Count];
            for (int i = 0; i < r.Length; i++) r[i] = (double)l[i];
            return r;
        }

        public static byte[] Hex(string hex)
        {
            var b = new byte[hex.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = byte.Parse(hex.Substring(2 * i, 2), NumberStyles.HexNumber);
            return b;
        }
    }
}
