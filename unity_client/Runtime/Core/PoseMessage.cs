// Protocol v1 `pose` message (docs/protocol.md): a value type filled in place by PoseDecoder, so
// receiving a message allocates nothing.
using System;
using System.Text;

namespace PoseBridge.Core
{
    /// <summary>One decoded `pose` message plus the client's receive timestamps.</summary>
    public struct PoseSample
    {
        /// <summary>Schema version (`v`), always 1 for accepted messages.</summary>
        public int Version;
        /// <summary>Publisher sequence number (`seq`), +1 per message from 0.</summary>
        public long Seq;
        /// <summary>Frame capture time, seconds since the Unix epoch (`t_capture`).</summary>
        public double TCapture;
        /// <summary>Publish time, seconds since the Unix epoch (`t_publish`).</summary>
        public double TPublish;
        /// <summary>Tracker face id, -1 if none (`face_id`).</summary>
        public int FaceId;
        /// <summary>False once the daemon reports the face as lost (`tracked`).</summary>
        public bool Tracked;
        /// <summary>Filtered head rotation in Unity's frame (`q`), exactly as published.</summary>
        public QuatD Rotation;
        /// <summary>Filtered dataset angles in degrees (`euler`).</summary>
        public YawPitchRoll Euler;
        /// <summary>True when `raw` was present and not nil.</summary>
        public bool HasRaw;
        /// <summary>Unfiltered angles of this frame (`raw`).</summary>
        public YawPitchRoll Raw;
        public bool HasStd;
        /// <summary>Per-angle uncertainty in degrees (`std`).</summary>
        public YawPitchRoll Std;
        public bool HasBox;
        /// <summary>Face box [x0, y0, x1, y1] in frame pixels (`box`).</summary>
        public double BoxX0, BoxY0, BoxX1, BoxY1;
        /// <summary>Frame size in pixels (`frame`), 0 when absent.</summary>
        public int FrameWidth, FrameHeight;
        /// <summary>True when the optional `pos` was present and not nil.</summary>
        public bool HasPos;
        /// <summary>Head position (`pos`), metres relative to the neutral, axes x right, y up, z forward (towards the camera).</summary>
        public Vec3D Position;
        /// <summary>Local receive time, seconds since the Unix epoch (set by the client).</summary>
        public double TReceive;
        /// <summary>Stopwatch timestamp at receive (for the age of the latest pose).</summary>
        public long ReceiveTimestamp;

        /// <summary>Capture-to-receive latency in seconds (includes any clock offset between machines).</summary>
        public double CaptureLatency { get { return TReceive - TCapture; } }
        /// <summary>Publish-to-receive latency in seconds.</summary>
        public double TransportLatency { get { return TReceive - TPublish; } }
    }

    /// <summary>Decodes the msgpack map of a `pose` message; unknown keys are skipped.</summary>
    public static class PoseDecoder
    {
        public const int SchemaVersion = 1;

        static readonly byte[] KV = Ascii("v"), KSeq = Ascii("seq"), KTCapture = Ascii("t_capture"),
            KTPublish = Ascii("t_publish"), KFaceId = Ascii("face_id"), KTracked = Ascii("tracked"),
            KQ = Ascii("q"), KEuler = Ascii("euler"), KRaw = Ascii("raw"), KStd = Ascii("std"),
            KBox = Ascii("box"), KFrame = Ascii("frame"), KPos = Ascii("pos");

        // Every v1 key is required (as in posebridge.protocol.decode); raw and box may be nil. `pos` was
        // added later and is optional (missing = nil), so messages of older daemons stay valid.
        const int HasV = 1, HasSeq = 2, HasTCapture = 4, HasTPublish = 8, HasTracked = 16, HasQ = 32, HasEuler = 64,
            HasFaceId = 128, HasRawKey = 256, HasStdKey = 512, HasBoxKey = 1024, HasFrame = 2048;
        const int Required = 4095;
        static readonly string[] KeyNames =
            { "v", "seq", "t_capture", "t_publish", "tracked", "q", "euler", "face_id", "raw", "std", "box", "frame" };

        static byte[] Ascii(string s) { return Encoding.ASCII.GetBytes(s); }

        /// <summary>
        /// Fills <paramref name="pose"/> from a msgpack payload. Returns null on success, or a short
        /// reason (a constant string or an exception message) when the payload is rejected.
        /// </summary>
        public static string TryDecode(byte[] buffer, int offset, int count, ref PoseSample pose)
        {
            try
            {
                var r = new MsgPackReader(buffer, offset, count);
                return Decode(ref r, ref pose);
            }
            catch (MsgPackException e)
            {
                return "malformed msgpack: " + e.Message;
            }
        }

        static string Decode(ref MsgPackReader r, ref PoseSample p)
        {
            if (r.PeekKind() != MsgPackKind.Map) return "payload is not a map";
            int n = r.ReadMapHeader();
            int seen = 0;
            p.HasRaw = p.HasStd = p.HasBox = p.HasPos = false;
            for (int i = 0; i < n; i++)
            {
                if (r.PeekKind() != MsgPackKind.Str)
                {
                    r.Skip(); // non-string key: not ours
                    r.Skip();
                    continue;
                }
                // Keys are compared in place against pre-encoded bytes (no string allocation).
                int ks;
                int kl = r.ReadStrSpan(out ks);
                byte[] b = r.Buffer;
                if (Key(b, ks, kl, KV)) { p.Version = (int)ReadInt(ref r); seen |= HasV; }
                else if (Key(b, ks, kl, KSeq)) { p.Seq = ReadInt(ref r); seen |= HasSeq; }
                else if (Key(b, ks, kl, KTCapture)) { p.TCapture = r.ReadDouble(); seen |= HasTCapture; }
                else if (Key(b, ks, kl, KTPublish)) { p.TPublish = r.ReadDouble(); seen |= HasTPublish; }
                else if (Key(b, ks, kl, KFaceId)) { p.FaceId = (int)ReadInt(ref r); seen |= HasFaceId; }
                else if (Key(b, ks, kl, KTracked)) { p.Tracked = r.ReadBool(); seen |= HasTracked; }
                else if (Key(b, ks, kl, KQ))
                {
                    if (r.ReadArrayHeader() != 4) return "q must have 4 elements";
                    p.Rotation = new QuatD(r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble());
                    seen |= HasQ;
                }
                else if (Key(b, ks, kl, KEuler))
                {
                    if (!ReadTriple(ref r, out p.Euler)) return "euler must have 3 elements";
                    seen |= HasEuler;
                }
                else if (Key(b, ks, kl, KRaw))
                {
                    seen |= HasRawKey;
                    p.HasRaw = !r.TryReadNil();
                    if (p.HasRaw && !ReadTriple(ref r, out p.Raw)) return "raw must have 3 elements";
                }
                else if (Key(b, ks, kl, KStd))
                {
                    seen |= HasStdKey;
                    p.HasStd = true;
                    if (!ReadTriple(ref r, out p.Std)) return "std must have 3 elements";
                }
                else if (Key(b, ks, kl, KBox))
                {
                    seen |= HasBoxKey;
                    p.HasBox = !r.TryReadNil();
                    if (p.HasBox)
                    {
                        if (r.ReadArrayHeader() != 4) return "box must have 4 elements";
                        p.BoxX0 = r.ReadDouble();
                        p.BoxY0 = r.ReadDouble();
                        p.BoxX1 = r.ReadDouble();
                        p.BoxY1 = r.ReadDouble();
                    }
                }
                else if (Key(b, ks, kl, KPos))
                {
                    p.HasPos = !r.TryReadNil();
                    if (p.HasPos)
                    {
                        if (r.ReadArrayHeader() != 3) return "pos must have 3 elements";
                        p.Position = new Vec3D(r.ReadDouble(), r.ReadDouble(), r.ReadDouble());
                    }
                }
                else if (Key(b, ks, kl, KFrame))
                {
                    if (r.ReadArrayHeader() != 2) return "frame must have 2 elements";
                    p.FrameWidth = (int)ReadInt(ref r);
                    p.FrameHeight = (int)ReadInt(ref r);
                    seen |= HasFrame;
                }
                else r.Skip(); // unknown key: ignore its value (forward compatibility)
            }
            if (r.Remaining != 0) return "trailing bytes after the map";
            if ((seen & Required) != Required) return MissingKey(seen);
            if (p.Version != SchemaVersion) return p.Version > SchemaVersion
                ? "schema version newer than supported (1)" : "invalid schema version";
            QuatD q = p.Rotation;
            if (!IsFinite(q.X) || !IsFinite(q.Y) || !IsFinite(q.Z) || !IsFinite(q.W)) return "q has a non-finite component";
            if (p.HasPos && !p.Position.IsFinite) return "pos has a non-finite component";
            return null;
        }

        static bool Key(byte[] b, int start, int len, byte[] key)
        {
            return MsgPackReader.SpanEquals(b, start, len, key);
        }

        static long ReadInt(ref MsgPackReader r)
        {
            if (r.PeekKind() != MsgPackKind.Int) throw new MsgPackException("expected integer");
            return r.ReadInt64();
        }

        static bool ReadTriple(ref MsgPackReader r, out YawPitchRoll v)
        {
            v = default(YawPitchRoll);
            if (r.ReadArrayHeader() != 3) return false;
            v.Yaw = r.ReadDouble();
            v.Pitch = r.ReadDouble();
            v.Roll = r.ReadDouble();
            return true;
        }

        static bool IsFinite(double d) { return !double.IsNaN(d) && !double.IsInfinity(d); }

        static string MissingKey(int seen)
        {
            for (int i = 0; i < KeyNames.Length; i++)
                if ((seen & (1 << i)) == 0) return MissingMessages[i];
            return "missing key";
        }

        static readonly string[] MissingMessages = BuildMissingMessages();

        static string[] BuildMissingMessages()
        {
            var m = new string[KeyNames.Length];
            for (int i = 0; i < m.Length; i++) m[i] = "missing key '" + KeyNames[i] + "'";
            return m;
        }
    }
}
