// Rotation math in doubles, matching posebridge/rotation.py and tests/vectors/rotations.json:
//   q = AngleAxis(-pitch, right) * AngleAxis(s*yaw, up) * AngleAxis(s*roll, forward), s = -1 if mirror,
// quaternions [x, y, z, w] in Unity's frame (left-handed, y up, z out of the face), w >= 0.
using System;

namespace PoseBridge.Core
{
    /// <summary>Dataset angles in degrees: yaw (+ = turn to own right), pitch (+ = up), roll (+ = to left shoulder).</summary>
    public struct YawPitchRoll
    {
        public double Yaw, Pitch, Roll;

        public YawPitchRoll(double yaw, double pitch, double roll)
        {
            Yaw = yaw;
            Pitch = pitch;
            Roll = roll;
        }

        public override string ToString()
        {
            return string.Format("(yaw {0:F2}, pitch {1:F2}, roll {2:F2})", Yaw, Pitch, Roll);
        }
    }

    /// <summary>Double-precision quaternion with Unity's component order and product (a * b = apply b, then a).</summary>
    public struct QuatD
    {
        public double X, Y, Z, W;

        public QuatD(double x, double y, double z, double w)
        {
            X = x;
            Y = y;
            Z = z;
            W = w;
        }

        public static QuatD Identity { get { return new QuatD(0, 0, 0, 1); } }

        public static QuatD operator *(QuatD a, QuatD b)
        {
            return new QuatD(
                a.W * b.X + a.X * b.W + a.Y * b.Z - a.Z * b.Y,
                a.W * b.Y - a.X * b.Z + a.Y * b.W + a.Z * b.X,
                a.W * b.Z + a.X * b.Y - a.Y * b.X + a.Z * b.W,
                a.W * b.W - a.X * b.X - a.Y * b.Y - a.Z * b.Z);
        }

        public double Norm { get { return Math.Sqrt(X * X + Y * Y + Z * Z + W * W); } }

        /// <summary>Inverse of a unit quaternion (the conjugate).</summary>
        public QuatD Conjugate() { return new QuatD(-X, -Y, -Z, W); }

        /// <summary>Unit length with w >= 0 (q and -q are the same rotation); identity for a zero quaternion.</summary>
        public QuatD Canonical()
        {
            double n = Norm;
            if (!(n > 1e-12)) return Identity; // also catches NaN
            double s = W < 0 ? -1.0 / n : 1.0 / n;
            return new QuatD(X * s, Y * s, Z * s, W * s);
        }

        /// <summary>Rotation by <paramref name="degrees"/> about a unit axis.</summary>
        public static QuatD AngleAxis(double degrees, double ax, double ay, double az)
        {
            double h = degrees * Math.PI / 360.0;
            double s = Math.Sin(h);
            return new QuatD(ax * s, ay * s, az * s, Math.Cos(h));
        }

        /// <summary>Rotates a vector (v' = q v q^-1).</summary>
        public void Rotate(double vx, double vy, double vz, out double rx, out double ry, out double rz)
        {
            // t = 2 * cross(q.xyz, v); v' = v + w t + cross(q.xyz, t)
            double tx = 2 * (Y * vz - Z * vy), ty = 2 * (Z * vx - X * vz), tz = 2 * (X * vy - Y * vx);
            rx = vx + W * tx + (Y * tz - Z * ty);
            ry = vy + W * ty + (Z * tx - X * tz);
            rz = vz + W * tz + (X * ty - Y * tx);
        }

        /// <summary>Angle in degrees between two rotations (0 when equal, sign-insensitive).</summary>
        public static double AngleBetween(QuatD a, QuatD b)
        {
            double d = Math.Abs(a.X * b.X + a.Y * b.Y + a.Z * b.Z + a.W * b.W) / (a.Norm * b.Norm);
            return 2.0 * Math.Acos(Math.Min(1.0, d)) * 180.0 / Math.PI;
        }

        /// <summary>Spherical interpolation along the shorter arc, t in [0, 1].</summary>
        public static QuatD Slerp(QuatD a, QuatD b, double t)
        {
            double dot = a.X * b.X + a.Y * b.Y + a.Z * b.Z + a.W * b.W;
            if (dot < 0)
            {
                b = new QuatD(-b.X, -b.Y, -b.Z, -b.W);
                dot = -dot;
            }
            double wa, wb;
            if (dot > 0.9995)
            {
                wa = 1 - t;
                wb = t;
            }
            else
            {
                double theta = Math.Acos(dot);
                double sin = Math.Sin(theta);
                wa = Math.Sin((1 - t) * theta) / sin;
                wb = Math.Sin(t * theta) / sin;
            }
            var r = new QuatD(wa * a.X + wb * b.X, wa * a.Y + wb * b.Y, wa * a.Z + wb * b.Z, wa * a.W + wb * b.W);
            return r.Canonical();
        }

        public override string ToString()
        {
            return string.Format("[{0:R}, {1:R}, {2:R}, {3:R}]", X, Y, Z, W);
        }
    }

    /// <summary>The posebridge rotation convention (docs/protocol.md, "Rotation convention").</summary>
    public static class HeadRotation
    {
        const double Rad2Deg = 180.0 / Math.PI;

        /// <summary>Dataset angles (degrees) to the head-local Unity quaternion, w >= 0.</summary>
        public static QuatD ToUnity(double yaw, double pitch, double roll, bool mirror)
        {
            double s = mirror ? -1.0 : 1.0;
            QuatD q = QuatD.AngleAxis(-pitch, 1, 0, 0) * QuatD.AngleAxis(s * yaw, 0, 1, 0)
                      * QuatD.AngleAxis(s * roll, 0, 0, 1);
            return q.Canonical();
        }

        public static QuatD ToUnity(YawPitchRoll a, bool mirror)
        {
            return ToUnity(a.Yaw, a.Pitch, a.Roll, mirror);
        }

        /// <summary>Inverse of <see cref="ToUnity(double,double,double,bool)"/>: yaw and roll in [-180, 180), pitch in [-90, 90].</summary>
        public static YawPitchRoll ToDataset(QuatD q, bool mirror)
        {
            q = q.Canonical();
            double x = q.X, y = q.Y, z = q.Z, w = q.W;
            // Rotation matrix entries needed for the intrinsic X-Y-Z decomposition R = Rx(a) Ry(b) Rz(c).
            double r00 = 1 - 2 * (y * y + z * z);
            double r01 = 2 * (x * y - z * w);
            double r02 = 2 * (x * z + y * w);
            double r11 = 1 - 2 * (x * x + z * z);
            double r12 = 2 * (y * z - x * w);
            double r21 = 2 * (y * z + x * w);
            double r22 = 1 - 2 * (x * x + y * y);
            double b = Math.Asin(Math.Max(-1.0, Math.Min(1.0, r02))) * Rad2Deg;
            double a, c;
            if (Math.Abs(r02) > 1 - 1e-12)
            {
                a = Math.Atan2(r21, r11) * Rad2Deg; // gimbal lock: only a +/- c is defined; put it all in a
                c = 0;
            }
            else
            {
                a = Math.Atan2(-r12, r22) * Rad2Deg;
                c = Math.Atan2(-r01, r00) * Rad2Deg;
            }
            if (Math.Abs(a) > 90.0)
            {
                // Same rotation as (a+180, 180-b, c+180): gives yaw its full range, keeps |pitch| <= 90.
                a = WrapDegrees(a + 180.0);
                b = WrapDegrees(180.0 - b);
                c = WrapDegrees(c + 180.0);
            }
            double s = mirror ? -1.0 : 1.0;
            return new YawPitchRoll(s * b, -a, s * c);
        }

        /// <summary>Angle wrapped into [-180, 180).</summary>
        public static double WrapDegrees(double angle)
        {
            return angle - 360.0 * Math.Floor((angle + 180.0) / 360.0);
        }

        /// <summary>Rotation relative to a neutral pose, in the neutral head's frame: neutral^-1 * q.</summary>
        public static QuatD Recenter(QuatD q, QuatD neutral)
        {
            return (neutral.Conjugate() * q).Canonical();
        }

        /// <summary>
        /// A head-frame rotation expressed in a bone's local axes: offset^-1 * q * offset, where offset is
        /// the bone's rotation relative to the character's axes (x right, y up, z forward). Post-multiply
        /// the bone's local rotation by the result to turn the head by q in the character's head frame.
        /// </summary>
        public static QuatD InBoneAxes(QuatD q, QuatD boneOffset)
        {
            return boneOffset.Conjugate() * q * boneOffset;
        }

        /// <summary>Mirror a head rotation left-right (what a selfie view does): negates yaw and roll.</summary>
        public static QuatD Mirror(QuatD q)
        {
            return new QuatD(q.X, -q.Y, -q.Z, q.W);
        }
    }
}
