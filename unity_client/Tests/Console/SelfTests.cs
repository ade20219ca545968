// Console test runner only: in-process tests of the plain-C# core (no daemon needed).
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using PoseBridge.Core;
using static PoseBridge.ConsoleTests.MiniJson;

namespace PoseBridge.ConsoleTests
{
    public static class SelfTests
    {
        public static int Run(string vectorsDir)
        {
            var sw = Stopwatch.StartNew();
            MsgPack();
            Messages(Path.Combine(vectorsDir, "messages.json"));
            Rotations(Path.Combine(vectorsDir, "rotations.json"));
            ZmtpCodec();
            Processor();
            PositionProcessor();
            NoAllocationDecoding(Path.Combine(vectorsDir, "messages.json"));
            FakePeerFaults();
            StopNeverHangs();
            Console.WriteLine("selftest took " + sw.ElapsedMilliseconds + " ms");
            return Check.Summary("selftest");
        }

        static void MsgPack()
        {
            // fixint, negative fixint, uint16, int32, float32, float64, nil, bool, str8, array16, map, ext
            byte[] b =
            {
                0x05, 0xff, 0xcd, 0x12, 0x34, 0xd2, 0xff, 0xff, 0xff, 0xfe, 0xca, 0x3f, 0xc0, 0x00, 0x00,
                0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, 0xc0, 0xc3, 0xd9, 0x02, (byte)'h', (byte)'i',
                0xdc, 0x00, 0x02, 0x01, 0x02, 0x81, 0xa1, (byte)'k', 0x90, 0xd5, 0x07, 0xaa, 0xbb, 0x2a,
            };
            var r = new MsgPackReader(b, 0, b.Length);
            Check.That(r.ReadInt64() == 5, "msgpack fixint");
            Check.That(r.ReadInt64() == -1, "msgpack negative fixint");
            Check.That(r.ReadInt64() == 0x1234, "msgpack uint16");
            Check.That(r.ReadInt64() == -2, "msgpack int32");
            Check.Near(r.ReadDouble(), 1.5, 0, "msgpack float32");
            Check.Near(r.ReadDouble(), Math.PI, 0, "msgpack float64");
            Check.That(r.TryReadNil(), "msgpack nil");
            Check.That(r.ReadBool(), "msgpack bool");
            Check.That(r.ReadString() == "hi", "msgpack str8");
            Check.That(r.ReadArrayHeader() == 2 && r.ReadInt64() == 1 && r.ReadDouble() == 2.0, "msgpack array16, int as double");
            Check.That(r.PeekKind() == MsgPackKind.Map, "msgpack peek map");
            r.Skip(); // {"k": []}
            Check.That(r.PeekKind() == MsgPackKind.Ext, "msgpack peek ext");
            r.Skip();
            Check.That(r.ReadInt64() == 42 && r.Remaining == 0, "msgpack skip lands on the next value");

            byte[] trunc = { 0xcb, 0x40, 0x09 };
            Check.Throws<MsgPackException>(() => new MsgPackReader(trunc, 0, trunc.Length).ReadDouble(), "msgpack truncated float");
            byte[] hugeArray = { 0xdd, 0x7f, 0xff, 0xff, 0xff };
            Check.Throws<MsgPackException>(() => new MsgPackReader(hugeArray, 0, hugeArray.Length).Skip(), "msgpack array count beyond data");
            byte[] deep = new byte[200];
            for (int i = 0; i < deep.Length; i++) deep[i] = 0x91;
            Check.Throws<MsgPackException>(() => new MsgPackReader(deep, 0, deep.Length).Skip(), "msgpack nesting limit");
            byte[] bad = { 0xc1 };
            Check.Throws<MsgPackException>(() => new MsgPackReader(bad, 0, 1).Skip(), "msgpack reserved byte 0xc1");
        }

        static void Messages(string path)
        {
            var doc = Obj(Parse(File.ReadAllText(path)));
            Check.That((double)doc["schema_version"] == PoseDecoder.SchemaVersion, "messages.json schema version");
            TypicalHex = (string)Obj(Arr(doc["valid"])[0])["payload_hex"];
            int withPos = 0;
            bool olderSeen = false;
            foreach (object o in Arr(doc["valid"]))
            {
                var v = Obj(o);
                string name = (string)v["name"];
                byte[] payload = Hex((string)v["payload_hex"]);
                var p = new PoseSample();
                string err = PoseDecoder.TryDecode(payload, 0, payload.Length, ref p);
                Check.That(err == null, "valid vector '" + name + "' accepted (" + err + ")");
                if (err != null) continue;
                Check.That((string)v["topic"] == "pose", "valid vector topic");
                var d = Obj(v["decoded"]);
                Check.That(p.Version == (int)Num(d["v"]) && p.Seq == (long)Num(d["seq"]), name + ": v, seq");
                Check.That(p.TCapture == Num(d["t_capture"]) && p.TPublish == Num(d["t_publish"]), name + ": times exact");
                Check.That(p.FaceId == (int)Num(d["face_id"]) && p.Tracked == (bool)d["tracked"], name + ": face_id, tracked");
                double[] q = Nums(d["q"]);
                Check.That(p.Rotation.X == q[0] && p.Rotation.Y == q[1] && p.Rotation.Z == q[2] && p.Rotation.W == q[3], name + ": q exact");
                double[] e = Nums(d["euler"]);
                Check.That(p.Euler.Yaw == e[0] && p.Euler.Pitch == e[1] && p.Euler.Roll == e[2], name + ": euler exact");
                if (d["raw"] == null) Check.That(!p.HasRaw, name + ": raw nil");
                else
                {
                    double[] raw = Nums(d["raw"]);
                    Check.That(p.HasRaw && p.Raw.Yaw == raw[0] && p.Raw.Pitch == raw[1] && p.Raw.Roll == raw[2], name + ": raw exact");
                }
                double[] std = Nums(d["std"]);
                Check.That(p.HasStd && p.Std.Yaw == std[0] && p.Std.Pitch == std[1] && p.Std.Roll == std[2], name + ": std exact");
                if (d["box"] == null) Check.That(!p.HasBox, name + ": box nil");
                else
                {
                    double[] box = Nums(d["box"]);
                    Check.That(p.HasBox && p.BoxX0 == box[0] && p.BoxY0 == box[1] && p.BoxX1 == box[2] && p.BoxY1 == box[3], name + ": box exact");
                }
                double[] frame = Nums(d["frame"]);
                Check.That(p.FrameWidth == (int)frame[0] && p.FrameHeight == (int)frame[1], name + ": frame");
                // `pos` is optional: absent (older publishers) or nil -> HasPos false; else exact.
                if (!d.ContainsKey("pos") || d["pos"] == null) Check.That(!p.HasPos, name + ": pos nil or absent");
                else
                {
                    double[] pos = Nums(d["pos"]);
                    Check.That(p.HasPos && p.Position.X == pos[0] && p.Position.Y == pos[1] && p.Position.Z == pos[2], name + ": pos exact");
                    withPos++;
                }
                if (name == "older_publisher_without_pos") olderSeen = true;
            }
            Check.That(withPos >= 2 && olderSeen, "messages.json has vectors with pos (" + withPos + ") and one without the key");
            // HasPos is reset per message: a message without pos after one with it reads as nil.
            {
                var p = new PoseSample();
                foreach (object o in Arr(doc["valid"]))
                {
                    var v = Obj(o);
                    byte[] payload = Hex((string)v["payload_hex"]);
                    PoseDecoder.TryDecode(payload, 0, payload.Length, ref p);
                    bool expect = Obj(v["decoded"])["pos"] != null;
                    Check.That(p.HasPos == expect, v["name"] + ": HasPos after decoding into a reused sample");
                }
            }
            foreach (object o in Arr(doc["invalid"]))
            {
                var v = Obj(o);
                byte[] payload = Hex((string)v["payload_hex"]);
                var p = new PoseSample();
                bool topicOk = (string)v["topic"] == "pose";
                string err = topicOk ? PoseDecoder.TryDecode(payload, 0, payload.Length, ref p) : "wrong topic";
                Check.That(err != null, "invalid vector '" + v["name"] + "' rejected");
            }

            // Mutation fuzz: a decoder that throws or hangs on junk would take the client thread down.
            byte[] good = Hex((string)Obj(Arr(doc["valid"])[0])["payload_hex"]);
            var rng = new Random(1234);
            int accepted = 0, rejected = 0;
            string crash = null;
            for (int i = 0; i < 20000 && crash == null; i++)
            {
                byte[] m = (byte[])good.Clone();
                int len = m.Length;
                int kind = rng.Next(4);
                if (kind == 0) m[rng.Next(len)] = (byte)rng.Next(256);
                else if (kind == 1) len = rng.Next(len);
                else if (kind == 2) for (int k = 0; k < 4; k++) m[rng.Next(len)] = (byte)rng.Next(256);
                else rng.NextBytes(m);
                var p = new PoseSample();
                try
                {
                    if (PoseDecoder.TryDecode(m, 0, len, ref p) == null) accepted++;
                    else rejected++;
                }
                catch (Exception e)
                {
                    crash = e.GetType().Name + ": " + e.Message;
                }
            }
            Check.That(crash == null, "fuzzed payloads never throw (" + crash + ")");
            Check.That(rejected > 10000, "fuzzed payloads mostly rejected (" + rejected + " rejected, " + accepted + " accepted)");
        }

        static void Rotations(string path)
        {
            var doc = Obj(Parse(File.ReadAllText(path)));
            double tol = Num(doc["tolerance"]);
            int n = 0;
            double worst = 0;
            foreach (object o in Arr(doc["vectors"]))
            {
                var v = Obj(o);
                double yaw = Num(v["yaw"]), pitch = Num(v["pitch"]), roll = Num(v["roll"]);
                bool mirror = (bool)v["mirror"];
                string name = v["note"] + " (" + yaw + ", " + pitch + ", " + roll + (mirror ? ", mirror" : "") + ")";
                double[] e = Nums(v["q_unity"]);
                QuatD q = HeadRotation.ToUnity(yaw, pitch, roll, mirror);
                double err = Math.Max(Math.Max(Math.Abs(q.X - e[0]), Math.Abs(q.Y - e[1])), Math.Max(Math.Abs(q.Z - e[2]), Math.Abs(q.W - e[3])));
                worst = Math.Max(worst, err);
                Check.That(err <= tol, "rotation vector " + name + ": q " + q + " vs expected, error " + err);
                double fx, fy, fz, ux, uy, uz;
                q.Rotate(0, 0, 1, out fx, out fy, out fz);
                q.Rotate(0, 1, 0, out ux, out uy, out uz);
                double[] f = Nums(v["forward"]), u = Nums(v["up"]);
                Check.That(Math.Abs(fx - f[0]) <= tol && Math.Abs(fy - f[1]) <= tol && Math.Abs(fz - f[2]) <= tol, "forward of " + name);
                Check.That(Math.Abs(ux - u[0]) <= tol && Math.Abs(uy - u[1]) <= tol && Math.Abs(uz - u[2]) <= tol, "up of " + name);
                // Inverse: back to angles and again to q gives the same rotation; away from gimbal lock the same angles.
                YawPitchRoll back = HeadRotation.ToDataset(q, mirror);
                Check.That(QuatD.AngleBetween(HeadRotation.ToUnity(back, mirror), q) < 1e-6, "ToDataset round trip of " + name);
                if (Math.Abs(pitch) < 89 && Math.Abs(yaw) < 89)
                    Check.That(Math.Abs(back.Yaw - yaw) < 1e-7 && Math.Abs(back.Pitch - pitch) < 1e-7
                               && Math.Abs(HeadRotation.WrapDegrees(back.Roll - roll)) < 1e-7, "ToDataset angles of " + name + ": " + back);
                Check.That(QuatD.AngleBetween(HeadRotation.Mirror(HeadRotation.ToUnity(yaw, pitch, roll, false)),
                    HeadRotation.ToUnity(yaw, pitch, roll, true)) < 1e-6, "Mirror() equals mirror=true for " + name);
                n++;
            }
            Console.WriteLine("rotations.json: " + n + " vectors, worst component error " + worst.ToString("E2") + " (tolerance " + tol + ")");
            Check.That(n >= 20, "rotations.json has vectors");

            QuatD a = HeadRotation.ToUnity(10, -5, 3, false), b = HeadRotation.ToUnity(30, 20, 10, false);
            Check.That(QuatD.AngleBetween(HeadRotation.Recenter(b, b), QuatD.Identity) < 1e-9, "recenter on itself is identity");
            Check.That(QuatD.AngleBetween(a * HeadRotation.Recenter(b, a), b) < 1e-9, "neutral * recenter(q, neutral) == q");
            // A rig whose head bone has other axes (bone y along the neck, as exported from Blender):
            // turning by q in the character's head frame must move the face like q does for an aligned head.
            QuatD character = QuatD.AngleAxis(180, 0, 1, 0);          // avatar faces the camera (-z)
            QuatD offset = QuatD.AngleAxis(-90, 1, 0, 0) * QuatD.AngleAxis(25, 0, 0, 1); // bone axes vs character axes
            QuatD boneRest = character * offset;
            QuatD turn = HeadRotation.ToUnity(30, 20, 10, false);
            QuatD boneNew = boneRest * HeadRotation.InBoneAxes(turn, offset);
            double lx, ly, lz, nx, ny, nz, ex, ey, ez;
            offset.Conjugate().Rotate(0, 0, 1, out lx, out ly, out lz);  // the face direction in bone-local axes
            boneNew.Rotate(lx, ly, lz, out nx, out ny, out nz);          // where the face points now
            QuatD expected = character * turn;
            expected.Rotate(0, 0, 1, out ex, out ey, out ez);            // where it must point
            Check.That(Math.Abs(nx - ex) < 1e-9 && Math.Abs(ny - ey) < 1e-9 && Math.Abs(nz - ez) < 1e-9, "InBoneAxes: face direction of an offset bone");
            Check.That(QuatD.AngleBetween(boneNew * offset.Conjugate(), character * turn) < 1e-9, "InBoneAxes: whole head frame of an offset bone");

            QuatD half = QuatD.Slerp(QuatD.Identity, HeadRotation.ToUnity(40, 0, 0, false), 0.5);
            Check.Near(HeadRotation.ToDataset(half, false).Yaw, 20, 1e-9, "slerp halfway");
            Check.Near(HeadRotation.WrapDegrees(190), -170, 1e-12, "wrap 190");
            Check.Near(HeadRotation.WrapDegrees(-180), -180, 1e-12, "wrap -180");
        }

        static PoseSample Pose(double yaw, double pitch, double roll, bool tracked = true)
        {
            var p = new PoseSample { Version = 1, Tracked = tracked, Euler = new YawPitchRoll(yaw, pitch, roll) };
            p.Rotation = HeadRotation.ToUnity(yaw, pitch, roll, false);
            return p;
        }

        static YawPitchRoll Angles(QuatD q) { return HeadRotation.ToDataset(q, false); }

        static void Processor()
        {
            // No smoothing: the applied rotation is the published one.
            var proc = new HeadPoseProcessor(new HeadPoseSettings { SmoothingTime = 0, YawLimit = 180, PitchLimit = 90, RollLimit = 180 });
            var p = Pose(30, 20, 10);
            Check.That(QuatD.AngleBetween(proc.Step(true, ref p, 0.01, 1 / 60.0), p.Rotation) < 1e-9 && proc.IsLive, "processor: pass-through");

            // Local recenter: the current pose becomes identity; later motion is relative to it.
            proc.RequestRecenter();
            Check.That(QuatD.AngleBetween(proc.Step(true, ref p, 0.01, 1 / 60.0), QuatD.Identity) < 1e-9, "processor: recenter -> identity");
            var p2 = Pose(40, 20, 10);
            QuatD rel = proc.Step(true, ref p2, 0.01, 1 / 60.0);
            Check.That(QuatD.AngleBetween(rel, HeadRotation.Recenter(p2.Rotation, p.Rotation)) < 1e-9, "processor: relative to neutral");
            proc.ClearRecenter();
            Check.That(QuatD.AngleBetween(proc.Step(true, ref p2, 0.01, 1 / 60.0), p2.Rotation) < 1e-9, "processor: clear recenter");

            // Scale, invert, limits, mirror act per axis.
            var s = proc.Settings;
            s.YawScale = 0.5; s.InvertPitch = true; s.RollLimit = 5;
            var a = Angles(proc.Step(true, ref p, 0.01, 1 / 60.0));
            Check.That(Math.Abs(a.Yaw - 15) < 1e-9 && Math.Abs(a.Pitch + 20) < 1e-9 && Math.Abs(a.Roll - 5) < 1e-9, "processor: scale/invert/limit " + a);
            s.YawScale = 1; s.InvertPitch = false; s.RollLimit = 180; s.Mirror = true;
            a = Angles(proc.Step(true, ref p, 0.01, 1 / 60.0));
            Check.That(Math.Abs(a.Yaw + 30) < 1e-9 && Math.Abs(a.Pitch - 20) < 1e-9 && Math.Abs(a.Roll + 10) < 1e-9, "processor: mirror " + a);
            s.Mirror = false;

            // Smoothing is frame-rate independent: 0.2 s at 30 fps and at 120 fps end at the same rotation.
            var target = Pose(40, 0, 0);
            double yaw30 = 0, yaw120 = 0;
            foreach (int fps in new[] { 30, 120 })
            {
                var sm = new HeadPoseProcessor(new HeadPoseSettings { SmoothingTime = 0.1 });
                QuatD q = QuatD.Identity;
                for (int i = 0; i < fps / 5; i++) q = sm.Step(true, ref target, 0.01, 1.0 / fps);
                if (fps == 30) yaw30 = Angles(q).Yaw; else yaw120 = Angles(q).Yaw;
            }
            double expect = 40 * (1 - Math.Exp(-2)); // slerp about one axis: angle follows 1 - exp(-t / tau)
            Check.That(Math.Abs(yaw30 - expect) < 1e-6 && Math.Abs(yaw120 - expect) < 1e-6, "processor: smoothing 30 vs 120 fps (" + yaw30 + ", " + yaw120 + ", expected " + expect + ")");

            // Lost stream (stale message, untracked, or none yet): eases back to neutral, then snaps live again.
            var lost = new HeadPoseProcessor(new HeadPoseSettings { SmoothingTime = 0, ReturnToNeutralTime = 0.1 });
            lost.Step(true, ref target, 0.01, 1 / 60.0);
            QuatD q1 = lost.Step(true, ref target, 5.0, 0.1);
            Check.That(!lost.IsLive && Math.Abs(Angles(q1).Yaw - 40 * Math.Exp(-1)) < 1e-6, "processor: stale pose eases to neutral (" + Angles(q1).Yaw + ")");
            for (int i = 0; i < 100; i++) lost.Step(true, ref target, 5.0, 0.1);
            Check.That(QuatD.AngleBetween(lost.Current, QuatD.Identity) < 1e-3, "processor: reaches neutral when lost");
            var untracked = Pose(40, 0, 0, tracked: false);
            lost.Step(true, ref untracked, 0.01, 1 / 60.0);
            Check.That(!lost.IsLive, "processor: tracked=false counts as lost");
            lost.Settings.NeutralWhenUntracked = false;
            lost.Step(true, ref untracked, 0.01, 1 / 60.0);
            Check.That(lost.IsLive, "processor: tracked=false followed when NeutralWhenUntracked is off");
            var none = new PoseSample();
            lost.Step(false, ref none, double.PositiveInfinity, 1 / 60.0);
            Check.That(!lost.IsLive, "processor: no pose yet -> neutral");
        }

        static PoseSample PoseAt(double x, double y, double z, bool tracked = true)
        {
            var p = Pose(0, 0, 0, tracked);
            p.HasPos = true;
            p.Position = new Vec3D(x, y, z);
            return p;
        }

        static bool Near(Vec3D a, Vec3D b, double tol)
        {
            return Math.Abs(a.X - b.X) <= tol && Math.Abs(a.Y - b.Y) <= tol && Math.Abs(a.Z - b.Z) <= tol;
        }

        static void PositionProcessor()
        {
            var s = new HeadPoseSettings { SmoothingTime = 0, ReturnToNeutralTime = 0.1 };
            var proc = new HeadPoseProcessor(s);
            var p = PoseAt(0.05, -0.02, 0.10);
            proc.Step(true, ref p, 0.01, 1 / 60.0);
            Check.That(proc.HasPosition && Near(proc.CurrentPosition, new Vec3D(0.05, -0.02, 0.10), 1e-12), "position: pass-through " + proc.CurrentPosition);

            s.PositionScale = 2; s.MoveY = false; s.PositionLimit = 0.15;
            proc.Step(true, ref p, 0.01, 1 / 60.0);
            Check.That(Near(proc.CurrentPosition, new Vec3D(0.10, 0, 0.15), 1e-12), "position: scale, axis enable, limit " + proc.CurrentPosition);
            s.PositionScale = 1; s.MoveY = true; s.PositionLimit = 0.5;

            s.Mirror = true;
            proc.Step(true, ref p, 0.01, 1 / 60.0);
            Check.That(Near(proc.CurrentPosition, new Vec3D(-0.05, -0.02, 0.10), 1e-12), "position: mirror negates x " + proc.CurrentPosition);
            s.Mirror = false;

            // Local recenter: the current position becomes zero; later motion is relative to it.
            proc.RequestRecenter();
            proc.Step(true, ref p, 0.01, 1 / 60.0);
            Check.That(Near(proc.CurrentPosition, Vec3D.Zero, 1e-12), "position: recenter -> zero");
            var p2 = PoseAt(0.08, -0.02, 0.05);
            proc.Step(true, ref p2, 0.01, 1 / 60.0);
            Check.That(Near(proc.CurrentPosition, new Vec3D(0.03, 0, -0.05), 1e-12), "position: relative to the local neutral " + proc.CurrentPosition);
            proc.ClearRecenter();
            proc.Step(true, ref p2, 0.01, 1 / 60.0);
            Check.That(Near(proc.CurrentPosition, new Vec3D(0.08, -0.02, 0.05), 1e-12), "position: clear recenter");

            // Smoothing follows the same time constant as the rotation.
            s.SmoothingTime = 0.05;
            var start = proc.CurrentPosition;
            var p3 = PoseAt(0.18, -0.02, 0.05);
            proc.Step(true, ref p3, 0.01, 0.05);
            double expect = 0.08 + 0.10 * (1 - Math.Exp(-1));
            Check.Near(proc.CurrentPosition.X, expect, 1e-12, "position: smoothing time constant");
            s.SmoothingTime = 0;

            // Lost (untracked) or a message without pos: eases back to zero with ReturnToNeutralTime.
            var lost = PoseAt(0.18, -0.02, 0.05, tracked: false);
            proc.Step(true, ref p3, 0.01, 1 / 60.0);
            proc.Step(true, ref lost, 0.01, 0.1);
            Check.That(!proc.IsLive && Math.Abs(proc.CurrentPosition.X - 0.18 * Math.Exp(-1)) < 1e-12, "position: lost eases to zero " + proc.CurrentPosition);
            var noPos = Pose(0, 0, 0);
            proc.Step(true, ref p3, 0.01, 1 / 60.0);
            proc.Step(true, ref noPos, 0.01, 0.1);
            Check.That(proc.IsLive && !proc.HasPosition && Math.Abs(proc.CurrentPosition.X - 0.18 * Math.Exp(-1)) < 1e-12,
                "position: a message without pos eases to zero " + proc.CurrentPosition);
            for (int i = 0; i < 100; i++) proc.Step(true, ref noPos, 0.01, 0.1);
            Check.That(proc.CurrentPosition.Length < 1e-6, "position: reaches zero without pos");
            proc.Reset();
            Check.That(proc.CurrentPosition.Length == 0, "position: Reset");
        }

        static void ZmtpCodec()
        {
            byte[] g = Zmtp.BuildGreeting(1);
            Check.That(g.Length == 64 && g[0] == 0xff && g[9] == 0x7f && g[10] == 3 && g[11] == 1, "greeting bytes");
            Check.That(Zmtp.ParseGreeting(g) == 1, "greeting parses");
            var bad = (byte[])g.Clone();
            bad[0] = (byte)'G'; // e.g. an HTTP server answering "GET"
            Check.Throws<ZmtpException>(() => Zmtp.ParseGreeting(bad), "bad signature rejected");
            var plain = (byte[])g.Clone();
            Encoding.ASCII.GetBytes("PLAIN").CopyTo(plain, 12);
            Check.Throws<ZmtpException>(() => Zmtp.ParseGreeting(plain), "PLAIN mechanism rejected");
            var v2 = (byte[])g.Clone();
            v2[10] = 1;
            Check.Throws<ZmtpException>(() => Zmtp.ParseGreeting(v2), "ZMTP 2 rejected");

            var h = new byte[9];
            Check.That(Zmtp.WriteHeader(h, 0, Zmtp.FlagMore, 4) == 2 && h[0] == 1 && h[1] == 4, "short header");
            Check.That(Zmtp.WriteHeader(h, 0, 0, 300) == 9 && h[0] == 2 && Zmtp.ReadLongSize(h, 1) == 300, "long header");
            Check.Throws<ZmtpException>(() => Zmtp.CheckFlags(0x08), "reserved flag bits rejected");
            Check.Throws<ZmtpException>(() => Zmtp.CheckFlags(0x05), "command with MORE rejected");

            byte[] ready = Zmtp.BuildReady("SUB");
            int off;
            byte[] body = new byte[ready.Length - 2];
            Buffer.BlockCopy(ready, 2, body, 0, body.Length);
            string readyName = Zmtp.CommandName(body, body.Length, out off);
            Check.That(ready[0] == 0x04 && readyName == "READY", "READY command");
            Check.That(Zmtp.FindProperty(body, off, body.Length, "socket-type") == "SUB", "READY Socket-Type property");
            byte[] topic = Encoding.ASCII.GetBytes("pose");
            byte[] s30 = Zmtp.BuildSubscribe(topic, 0);
            Check.That(s30[0] == 0 && s30[1] == 5 && s30[2] == 1 && s30[3] == (byte)'p', "ZMTP 3.0 subscription message");
            byte[] s31 = Zmtp.BuildSubscribe(topic, 1);
            Check.That(s31[0] == 4 && s31[2] == 9 && Encoding.ASCII.GetString(s31, 3, 9) == "SUBSCRIBE", "ZMTP 3.1 SUBSCRIBE command");

            string host;
            int port;
            ZmtpConnection.ParseEndpoint("tcp://127.0.0.1:5570", out host, out port);
            Check.That(host == "127.0.0.1" && port == 5570, "endpoint parse");
            Check.Throws<ArgumentException>(() => ZmtpConnection.ParseEndpoint("127.0.0.1:5570", out host, out port), "endpoint without tcp://");
            Check.Throws<ArgumentException>(() => new PoseBridgeClient("tcp://127.0.0.1:99999"), "client rejects a bad port at construction");
        }

        static void NoAllocationDecoding(string path)
        {
            var doc = Obj(Parse(File.ReadAllText(path)));
            byte[] payload = Hex((string)Obj(Arr(doc["valid"])[4])["payload_hex"]); // has an unknown key
            var p = new PoseSample();
            for (int i = 0; i < 1000; i++) PoseDecoder.TryDecode(payload, 0, payload.Length, ref p);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var sw = Stopwatch.StartNew();
            const int N = 200000;
            for (int i = 0; i < N; i++) PoseDecoder.TryDecode(payload, 0, payload.Length, ref p);
            double us = sw.Elapsed.TotalMilliseconds * 1000.0 / N;
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Console.WriteLine("decode: " + us.ToString("F2") + " us/message, allocated over " + N + " decodes: " + allocated + " bytes");
            Check.That(allocated < 1024, "decoding does not allocate per message");
            // The probe itself must see allocations, or the check above proves nothing.
            long probe = GC.GetAllocatedBytesForCurrentThread();
            var garbage = new byte[1000];
            Check.That(GC.GetAllocatedBytesForCurrentThread() - probe >= 1000 && garbage.Length == 1000, "allocation probe works");
        }

        static PoseBridgeClient Client(string endpoint, List<string> log, int handshakeMs = 3000)
        {
            var opt = new PoseBridgeClientOptions
            {
                Endpoint = endpoint, MinBackoffMs = 50, MaxBackoffMs = 200, HandshakeTimeoutMs = handshakeMs,
                Log = s => { lock (log) log.Add(s); },
            };
            return new PoseBridgeClient(opt);
        }

        static bool WaitFor(Func<bool> cond, int ms)
        {
            var sw = Stopwatch.StartNew();
            while (!cond())
            {
                if (sw.ElapsedMilliseconds > ms) return false;
                Thread.Sleep(10);
            }
            return true;
        }

        static bool LogHas(List<string> log, string text)
        {
            lock (log) return log.Exists(l => l.Contains(text));
        }

        static void FakePeerFaults()
        {
            var rnd = new Random(7);
            // 1. Junk instead of a greeting: logged as a protocol error, then retried.
            var log = new List<string>();
            using (var junk = new FakePeer(s => { var b = new byte[256]; rnd.NextBytes(b); b[0] = 0x47; FakePeer.SendAll(s, b); Thread.Sleep(200); }))
            using (var c = Client(junk.Endpoint, log))
            {
                c.Start();
                Check.That(WaitFor(() => c.Failures >= 2, 3000), "junk greeting: client fails and retries (" + c.Failures + ")");
                Check.That(LogHas(log, "not a ZeroMQ peer"), "junk greeting: logged as 'not a ZeroMQ peer'");
                Check.That(c.Stop(), "junk greeting: stops");
            }

            // 2. Wrong socket type (a REP answering a SUB).
            log = new List<string>();
            using (var rep = new FakePeer(s => { FakePeer.Handshake(s, "REP"); Thread.Sleep(500); }))
            using (var c = Client(rep.Endpoint, log))
            {
                c.Start();
                Check.That(WaitFor(() => LogHas(log, "cannot talk to SUB"), 3000), "wrong peer socket type logged");
                c.Stop();
            }

            // 3. Valid handshake, SUBSCRIBE seen, then: unknown-key message, malformed payloads, wrong topic,
            //    a good message, then a frame with reserved flag bits (fatal) -> reconnect.
            log = new List<string>();
            string subscription = null;
            byte[] good = PoseBytes(7);
            byte[] extra = WithExtraKeys(good);
            using (var pub = new FakePeer(s =>
            {
                FakePeer.Handshake(s, "PUB");
                byte flags;
                byte[] sub = FakePeer.ReadFrame(s, out flags);
                subscription = ((flags & Zmtp.FlagCommand) != 0 ? "cmd:" : "msg:") + Encoding.ASCII.GetString(sub, 1, sub.Length - 1);
                byte[] topic = Encoding.ASCII.GetBytes("pose");
                FakePeer.SendAll(s, FakePeer.MessageFrames(topic, new byte[] { 0x93, 1, 2, 3 }));      // not a map
                FakePeer.SendAll(s, FakePeer.MessageFrames(topic, new byte[] { 0x8c, 0xa1, (byte)'v' })); // truncated
                FakePeer.SendAll(s, FakePeer.MessageFrames(Encoding.ASCII.GetBytes("posex"), good));       // other topic
                FakePeer.SendAll(s, FakePeer.MessageFrames(topic, extra));                                 // unknown keys
                FakePeer.SendAll(s, FakePeer.MessageFrames(topic, good));
                Thread.Sleep(300);
                FakePeer.SendAll(s, new byte[] { 0xF0, 0x01, 0x00 });                                      // bad flags
                Thread.Sleep(300);
            }))
            using (var c = Client(pub.Endpoint, log))
            {
                c.Start();
                Check.That(WaitFor(() => c.MessagesReceived >= 2, 3000), "fake PUB: unknown-key and good messages accepted (" + c.MessagesReceived + ")");
                Check.That(subscription == "cmd:SUBSCRIBEpose", "ZMTP 3.1 SUBSCRIBE command sent (" + subscription + ")");
                Check.That(c.MessagesRejected == 2, "fake PUB: 2 malformed payloads rejected (" + c.MessagesRejected + ")");
                Check.That(c.MessagesIgnored == 1, "fake PUB: other topic ignored");
                PoseSample last;
                Check.That(c.TryGetLatest(out last) && last.Seq == 7 && last.Version == 1, "fake PUB: latest pose readable");
                Check.That(WaitFor(() => c.Connections >= 2, 3000), "fake PUB: reconnects after a bad frame");
                Check.That(LogHas(log, "invalid frame flags"), "bad frame flags logged");
                Check.That(LogHas(log, "rejected message"), "rejected payload logged");
                c.Stop();
                Check.That(pub.ScriptError == null, "fake PUB script ran (" + pub.ScriptError + ")");
            }

            // 4. A silent publisher: the client PINGs after the heartbeat interval and gives up after the silence timeout.
            log = new List<string>();
            string sawPing = null;
            using (var silent = new FakePeer(s =>
            {
                FakePeer.Handshake(s, "PUB");
                byte flags;
                FakePeer.ReadFrame(s, out flags); // SUBSCRIBE
                byte[] ping = FakePeer.ReadFrame(s, out flags, 3000);
                sawPing = Encoding.ASCII.GetString(ping, 1, ping[0]);
                Thread.Sleep(2000);
            }))
            {
                var opt = new PoseBridgeClientOptions
                {
                    Endpoint = silent.Endpoint, HeartbeatIntervalMs = 200, SilenceTimeoutMs = 700, MinBackoffMs = 50,
                    Log = s => { lock (log) log.Add(s); },
                };
                using (var c = new PoseBridgeClient(opt))
                {
                    c.Start();
                    Check.That(WaitFor(() => c.Failures >= 1, 3000), "silent publisher detected");
                    Check.That(sawPing == "PING", "client sent PING while idle (" + sawPing + ")");
                    Check.That(LogHas(log, "no data or PONG"), "silence logged");
                    c.Stop();
                }
            }

            // 5. A PING from the publisher is answered with a PONG echoing its context.
            string pong = null;
            using (var pinger = new FakePeer(s =>
            {
                FakePeer.Handshake(s, "PUB");
                byte flags;
                FakePeer.ReadFrame(s, out flags);
                FakePeer.SendAll(s, Zmtp.BuildCommand("PING", new byte[] { 0, 10, (byte)'c', (byte)'x' }));
                byte[] reply = FakePeer.ReadFrame(s, out flags, 3000);
                pong = Encoding.ASCII.GetString(reply, 1, reply.Length - 1);
                Thread.Sleep(500);
            }))
            using (var c = Client(pinger.Endpoint, new List<string>()))
            {
                c.Start();
                Check.That(WaitFor(() => pong != null, 3000) && pong == "PONGcx", "PING answered with PONG + context (" + pong + ")");
                c.Stop();
            }

            // 6. Stop called from inside a MessageReceived handler (the client thread) neither deadlocks nor throws.
            using (var pub = new FakePeer(s =>
            {
                FakePeer.Handshake(s, "PUB");
                byte flags;
                FakePeer.ReadFrame(s, out flags);
                for (int i = 0; i < 5; i++) FakePeer.SendAll(s, FakePeer.MessageFrames(Encoding.ASCII.GetBytes("pose"), PoseBytes(i)));
                Thread.Sleep(1000);
            }))
            using (var c = Client(pub.Endpoint, new List<string>()))
            {
                bool? inner = null;
                var sw = Stopwatch.StartNew();
                c.MessageReceived += p => { if (inner == null) inner = c.Stop(); };
                c.Start();
                Check.That(WaitFor(() => !c.IsRunning, 3000) && inner == false && c.MessagesReceived == 1,
                    "Stop inside a handler returns at once and ends the thread (" + sw.ElapsedMilliseconds + " ms, " + c.MessagesReceived + " messages)");
            }

            // 7. Face filter: with FaceId = 3, messages of face 0 (the vector's face_id) are ignored.
            using (var pub = new FakePeer(s =>
            {
                FakePeer.Handshake(s, "PUB");
                byte flags;
                FakePeer.ReadFrame(s, out flags);
                for (int i = 0; i < 3; i++) FakePeer.SendAll(s, FakePeer.MessageFrames(Encoding.ASCII.GetBytes("pose"), PoseBytes(i)));
                Thread.Sleep(1000);
            }))
            {
                var opt = new PoseBridgeClientOptions { Endpoint = pub.Endpoint, FaceId = 3 };
                using (var c = new PoseBridgeClient(opt))
                {
                    c.Start();
                    Check.That(WaitFor(() => c.MessagesIgnored == 3, 3000) && c.MessagesReceived == 0, "face filter ignores other faces");
                }
            }

            // 8. Control REQ client against a fake REP.
            using (var rep = new FakePeer(s =>
            {
                FakePeer.Handshake(s, "REP");
                byte flags;
                byte[] delim = FakePeer.ReadFrame(s, out flags);
                byte[] req = FakePeer.ReadFrame(s, out flags);
                bool okReq = delim.Length == 0 && Encoding.ASCII.GetString(req).Contains("recenter");
                // {"ok": false, "error": "recenter: no tracked face"} or {"ok": true}
                byte[] reply = okReq ? new byte[] { 0x81, 0xa2, (byte)'o', (byte)'k', 0xc3 } : new byte[] { 0x80 };
                FakePeer.SendAll(s, FakePeer.MessageFrames(new byte[0], reply));
                Thread.Sleep(200);
            }))
            {
                ControlReply r = ControlClient.Send(rep.Endpoint, "recenter", 2000);
                Check.That(r.Ok, "control: recenter acknowledged by fake REP (" + r.Error + ")");
            }
            var swRefused = Stopwatch.StartNew();
            ControlReply refused = ControlClient.Send("tcp://127.0.0.1:1", "recenter", 1000);
            Check.That(!refused.Ok && refused.Error.Contains("failed") && swRefused.ElapsedMilliseconds < 1500,
                "control: no daemon -> error reply, no exception (" + refused.Error + ")");
        }

        /// <summary>The 'typical' vector with another seq (built by patching the bytes: seq is a positive fixint).</summary>
        static byte[] PoseBytes(int seq)
        {
            byte[] b = Hex(TypicalHex);
            b[8] = (byte)seq; // 8c a1 76 01 a3 73 65 71 [07]
            return b;
        }

        /// <summary>Adds two unknown keys (a nested map and a string) to a fixmap payload.</summary>
        static byte[] WithExtraKeys(byte[] payload)
        {
            byte[] extra =
            {
                0xa5, (byte)'n', (byte)'e', (byte)'w', (byte)'_', (byte)'k', 0x82, 0xa1, (byte)'a', 0x01, 0xa1, (byte)'b', 0x92, 0xc0, 0xc2,
                0xa4, (byte)'n', (byte)'o', (byte)'t', (byte)'e', 0xa3, (byte)'h', (byte)'i', (byte)'!',
            };
            var b = new byte[payload.Length + extra.Length];
            Buffer.BlockCopy(payload, 0, b, 0, payload.Length);
            Buffer.BlockCopy(extra, 0, b, payload.Length, extra.Length);
            b[0] = (byte)(payload[0] + 2);
            return b;
        }

        public static string TypicalHex = "";

        static void StopNeverHangs()
        {
            // Connected to a peer that accepts and then never says anything (stuck in the handshake).
            using (var mute = new FakePeer(s => Thread.Sleep(10000)))
            {
                var c = Client(mute.Endpoint, new List<string>(), handshakeMs: 60000);
                c.Start();
                WaitFor(() => mute.Accepted > 0, 2000);
                Thread.Sleep(200);
                var sw = Stopwatch.StartNew();
                bool joined = c.Stop(2000);
                Check.That(joined && sw.ElapsedMilliseconds < 500, "Stop during a stalled handshake returns promptly (" + sw.ElapsedMilliseconds + " ms)");
                Check.That(c.State == ConnectionState.Stopped, "state Stopped after Stop");
            }
            // Waiting in backoff after a refused connection (nothing listening).
            {
                var opt = new PoseBridgeClientOptions { Endpoint = "tcp://127.0.0.1:1", MinBackoffMs = 30000, MaxBackoffMs = 30000 };
                var c = new PoseBridgeClient(opt);
                c.Start();
                WaitFor(() => c.State == ConnectionState.WaitingToRetry, 2000);
                var sw = Stopwatch.StartNew();
                Check.That(c.Stop(2000) && sw.ElapsedMilliseconds < 500, "Stop during a 30 s backoff returns promptly (" + sw.ElapsedMilliseconds + " ms)");
                Check.That(c.Failures >= 1 && c.LastError.Contains("refused"), "refused connection reported (" + c.LastError + ")");
            }
            // Stop twice, Stop before Start, restart after Stop.
            {
                var c = new PoseBridgeClient("tcp://127.0.0.1:1");
                Check.That(c.Stop(), "Stop before Start");
                c.Start();
                c.Stop();
                Check.That(c.Stop(), "Stop twice");
                c.Start();
                Check.That(c.IsRunning, "restart after Stop");
                c.Dispose();
                Check.That(!c.IsRunning, "Dispose stops");
            }
        }
    }
}
